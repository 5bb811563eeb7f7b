//! `stock_by_product`: ProductId -> StockLevel.
//!
//! Invariant: on_hand never goes below zero. `apply_stock_delta` is the only
//! function that changes a stored level after creation; its one caller is
//! the per-product inventory owner, so stock of a product has a single writer.
//! Every write also appends to the stock ledger (see `ledger`).

use super::ledger::{write_stock, StockWrite};
use super::{abort, decode, from_tx, Store, StoreError};
use crate::domain::inventory::StockLevel;
use crate::domain::ledger::StockChange;
use crate::domain::time::now_unix;
use crate::domain::ProductId;
use sled::Transactional;

impl Store {
    /// The stock of a product, `None` when the product does not exist.
    pub fn stock_level(&self, product: ProductId) -> Result<Option<StockLevel>, StoreError> {
        self.trees
            .stock_by_product
            .get(product.to_key())?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Adds the deltas to a product's stock, appends the ledger entry in the
    /// same transaction, and returns the new level. Refuses (`OutOfStock`)
    /// a change that would leave on_hand below zero, and `NotFound` for an
    /// unknown product. Not yet durable: the caller awaits `durable()`
    /// before acknowledging.
    pub fn apply_stock_delta(
        &self,
        product: ProductId,
        delta_on_hand: i64,
        delta_received: i64,
        change: &StockChange,
    ) -> Result<StockLevel, StoreError> {
        let t = &self.trees;
        let now = now_unix();
        from_tx(
            (&t.stock_by_product, &t.stock_ledger_by_product).transaction(|(stock, ledger)| {
                match write_stock(
                    stock,
                    ledger,
                    product,
                    delta_on_hand,
                    delta_received,
                    change,
                    now,
                )? {
                    Ok(StockWrite::Applied(next)) => Ok(next),
                    Ok(StockWrite::Missing) => abort(StoreError::NotFound),
                    Ok(StockWrite::Refused { message, .. }) => {
                        abort(StoreError::OutOfStock(message))
                    }
                    Err(e) => abort(e),
                }
            }),
        )
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
