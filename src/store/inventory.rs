//! `stock_by_product`: ProductId -> StockLevel.
//!
//! Invariant: on_hand never goes below zero. `apply_stock_delta` is the only
//! function that changes a stored level after creation; its one caller is
//! the per-product inventory owner, so stock of a product has a single writer.

use super::{abort, decode, encode, from_tx, Store, StoreError};
use crate::domain::inventory::StockLevel;
use crate::domain::ProductId;

impl Store {
    /// The stock of a product, `None` when the product does not exist.
    pub fn stock_level(&self, product: ProductId) -> Result<Option<StockLevel>, StoreError> {
        self.trees
            .stock_by_product
            .get(product.to_key())?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Adds the deltas to a product's stock and returns the new level.
    /// Refuses (`OutOfStock`) a change that would leave on_hand below zero,
    /// and `NotFound` for an unknown product. Not yet durable: the caller
    /// awaits `durable()` before acknowledging.
    pub fn apply_stock_delta(
        &self,
        product: ProductId,
        delta_on_hand: i64,
        delta_received: i64,
    ) -> Result<StockLevel, StoreError> {
        let key = product.to_key();
        from_tx(self.trees.stock_by_product.transaction(|stock| {
            let Some(bytes) = stock.get(key)? else {
                return abort(StoreError::NotFound);
            };
            let level: StockLevel = decode(&bytes).or_else(abort)?;
            let next = match level.apply(delta_on_hand, delta_received) {
                Ok(next) => next,
                Err(message) => return abort(StoreError::OutOfStock(message)),
            };
            stock.insert(&key, encode(&next).or_else(abort)?)?;
            Ok(next)
        }))
    }

    /// Every stored stock level, for rebuilding the search index at start.
    pub fn stock_levels(
        &self,
    ) -> impl Iterator<Item = Result<(ProductId, StockLevel), StoreError>> {
        self.trees.stock_by_product.iter().map(|entry| {
            let (key, bytes) = entry?;
            let id = ProductId::from_key(&key)
                .ok_or_else(|| StoreError::Corrupt("bad stock key".into()))?;
            Ok((id, decode(&bytes)?))
        })
    }
}
