//! Catalog records. Key layout:
//! - `products_by_id`: ProductId -> Product; `products_by_slug`: slug -> ProductId
//! - `products_by_category`: CategoryId ++ ProductId -> ()
//! - `products_by_brand`: BrandId ++ ProductId -> ()
//! - `categories_by_id` / `categories_by_slug`, `brands_by_id` / `brands_by_slug`
//! - `stock_by_product`: written here only at creation, with its first ledger
//!   entry (and removed on hard delete; the ledger stays)
//!
//! Invariant: a product, its slug entry, its category/brand entries and (at
//! creation) its stock level are written in one sled transaction, and a
//! product never points at a category or brand that does not exist.

use super::ledger::insert_initial;
use super::{abort, decode, encode, from_tx, Store, StoreError};
use crate::domain::catalog::{Brand, Category, NewProduct, Product};
use crate::domain::inventory::StockLevel;
use crate::domain::ledger::{StockCause, StockChange};
use crate::domain::time::now_unix;
use crate::domain::{BrandId, CategoryId, ProductId};
use sled::Transactional;

fn pair_key(owner: u64, product: ProductId) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&owner.to_be_bytes());
    key[8..].copy_from_slice(&product.to_key());
    key
}

/// What a product delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    /// Orders reference the product: it was only deactivated.
    Soft(Product),
    /// No order referenced it: the record is gone.
    Hard,
}

fn read_all<T: serde::de::DeserializeOwned>(tree: &sled::Tree) -> Result<Vec<T>, StoreError> {
    tree.iter()
        .map(|entry| {
            let (_, bytes) = entry?;
            decode(&bytes)
        })
        .collect()
}

impl Store {
    // ---- categories ----

    pub fn create_category(
        &self,
        name: String,
        slug: String,
        description: Option<String>,
    ) -> Result<Category, StoreError> {
        let category = Category {
            id: CategoryId(self.next_id()?),
            name,
            slug,
            description,
            created_at: now_unix(),
        };
        let key = category.id.to_key();
        let bytes = encode(&category)?;
        let t = &self.trees;
        from_tx(
            (&t.categories_by_id, &t.categories_by_slug).transaction(|(by_id, by_slug)| {
                if by_slug.get(category.slug.as_bytes())?.is_some() {
                    return abort(StoreError::Duplicate("slug"));
                }
                by_id.insert(&key, bytes.as_slice())?;
                by_slug.insert(category.slug.as_bytes(), &key)?;
                Ok(())
            }),
        )?;
        Ok(category)
    }

    pub fn category(&self, id: CategoryId) -> Result<Option<Category>, StoreError> {
        self.trees
            .categories_by_id
            .get(id.to_key())?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    pub fn category_by_slug(&self, slug: &str) -> Result<Option<Category>, StoreError> {
        match self.trees.categories_by_slug.get(slug.as_bytes())? {
            Some(id) => match CategoryId::from_key(&id) {
                Some(id) => self.category(id),
                None => Err(StoreError::Corrupt("bad category slug entry".into())),
            },
            None => Ok(None),
        }
    }

    pub fn categories(&self) -> Result<Vec<Category>, StoreError> {
        read_all(&self.trees.categories_by_id)
    }

    /// Replaces a category through `change`, keeping the slug index unique.
    pub fn update_category(
        &self,
        id: CategoryId,
        change: impl Fn(&mut Category),
    ) -> Result<Category, StoreError> {
        let key = id.to_key();
        let t = &self.trees;
        from_tx(
            (&t.categories_by_id, &t.categories_by_slug).transaction(|(by_id, by_slug)| {
                let Some(bytes) = by_id.get(key)? else {
                    return abort(StoreError::NotFound);
                };
                let old: Category = decode(&bytes).or_else(abort)?;
                let mut category = old.clone();
                change(&mut category);
                category.id = id;
                if category.slug != old.slug {
                    if by_slug.get(category.slug.as_bytes())?.is_some() {
                        return abort(StoreError::Duplicate("slug"));
                    }
                    by_slug.remove(old.slug.as_bytes())?;
                    by_slug.insert(category.slug.as_bytes(), &key)?;
                }
                by_id.insert(&key, encode(&category).or_else(abort)?)?;
                Ok(category)
            }),
        )
    }

    /// Deletes an empty category; `InUse` while products belong to it.
    pub fn delete_category(&self, id: CategoryId) -> Result<(), StoreError> {
        if self
            .trees
            .products_by_category
            .scan_prefix(id.to_key())
            .next()
            .transpose()?
            .is_some()
        {
            return Err(StoreError::InUse("category"));
        }
        let key = id.to_key();
        let t = &self.trees;
        from_tx(
            (&t.categories_by_id, &t.categories_by_slug).transaction(|(by_id, by_slug)| {
                let Some(bytes) = by_id.remove(&key)? else {
                    return abort(StoreError::NotFound);
                };
                let old: Category = decode(&bytes).or_else(abort)?;
                by_slug.remove(old.slug.as_bytes())?;
                Ok(())
            }),
        )
    }

    // ---- brands ----

    pub fn create_brand(
        &self,
        name: String,
        slug: String,
        logo: Option<String>,
    ) -> Result<Brand, StoreError> {
        let brand = Brand {
            id: BrandId(self.next_id()?),
            name,
            slug,
            logo,
            created_at: now_unix(),
        };
        let key = brand.id.to_key();
        let bytes = encode(&brand)?;
        let t = &self.trees;
        from_tx(
            (&t.brands_by_id, &t.brands_by_slug).transaction(|(by_id, by_slug)| {
                if by_slug.get(brand.slug.as_bytes())?.is_some() {
                    return abort(StoreError::Duplicate("slug"));
                }
                by_id.insert(&key, bytes.as_slice())?;
                by_slug.insert(brand.slug.as_bytes(), &key)?;
                Ok(())
            }),
        )?;
        Ok(brand)
    }

    pub fn brand(&self, id: BrandId) -> Result<Option<Brand>, StoreError> {
        self.trees
            .brands_by_id
            .get(id.to_key())?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    pub fn brand_by_slug(&self, slug: &str) -> Result<Option<Brand>, StoreError> {
        match self.trees.brands_by_slug.get(slug.as_bytes())? {
            Some(id) => match BrandId::from_key(&id) {
                Some(id) => self.brand(id),
                None => Err(StoreError::Corrupt("bad brand slug entry".into())),
            },
            None => Ok(None),
        }
    }

    pub fn brands(&self) -> Result<Vec<Brand>, StoreError> {
        read_all(&self.trees.brands_by_id)
    }

    pub fn update_brand(
        &self,
        id: BrandId,
        change: impl Fn(&mut Brand),
    ) -> Result<Brand, StoreError> {
        let key = id.to_key();
        let t = &self.trees;
        from_tx(
            (&t.brands_by_id, &t.brands_by_slug).transaction(|(by_id, by_slug)| {
                let Some(bytes) = by_id.get(key)? else {
                    return abort(StoreError::NotFound);
                };
                let old: Brand = decode(&bytes).or_else(abort)?;
                let mut brand = old.clone();
                change(&mut brand);
                brand.id = id;
                if brand.slug != old.slug {
                    if by_slug.get(brand.slug.as_bytes())?.is_some() {
                        return abort(StoreError::Duplicate("slug"));
                    }
                    by_slug.remove(old.slug.as_bytes())?;
                    by_slug.insert(brand.slug.as_bytes(), &key)?;
                }
                by_id.insert(&key, encode(&brand).or_else(abort)?)?;
                Ok(brand)
            }),
        )
    }

    /// Deletes a brand no product uses; `InUse` otherwise.
    pub fn delete_brand(&self, id: BrandId) -> Result<(), StoreError> {
        if self
            .trees
            .products_by_brand
            .scan_prefix(id.to_key())
            .next()
            .transpose()?
            .is_some()
        {
            return Err(StoreError::InUse("brand"));
        }
        let key = id.to_key();
        let t = &self.trees;
        from_tx(
            (&t.brands_by_id, &t.brands_by_slug).transaction(|(by_id, by_slug)| {
                let Some(bytes) = by_id.remove(&key)? else {
                    return abort(StoreError::NotFound);
                };
                let old: Brand = decode(&bytes).or_else(abort)?;
                by_slug.remove(old.slug.as_bytes())?;
                Ok(())
            }),
        )
    }

    // ---- products ----

    /// Creates a product with its indexes and its initial stock level
    /// (on_hand = received = `new.stock`) in one transaction.
    pub fn create_product(&self, new: NewProduct) -> Result<(Product, StockLevel), StoreError> {
        let now = now_unix();
        let product = Product {
            id: ProductId(self.next_id()?),
            name: new.name,
            slug: new.slug,
            description: new.description,
            price: new.price,
            category: new.category,
            brand: new.brand,
            image: new.image,
            is_active: new.is_active,
            created_at: now,
            updated_at: now,
            rating_count: 0,
            rating_sum: 0,
        };
        let stock = StockLevel::initial(new.stock);
        let key = product.id.to_key();
        let product_bytes = encode(&product)?;
        let created = StockChange::of(StockCause::Created);
        let category_key = pair_key(product.category.0, product.id);
        let brand_key = product.brand.map(|b| pair_key(b.0, product.id));
        let t = &self.trees;
        from_tx(
            (
                &t.products_by_id,
                &t.products_by_slug,
                &t.products_by_category,
                &t.products_by_brand,
                &t.categories_by_id,
                &t.brands_by_id,
                &t.stock_by_product,
                &t.stock_ledger_by_product,
            )
                .transaction(
                    |(
                        by_id,
                        by_slug,
                        by_category,
                        by_brand,
                        categories,
                        brands,
                        stock_tree,
                        ledger,
                    )| {
                        if categories.get(product.category.to_key())?.is_none() {
                            return abort(StoreError::Missing("category"));
                        }
                        if let Some(brand) = product.brand {
                            if brands.get(brand.to_key())?.is_none() {
                                return abort(StoreError::Missing("brand"));
                            }
                        }
                        if by_slug.get(product.slug.as_bytes())?.is_some() {
                            return abort(StoreError::Duplicate("slug"));
                        }
                        by_id.insert(&key, product_bytes.as_slice())?;
                        by_slug.insert(product.slug.as_bytes(), &key)?;
                        by_category.insert(&category_key, &[])?;
                        if let Some(brand_key) = &brand_key {
                            by_brand.insert(brand_key, &[])?;
                        }
                        insert_initial(stock_tree, ledger, product.id, stock, &created, now)?
                            .or_else(abort)
                    },
                ),
        )?;
        Ok((product, stock))
    }

    /// The product record (price, currency, name, is_active...), `None` if unknown.
    pub fn product(&self, id: ProductId) -> Result<Option<Product>, StoreError> {
        self.trees
            .products_by_id
            .get(id.to_key())?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Every product, in id order (used to rebuild the search index).
    pub fn products(&self) -> impl Iterator<Item = Result<Product, StoreError>> {
        self.trees.products_by_id.iter().map(|entry| {
            let (_, bytes) = entry?;
            decode(&bytes)
        })
    }

    pub fn product_count(&self) -> usize {
        self.trees.products_by_id.len()
    }

    /// Replaces a product through `change`, keeping slug, category and brand
    /// indexes in step; refuses unknown categories/brands and taken slugs.
    pub fn update_product(
        &self,
        id: ProductId,
        change: impl Fn(&mut Product),
    ) -> Result<Product, StoreError> {
        let key = id.to_key();
        let t = &self.trees;
        from_tx(
            (
                &t.products_by_id,
                &t.products_by_slug,
                &t.products_by_category,
                &t.products_by_brand,
                &t.categories_by_id,
                &t.brands_by_id,
            )
                .transaction(
                    |(by_id, by_slug, by_category, by_brand, categories, brands)| {
                        let Some(bytes) = by_id.get(key)? else {
                            return abort(StoreError::NotFound);
                        };
                        let old: Product = decode(&bytes).or_else(abort)?;
                        let mut product = old.clone();
                        change(&mut product);
                        // Server-owned fields survive any change.
                        product.id = id;
                        product.created_at = old.created_at;
                        product.updated_at = now_unix();
                        if product.slug != old.slug {
                            if by_slug.get(product.slug.as_bytes())?.is_some() {
                                return abort(StoreError::Duplicate("slug"));
                            }
                            by_slug.remove(old.slug.as_bytes())?;
                            by_slug.insert(product.slug.as_bytes(), &key)?;
                        }
                        if product.category != old.category {
                            if categories.get(product.category.to_key())?.is_none() {
                                return abort(StoreError::Missing("category"));
                            }
                            by_category.remove(&pair_key(old.category.0, id))?;
                            by_category.insert(&pair_key(product.category.0, id), &[])?;
                        }
                        if product.brand != old.brand {
                            if let Some(brand) = product.brand {
                                if brands.get(brand.to_key())?.is_none() {
                                    return abort(StoreError::Missing("brand"));
                                }
                                by_brand.insert(&pair_key(brand.0, id), &[])?;
                            }
                            if let Some(brand) = old.brand {
                                by_brand.remove(&pair_key(brand.0, id))?;
                            }
                        }
                        by_id.insert(&key, encode(&product).or_else(abort)?)?;
                        Ok(product)
                    },
                ),
        )
    }

    /// True when any order line references the product.
    pub fn product_has_orders(&self, id: ProductId) -> Result<bool, StoreError> {
        Ok(self
            .trees
            .order_items_by_product
            .scan_prefix(id.to_key())
            .next()
            .transpose()?
            .is_some())
    }

    /// Deletes a product: deactivates it when orders reference it (their
    /// history must stay readable), removes it and its stock otherwise.
    pub fn delete_product(&self, id: ProductId) -> Result<Deletion, StoreError> {
        if self.product_has_orders(id)? {
            return self
                .update_product(id, |p| p.is_active = false)
                .map(Deletion::Soft);
        }
        let key = id.to_key();
        let t = &self.trees;
        from_tx(
            (
                &t.products_by_id,
                &t.products_by_slug,
                &t.products_by_category,
                &t.products_by_brand,
                &t.stock_by_product,
            )
                .transaction(|(by_id, by_slug, by_category, by_brand, stock)| {
                    let Some(bytes) = by_id.remove(&key)? else {
                        return abort(StoreError::NotFound);
                    };
                    let old: Product = decode(&bytes).or_else(abort)?;
                    by_slug.remove(old.slug.as_bytes())?;
                    by_category.remove(&pair_key(old.category.0, id))?;
                    if let Some(brand) = old.brand {
                        by_brand.remove(&pair_key(brand.0, id))?;
                    }
                    stock.remove(&key)?;
                    Ok(())
                }),
        )?;
        Ok(Deletion::Hard)
    }
}
