//! Orders. `orders_by_id` holds each order, `orders_by_user` (UserId ++
//! OrderId) lists a user's orders, `order_items_by_product` (ProductId ++
//! OrderId) finds orders of a product, `checkouts_by_key` maps a user's
//! Idempotency-Key to the order it created, `pending_orders_by_created`
//! (created_at u64 BE ++ OrderId) lists the orders still pending, oldest
//! first, and loses an entry in the transaction that moves its order on.
//!
//! Invariant 1 lives here as much as in the actors: the checkout transaction
//! re-reads each product's stock and aborts rather than take it below zero,
//! and it writes the order, its index entries, the stock decrements, the
//! emptied cart and the idempotency key together, so a crash leaves either
//! all of them or none.

use super::{decode, encode, Store, StoreError};
use crate::domain::cart::Cart;
use crate::domain::inventory::StockLevel;
use crate::domain::order::{
    check_transition, Order, OrderStatus, PaymentStatus, Requester, TransitionError,
};
use crate::domain::time::now_unix;
use crate::domain::{OrderId, ProductId, UserId};
use crate::mail::{enqueue_in_tx, PreparedMail};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

/// Set once `pending_orders_by_created` holds every pending order (data
/// directories from before the index existed are indexed once at open).
const PENDING_INDEXED_FLAG: &str = "pending_orders_indexed";

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

/// The `pending_orders_by_created` key of an order.
pub fn pending_key(order: &Order) -> [u8; 16] {
    pair_key(
        (order.created_at.max(0) as u64).to_be_bytes(),
        order.id.to_key(),
    )
}

/// Indexes the pending orders of a data directory made before the index.
pub(crate) fn index_pending_orders(trees: &super::Trees) -> Result<(), StoreError> {
    if trees.meta.contains_key(PENDING_INDEXED_FLAG)? {
        return Ok(());
    }
    for entry in trees.orders_by_id.iter() {
        let (_, bytes) = entry?;
        let order: Order = decode(&bytes)?;
        if order.status == OrderStatus::Pending {
            trees
                .pending_orders_by_created
                .insert(pending_key(&order), &[])?;
        }
    }
    // sled recovers a prefix of its writes, so the flag never outlives the entries.
    trees.meta.insert(PENDING_INDEXED_FLAG, &[1u8])?;
    Ok(())
}

/// Widens a transaction error of the store to one whose abort type wraps it.
pub(crate) fn widen<E: From<StoreError>>(
    e: ConflictableTransactionError<StoreError>,
) -> ConflictableTransactionError<E> {
    match e {
        ConflictableTransactionError::Abort(inner) => {
            ConflictableTransactionError::Abort(inner.into())
        }
        ConflictableTransactionError::Conflict => ConflictableTransactionError::Conflict,
        ConflictableTransactionError::Storage(inner) => {
            ConflictableTransactionError::Storage(inner)
        }
    }
}

/// Puts a cancelled order's units back in stock, inside the transaction
/// that cancels it: the one stock-return path shared by cancellation,
/// refunds and expiry. The caller tells each product's InventoryActor
/// (`Returned`) after the commit.
pub(crate) fn return_units(
    stock: &TransactionalTree,
    order: &Order,
) -> Result<Vec<StockReturn>, ConflictableTransactionError<StoreError>> {
    let fail = ConflictableTransactionError::Abort;
    let mut returned = Vec::new();
    for (product_id, quantity) in order.units() {
        let key = product_id.to_key();
        let level: StockLevel = match stock.get(key)? {
            Some(bytes) => decode(&bytes).map_err(fail)?,
            None => continue,
        };
        let next = level
            .apply(quantity, 0)
            .map_err(|m| fail(StoreError::Corrupt(m)))?;
        stock.insert(&key, encode(&next).map_err(fail)?)?;
        returned.push(StockReturn {
            product_id,
            quantity,
            seq: next.seq,
        });
    }
    Ok(returned)
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

/// Writes an order's change inside a transaction, with what goes with it:
/// its pending-index entry leaves when it stops being pending, and a
/// cancellation returns its units (`return_units`).
pub(crate) fn write_order_change(
    orders: &TransactionalTree,
    stock: &TransactionalTree,
    pending: &TransactionalTree,
    before: &Order,
    after: &Order,
) -> Result<Transition, ConflictableTransactionError<StoreError>> {
    let returned = if after.status == OrderStatus::Cancelled
        && before.status != OrderStatus::Cancelled
        && before.status.holds_stock()
    {
        return_units(stock, before)?
    } else {
        Vec::new()
    };
    if before.status == OrderStatus::Pending && after.status != OrderStatus::Pending {
        pending.remove(&pending_key(before))?;
    }
    orders.insert(
        &after.id.to_key(),
        encode(after).map_err(ConflictableTransactionError::Abort)?,
    )?;
    Ok(Transition {
        before: before.clone(),
        after: after.clone(),
        returned,
    })
}

impl Store {
    /// Writes a placed order and everything that goes with it in one transaction.
    pub fn commit_checkout(&self, write: CheckoutWrite<'_>) -> Result<CheckoutCommit, StoreError> {
        let order = write.order;
        let order_bytes = encode(order)?;
        let cart_bytes = encode(write.emptied_cart)?;
        let t = &self.trees;
        let result = (
            &t.stock_by_product,
            &t.orders_by_id,
            &t.orders_by_user,
            &t.order_items_by_product,
            &t.carts_by_id,
            &t.checkouts_by_key,
            &t.outbox_by_id,
            &t.pending_orders_by_created,
        )
            .transaction(
                |(stock, orders, by_user, by_product, carts, keys, outbox, pending)| {
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
                        let key = product_id.to_key();
                        let level: StockLevel = match stock.get(key)? {
                            Some(bytes) => decode(&bytes).map_err(fail)?,
                            None => StockLevel::default(),
                        };
                        let Ok(next) = level.apply(-quantity, 0) else {
                            return Err(ConflictableTransactionError::Abort(Abort::Done(
                                CheckoutCommit::Short {
                                    product_id,
                                    available: level.on_hand,
                                },
                            )));
                        };
                        stock.insert(&key, encode(&next).map_err(fail)?)?;
                        stock_seqs.push((product_id, next.seq));
                        by_product.insert(&pair_key(key, order.id.to_key()), &[])?;
                    }
                    orders.insert(&order.id.to_key(), order_bytes.as_slice())?;
                    pending.insert(&pending_key(order), &[])?;
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

    /// Pending orders placed at or before `cutoff` (unix seconds), oldest
    /// first, at most `limit` of them.
    pub fn pending_orders_before(
        &self,
        cutoff: i64,
        limit: usize,
    ) -> Result<Vec<OrderId>, StoreError> {
        let end = ((cutoff.max(0) as u64) + 1).to_be_bytes();
        let mut ids = Vec::new();
        for entry in self
            .trees
            .pending_orders_by_created
            .range(..end.as_slice())
            .take(limit)
        {
            let (key, _) = entry?;
            let id = OrderId::from_key(&key[8..])
                .ok_or_else(|| StoreError::Corrupt("bad pending order entry".into()))?;
            ids.push(id);
        }
        Ok(ids)
    }

    /// Cancels an order left unpaid: only if it is still pending, not paid,
    /// and placed at or before `cutoff`, all checked in the transaction so a
    /// payment settling at the same moment wins or loses cleanly. `None`
    /// when the order no longer qualifies.
    pub fn expire_unpaid_order(
        &self,
        id: OrderId,
        cutoff: i64,
    ) -> Result<Option<Transition>, StoreError> {
        let t = &self.trees;
        super::from_tx(
            (
                &t.orders_by_id,
                &t.stock_by_product,
                &t.pending_orders_by_created,
            )
                .transaction(|(orders, stock, pending)| {
                    let Some(bytes) = orders.get(id.to_key())? else {
                        return Ok(None);
                    };
                    let before: Order =
                        decode(&bytes).map_err(ConflictableTransactionError::Abort)?;
                    if before.status != OrderStatus::Pending
                        || before.payment_status == PaymentStatus::Paid
                        || before.created_at > cutoff
                    {
                        if before.status != OrderStatus::Pending {
                            pending.remove(&pending_key(&before))?;
                        }
                        return Ok(None);
                    }
                    let mut after = before.clone();
                    after.status = OrderStatus::Cancelled;
                    after.updated_at = now_unix();
                    write_order_change(orders, stock, pending, &before, &after).map(Some)
                }),
        )
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
        let result = (
            &t.orders_by_id,
            &t.stock_by_product,
            &t.pending_orders_by_created,
        )
            .transaction(|(orders, stock, pending)| {
                let Some(bytes) = orders.get(id.to_key())? else {
                    return Err(ConflictableTransactionError::Abort(
                        TransitionFailure::NotFound,
                    ));
                };
                let before: Order =
                    decode(&bytes).map_err(|e| ConflictableTransactionError::Abort(e.into()))?;
                check_transition(before.status, to, requester).map_err(|e| {
                    ConflictableTransactionError::Abort(TransitionFailure::Rejected(e))
                })?;
                let mut after = before.clone();
                after.status = to;
                after.updated_at = now_unix();
                write_order_change(orders, stock, pending, &before, &after).map_err(widen)
            });
        result.map_err(|e| match e {
            TransactionError::Abort(failure) => failure,
            TransactionError::Storage(e) => TransitionFailure::Store(e.into()),
        })
    }
}
