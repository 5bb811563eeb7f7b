//! Maintained aggregates for the staff analytics, so a report reads a few
//! small records per day instead of every order.
//!
//! Key layout:
//! - `stats_by_day`: day (u32 BE, days since 1970-01-01 UTC) -> DayStats
//! - `product_sales_by_day`: day ++ ProductId -> ProductSales
//! - `customers_by_user`: UserId -> day of the user's first order
//!
//! Invariant: every write of an order record goes through `record_order`
//! in the same transaction, which takes the order's old contribution out of
//! the bucket of the day it was placed and puts the new one in. So the
//! buckets always equal what a scan of the orders would give, survive
//! restarts, and a later order path (payments, expiry) that writes orders
//! with `record_order` keeps them right without any change here.

use super::{decode, encode, Store, StoreError};
use crate::domain::order::{Order, OrderStatus};
use crate::domain::{ProductId, UserId};
use serde::{Deserialize, Serialize};
use sled::transaction::{TransactionalTree, UnabortableTransactionError};
use std::collections::HashMap;

pub const SECONDS_PER_DAY: i64 = 86_400;

/// The day number of a Unix timestamp.
pub fn day_of(unix: i64) -> u32 {
    u32::try_from(unix.div_euclid(SECONDS_PER_DAY)).unwrap_or(0)
}

/// Figures of the orders placed on one day (by their status now) and of the
/// carts started that day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayStats {
    /// Orders placed, whatever became of them.
    pub orders: i64,
    /// Orders placed that day, by current status (index of `OrderStatus::ALL`).
    pub by_status: [i64; 5],
    /// Minor units: totals of the day's orders that are not cancelled.
    pub revenue: i64,
    /// Units in the day's orders that are not cancelled.
    pub units: i64,
    /// Users whose first order was placed that day.
    pub new_customers: i64,
    /// Carts that went from empty to holding something.
    pub carts_started: i64,
}

impl DayStats {
    pub fn add(&mut self, other: &DayStats) {
        self.orders += other.orders;
        for (a, b) in self.by_status.iter_mut().zip(other.by_status) {
            *a += b;
        }
        self.revenue += other.revenue;
        self.units += other.units;
        self.new_customers += other.new_customers;
        self.carts_started += other.carts_started;
    }

    pub fn status_count(&self, status: OrderStatus) -> i64 {
        self.by_status[status_index(status)]
    }
}

fn status_index(status: OrderStatus) -> usize {
    OrderStatus::ALL
        .iter()
        .position(|s| *s == status)
        .unwrap_or(0)
}

/// Units and revenue (minor units) of one product on one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductSales {
    pub units: i64,
    pub revenue: i64,
}

fn sales_key(day: u32, product: ProductId) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..4].copy_from_slice(&day.to_be_bytes());
    key[4..].copy_from_slice(&product.to_key());
    key
}

type TxStore<T> = Result<Result<T, StoreError>, UnabortableTransactionError>;

fn update<T>(tree: &TransactionalTree, key: &[u8], change: impl FnOnce(&mut T)) -> TxStore<()>
where
    T: Default + Serialize + serde::de::DeserializeOwned,
{
    let mut value: T = match tree.get(key)? {
        Some(bytes) => match decode(&bytes) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        },
        None => T::default(),
    };
    change(&mut value);
    match encode(&value) {
        Ok(bytes) => {
            tree.insert(key, bytes)?;
            Ok(Ok(()))
        }
        Err(e) => Ok(Err(e)),
    }
}

/// Moves the figures of an order from `before` (None: it is new) to
/// `after`, in the caller's transaction. A new order also counts its user
/// as a new customer when it is their first.
pub fn record_order(
    stats: &TransactionalTree,
    sales: &TransactionalTree,
    customers: &TransactionalTree,
    before: Option<&Order>,
    after: &Order,
) -> TxStore<()> {
    let day = day_of(after.created_at);
    let first_order = match before {
        None => customers.get(after.user_id.to_key())?.is_none(),
        Some(_) => false,
    };
    if first_order {
        customers.insert(&after.user_id.to_key(), &day.to_be_bytes())?;
    }
    let counted = |order: &Order| order.status.holds_stock();
    if let Err(e) = update::<DayStats>(stats, &day.to_be_bytes(), |d| {
        if let Some(old) = before {
            d.by_status[status_index(old.status)] -= 1;
            if counted(old) {
                d.revenue -= old.total;
                d.units -= old.units().map(|(_, q)| q).sum::<i64>();
            }
        } else {
            d.orders += 1;
        }
        d.by_status[status_index(after.status)] += 1;
        if counted(after) {
            d.revenue += after.total;
            d.units += after.units().map(|(_, q)| q).sum::<i64>();
        }
        if first_order {
            d.new_customers += 1;
        }
    })? {
        return Ok(Err(e));
    }
    let mut moves: HashMap<ProductId, ProductSales> = HashMap::new();
    let mut apply = |order: &Order, sign: i64| {
        for item in &order.items {
            let entry = moves.entry(item.product_id).or_default();
            entry.units += sign * item.quantity;
            entry.revenue += sign * item.price_at_purchase.saturating_mul(item.quantity);
        }
    };
    if let Some(old) = before.filter(|o| counted(o)) {
        apply(old, -1);
    }
    if counted(after) {
        apply(after, 1);
    }
    for (product, change) in moves {
        if change == ProductSales::default() {
            continue;
        }
        if let Err(e) = update::<ProductSales>(sales, &sales_key(day, product), |s| {
            s.units += change.units;
            s.revenue += change.revenue;
        })? {
            return Ok(Err(e));
        }
    }
    Ok(Ok(()))
}

/// Counts a cart started (empty -> not empty) at `now`, in the caller's transaction.
pub fn record_cart_started(stats: &TransactionalTree, now: i64) -> TxStore<()> {
    update::<DayStats>(stats, &day_of(now).to_be_bytes(), |d| d.carts_started += 1)
}

impl Store {
    /// The stored buckets of days `from..to` (day numbers), in day order;
    /// days without activity are absent.
    pub fn day_stats(&self, from: u32, to: u32) -> Result<Vec<(u32, DayStats)>, StoreError> {
        let mut days = Vec::new();
        for entry in self
            .trees
            .stats_by_day
            .range(from.to_be_bytes()..to.to_be_bytes())
        {
            let (key, bytes) = entry?;
            let day = key
                .get(..4)
                .and_then(|k| k.try_into().ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| StoreError::Corrupt("bad stats key".into()))?;
            days.push((day, decode(&bytes)?));
        }
        Ok(days)
    }

    /// Sales per product over days `from..to`.
    pub fn product_sales(
        &self,
        from: u32,
        to: u32,
    ) -> Result<HashMap<ProductId, ProductSales>, StoreError> {
        let mut totals: HashMap<ProductId, ProductSales> = HashMap::new();
        for entry in self
            .trees
            .product_sales_by_day
            .range(sales_key(from, ProductId(0))..sales_key(to, ProductId(0)))
        {
            let (key, bytes) = entry?;
            let product = ProductId::from_key(&key[4..])
                .ok_or_else(|| StoreError::Corrupt("bad sales key".into()))?;
            let sales: ProductSales = decode(&bytes)?;
            let total = totals.entry(product).or_default();
            total.units += sales.units;
            total.revenue += sales.revenue;
        }
        Ok(totals)
    }

    /// The day of a user's first order, if they ordered at all.
    pub fn first_order_day(&self, user: UserId) -> Result<Option<u32>, StoreError> {
        Ok(self
            .trees
            .customers_by_user
            .get(user.to_key())?
            .and_then(|v| v.as_ref().try_into().ok().map(u32::from_be_bytes)))
    }
}
