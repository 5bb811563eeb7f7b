//! The in-memory catalog index: an inverted index over normalised words plus
//! pre-sorted orderings, held in an immutable `Snapshot` that readers load
//! without locks (`arc-swap`) and writers replace whole.
//!
//! Invariants:
//! - Readers never block: a query works on one snapshot from start to end.
//! - Writers are serialised (one mutex, never taken by readers) and always
//!   re-read the records they apply from sled, so the newest snapshot never
//!   goes back to an older version of a record whatever order writes finish in.
//! - Stock is not part of the snapshot's structure: each document holds an
//!   `Arc<AtomicI64>` shared by every snapshot, so `publish_stock` is one
//!   atomic store and never rebuilds anything.

use crate::domain::catalog::{Brand, Category, Product};
use crate::domain::{BrandId, CategoryId, ProductId};
use crate::store::{Store, StoreError};
use arc_swap::ArcSwap;
use std::cmp::Ordering as Cmp;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// Above this many changed documents a write re-sorts the orderings instead
/// of moving each document (moving is O(n) per document).
const RESORT_THRESHOLD: usize = 32;

/// Lower-case ASCII words of a text, accents folded ("Crème Brûlée" -> crème
/// becomes "creme", "brulee").
pub fn normalise(text: &str) -> Vec<String> {
    deunicode::deunicode(text)
        .to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// One indexed product.
#[derive(Debug)]
pub struct Doc {
    pub product: Product,
    /// Units on hand, published by the inventory owner; shared by every snapshot.
    pub stock: Arc<AtomicI64>,
    /// Folded lower-case name, the key of `ordering=name`.
    sort_name: String,
    /// Words of the name.
    name_words: Vec<String>,
    /// Words of the name, description, category name and brand name.
    all_words: Vec<String>,
}

impl Doc {
    pub fn on_hand(&self) -> i64 {
        self.stock.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default, Clone)]
struct Postings {
    /// Sorted doc numbers whose indexed text has the word anywhere.
    all: Arc<Vec<u32>>,
    /// Sorted doc numbers whose name has the word.
    name: Arc<Vec<u32>>,
}

/// The orderings a listing can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    Price,
    PriceDesc,
    Name,
    Newest,
    Rating,
}

impl SortOrder {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "price" => SortOrder::Price,
            "-price" => SortOrder::PriceDesc,
            "name" => SortOrder::Name,
            "-created_at" => SortOrder::Newest,
            "-rating" => SortOrder::Rating,
            _ => return None,
        })
    }
}

/// A listing request, already validated.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub search: Option<String>,
    pub category: Option<CategoryId>,
    pub brand: Option<BrandId>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub in_stock: bool,
    /// Staff see inactive products too.
    pub include_inactive: bool,
    /// `None`: name matches first when searching, newest first otherwise.
    pub ordering: Option<SortOrder>,
    pub offset: usize,
    pub limit: usize,
}

/// Product counts of a category or brand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub active: usize,
    pub all: usize,
}

/// One immutable state of the catalog as seen by readers.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    docs: Vec<Option<Arc<Doc>>>,
    by_id: HashMap<ProductId, u32>,
    by_slug: HashMap<String, u32>,
    terms: BTreeMap<String, Postings>,
    by_price: Arc<Vec<u32>>,
    by_name: Arc<Vec<u32>>,
    by_newest: Arc<Vec<u32>>,
    by_rating: Arc<Vec<u32>>,
    categories: HashMap<CategoryId, Arc<Category>>,
    category_slugs: HashMap<String, CategoryId>,
    brands: HashMap<BrandId, Arc<Brand>>,
    brand_slugs: HashMap<String, BrandId>,
    category_counts: HashMap<CategoryId, Counts>,
    brand_counts: HashMap<BrandId, Counts>,
}

fn compare(order: SortOrder, a: &Doc, b: &Doc) -> Cmp {
    let (pa, pb) = (&a.product, &b.product);
    match order {
        SortOrder::Price | SortOrder::PriceDesc => {
            (pa.price.minor, pa.id).cmp(&(pb.price.minor, pb.id))
        }
        SortOrder::Name => (&a.sort_name, pa.id).cmp(&(&b.sort_name, pb.id)),
        SortOrder::Newest => (pb.created_at, pb.id).cmp(&(pa.created_at, pa.id)),
        SortOrder::Rating => (pb.rating_key(), pb.rating_count, pa.id).cmp(&(
            pa.rating_key(),
            pa.rating_count,
            pb.id,
        )),
    }
}

const STORED_ORDERS: [SortOrder; 4] = [
    SortOrder::Price,
    SortOrder::Name,
    SortOrder::Newest,
    SortOrder::Rating,
];

/// A set of doc numbers as a bitmap, sized to the snapshot.
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Self {
        Bits(vec![0; len.div_ceil(64)])
    }
    fn set(&mut self, i: u32) {
        if let Some(word) = self.0.get_mut(i as usize / 64) {
            *word |= 1 << (i % 64);
        }
    }
    fn get(&self, i: u32) -> bool {
        self.0
            .get(i as usize / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    fn and(&mut self, other: &Bits) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a &= b;
        }
    }
}

impl Snapshot {
    fn doc(&self, n: u32) -> Option<&Arc<Doc>> {
        self.docs.get(n as usize).and_then(Option::as_ref)
    }

    pub fn product(&self, id: ProductId) -> Option<&Arc<Doc>> {
        self.by_id.get(&id).and_then(|&n| self.doc(n))
    }

    pub fn product_by_slug(&self, slug: &str) -> Option<&Arc<Doc>> {
        self.by_slug.get(slug).and_then(|&n| self.doc(n))
    }

    pub fn product_count(&self) -> usize {
        self.by_id.len()
    }

    pub fn category(&self, id: CategoryId) -> Option<&Arc<Category>> {
        self.categories.get(&id)
    }

    pub fn category_by_slug(&self, slug: &str) -> Option<&Arc<Category>> {
        self.category_slugs
            .get(slug)
            .and_then(|id| self.categories.get(id))
    }

    pub fn brand(&self, id: BrandId) -> Option<&Arc<Brand>> {
        self.brands.get(&id)
    }

    pub fn brand_by_slug(&self, slug: &str) -> Option<&Arc<Brand>> {
        self.brand_slugs
            .get(slug)
            .and_then(|id| self.brands.get(id))
    }

    /// Categories by name, each with its product counts.
    pub fn categories(&self) -> Vec<(Arc<Category>, Counts)> {
        let mut list: Vec<_> = self
            .categories
            .values()
            .map(|c| {
                let counts = self.category_counts.get(&c.id).copied().unwrap_or_default();
                (c.clone(), counts)
            })
            .collect();
        list.sort_by(|a, b| (&a.0.name, a.0.id).cmp(&(&b.0.name, b.0.id)));
        list
    }

    /// Brands by name, each with its product counts.
    pub fn brands(&self) -> Vec<(Arc<Brand>, Counts)> {
        let mut list: Vec<_> = self
            .brands
            .values()
            .map(|b| {
                let counts = self.brand_counts.get(&b.id).copied().unwrap_or_default();
                (b.clone(), counts)
            })
            .collect();
        list.sort_by(|a, b| (&a.0.name, a.0.id).cmp(&(&b.0.name, b.0.id)));
        list
    }

    pub fn category_counts(&self, id: CategoryId) -> Counts {
        self.category_counts.get(&id).copied().unwrap_or_default()
    }

    pub fn brand_counts(&self, id: BrandId) -> Counts {
        self.brand_counts.get(&id).copied().unwrap_or_default()
    }

    /// (all-words match, all-words-in-name match) bitmaps for a search, or
    /// `None` when the search has no words.
    fn search_bits(&self, search: &str) -> Option<(Bits, Bits)> {
        let words = normalise(search);
        if words.is_empty() {
            return None;
        }
        let len = self.docs.len();
        let mut all: Option<Bits> = None;
        let mut name: Option<Bits> = None;
        for word in &words {
            // Every query word matches indexed words it starts, so "mug"
            // finds "mugs" and a half-typed last word still matches.
            let mut word_all = Bits::new(len);
            let mut word_name = Bits::new(len);
            for (_, postings) in self
                .terms
                .range::<str, _>((
                    std::ops::Bound::Included(word.as_str()),
                    std::ops::Bound::Unbounded,
                ))
                .take_while(|(term, _)| term.starts_with(word.as_str()))
            {
                postings.all.iter().for_each(|&n| word_all.set(n));
                postings.name.iter().for_each(|&n| word_name.set(n));
            }
            match &mut all {
                Some(bits) => bits.and(&word_all),
                None => all = Some(word_all),
            }
            match &mut name {
                Some(bits) => bits.and(&word_name),
                None => name = Some(word_name),
            }
        }
        Some((all?, name?))
    }

    /// Runs a listing: total matches and the docs of the requested page.
    pub fn query(&self, q: &Query) -> (usize, Vec<Arc<Doc>>) {
        let search = q.search.as_deref().and_then(|s| self.search_bits(s));
        let keep = |n: u32, doc: &Doc| -> bool {
            let p = &doc.product;
            (q.include_inactive || p.is_active)
                && q.category.is_none_or(|c| p.category == c)
                && q.brand.is_none_or(|b| p.brand == Some(b))
                && q.min_price.is_none_or(|m| p.price.minor >= m)
                && q.max_price.is_none_or(|m| p.price.minor <= m)
                && (!q.in_stock || doc.on_hand() > 0)
                && search.as_ref().is_none_or(|(all, _)| all.get(n))
        };
        let mut count = 0usize;
        let mut page = Vec::with_capacity(q.limit.min(100));
        let mut visit = |n: u32| {
            if let Some(doc) = self.doc(n) {
                if keep(n, doc) {
                    if count >= q.offset && page.len() < q.limit {
                        page.push(doc.clone());
                    }
                    count += 1;
                }
            }
        };
        match (q.ordering, &search) {
            (None, Some((_, name))) => {
                // Ranked: products whose name holds every word first, then the rest, each by name.
                self.by_name
                    .iter()
                    .filter(|&&n| name.get(n))
                    .for_each(|&n| visit(n));
                self.by_name
                    .iter()
                    .filter(|&&n| !name.get(n))
                    .for_each(|&n| visit(n));
            }
            (None, None) | (Some(SortOrder::Newest), _) => {
                self.by_newest.iter().for_each(|&n| visit(n))
            }
            (Some(SortOrder::Price), _) => self.by_price.iter().for_each(|&n| visit(n)),
            (Some(SortOrder::PriceDesc), _) => self.by_price.iter().rev().for_each(|&n| visit(n)),
            (Some(SortOrder::Name), _) => self.by_name.iter().for_each(|&n| visit(n)),
            (Some(SortOrder::Rating), _) => self.by_rating.iter().for_each(|&n| visit(n)),
        }
        (count, page)
    }

    fn order_mut(&mut self, order: SortOrder) -> &mut Arc<Vec<u32>> {
        match order {
            SortOrder::Price | SortOrder::PriceDesc => &mut self.by_price,
            SortOrder::Name => &mut self.by_name,
            SortOrder::Newest => &mut self.by_newest,
            SortOrder::Rating => &mut self.by_rating,
        }
    }

    fn make_doc(&self, product: Product, stock: Arc<AtomicI64>) -> Doc {
        let name_words = normalise(&product.name);
        let mut all_words = name_words.clone();
        all_words.extend(normalise(&product.description));
        if let Some(c) = self.categories.get(&product.category) {
            all_words.extend(normalise(&c.name));
        }
        if let Some(b) = product.brand.and_then(|b| self.brands.get(&b)) {
            all_words.extend(normalise(&b.name));
        }
        let dedup = |mut words: Vec<String>| {
            words.sort();
            words.dedup();
            words
        };
        Doc {
            sort_name: deunicode::deunicode(&product.name).to_lowercase(),
            name_words: dedup(name_words),
            all_words: dedup(all_words),
            product,
            stock,
        }
    }

    fn unlink_terms(&mut self, n: u32, doc: &Doc) {
        for word in &doc.all_words {
            let mut empty = false;
            if let Some(postings) = self.terms.get_mut(word) {
                remove_sorted(Arc::make_mut(&mut postings.all), n);
                remove_sorted(Arc::make_mut(&mut postings.name), n);
                empty = postings.all.is_empty();
            }
            if empty {
                self.terms.remove(word);
            }
        }
    }

    fn link_terms(&mut self, n: u32, doc: &Doc) {
        for word in &doc.all_words {
            let postings = self.terms.entry(word.clone()).or_default();
            insert_sorted(Arc::make_mut(&mut postings.all), n);
            if doc.name_words.binary_search(word).is_ok() {
                insert_sorted(Arc::make_mut(&mut postings.name), n);
            }
        }
    }

    /// Puts `product` (new or changed) into the snapshot, or removes the
    /// product when `product` is `None`. Orderings are fixed up by the caller.
    fn upsert(
        &mut self,
        id: ProductId,
        product: Option<Product>,
        stock: Option<i64>,
    ) -> Option<u32> {
        let existing = self.by_id.get(&id).copied();
        if let Some(n) = existing {
            if let Some(old) = self.docs.get_mut(n as usize).and_then(Option::take) {
                self.unlink_terms(n, &old);
                self.by_slug.remove(&old.product.slug);
                match product {
                    Some(product) => {
                        let shared = old.stock.clone();
                        if let Some(units) = stock {
                            shared.store(units, Ordering::Relaxed);
                        }
                        let doc = self.make_doc(product, shared);
                        self.install(n, doc);
                    }
                    None => {
                        self.by_id.remove(&id);
                    }
                }
                return Some(n);
            }
        }
        let product = product?;
        let n = u32::try_from(self.docs.len()).ok()?;
        self.docs.push(None);
        let doc = self.make_doc(product, Arc::new(AtomicI64::new(stock.unwrap_or(0))));
        self.by_id.insert(id, n);
        self.install(n, doc);
        Some(n)
    }

    fn install(&mut self, n: u32, doc: Doc) {
        self.link_terms(n, &doc);
        self.by_slug.insert(doc.product.slug.clone(), n);
        if let Some(slot) = self.docs.get_mut(n as usize) {
            *slot = Some(Arc::new(doc));
        }
    }

    /// Brings the orderings and counts in line after `changed` docs moved.
    fn reorder(&mut self, changed: &[u32]) {
        let live: Vec<u32> = (0..self.docs.len() as u32)
            .filter(|&n| self.doc(n).is_some())
            .collect();
        for order in STORED_ORDERS {
            let docs = std::mem::take(&mut self.docs);
            let cmp =
                |a: &u32, b: &u32| match (docs[*a as usize].as_ref(), docs[*b as usize].as_ref()) {
                    (Some(x), Some(y)) => compare(order, x, y),
                    _ => a.cmp(b),
                };
            let list = Arc::make_mut(self.order_mut(order));
            if changed.len() > RESORT_THRESHOLD || list.is_empty() {
                *list = live.clone();
                list.sort_unstable_by(cmp);
            } else {
                let moved: HashSet<u32> = changed.iter().copied().collect();
                list.retain(|n| !moved.contains(n));
                for &n in changed {
                    if docs.get(n as usize).is_some_and(Option::is_some) {
                        let at = list.partition_point(|m| cmp(m, &n) == Cmp::Less);
                        list.insert(at, n);
                    }
                }
            }
            self.docs = docs;
        }
        self.recount();
    }

    fn recount(&mut self) {
        let mut categories: HashMap<CategoryId, Counts> = HashMap::new();
        let mut brands: HashMap<BrandId, Counts> = HashMap::new();
        for doc in self.docs.iter().flatten() {
            let p = &doc.product;
            let c = categories.entry(p.category).or_default();
            c.all += 1;
            c.active += usize::from(p.is_active);
            if let Some(b) = p.brand {
                let b = brands.entry(b).or_default();
                b.all += 1;
                b.active += usize::from(p.is_active);
            }
        }
        self.category_counts = categories;
        self.brand_counts = brands;
    }

    fn docs_where(&self, pred: impl Fn(&Product) -> bool) -> Vec<ProductId> {
        self.docs
            .iter()
            .flatten()
            .filter(|d| pred(&d.product))
            .map(|d| d.product.id)
            .collect()
    }
}

fn insert_sorted(list: &mut Vec<u32>, n: u32) {
    if list.last().is_none_or(|&last| last < n) {
        list.push(n);
    } else if let Err(at) = list.binary_search(&n) {
        list.insert(at, n);
    }
}

fn remove_sorted(list: &mut Vec<u32>, n: u32) {
    if let Ok(at) = list.binary_search(&n) {
        list.remove(at);
    }
}

/// The shared index: lock-free reads, serialised writes.
pub struct CatalogIndex {
    current: ArcSwap<Snapshot>,
    writer: Mutex<()>,
}

impl CatalogIndex {
    /// Builds the index from every category, brand, product and stock level in sled.
    pub fn build(store: &Store) -> Result<Self, StoreError> {
        let mut snap = Snapshot::default();
        for category in store.categories()? {
            snap.category_slugs
                .insert(category.slug.clone(), category.id);
            snap.categories.insert(category.id, Arc::new(category));
        }
        for brand in store.brands()? {
            snap.brand_slugs.insert(brand.slug.clone(), brand.id);
            snap.brands.insert(brand.id, Arc::new(brand));
        }
        let mut stock = HashMap::new();
        for entry in store.stock_levels() {
            let (id, level) = entry?;
            stock.insert(id, level.on_hand);
        }
        for product in store.products() {
            let product = product?;
            let units = stock.get(&product.id).copied();
            snap.upsert(product.id, Some(product), units);
        }
        snap.reorder(&[]);
        Ok(Self {
            current: ArcSwap::from_pointee(snap),
            writer: Mutex::new(()),
        })
    }

    /// The current snapshot; hold it for the whole of one request.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Publishes a product's units on hand: one atomic store, no rebuild.
    pub fn publish_stock(&self, id: ProductId, on_hand: i64) {
        if let Some(doc) = self.current.load().product(id) {
            doc.stock.store(on_hand, Ordering::Relaxed);
        }
    }

    fn write(
        &self,
        change: impl FnOnce(&mut Snapshot) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let _guard = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = Snapshot::clone(&self.current.load());
        change(&mut next)?;
        self.current.store(Arc::new(next));
        Ok(())
    }

    /// Re-reads these products (and their stock) from sled and applies them;
    /// products gone from sled leave the index.
    pub fn refresh_products(&self, store: &Store, ids: &[ProductId]) -> Result<(), StoreError> {
        self.write(|snap| refresh_products_in(snap, store, ids))
    }

    /// Applies a bulk import in one snapshot swap: the categories and brands
    /// first, so the new products' searchable text sees their names. Those
    /// were only found or created by the import, never renamed, so products
    /// already indexed under them need no re-indexing.
    pub fn refresh_imported(
        &self,
        store: &Store,
        categories: &[CategoryId],
        brands: &[BrandId],
        products: &[ProductId],
    ) -> Result<(), StoreError> {
        self.write(|snap| {
            for &id in categories {
                if let Some(category) = store.category(id)? {
                    snap.category_slugs.insert(category.slug.clone(), id);
                    snap.categories.insert(id, Arc::new(category));
                }
            }
            for &id in brands {
                if let Some(brand) = store.brand(id)? {
                    snap.brand_slugs.insert(brand.slug.clone(), id);
                    snap.brands.insert(id, Arc::new(brand));
                }
            }
            refresh_products_in(snap, store, products)
        })
    }

    /// Re-reads a category (gone from sled: removed) and re-indexes its products,
    /// whose searchable text includes the category name.
    pub fn refresh_category(&self, store: &Store, id: CategoryId) -> Result<(), StoreError> {
        self.write(|snap| {
            if let Some(old) = snap.categories.remove(&id) {
                snap.category_slugs.remove(&old.slug);
            }
            if let Some(category) = store.category(id)? {
                snap.category_slugs.insert(category.slug.clone(), id);
                snap.categories.insert(id, Arc::new(category));
            }
            let ids = snap.docs_where(|p| p.category == id);
            refresh_products_in(snap, store, &ids)
        })
    }

    /// Re-reads a brand and re-indexes its products.
    pub fn refresh_brand(&self, store: &Store, id: BrandId) -> Result<(), StoreError> {
        self.write(|snap| {
            if let Some(old) = snap.brands.remove(&id) {
                snap.brand_slugs.remove(&old.slug);
            }
            if let Some(brand) = store.brand(id)? {
                snap.brand_slugs.insert(brand.slug.clone(), id);
                snap.brands.insert(id, Arc::new(brand));
            }
            let ids = snap.docs_where(|p| p.brand == Some(id));
            refresh_products_in(snap, store, &ids)
        })
    }
}

fn refresh_products_in(
    snap: &mut Snapshot,
    store: &Store,
    ids: &[ProductId],
) -> Result<(), StoreError> {
    let mut changed = Vec::with_capacity(ids.len());
    for &id in ids {
        let product = store.product(id)?;
        let stock = match &product {
            Some(_) => store.stock_level(id)?.map(|l| l.on_hand),
            None => None,
        };
        if let Some(n) = snap.upsert(id, product, stock) {
            changed.push(n);
        }
    }
    snap.reorder(&changed);
    Ok(())
}
