//! The catalog service: every catalog write goes through here so that the
//! sled record, the search index and durability stay in step.
//!
//! Invariant: a write is (1) committed to sled in one transaction, (2)
//! applied to the in-memory index (re-read from sled under the index's
//! writer lock), and (3) acknowledged only after `store.durable()`.

pub mod generate;
pub mod import;
pub mod index;
pub mod media;
pub mod view;

use crate::domain::catalog::{slugify, Brand, Category, NewProduct, Product};
use crate::domain::inventory::StockLevel;
use crate::domain::money::Currency;
use crate::domain::{BrandId, CategoryId, ProductId};
use crate::store::catalog::Deletion;
use crate::store::{Store, StoreError};
use import::{ImportError, ImportReport};
use index::CatalogIndex;
use std::sync::Arc;

/// Cheap to clone; shared by every worker.
#[derive(Clone)]
pub struct Catalog {
    store: Store,
    index: Arc<CatalogIndex>,
    currency: Currency,
}

impl Catalog {
    /// Builds the search index from sled; run once at start.
    pub fn open(store: Store, currency: Currency) -> Result<Self, StoreError> {
        let started = std::time::Instant::now();
        let index = Arc::new(CatalogIndex::build(&store)?);
        tracing::info!(
            products = index.snapshot().product_count(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "catalog index built"
        );
        Ok(Self {
            store,
            index,
            currency,
        })
    }

    pub fn index(&self) -> &Arc<CatalogIndex> {
        &self.index
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The shop's one currency: every price is in it.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// A free slug derived from `name` ("mug", then "mug-2", "mug-3"...).
    pub fn free_product_slug(&self, name: &str) -> Result<String, StoreError> {
        free_slug(&slugify(name), |s| {
            Ok(self.store.trees.products_by_slug.contains_key(s)?)
        })
    }

    pub fn free_category_slug(&self, name: &str) -> Result<String, StoreError> {
        free_slug(&slugify(name), |s| {
            Ok(self.store.trees.categories_by_slug.contains_key(s)?)
        })
    }

    pub fn free_brand_slug(&self, name: &str) -> Result<String, StoreError> {
        free_slug(&slugify(name), |s| {
            Ok(self.store.trees.brands_by_slug.contains_key(s)?)
        })
    }

    pub async fn create_product(
        &self,
        new: NewProduct,
    ) -> Result<(Product, StockLevel), StoreError> {
        let created = self.store.create_product(new)?;
        self.index.refresh_products(&self.store, &[created.0.id])?;
        self.store.durable().await?;
        Ok(created)
    }

    pub async fn update_product(
        &self,
        id: ProductId,
        change: impl Fn(&mut Product),
    ) -> Result<Product, StoreError> {
        let product = self.store.update_product(id, change)?;
        self.index.refresh_products(&self.store, &[id])?;
        self.store.durable().await?;
        Ok(product)
    }

    /// Imports CSV rows into the running shop (see `import`): the rows are
    /// committed and flushed by the import, then indexed in one snapshot swap
    /// before the report is returned, so an acknowledged row is both durable
    /// and searchable.
    pub async fn import_csv(&self, csv: Vec<u8>) -> Result<ImportReport, ImportError> {
        let catalog = self.clone();
        let report = tokio::task::spawn_blocking(move || {
            import::import_products(&catalog, csv.as_slice(), |_, _| {})
        })
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e)))??;
        self.index.refresh_imported(
            &self.store,
            &report.categories,
            &report.brands,
            &report.products,
        )?;
        Ok(report)
    }

    /// Deletes a product: soft (deactivated) when orders reference it, hard otherwise.
    pub async fn delete_product(&self, id: ProductId) -> Result<Deletion, StoreError> {
        let deletion = self.store.delete_product(id)?;
        self.index.refresh_products(&self.store, &[id])?;
        self.store.durable().await?;
        Ok(deletion)
    }

    pub async fn create_category(
        &self,
        name: String,
        slug: String,
        description: Option<String>,
    ) -> Result<Category, StoreError> {
        let category = self.store.create_category(name, slug, description)?;
        self.index.refresh_category(&self.store, category.id)?;
        self.store.durable().await?;
        Ok(category)
    }

    pub async fn update_category(
        &self,
        id: CategoryId,
        change: impl Fn(&mut Category),
    ) -> Result<Category, StoreError> {
        let category = self.store.update_category(id, change)?;
        self.index.refresh_category(&self.store, id)?;
        self.store.durable().await?;
        Ok(category)
    }

    pub async fn delete_category(&self, id: CategoryId) -> Result<(), StoreError> {
        self.store.delete_category(id)?;
        self.index.refresh_category(&self.store, id)?;
        self.store.durable().await
    }

    pub async fn create_brand(
        &self,
        name: String,
        slug: String,
        logo: Option<String>,
    ) -> Result<Brand, StoreError> {
        let brand = self.store.create_brand(name, slug, logo)?;
        self.index.refresh_brand(&self.store, brand.id)?;
        self.store.durable().await?;
        Ok(brand)
    }

    pub async fn update_brand(
        &self,
        id: BrandId,
        change: impl Fn(&mut Brand),
    ) -> Result<Brand, StoreError> {
        let brand = self.store.update_brand(id, change)?;
        self.index.refresh_brand(&self.store, id)?;
        self.store.durable().await?;
        Ok(brand)
    }

    pub async fn delete_brand(&self, id: BrandId) -> Result<(), StoreError> {
        self.store.delete_brand(id)?;
        self.index.refresh_brand(&self.store, id)?;
        self.store.durable().await
    }
}

fn free_slug(
    base: &str,
    taken: impl Fn(&str) -> Result<bool, StoreError>,
) -> Result<String, StoreError> {
    if !taken(base)? {
        return Ok(base.to_owned());
    }
    for n in 2..10_000u32 {
        let candidate = format!("{base}-{n}");
        if !taken(&candidate)? {
            return Ok(candidate);
        }
    }
    Err(StoreError::Duplicate("slug"))
}
