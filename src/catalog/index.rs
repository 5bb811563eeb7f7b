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
//! - A document's pre-rendered JSON (`view::Rendered`) agrees with every
//!   snapshot holding the document: it is rendered when the document is
//!   built, and whatever it embeds from elsewhere (the category's and the
//!   brand's name and slug) rebuilds the documents that embed it when it
//!   changes. Stock is left out of it and read at each render.

use super::view::Rendered;
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
    /// The product's JSON view without the stock; `None` only if it could
    /// not be cut around the stock (see `Rendered::new`).
    rendered: Option<Rendered>,
}

impl Doc {
    pub fn on_hand(&self) -> i64 {
        self.stock.load(Ordering::Relaxed)
    }

    pub fn rendered(&self) -> Option<&Rendered> {
        self.rendered.as_ref()
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

/// What a listing filters on, per doc number, packed together so a filter
/// scan reads one small contiguous array instead of chasing every document.
#[derive(Debug, Clone, Copy)]
struct FilterKey {
    live: bool,
    active: bool,
    price: i64,
    category: CategoryId,
    brand: Option<BrandId>,
}

type Orderings = [Arc<Vec<u32>>; 4];

static EMPTY_ORDERINGS: std::sync::LazyLock<Orderings> =
    std::sync::LazyLock::new(Orderings::default);

#[derive(Debug, Default, Clone)]
struct Shelves {
    all: Orderings,
    by_category: HashMap<CategoryId, Orderings>,
    by_brand: HashMap<BrandId, Orderings>,
}

/// One immutable state of the catalog as seen by readers.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    docs: Vec<Option<Arc<Doc>>>,
    /// `FilterKey` of each doc number (dead slots have `live == false`).
    keys: Arc<Vec<FilterKey>>,
    /// The live and active doc numbers: what a shopper's search is
    /// intersected with, 12.5 KiB per 100,000 products where reading the
    /// filter key of each match missed the cache every time.
    active: Arc<Bits>,
    /// Position of each doc number in each stored ordering (see `rank_of`),
    /// so a search can sort its few matches instead of walking everything.
    ranks: [Arc<Vec<u32>>; 4],
    /// Active docs in each stored ordering, for the whole catalog and per
    /// category and brand: a shopper's page of those is a slice, whatever
    /// its number.
    shelves: Shelves,
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

/// Index of an ordering's list in `Snapshot::ranks`.
fn rank_slot(order: SortOrder) -> usize {
    match order {
        SortOrder::Price | SortOrder::PriceDesc => 0,
        SortOrder::Name => 1,
        SortOrder::Newest => 2,
        SortOrder::Rating => 3,
    }
}

/// A set of doc numbers as a bitmap, sized to the snapshot.
#[derive(Debug, Default, Clone)]
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
    /// The set doc numbers, ascending.
    fn ones(&self) -> impl Iterator<Item = u32> + '_ {
        Self::ones_of(self.0.iter().copied())
    }

    /// The doc numbers set in both, ascending.
    fn ones_and<'a>(&'a self, other: &'a Bits) -> impl Iterator<Item = u32> + 'a {
        Self::ones_of(self.0.iter().zip(&other.0).map(|(a, b)| a & b))
    }

    fn ones_of(words: impl Iterator<Item = u64>) -> impl Iterator<Item = u32> {
        words.enumerate().flat_map(|(i, word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros();
                rest &= rest - 1;
                Some(i as u32 * 64 + bit)
            })
        })
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
    ///
    /// Cost is kept off the catalog size where it can be: a search sorts only
    /// its matches by their precomputed rank; a listing filtered at most by
    /// category or brand takes its count from the maintained counts and walks
    /// its ordering only as far as the page; other filters count with one
    /// scan of the packed filter keys.
    /// The page borrows from the snapshot: taking a reference count on each
    /// document was a locked write to a cache line per product.
    pub fn query(&self, q: &Query) -> (usize, Vec<&Doc>) {
        let search = q.search.as_deref().and_then(|s| self.search_bits(s));
        let keys = &self.keys;
        let keep = |n: u32| -> bool {
            let Some(key) = keys.get(n as usize) else {
                return false;
            };
            key.live
                && (q.include_inactive || key.active)
                && q.category.is_none_or(|c| key.category == c)
                && q.brand.is_none_or(|b| key.brand == Some(b))
                && q.min_price.is_none_or(|m| key.price >= m)
                && q.max_price.is_none_or(|m| key.price <= m)
                && search.as_ref().is_none_or(|(all, _)| all.get(n))
                // Last: stock lives behind the document, the costliest read.
                && (!q.in_stock || self.doc(n).is_some_and(|d| d.on_hand() > 0))
        };
        let end = q.offset.saturating_add(q.limit);
        if let Some((all, name)) = &search {
            // Each match's sort key is read once (ranks are unique per live
            // doc, so sorting the pairs orders as the keys alone would).
            let rank = |n: u32| -> u64 {
                let at = |order: SortOrder| {
                    self.ranks[rank_slot(order)]
                        .get(n as usize)
                        .copied()
                        .unwrap_or(u32::MAX)
                };
                match q.ordering {
                    // Ranked: names holding every word first, then the rest, each by name.
                    None => u64::from(!name.get(n)) << 32 | u64::from(at(SortOrder::Name)),
                    Some(SortOrder::PriceDesc) => u64::from(u32::MAX - at(SortOrder::Price)),
                    Some(order) => u64::from(at(order)),
                }
            };
            let only_active = !q.include_inactive
                && q.category.is_none()
                && q.brand.is_none()
                && q.min_price.is_none()
                && q.max_price.is_none()
                && !q.in_stock;
            let mut matches: Vec<(u64, u32)> = if only_active {
                all.ones_and(&self.active).map(|n| (rank(n), n)).collect()
            } else {
                all.ones()
                    .filter(|&n| keep(n))
                    .map(|n| (rank(n), n))
                    .collect()
            };
            let count = matches.len();
            if end < matches.len() {
                matches.select_nth_unstable(end);
                matches.truncate(end);
            }
            matches.sort_unstable();
            let page = matches
                .iter()
                .skip(q.offset)
                .filter_map(|&(_, n)| self.doc(n).map(Arc::as_ref))
                .collect();
            return (count, page);
        }

        if let Some(shelf) = self.shelf(q) {
            let list = &shelf[rank_slot(q.ordering.unwrap_or(SortOrder::Newest))];
            let count = list.len();
            let pick = |i: usize| {
                let at = if q.ordering == Some(SortOrder::PriceDesc) {
                    count - 1 - i
                } else {
                    i
                };
                list.get(at).and_then(|&n| self.doc(n)).map(Arc::as_ref)
            };
            let range = q.offset.min(count)..end.min(count);
            let mut page = Vec::with_capacity(range.len());
            page.extend(range.filter_map(pick));
            return (count, page);
        }
        let known_count = self.maintained_count(q);
        let count = match known_count {
            Some(count) => count,
            None => (0..self.keys.len() as u32).filter(|&n| keep(n)).count(),
        };
        let mut page = Vec::with_capacity(q.limit.min(100));
        if q.offset < count {
            let mut seen = 0usize;
            let mut visit = |n: u32| -> bool {
                if keep(n) {
                    if seen >= q.offset {
                        if let Some(doc) = self.doc(n) {
                            page.push(doc.as_ref());
                        }
                    }
                    seen += 1;
                }
                seen < end && seen < count
            };
            let order = q.ordering.unwrap_or(SortOrder::Newest);
            let list = self.order(order);
            if order == SortOrder::PriceDesc {
                for &n in list.iter().rev() {
                    if !visit(n) {
                        break;
                    }
                }
            } else {
                for &n in list.iter() {
                    if !visit(n) {
                        break;
                    }
                }
            }
        }
        (count, page)
    }

    /// The shelf holding exactly a shopper's listing filtered by at most one
    /// of category and brand.
    fn shelf(&self, q: &Query) -> Option<&Orderings> {
        if q.include_inactive
            || q.search.is_some()
            || q.in_stock
            || q.min_price.is_some()
            || q.max_price.is_some()
        {
            return None;
        }
        match (q.category, q.brand) {
            (None, None) => Some(&self.shelves.all),
            (Some(c), None) => Some(self.shelves.by_category.get(&c).unwrap_or(&EMPTY_ORDERINGS)),
            (None, Some(b)) => Some(self.shelves.by_brand.get(&b).unwrap_or(&EMPTY_ORDERINGS)),
            (Some(_), Some(_)) => None,
        }
    }

    /// The match count of a listing filtered only by category or brand (or
    /// nothing), from the counts every write keeps; `None` when it needs a scan.
    fn maintained_count(&self, q: &Query) -> Option<usize> {
        if q.search.is_some() || q.in_stock || q.min_price.is_some() || q.max_price.is_some() {
            return None;
        }
        let pick = |c: Counts| if q.include_inactive { c.all } else { c.active };
        match (q.category, q.brand) {
            // Every live product is in `by_id`; every active one is on the shelves.
            (None, None) => Some(if q.include_inactive {
                self.by_id.len()
            } else {
                self.shelves.all[0].len()
            }),
            (Some(c), None) => Some(pick(self.category_counts(c))),
            (None, Some(b)) => Some(pick(self.brand_counts(b))),
            (Some(_), Some(_)) => None,
        }
    }

    fn order(&self, order: SortOrder) -> &Arc<Vec<u32>> {
        match order {
            SortOrder::Price | SortOrder::PriceDesc => &self.by_price,
            SortOrder::Name => &self.by_name,
            SortOrder::Newest => &self.by_newest,
            SortOrder::Rating => &self.by_rating,
        }
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
            rendered: Rendered::new(&product, self),
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
        for order in STORED_ORDERS {
            let mut rank = vec![u32::MAX; self.docs.len()];
            for (at, &n) in self.order(order).iter().enumerate() {
                if let Some(slot) = rank.get_mut(n as usize) {
                    *slot = at as u32;
                }
            }
            self.ranks[rank_slot(order)] = Arc::new(rank);
        }
        self.recount();
        self.stock_shelves();
    }

    /// Rebuilds the shelves from the orderings and the filter keys.
    fn stock_shelves(&mut self) {
        let mut all: [Vec<u32>; 4] = Default::default();
        let mut by_category: HashMap<CategoryId, [Vec<u32>; 4]> = HashMap::new();
        let mut by_brand: HashMap<BrandId, [Vec<u32>; 4]> = HashMap::new();
        for order in STORED_ORDERS {
            let slot = rank_slot(order);
            for &n in self.order(order).iter() {
                let Some(key) = self.keys.get(n as usize) else {
                    continue;
                };
                if !(key.live && key.active) {
                    continue;
                }
                all[slot].push(n);
                by_category.entry(key.category).or_default()[slot].push(n);
                if let Some(b) = key.brand {
                    by_brand.entry(b).or_default()[slot].push(n);
                }
            }
        }
        let freeze = |lists: [Vec<u32>; 4]| lists.map(Arc::new);
        self.shelves = Shelves {
            all: freeze(all),
            by_category: by_category
                .into_iter()
                .map(|(k, v)| (k, freeze(v)))
                .collect(),
            by_brand: by_brand.into_iter().map(|(k, v)| (k, freeze(v))).collect(),
        };
    }

    /// Rebuilds what is derived from every document: the packed filter
    /// keys and the counts.
    fn recount(&mut self) {
        let mut categories: HashMap<CategoryId, Counts> = HashMap::new();
        let mut brands: HashMap<BrandId, Counts> = HashMap::new();
        let mut keys = Vec::with_capacity(self.docs.len());
        for slot in &self.docs {
            let Some(doc) = slot else {
                keys.push(FilterKey {
                    live: false,
                    active: false,
                    price: 0,
                    category: CategoryId(0),
                    brand: None,
                });
                continue;
            };
            let p = &doc.product;
            keys.push(FilterKey {
                live: true,
                active: p.is_active,
                price: p.price.minor,
                category: p.category,
                brand: p.brand,
            });
            let c = categories.entry(p.category).or_default();
            c.all += 1;
            c.active += usize::from(p.is_active);
            if let Some(b) = p.brand {
                let b = brands.entry(b).or_default();
                b.all += 1;
                b.active += usize::from(p.is_active);
            }
        }
        let mut active = Bits::new(keys.len());
        for (n, key) in (0u32..).zip(&keys) {
            if key.live && key.active {
                active.set(n);
            }
        }
        self.active = Arc::new(active);
        self.keys = Arc::new(keys);
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

#[cfg(test)]
mod tests {
    //! The fast paths of `Snapshot::query` (shelves, ranked search, counts
    //! kept by writes) against a plain filter-and-sort over every document.

    use super::*;
    use crate::catalog::generate;

    fn reference(snap: &Snapshot, q: &Query) -> (usize, Vec<ProductId>) {
        let words = q.search.as_deref().map(normalise).unwrap_or_default();
        let has_all = |have: &[String]| {
            words
                .iter()
                .all(|w| have.iter().any(|h| h.starts_with(w.as_str())))
        };
        let mut hits: Vec<&Arc<Doc>> = snap
            .docs
            .iter()
            .flatten()
            .filter(|d| {
                let p = &d.product;
                (q.include_inactive || p.is_active)
                    && q.category.is_none_or(|c| p.category == c)
                    && q.brand.is_none_or(|b| p.brand == Some(b))
                    && q.min_price.is_none_or(|m| p.price.minor >= m)
                    && q.max_price.is_none_or(|m| p.price.minor <= m)
                    && (!q.in_stock || d.on_hand() > 0)
                    && has_all(&d.all_words)
            })
            .collect();
        match (q.ordering, words.is_empty()) {
            (None, false) => hits.sort_by(|a, b| {
                (!has_all(&a.name_words), &a.sort_name, a.product.id).cmp(&(
                    !has_all(&b.name_words),
                    &b.sort_name,
                    b.product.id,
                ))
            }),
            (Some(SortOrder::PriceDesc), _) => hits.sort_by(|a, b| compare(SortOrder::Price, b, a)),
            (order, _) => {
                let order = order.unwrap_or(SortOrder::Newest);
                hits.sort_by(|a, b| compare(order, a, b))
            }
        }
        let page = hits
            .iter()
            .skip(q.offset)
            .take(q.limit)
            .map(|d| d.product.id)
            .collect();
        (hits.len(), page)
    }

    #[test]
    fn every_path_of_query_agrees_with_a_plain_filter_and_sort() {
        let generate::GeneratedShop {
            _dir,
            store,
            skeleton,
            products: ids,
        } = generate::generated_shop(600, 11);
        let index = CatalogIndex::build(&store).expect("index");
        // Some inactive, some sold out, some deleted, written after the build
        // so the incremental paths are exercised too.
        for (i, &id) in ids.iter().enumerate() {
            if i % 7 == 0 {
                store
                    .update_product(id, |p| p.is_active = false)
                    .expect("update");
                index.refresh_products(&store, &[id]).expect("refresh");
            }
            if i % 5 == 0 {
                index.publish_stock(id, 0);
            }
        }
        for &id in ids.iter().step_by(50) {
            store.delete_product(id).expect("delete");
        }
        index
            .refresh_products(
                &store,
                &ids[..].iter().step_by(50).copied().collect::<Vec<_>>(),
            )
            .expect("refresh deleted");

        let snap = index.snapshot();
        let orders = [
            None,
            Some(SortOrder::Price),
            Some(SortOrder::PriceDesc),
            Some(SortOrder::Name),
            Some(SortOrder::Newest),
            Some(SortOrder::Rating),
        ];
        let searches = [
            None,
            Some("mug"),
            Some("blue"),
            Some("classic s"),
            Some("zzz"),
        ];
        let mut checked = 0;
        for round in 0..3000usize {
            let pick = |k: usize| (round / k) % 7;
            let q = Query {
                search: searches[round % searches.len()].map(str::to_owned),
                category: (pick(3) < 3)
                    .then(|| skeleton.categories[round % skeleton.categories.len()]),
                brand: (pick(5) == 0).then(|| skeleton.brands[round % skeleton.brands.len()]),
                min_price: (pick(11) == 1).then_some(2_000),
                max_price: (pick(13) == 2).then_some(9_000),
                in_stock: pick(17) == 3,
                include_inactive: round % 4 == 0,
                ordering: orders[round % orders.len()],
                offset: (round % 9) * 7,
                limit: [1, 5, 20, 100][round % 4],
            };
            let (count, page) = snap.query(&q);
            let page: Vec<ProductId> = page.iter().map(|d| d.product.id).collect();
            assert_eq!((count, page), reference(&snap, &q), "query {q:?}");
            checked += count;
        }
        assert!(
            checked > 10_000,
            "the queries matched too little: {checked}"
        );
    }
}
