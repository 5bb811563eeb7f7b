//! Orders. `orders_by_id` holds each order, `order_items_by_product` (ProductId ++
//! OrderId) finds orders of a product, `checkouts_by_key` maps a user's
//! Idempotency-Key to the order it created, `pending_orders_by_created`
//! (created_at u64 BE ++ OrderId) lists the orders still pending, oldest
//! first, and loses an entry in the transaction that moves its order on.
//!
//! Invariant 1 lives here as much as in the actors: the checkout transaction
//! re-reads each product's stock and aborts rather than take it below zero,
//! and it writes the order, its index entries, the stock decrements, the
//! emptied cart and the idempotency key together, so a crash leaves either
//! all of them or none. The same transactions append the stock ledger and
//! move the analytics buckets (`ledger::write_stock`, `stats::record_order`):
//! every order write goes through `commit_checkouts` (one order or a batch)
//! or `write_order_change`, so neither can disagree with the orders after a
//! crash.
//!
//! Orders are read from the in-memory `OrderBook`, never from sled (see
//! `order_book` for why); every method here that commits an order change
//! holds the order's stripe of the book across its transaction and records
//! the result in it.

use super::ledger::{write_stock, StockWrite};
use super::order_book::OrderBook;
use super::stats::{record_cart_started, record_order};
use super::{decode, encode, Store, StoreError};
use crate::domain::cart::Cart;
use crate::domain::inventory::StockLevel;
use crate::domain::ledger::{StockCause, StockChange};
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

/// A placed order with everything its transaction writes besides it.
/// Owned, so it can travel to the checkout committer's thread.
pub struct CheckoutWrite {
    pub order: Order,
    pub emptied_cart: Cart,
    /// (Idempotency-Key, SHA-256 of the request body).
    pub idempotency: Option<(String, [u8; 32])>,
    /// The order confirmation, queued in the outbox in the same transaction.
    pub confirmation: Option<PreparedMail>,
}

/// Whether an order may be placed as the transaction sees the store now:
/// `Some` with the refusal (Idempotency-Key seen, stock short) if not.
/// Reads only, so a refused order leaves no write behind.
fn check_checkout(
    stock: &TransactionalTree,
    keys: &TransactionalTree,
    write: &CheckoutWrite,
) -> Result<Option<CheckoutCommit>, ConflictableTransactionError<StoreError>> {
    let order = &write.order;
    if let Some((key, body_hash)) = &write.idempotency {
        if let Some(seen) = keys.get(key_of(order.user_id, key))? {
            let order_id = OrderId::from_key(&seen[32..]).ok_or_else(|| {
                ConflictableTransactionError::Abort(StoreError::Corrupt("idempotency entry".into()))
            })?;
            return Ok(Some(CheckoutCommit::Replayed {
                order_id,
                same_request: seen[..32] == body_hash[..],
            }));
        }
    }
    let mut wanted: Vec<(ProductId, i64)> = Vec::with_capacity(order.items.len());
    for (product_id, quantity) in order.units() {
        match wanted.iter_mut().find(|(p, _)| *p == product_id) {
            Some((_, sum)) => *sum = sum.saturating_add(quantity),
            None => wanted.push((product_id, quantity)),
        }
    }
    for (product_id, quantity) in wanted {
        let Some(bytes) = stock.get(product_id.to_key())? else {
            return Ok(Some(CheckoutCommit::Short {
                product_id,
                available: 0,
            }));
        };
        let level: StockLevel = decode(&bytes).map_err(ConflictableTransactionError::Abort)?;
        if level.apply(-quantity, 0).is_err() {
            return Ok(Some(CheckoutCommit::Short {
                product_id,
                available: level.on_hand,
            }));
        }
    }
    Ok(None)
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

/// Reads every order into the in-memory book the order reads are served from.
pub(crate) fn load_book(trees: &super::Trees) -> Result<OrderBook, StoreError> {
    let mut orders = Vec::new();
    for entry in trees.orders_by_id.iter() {
        let (_, bytes) = entry?;
        orders.push(decode::<Order>(&bytes)?);
    }
    Ok(OrderBook::new(orders))
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

/// Every tree an order change writes, inside one transaction: the order,
/// its pending-index entry, the stock it returns with its ledger entries,
/// and the analytics buckets.
pub(crate) struct OrderTx<'a> {
    pub orders: &'a TransactionalTree,
    pub stock: &'a TransactionalTree,
    pub pending: &'a TransactionalTree,
    pub ledger: &'a TransactionalTree,
    pub stats: &'a TransactionalTree,
    pub sales: &'a TransactionalTree,
    pub customers: &'a TransactionalTree,
}

impl<'a> OrderTx<'a> {
    /// From the views of a transaction over `Trees::order_change()`.
    pub(crate) fn new(views: &'a [TransactionalTree]) -> Self {
        Self {
            orders: &views[0],
            stock: &views[1],
            pending: &views[2],
            ledger: &views[3],
            stats: &views[4],
            sales: &views[5],
            customers: &views[6],
        }
    }
}

impl super::Trees {
    /// The trees of `OrderTx`, in its order, to start a transaction over.
    pub(crate) fn order_change(&self) -> [&sled::Tree; 7] {
        [
            &self.orders_by_id,
            &self.stock_by_product,
            &self.pending_orders_by_created,
            &self.stock_ledger_by_product,
            &self.stats_by_day,
            &self.product_sales_by_day,
            &self.customers_by_user,
        ]
    }
}

/// Puts a cancelled order's units back in stock, inside the transaction
/// that cancels it, with a ledger entry each: the one stock-return path
/// shared by cancellation, refunds and expiry. The caller tells each
/// product's InventoryActor (`Returned`) after the commit.
pub(crate) fn return_units(
    tx: &OrderTx<'_>,
    order: &Order,
    now: i64,
) -> Result<Vec<StockReturn>, ConflictableTransactionError<StoreError>> {
    let fail = ConflictableTransactionError::Abort;
    let change = StockChange::of(StockCause::OrderCancelled(order.id));
    let mut returned = Vec::new();
    for (product_id, quantity) in order.units() {
        let next = match write_stock(tx.stock, tx.ledger, product_id, quantity, 0, &change, now)? {
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
/// its pending-index entry leaves when it stops being pending, a
/// cancellation returns its units (`return_units`), and the analytics
/// buckets move from `before` to `after`.
pub(crate) fn write_order_change(
    tx: &OrderTx<'_>,
    before: &Order,
    after: &Order,
) -> Result<Transition, ConflictableTransactionError<StoreError>> {
    let returned = if after.status == OrderStatus::Cancelled
        && before.status != OrderStatus::Cancelled
        && before.status.holds_stock()
    {
        return_units(tx, before, after.updated_at)?
    } else {
        Vec::new()
    };
    if before.status == OrderStatus::Pending && after.status != OrderStatus::Pending {
        tx.pending.remove(&pending_key(before))?;
    }
    record_order(tx.stats, tx.sales, tx.customers, Some(before), after)?
        .map_err(ConflictableTransactionError::Abort)?;
    tx.orders.insert(
        &after.id.to_key(),
        encode(after).map_err(ConflictableTransactionError::Abort)?,
    )?;
    Ok(Transition {
        before: before.clone(),
        after: after.clone(),
        returned,
    })
}

/// One outcome per checkout write, and one per started cart.
pub(crate) type BatchOutcomes = (
    Vec<Result<CheckoutCommit, StoreError>>,
    Vec<Result<(), StoreError>>,
);

/// Writes several placed orders in one sled transaction (DESIGN.md
/// invariant 3: past ~10,000 durable commits/s the per-transaction cost
/// dominates). Each order is checked on its own inside the transaction,
/// against the stock the orders before it in the batch left, so one
/// short or replayed order is answered as such and writes nothing while
/// the others are placed. Carts that `started` (went from empty to holding
/// something) are written in the same transaction with their count in the
/// day's analytics. Returns one outcome per write and per started cart,
/// in order.
pub(crate) fn commit_checkouts(
    trees: &super::Trees,
    book: &OrderBook,
    writes: &[CheckoutWrite],
    started: &[Cart],
) -> BatchOutcomes {
    match try_commit_checkouts(trees, book, writes, started) {
        Ok(outcomes) => (
            outcomes.into_iter().map(Ok).collect(),
            started.iter().map(|_| Ok(())).collect(),
        ),
        // A store error aborts the whole transaction; alone, each write
        // gets its own outcome instead of sharing another's failure.
        Err(_) if writes.len() + started.len() > 1 => {
            let outcomes = writes
                .iter()
                .map(|write| {
                    try_commit_checkouts(trees, book, std::slice::from_ref(write), &[])
                        .map(|mut outcome| outcome.remove(0))
                })
                .collect();
            let carts = started
                .iter()
                .map(|cart| {
                    try_commit_checkouts(trees, book, &[], std::slice::from_ref(cart)).map(drop)
                })
                .collect();
            (outcomes, carts)
        }
        Err(e) if writes.is_empty() => (Vec::new(), vec![Err(e)]),
        Err(e) => (vec![Err(e)], Vec::new()),
    }
}

fn try_commit_checkouts(
    trees: &super::Trees,
    book: &OrderBook,
    writes: &[CheckoutWrite],
    started: &[Cart],
) -> Result<Vec<CheckoutCommit>, StoreError> {
    let _writing = book.writing_all(writes.iter().map(|w| w.order.id));
    let encoded = writes
        .iter()
        .map(|w| Ok((encode(&w.order)?, encode(&w.emptied_cart)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let started_carts = started
        .iter()
        .map(|cart| Ok((cart.id.to_key(), encode(cart)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let t = trees;
    let now = now_unix();
    let result = (
        &t.stock_by_product,
        &t.orders_by_id,
        &t.order_items_by_product,
        &t.carts_by_id,
        &t.checkouts_by_key,
        &t.outbox_by_id,
        &t.pending_orders_by_created,
        &t.stock_ledger_by_product,
        &t.stats_by_day,
        &t.product_sales_by_day,
        &t.customers_by_user,
    )
        .transaction(
            |(
                stock,
                orders,
                by_product,
                carts,
                keys,
                outbox,
                pending,
                ledger,
                stats,
                sales,
                customers,
            )| {
                let fail = |e: StoreError| ConflictableTransactionError::Abort(e);
                for (key, bytes) in &started_carts {
                    record_cart_started(stats, now)?.map_err(fail)?;
                    carts.insert(key, bytes.as_slice())?;
                }
                let mut outcomes = Vec::with_capacity(writes.len());
                for (write, (order_bytes, cart_bytes)) in writes.iter().zip(&encoded) {
                    let order = &write.order;
                    if let Some(refused) = check_checkout(stock, keys, write)? {
                        outcomes.push(refused);
                        continue;
                    }
                    let sold = StockChange::of(StockCause::Checkout(order.id));
                    let mut stock_seqs = Vec::with_capacity(order.items.len());
                    for (product_id, quantity) in order.units() {
                        // Checked above, so anything but Applied is a broken store.
                        let next =
                            match write_stock(stock, ledger, product_id, -quantity, 0, &sold, now)?
                            {
                                Ok(StockWrite::Applied(next)) => next,
                                Ok(StockWrite::Missing) => {
                                    return Err(fail(StoreError::Corrupt("stock vanished".into())))
                                }
                                Ok(StockWrite::Refused { message, .. }) => {
                                    return Err(fail(StoreError::Corrupt(message)))
                                }
                                Err(e) => return Err(fail(e)),
                            };
                        stock_seqs.push((product_id, next.seq));
                        by_product
                            .insert(&pair_key(product_id.to_key(), order.id.to_key()), &[])?;
                    }
                    record_order(stats, sales, customers, None, order)?.map_err(fail)?;
                    orders.insert(&order.id.to_key(), order_bytes.as_slice())?;
                    pending.insert(&pending_key(order), &[])?;
                    carts.insert(&write.emptied_cart.id.to_key(), cart_bytes.as_slice())?;
                    if let Some((key, body_hash)) = &write.idempotency {
                        let mut value = body_hash.to_vec();
                        value.extend_from_slice(&order.id.to_key());
                        keys.insert(key_of(order.user_id, key), value)?;
                    }
                    if let Some(mail) = &write.confirmation {
                        enqueue_in_tx(outbox, mail)?;
                    }
                    outcomes.push(CheckoutCommit::Placed { stock_seqs });
                }
                Ok(outcomes)
            },
        );
    let outcomes = super::from_tx(result)?;
    for (write, outcome) in writes.iter().zip(&outcomes) {
        if matches!(outcome, CheckoutCommit::Placed { .. }) {
            book.put(write.order.clone());
        }
    }
    Ok(outcomes)
}

impl Store {
    /// Writes a placed order and everything that goes with it, in the
    /// transaction of the next batch of the checkout committer (see
    /// `checkouts`). Not yet durable: the caller awaits `durable()`.
    /// The write comes back with the outcome.
    pub async fn place_checkout(
        &self,
        write: CheckoutWrite,
    ) -> Result<(CheckoutWrite, CheckoutCommit), StoreError> {
        self.checkouts.place(write).await
    }

    /// Writes a placed order and everything that goes with it in its own
    /// transaction, on the caller's thread.
    pub fn commit_checkout(&self, write: CheckoutWrite) -> Result<CheckoutCommit, StoreError> {
        commit_checkouts(
            &self.trees,
            &self.order_book,
            std::slice::from_ref(&write),
            &[],
        )
        .0
        .pop()
        .unwrap_or(Err(StoreError::Closed))
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

    /// Served from memory (`order_book`): reading an order never touches sled.
    pub fn order(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        Ok(self.order_book.get(id))
    }

    /// A page of a user's orders, newest first, and how many they have.
    pub fn orders_of_user(
        &self,
        user: UserId,
        offset: usize,
        limit: usize,
    ) -> Result<(usize, Vec<Order>), StoreError> {
        Ok(self.order_book.of_user(user, offset, limit))
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
        let _writing = self.order_book.writing(id);
        let expired = super::from_tx(t.order_change().as_slice().transaction(|views| {
            let tx = OrderTx::new(views);
            let (orders, pending) = (tx.orders, tx.pending);
            let Some(bytes) = orders.get(id.to_key())? else {
                return Ok(None);
            };
            let before: Order = decode(&bytes).map_err(ConflictableTransactionError::Abort)?;
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
            write_order_change(&tx, &before, &after).map(Some)
        }))?;
        if let Some(transition) = &expired {
            self.order_book.put(transition.after.clone());
        }
        Ok(expired)
    }

    /// Every order for which `keep` is true, newest first (staff back office).
    pub fn orders_matching(&self, keep: impl Fn(&Order) -> bool) -> Result<Vec<Order>, StoreError> {
        Ok(self.order_book.matching(keep))
    }

    /// Rewrites an order record through `change` (a payment outcome, for
    /// example) in one transaction with everything `write_order_change`
    /// keeps in step. If the change cancels the order, its units return to
    /// stock and the caller must tell the InventoryActors (`returned`).
    pub fn update_order(
        &self,
        id: OrderId,
        change: impl Fn(&mut Order),
    ) -> Result<Transition, StoreError> {
        let now = now_unix();
        let _writing = self.order_book.writing(id);
        let transition =
            super::from_tx(self.trees.order_change().as_slice().transaction(|views| {
                let tx = OrderTx::new(views);
                let Some(bytes) = tx.orders.get(id.to_key())? else {
                    return Err(ConflictableTransactionError::Abort(StoreError::NotFound));
                };
                let before: Order = decode(&bytes).map_err(ConflictableTransactionError::Abort)?;
                let mut after = before.clone();
                change(&mut after);
                after.id = before.id;
                after.user_id = before.user_id;
                after.created_at = before.created_at;
                after.updated_at = now;
                write_order_change(&tx, &before, &after)
            }))?;
        self.order_book.put(transition.after.clone());
        Ok(transition)
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
        let _writing = self.order_book.writing(id);
        let result = t.order_change().as_slice().transaction(|views| {
            let tx = OrderTx::new(views);
            let Some(bytes) = tx.orders.get(id.to_key())? else {
                return Err(ConflictableTransactionError::Abort(
                    TransitionFailure::NotFound,
                ));
            };
            let before: Order =
                decode(&bytes).map_err(|e| ConflictableTransactionError::Abort(e.into()))?;
            check_transition(before.status, to, requester)
                .map_err(|e| ConflictableTransactionError::Abort(TransitionFailure::Rejected(e)))?;
            let mut after = before.clone();
            after.status = to;
            after.updated_at = now_unix();
            write_order_change(&tx, &before, &after).map_err(widen)
        });
        let transition = result.map_err(|e| match e {
            TransactionError::Abort(failure) => failure,
            TransactionError::Storage(e) => TransitionFailure::Store(e.into()),
        })?;
        self.order_book.put(transition.after.clone());
        Ok(transition)
    }
}
