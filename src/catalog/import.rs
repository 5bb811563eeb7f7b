//! Bulk import of products from CSV (`storefront import products.csv`),
//! for shops moving their catalog in. Columns: name, description, price,
//! category, brand, stock, image_url (header row required, order free; any
//! other column is refused, so a server-owned `id` or `rating_count` is
//! never silently dropped).
//! Categories and brands are created on first mention. A bad row is
//! reported with its line number and skipped; it never stops the good ones.
//! Runs with the server stopped (one process owns a data directory); the
//! search index is rebuilt from sled when the server starts.

use super::Catalog;
use crate::domain::catalog::{
    parse_image_url, parse_stock, slugify, NewProduct, DESCRIPTION_MAX, NAME_MAX,
};
use crate::domain::money::Money;
use crate::domain::validation::bounded_text;
use crate::domain::{BrandId, CategoryId, FieldErrors, ProductId};
use crate::store::StoreError;
use std::collections::HashMap;
use std::io::Read;

/// Rows written between two flushes: a crash loses at most this many, and
/// a re-run reports them as new rows rather than corrupting anything.
const FLUSH_EVERY: usize = 500;

#[derive(Debug, Default)]
pub struct ImportReport {
    pub imported: usize,
    /// (line number in the file, what was wrong).
    pub rejected: Vec<(u64, String)>,
    /// What a running server must re-index: the products created and every
    /// category and brand the rows named (found or created).
    pub products: Vec<ProductId>,
    pub categories: Vec<CategoryId>,
    pub brands: Vec<BrandId>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the CSV file cannot be read: {0}")]
    Csv(#[from] csv::Error),
    #[error("the CSV header lacks the required column(s): {0}")]
    MissingColumns(String),
    /// Columns the import does not take, such as server-owned `id` or
    /// `rating_count`: refused rather than silently dropped, so nobody
    /// believes they set them.
    #[error("the CSV header has column(s) the import does not take: {}", .0.join(", "))]
    UnknownColumns(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The columns an import takes, in any order and any letter case.
pub const COLUMNS: [&str; 7] = [
    "name",
    "description",
    "price",
    "category",
    "brand",
    "stock",
    "image_url",
];

struct Columns {
    name: usize,
    price: usize,
    category: usize,
    description: Option<usize>,
    brand: Option<usize>,
    stock: Option<usize>,
    image_url: Option<usize>,
}

impl Columns {
    fn find(header: &csv::StringRecord) -> Result<Self, ImportError> {
        let at = |name: &str| {
            header
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
        };
        let missing: Vec<&str> = ["name", "price", "category"]
            .into_iter()
            .filter(|c| at(c).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(ImportError::MissingColumns(missing.join(", ")));
        }
        // Blank header cells (a trailing comma) name nothing and are skipped.
        let unknown: Vec<String> = header
            .iter()
            .map(str::trim)
            .filter(|h| !h.is_empty() && !COLUMNS.iter().any(|c| h.eq_ignore_ascii_case(c)))
            .map(str::to_owned)
            .collect();
        if !unknown.is_empty() {
            return Err(ImportError::UnknownColumns(unknown));
        }
        Ok(Self {
            name: at("name").unwrap_or_default(),
            price: at("price").unwrap_or_default(),
            category: at("category").unwrap_or_default(),
            description: at("description"),
            brand: at("brand"),
            stock: at("stock"),
            image_url: at("image_url"),
        })
    }
}

/// Imports every row it can; `progress(done, rejected)` is called as it goes.
pub fn import_products(
    catalog: &Catalog,
    input: impl Read,
    mut progress: impl FnMut(usize, usize),
) -> Result<ImportReport, ImportError> {
    let store = catalog.store();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let columns = Columns::find(reader.headers()?)?;
    let mut categories: HashMap<String, CategoryId> = HashMap::new();
    let mut brands: HashMap<String, BrandId> = HashMap::new();
    let mut report = ImportReport::default();
    for (row, record) in reader.records().enumerate() {
        let line = record
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map_or(row as u64 + 2, |p| p.line());
        let outcome = record
            .map_err(|e| e.to_string())
            .and_then(|record| parse_row(catalog, &columns, &record, &mut categories, &mut brands));
        match outcome {
            Ok(new) => match store.create_product(new) {
                Ok((product, _)) => {
                    report.imported += 1;
                    report.products.push(product.id);
                }
                Err(StoreError::Duplicate(field)) => report
                    .rejected
                    .push((line, format!("{field} is already taken"))),
                Err(e) => return Err(e.into()),
            },
            Err(message) => report.rejected.push((line, message)),
        }
        if (row + 1) % FLUSH_EVERY == 0 {
            store.durable_blocking()?;
            progress(report.imported, report.rejected.len());
        }
    }
    store.durable_blocking()?;
    progress(report.imported, report.rejected.len());
    report.categories = categories.into_values().collect();
    report.brands = brands.into_values().collect();
    Ok(report)
}

fn parse_row(
    catalog: &Catalog,
    columns: &Columns,
    record: &csv::StringRecord,
    categories: &mut HashMap<String, CategoryId>,
    brands: &mut HashMap<String, BrandId>,
) -> Result<NewProduct, String> {
    let cell = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or("").trim();
    let mut errors = FieldErrors::new();
    let name = errors.check("name", bounded_text(cell(Some(columns.name)), 1, NAME_MAX));
    let description = errors
        .check(
            "description",
            bounded_text(cell(columns.description), 0, DESCRIPTION_MAX),
        )
        .unwrap_or_default();
    let price = errors.check(
        "price",
        Money::parse_decimal(cell(Some(columns.price)), catalog.currency()),
    );
    let stock = match cell(columns.stock) {
        "" => Some(0),
        text => errors.check(
            "stock",
            text.parse::<i64>()
                .map_err(|_| "must be a whole number".to_string())
                .and_then(parse_stock),
        ),
    };
    let image = match cell(columns.image_url) {
        "" => None,
        url => errors.check("image_url", parse_image_url(url)),
    };
    let category_name = cell(Some(columns.category));
    if category_name.is_empty() {
        errors.add("category", "is required");
    }
    if let Err(errors) = errors.clone().into_result() {
        return Err(describe(&errors));
    }
    let category = find_or_create(categories, category_name, |slug, name| {
        Ok(match catalog.store().category_by_slug(slug)? {
            Some(c) => c.id,
            None => {
                catalog
                    .store()
                    .create_category(name.into(), slug.into(), None)?
                    .id
            }
        })
    })
    .map_err(|e| format!("category: {e}"))?;
    let brand = match cell(columns.brand) {
        "" => None,
        brand_name => Some(
            find_or_create(brands, brand_name, |slug, name| {
                Ok(match catalog.store().brand_by_slug(slug)? {
                    Some(b) => b.id,
                    None => {
                        catalog
                            .store()
                            .create_brand(name.into(), slug.into(), None)?
                            .id
                    }
                })
            })
            .map_err(|e| format!("brand: {e}"))?,
        ),
    };
    let name = name.unwrap_or_default();
    let slug = catalog
        .free_product_slug(&name)
        .map_err(|e| format!("slug: {e}"))?;
    Ok(NewProduct {
        name,
        slug,
        description,
        price: price.ok_or("price: invalid")?,
        category,
        brand,
        image,
        is_active: true,
        stock: stock.unwrap_or(0),
    })
}

fn find_or_create<Id: Copy>(
    cache: &mut HashMap<String, Id>,
    name: &str,
    lookup: impl FnOnce(&str, &str) -> Result<Id, StoreError>,
) -> Result<Id, StoreError> {
    let slug = slugify(name);
    if let Some(id) = cache.get(&slug) {
        return Ok(*id);
    }
    let id = lookup(&slug, name)?;
    cache.insert(slug, id);
    Ok(id)
}

fn describe(errors: &FieldErrors) -> String {
    errors
        .0
        .iter()
        .map(|(field, message)| format!("{field} {message}"))
        .collect::<Vec<_>>()
        .join("; ")
}
