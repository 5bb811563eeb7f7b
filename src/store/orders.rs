//! Orders. `orders_by_id` holds each order, `orders_by_user` (UserId ++
//! OrderId) lists a user's orders, `order_items_by_product` (ProductId ++
//! OrderId) finds orders of a product, `checkouts_by_key` maps a user's
//! Idempotency-Key to the order it created.
//!
//! Invariant 1 lives here as much as in the actors: the checkout transaction
//! re-reads each product's stock and aborts rather than take it below zero,
//! and it writes the order, its index entries, the stock decrements, the
//! emptied cart and the idempotency key together, so a crash leaves either
//! all of them or none. The same transactions append the stock ledger and
//! move the analytics buckets (`ledger::write_stock`, `stats::record_order`),
//! so neither can disagree with the orders after a crash.

use super::ledger::{write_stock, StockWrite};
use super::stats::record_order;
use super::{decode, encode, Store, StoreError};
use crate::domain::cart::Cart;
use crate::domain::ledger::{StockCause, StockChange};
use crate::domain::order::{check_transition, Order, OrderStatus, Requester, TransitionError};
use crate::domain::time::now_unix;
use crate::domain::{OrderId, ProductId, UserId};
use crate::mail::{enqueue_in_tx, PreparedMail};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

/// What the checkout transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutCommit {
    /// With the stock sequence number each product's decrement got.
    Placed { stock_seqs: Vec<(ProductId, u64)> },
    /// The Idempotency-Key was used before, for this order; `same_request`
    /// tells whether the body was the same.
    Replayed {
        order_id: OrderId,
        same_request: bool,
    },
    /// Stock ran short after all (the reservation was lost, e.g. an actor restart).
    Short {
        product_id: ProductId,
        available: i64,
    },
}

pub struct CheckoutWrite<'a> {
    pub order: &'a Order,
    pub emptied_cart: &'a Cart,
    /// (Idempotency-Key, SHA-256 of the request body).
    pub idempotency: Option<(&'a str, [u8; 32])>,
    /// The order confirmation, queued in the outbox in the same transaction.
    pub confirmation: Option<&'a PreparedMail>,
}

enum Abort {
    Store(StoreError),
    Done(CheckoutCommit),
}

fn key_of(user: UserId, key: &str) -> Vec<u8> {
    let mut out = user.to_key().to_vec();
    out.extend_from_slice(key.as_bytes());
    out
}

fn pair_key(a: [u8; 8], b: [u8; 8]) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&a);
    key[8..].copy_from_slice(&b);
    key
}

/// Units a cancellation put back, with the stock sequence number of that write.
#[derive(Debug, Clone, Copy)]
pub struct StockReturn {
    pub product_id: ProductId,
    pub quantity: i64,
    pub seq: u64,
}

/// A status change that happened.
#[derive(Debug, Clone)]
pub struct Transition {
    pub before: Order,
    pub after: Order,
    pub returned: Vec<StockReturn>,
}

/// Why a status change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum TransitionFailure {
    #[error("order not found")]
    NotFound,
    #[error(transparent)]
    Rejected(#[from] TransitionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Writes a placed order and everything that goes with it in one transaction.
    pub fn commit_checkout(&self, write: CheckoutWrite<'_>) -> Result<CheckoutCommit, StoreError> {
        let order = write.order;
        let order_bytes = encode(order)?;
        let cart_bytes = encode(write.emptied_cart)?;
        let t = &self.trees;
        let now = now_unix();
        let sold = StockChange::of(StockCause::Checkout(order.id));
        let result = (
            &t.stock_by_product,
            &t.orders_by_id,
            &t.orders_by_user,
            &t.order_items_by_product,
            &t.carts_by_id,
            &t.checkouts_by_key,
            &t.outbox_by_id,
            &t.stock_ledger_by_product,
            &t.stats_by_day,
            &t.product_sales_by_day,
            &t.customers_by_user,
        )
            .transaction(
                |(
                    stock,
                    orders,
                    by_user,
                    by_product,
                    carts,
                    keys,
                    outbox,
                    ledger,
                    stats,
                    sales,
                    customers,
                )| {
                    let mut stock_seqs = Vec::with_capacity(order.items.len());
                    let fail = |e: StoreError| ConflictableTransactionError::Abort(Abort::Store(e));
                    if let Some((key, body_hash)) = &write.idempotency {
                        if let Some(seen) = keys.get(key_of(order.user_id, key))? {
                            let order_id = OrderId::from_key(&seen[32..]).ok_or_else(|| {
                                fail(StoreError::Corrupt("idempotency entry".into()))
                            })?;
                            return Err(ConflictableTransactionError::Abort(Abort::Done(
                                CheckoutCommit::Replayed {
                                    order_id,
                                    same_request: seen[..32] == body_hash[..],
                                },
                            )));
                        }
                    }
                    for (product_id, quantity) in order.units() {
                        let next =
                            match write_stock(stock, ledger, product_id, -quantity, 0, &sold, now)?
                            {
                                Ok(StockWrite::Applied(next)) => next,
                                Ok(StockWrite::Missing) => {
                                    return Err(ConflictableTransactionError::Abort(Abort::Done(
                                        CheckoutCommit::Short {
                                            product_id,
                                            available: 0,
                                        },
                                    )))
                                }
                                Ok(StockWrite::Refused { level, .. }) => {
                                    return Err(ConflictableTransactionError::Abort(Abort::Done(
                                        CheckoutCommit::Short {
                                            product_id,
                                            available: level.on_hand,
                                        },
                                    )))
                                }
                                Err(e) => return Err(fail(e)),
                            };
                        stock_seqs.push((product_id, next.seq));
                        by_product
                            .insert(&pair_key(product_id.to_key(), order.id.to_key()), &[])?;
                    }
                    record_order(stats, sales, customers, None, order)?.map_err(fail)?;
                    orders.insert(&order.id.to_key(), order_bytes.as_slice())?;
                    by_user.insert(&pair_key(order.user_id.to_key(), order.id.to_key()), &[])?;
                    carts.insert(&write.emptied_cart.id.to_key(), cart_bytes.as_slice())?;
                    if let Some((key, body_hash)) = &write.idempotency {
                        let mut value = body_hash.to_vec();
                        value.extend_from_slice(&order.id.to_key());
                        keys.insert(key_of(order.user_id, key), value)?;
                    }
                    if let Some(mail) = write.confirmation {
                        enqueue_in_tx(outbox, mail)?;
                    }
                    Ok(stock_seqs)
                },
            );
        match result {
            Ok(stock_seqs) => Ok(CheckoutCommit::Placed { stock_seqs }),
            Err(TransactionError::Abort(Abort::Done(outcome))) => Ok(outcome),
            Err(TransactionError::Abort(Abort::Store(e))) => Err(e),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// The (body hash, order) an Idempotency-Key of this user created.
    pub fn checkout_by_key(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<([u8; 32], OrderId)>, StoreError> {
        let Some(seen) = self.trees.checkouts_by_key.get(key_of(user, key))? else {
            return Ok(None);
        };
        let hash: [u8; 32] = seen
            .get(..32)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| StoreError::Corrupt("idempotency entry".into()))?;
        let order = OrderId::from_key(&seen[32..])
            .ok_or_else(|| StoreError::Corrupt("idempotency entry".into()))?;
        Ok(Some((hash, order)))
    }

    pub fn order(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        self.trees
            .orders_by_id
            .get(id.to_key())?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// A page of a user's orders, newest first, and how many they have.
    pub fn orders_of_user(
        &self,
        user: UserId,
        offset: usize,
        limit: usize,
    ) -> Result<(usize, Vec<Order>), StoreError> {
        let mut count = 0;
        let mut page = Vec::new();
        for entry in self.trees.orders_by_user.scan_prefix(user.to_key()).rev() {
            let (key, _) = entry?;
            if count >= offset && page.len() < limit {
                if let Some(order) = OrderId::from_key(&key[8..])
                    .map(|id| self.order(id))
                    .transpose()?
                    .flatten()
                {
                    page.push(order);
                }
            }
            count += 1;
        }
        Ok((count, page))
    }

    /// Every order for which `keep` is true, newest first (staff back office).
    pub fn orders_matching(&self, keep: impl Fn(&Order) -> bool) -> Result<Vec<Order>, StoreError> {
        let mut orders = Vec::new();
        for entry in self.trees.orders_by_id.iter().rev() {
            let (_, bytes) = entry?;
            let order: Order = decode(&bytes)?;
            if keep(&order) {
                orders.push(order);
            }
        }
        Ok(orders)
    }

    /// Rewrites an order record through `change` (payment outcomes: status
    /// and payment_status) with its analytics figures moved in the same
    /// transaction. Stock is not touched here: a change that returns stock
    /// is a cancellation and goes through `transition_order`.
    pub fn update_order(
        &self,
        id: OrderId,
        change: impl Fn(&mut Order),
    ) -> Result<Order, StoreError> {
        let t = &self.trees;
        let now = now_unix();
        super::from_tx(
            (
                &t.orders_by_id,
                &t.stats_by_day,
                &t.product_sales_by_day,
                &t.customers_by_user,
            )
                .transaction(|(orders, stats, sales, customers)| {
                    let Some(bytes) = orders.get(id.to_key())? else {
                        return super::abort(StoreError::NotFound);
                    };
                    let before: Order = decode(&bytes).or_else(super::abort)?;
                    let mut after = before.clone();
                    change(&mut after);
                    after.id = before.id;
                    after.user_id = before.user_id;
                    after.created_at = before.created_at;
                    after.updated_at = now;
                    record_order(stats, sales, customers, Some(&before), &after)?
                        .or_else(super::abort)?;
                    orders.insert(&id.to_key(), encode(&after).or_else(super::abort)?)?;
                    Ok(after)
                }),
        )
    }

    /// Moves an order to `to` if the state machine and the requester allow
    /// it; a cancellation returns the items' units to stock in the same
    /// transaction. Returns the order before and after, and the stock it
    /// returned.
    pub fn transition_order(
        &self,
        id: OrderId,
        to: OrderStatus,
        requester: Requester,
    ) -> Result<Transition, TransitionFailure> {
        let t = &self.trees;
        let now = now_unix();
        let returned_change = StockChange::of(StockCause::OrderCancelled(id));
        let result = (
            &t.orders_by_id,
            &t.stock_by_product,
            &t.stock_ledger_by_product,
            &t.stats_by_day,
            &t.product_sales_by_day,
            &t.customers_by_user,
        )
            .transaction(|(orders, stock, ledger, stats, sales, customers)| {
                let fail = |e: StoreError| {
                    ConflictableTransactionError::Abort(TransitionFailure::Store(e))
                };
                let Some(bytes) = orders.get(id.to_key())? else {
                    return Err(ConflictableTransactionError::Abort(
                        TransitionFailure::NotFound,
                    ));
                };
                let before: Order = decode(&bytes).map_err(fail)?;
                check_transition(before.status, to, requester).map_err(|e| {
                    ConflictableTransactionError::Abort(TransitionFailure::Rejected(e))
                })?;
                let mut after = before.clone();
                after.status = to;
                after.updated_at = now;
                let mut returned = Vec::new();
                if to == OrderStatus::Cancelled && before.status.holds_stock() {
                    for (product_id, quantity) in before.units() {
                        let next = match write_stock(
                            stock,
                            ledger,
                            product_id,
                            quantity,
                            0,
                            &returned_change,
                            now,
                        )? {
                            Ok(StockWrite::Applied(next)) => next,
                            // A product deleted since has no stock to return to.
                            Ok(StockWrite::Missing) => continue,
                            Ok(StockWrite::Refused { message, .. }) => {
                                return Err(fail(StoreError::Corrupt(message)))
                            }
                            Err(e) => return Err(fail(e)),
                        };
                        returned.push(StockReturn {
                            product_id,
                            quantity,
                            seq: next.seq,
                        });
                    }
                }
                record_order(stats, sales, customers, Some(&before), &after)?.map_err(fail)?;
                orders.insert(&id.to_key(), encode(&after).map_err(fail)?)?;
                Ok(Transition {
                    before,
                    after,
                    returned,
                })
            });
        result.map_err(|e| match e {
            TransactionError::Abort(failure) => failure,
            TransactionError::Storage(e) => TransitionFailure::Store(e.into()),
        })
    }
}
