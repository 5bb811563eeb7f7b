//! `stock_ledger_by_product`: ProductId ++ seq (u64 BE) -> LedgerEntry.
//!
//! Invariant: a stock level is only ever written through `write_stock`
//! (or `insert_initial` at creation), which appends the ledger entry in the
//! same sled transaction. Every path that changes stock (checkout,
//! cancellation, restock, adjustment, and any later one that reuses these
//! helpers) therefore leaves a ledger whose sums equal the stored level.

use super::{decode, encode, Store, StoreError};
use crate::domain::inventory::StockLevel;
use crate::domain::ledger::{LedgerEntry, StockChange};
use crate::domain::ProductId;
use sled::transaction::{TransactionalTree, UnabortableTransactionError};

fn entry_key(product: ProductId, seq: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&product.to_key());
    key[8..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// The result of one stock write inside a transaction.
#[derive(Debug, Clone)]
pub enum StockWrite {
    Applied(StockLevel),
    /// The product has no stock record.
    Missing,
    /// The change would break a stock rule (below zero, overflow); nothing written.
    Refused {
        level: StockLevel,
        message: String,
    },
}

/// What a transaction closure gets back from a stock write: sled conflicts
/// go out through `?`, broken records as the inner `StoreError`.
pub type StockResult = Result<Result<StockWrite, StoreError>, UnabortableTransactionError>;

/// Applies a change to a product's stock and appends its ledger entry, in
/// the caller's transaction.
pub fn write_stock(
    stock: &TransactionalTree,
    ledger: &TransactionalTree,
    product: ProductId,
    delta_on_hand: i64,
    delta_received: i64,
    change: &StockChange,
    now: i64,
) -> StockResult {
    let key = product.to_key();
    let Some(bytes) = stock.get(key)? else {
        return Ok(Ok(StockWrite::Missing));
    };
    let level: StockLevel = match decode(&bytes) {
        Ok(level) => level,
        Err(e) => return Ok(Err(e)),
    };
    let next = match level.apply(delta_on_hand, delta_received) {
        Ok(next) => next,
        Err(message) => return Ok(Ok(StockWrite::Refused { level, message })),
    };
    let entry = LedgerEntry {
        seq: next.seq,
        at: now,
        delta_on_hand,
        delta_received,
        on_hand: next.on_hand,
        received: next.received,
        change: change.clone(),
    };
    let (level_bytes, entry_bytes) = match (encode(&next), encode(&entry)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
    };
    stock.insert(&key, level_bytes)?;
    ledger.insert(&entry_key(product, next.seq), entry_bytes)?;
    Ok(Ok(StockWrite::Applied(next)))
}

/// Writes a new product's first level and its ledger entry (seq 0).
pub fn insert_initial(
    stock: &TransactionalTree,
    ledger: &TransactionalTree,
    product: ProductId,
    level: StockLevel,
    change: &StockChange,
    now: i64,
) -> Result<Result<(), StoreError>, UnabortableTransactionError> {
    let entry = LedgerEntry {
        seq: level.seq,
        at: now,
        delta_on_hand: level.on_hand,
        delta_received: level.received,
        on_hand: level.on_hand,
        received: level.received,
        change: change.clone(),
    };
    let (level_bytes, entry_bytes) = match (encode(&level), encode(&entry)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
    };
    stock.insert(&product.to_key(), level_bytes)?;
    ledger.insert(&entry_key(product, level.seq), entry_bytes)?;
    Ok(Ok(()))
}

impl Store {
    /// A page of a product's ledger, oldest first, and the number of entries.
    pub fn ledger_page(
        &self,
        product: ProductId,
        offset: usize,
        limit: usize,
    ) -> Result<(usize, Vec<LedgerEntry>), StoreError> {
        let mut count = 0;
        let mut page = Vec::new();
        for entry in self
            .trees
            .stock_ledger_by_product
            .scan_prefix(product.to_key())
        {
            let (_, bytes) = entry?;
            if count >= offset && page.len() < limit {
                page.push(decode(&bytes)?);
            }
            count += 1;
        }
        Ok((count, page))
    }

    /// Sums of a product's ledger deltas: (on_hand, received).
    pub fn ledger_sums(&self, product: ProductId) -> Result<(i64, i64), StoreError> {
        let mut sums = (0i64, 0i64);
        for entry in self
            .trees
            .stock_ledger_by_product
            .scan_prefix(product.to_key())
        {
            let (_, bytes) = entry?;
            let entry: LedgerEntry = decode(&bytes)?;
            sums.0 += entry.delta_on_hand;
            sums.1 += entry.delta_received;
        }
        Ok(sums)
    }
}
