//! Payments, their provider references, seen webhook events and
//! Idempotency-Key reservations.
//!
//! Key layout:
//! - `payments_by_id`: PaymentId (u64 BE) -> `Payment`
//! - `payments_by_order`: OrderId (u64 BE) ++ PaymentId (u64 BE) -> ()
//! - `payments_by_transaction`: `"{provider}:{provider id}"` -> PaymentId; both
//!   the transaction id and the settlement id (PayPal capture, Razorpay
//!   payment) point at the payment, so a webhook naming either finds it
//! - `webhook_events_by_id`: `"{provider}:{event id}"` -> `SeenEvent`
//! - `payment_requests_by_key`: UserId (u64 BE) ++ Idempotency-Key bytes -> `PaymentRequest`
//!
//! `settle_payment` is that one transaction: event marker, payment status,
//! order status and payment_status, pending-index entry and, for a refund,
//! the returned stock.
//!
//! Invariant kept here (DESIGN.md 7): the functions taking
//! `TransactionalTree`s are meant to run inside the same sled transaction as
//! the order update, so "event seen + payment succeeded + order paid" is one
//! atomic write: a replayed event finds its marker and changes nothing, and a
//! crash leaves either all of it or none.

use super::orders::{write_order_change, OrderTx, Transition as OrderTransition};
use super::{abort, decode, encode, from_tx, Store, StoreError};
use crate::domain::order::{Order, OrderStatus, PaymentStatus as OrderPayment};
use crate::domain::payment::{Payment, PaymentStatus, Transition};
use crate::domain::time::now_unix;
use crate::domain::{OrderId, PaymentId, UserId};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

/// What the transactional helpers return; `?` works on it inside a
/// `transaction` closure whose abort type is `StoreError`.
pub type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// The marker stored for a processed webhook event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeenEvent {
    pub at: i64,
}

/// An Idempotency-Key already used by a user, and for what.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentRequest {
    pub payment_id: PaymentId,
    /// SHA-256 of the request body, so the same key with another body is refused.
    pub body_hash: Vec<u8>,
    pub created_at: i64,
}

/// The answer to reserving an Idempotency-Key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The key was free and now names the candidate payment id.
    Fresh(PaymentId),
    /// The key was used before with the same body: answer with this payment.
    Existing(PaymentId),
    /// The key was used before with another body: 422/409, change nothing.
    Mismatch,
}

/// A provider outcome to apply to a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: PaymentStatus,
    /// The id to refund against, when the outcome reveals it (PayPal capture
    /// id, Razorpay payment id); indexed in `payments_by_transaction` too.
    pub settlement_id: Option<String>,
}

/// The result of `apply_outcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The record as it is after the call.
    pub payment: Payment,
    pub previous: PaymentStatus,
    /// True when the status changed: only then should the order change.
    pub changed: bool,
}

/// What `settle_payment` did.
#[derive(Debug, Clone)]
pub struct Settled {
    pub applied: Applied,
    /// The order's change, when the payment moved it (paid; payment failed;
    /// refunded, which cancels a paid order and returns its stock).
    pub order: Option<OrderTransition>,
    /// A success for an order that no longer takes one (another attempt
    /// already paid it, or it was cancelled): the order is left alone and
    /// the money has to go back to the shopper.
    pub stray: bool,
}

/// The order an applied payment change leads to, or `None` for no change.
/// Only the first success pays an order; a failure marks an unpaid order's
/// payment as failed (the shopper may try again); a refund of the paying
/// attempt cancels a paid order.
fn order_after(order: &Order, payment: PaymentStatus) -> (Option<Order>, bool) {
    let mut after = order.clone();
    let mut stray = false;
    match payment {
        PaymentStatus::Succeeded => {
            if order.status == OrderStatus::Pending && order.payment_status != OrderPayment::Paid {
                after.status = OrderStatus::Paid;
                after.payment_status = OrderPayment::Paid;
            } else {
                stray = true;
            }
        }
        PaymentStatus::Failed => {
            if order.payment_status == OrderPayment::Unpaid {
                after.payment_status = OrderPayment::Failed;
            }
        }
        PaymentStatus::Refunded => {
            if order.payment_status == OrderPayment::Paid {
                after.payment_status = OrderPayment::Refunded;
                if order.status == OrderStatus::Paid {
                    after.status = OrderStatus::Cancelled;
                }
            }
        }
        PaymentStatus::Created | PaymentStatus::Pending => {}
    }
    ((after != *order).then_some(after), stray)
}

pub fn order_payment_key(order: OrderId, payment: PaymentId) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&order.to_key());
    key[8..].copy_from_slice(&payment.to_key());
    key
}

pub fn reference_key(provider: &str, reference: &str) -> Vec<u8> {
    format!("{provider}:{reference}").into_bytes()
}

pub fn request_key(user: UserId, idempotency_key: &str) -> Vec<u8> {
    let mut key = user.to_key().to_vec();
    key.extend_from_slice(idempotency_key.as_bytes());
    key
}

/// SHA-256 of a request body, for `reserve_request`.
pub fn body_hash(body: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(body).to_vec()
}

/// Writes a new payment with its order and transaction indexes. Aborts with
/// `Duplicate("transaction_id")` when another payment already has that
/// provider reference.
pub fn insert_payment(
    by_id: &TransactionalTree,
    by_order: &TransactionalTree,
    by_transaction: &TransactionalTree,
    payment: &Payment,
) -> TxResult<()> {
    let id_key = payment.id.to_key();
    let reference = reference_key(&payment.provider, &payment.transaction_id);
    if let Some(existing) = by_transaction.get(&reference)? {
        if existing.as_ref() != id_key {
            return abort(StoreError::Duplicate("transaction_id"));
        }
    }
    by_id.insert(&id_key, encode(payment).or_else(abort)?)?;
    by_order.insert(&order_payment_key(payment.order_id, payment.id), &[])?;
    by_transaction.insert(reference, &id_key)?;
    if let Some(settlement) = &payment.settlement_id {
        by_transaction.insert(reference_key(&payment.provider, settlement), &id_key)?;
    }
    Ok(())
}

pub fn get_payment(by_id: &TransactionalTree, id: PaymentId) -> TxResult<Option<Payment>> {
    match by_id.get(id.to_key())? {
        Some(bytes) => Ok(Some(decode(&bytes).or_else(abort)?)),
        None => Ok(None),
    }
}

/// The payment a provider id (transaction or settlement) belongs to.
pub fn payment_id_by_reference(
    by_transaction: &TransactionalTree,
    provider: &str,
    reference: &str,
) -> TxResult<Option<PaymentId>> {
    match by_transaction.get(reference_key(provider, reference))? {
        Some(bytes) => match PaymentId::from_key(&bytes) {
            Some(id) => Ok(Some(id)),
            None => abort(StoreError::Corrupt("bad payment reference entry".into())),
        },
        None => Ok(None),
    }
}

/// Applies a provider outcome following `PaymentStatus::transition`: a
/// replay or an out-of-order event returns `changed: false` and writes
/// nothing. Aborts with `NotFound` for an unknown payment.
pub fn apply_outcome(
    by_id: &TransactionalTree,
    by_transaction: &TransactionalTree,
    id: PaymentId,
    outcome: &Outcome,
    now: i64,
) -> TxResult<Applied> {
    let Some(mut payment) = get_payment(by_id, id)? else {
        return abort(StoreError::NotFound);
    };
    let previous = payment.status;
    let mut changed = false;
    if let Transition::To(next) = previous.transition(outcome.status) {
        payment.status = next;
        changed = true;
    }
    // Remember the settlement id even on a replayed success (a capture answer
    // and its webhook may race), but never replace one already known.
    let mut touched = changed;
    if let (None, Some(settlement)) = (&payment.settlement_id, &outcome.settlement_id) {
        if changed || payment.status == outcome.status {
            payment.settlement_id = Some(settlement.clone());
            by_transaction.insert(reference_key(&payment.provider, settlement), &id.to_key())?;
            touched = true;
        }
    }
    if touched {
        payment.updated_at = now;
        by_id.insert(&id.to_key(), encode(&payment).or_else(abort)?)?;
    }
    Ok(Applied {
        payment,
        previous,
        changed,
    })
}

/// Records a webhook event as processed. Returns false when it was seen
/// before: the caller must then change nothing and still answer 2xx.
pub fn mark_event_seen(
    events: &TransactionalTree,
    provider: &str,
    event_id: &str,
    now: i64,
) -> TxResult<bool> {
    let key = reference_key(provider, event_id);
    if events.get(&key)?.is_some() {
        return Ok(false);
    }
    events.insert(key, encode(&SeenEvent { at: now }).or_else(abort)?)?;
    Ok(true)
}

/// Reserves `idempotency_key` of `user` for `candidate` unless it is taken.
pub fn reserve_request(
    requests: &TransactionalTree,
    user: UserId,
    idempotency_key: &str,
    body_hash: &[u8],
    candidate: PaymentId,
    now: i64,
) -> TxResult<Reservation> {
    let key = request_key(user, idempotency_key);
    if let Some(bytes) = requests.get(&key)? {
        let previous: PaymentRequest = decode(&bytes).or_else(abort)?;
        return Ok(if previous.body_hash == body_hash {
            Reservation::Existing(previous.payment_id)
        } else {
            Reservation::Mismatch
        });
    }
    let request = PaymentRequest {
        payment_id: candidate,
        body_hash: body_hash.to_vec(),
        created_at: now,
    };
    requests.insert(key, encode(&request).or_else(abort)?)?;
    Ok(Reservation::Fresh(candidate))
}

/// Convenience wrappers, each its own transaction, for the steps that touch
/// no other tree. Callers still `durable().await` before answering.
impl Store {
    /// Reserves an Idempotency-Key for a new payment id (allocated here).
    pub fn reserve_payment_request(
        &self,
        user: UserId,
        idempotency_key: &str,
        body_hash: &[u8],
    ) -> Result<Reservation, StoreError> {
        let candidate = PaymentId(self.next_id()?);
        let now = now_unix();
        from_tx(self.trees.payment_requests_by_key.transaction(|requests| {
            reserve_request(requests, user, idempotency_key, body_hash, candidate, now)
        }))
    }

    pub fn insert_payment(&self, payment: &Payment) -> Result<(), StoreError> {
        let t = &self.trees;
        from_tx(
            (
                &t.payments_by_id,
                &t.payments_by_order,
                &t.payments_by_transaction,
            )
                .transaction(|(by_id, by_order, by_transaction)| {
                    insert_payment(by_id, by_order, by_transaction, payment)
                }),
        )
    }

    pub fn payment(&self, id: PaymentId) -> Result<Option<Payment>, StoreError> {
        self.trees
            .payments_by_id
            .get(id.to_key())?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Every attempt for an order, oldest first.
    pub fn payments_of_order(&self, order: OrderId) -> Result<Vec<Payment>, StoreError> {
        let mut payments = Vec::new();
        for entry in self.trees.payments_by_order.scan_prefix(order.to_key()) {
            let (key, _) = entry?;
            let id = PaymentId::from_key(&key[8..])
                .ok_or_else(|| StoreError::Corrupt("bad order payment index entry".into()))?;
            match self.payment(id)? {
                Some(payment) => payments.push(payment),
                None => {
                    return Err(StoreError::Corrupt(format!(
                        "payment {id} is indexed but missing"
                    )))
                }
            }
        }
        Ok(payments)
    }

    pub fn payment_by_reference(
        &self,
        provider: &str,
        reference: &str,
    ) -> Result<Option<Payment>, StoreError> {
        match self
            .trees
            .payments_by_transaction
            .get(reference_key(provider, reference))?
        {
            Some(bytes) => {
                let id = PaymentId::from_key(&bytes)
                    .ok_or_else(|| StoreError::Corrupt("bad payment reference entry".into()))?;
                self.payment(id)
            }
            None => Ok(None),
        }
    }

    /// Applies an outcome with no order change, deduplicated on `event`
    /// (provider, event id) when given. `None` means the event was a replay.
    /// Orders use the transactional helpers instead, in their own transaction.
    pub fn apply_payment_outcome(
        &self,
        id: PaymentId,
        outcome: &Outcome,
        event: Option<(&str, &str)>,
    ) -> Result<Option<Applied>, StoreError> {
        let t = &self.trees;
        let now = now_unix();
        from_tx(
            (
                &t.payments_by_id,
                &t.payments_by_transaction,
                &t.webhook_events_by_id,
            )
                .transaction(|(by_id, by_transaction, events)| {
                    if let Some((provider, event_id)) = event {
                        if !mark_event_seen(events, provider, event_id, now)? {
                            return Ok(None);
                        }
                    }
                    apply_outcome(by_id, by_transaction, id, outcome, now).map(Some)
                }),
        )
    }
}

impl Store {
    /// Applies a verified provider outcome to a payment and its order in one
    /// transaction, deduplicated on `event` (provider, event id) when given.
    /// `None` means the event was seen before and nothing changed. Not yet
    /// durable: the caller awaits `durable()` before answering.
    pub fn settle_payment(
        &self,
        id: PaymentId,
        outcome: &Outcome,
        event: Option<(&str, &str)>,
    ) -> Result<Option<Settled>, StoreError> {
        let t = &self.trees;
        let now = now_unix();
        // A payment's order never changes: lock its stripe of the order book
        // before the transaction that may change the order.
        let order_id = self.payment(id)?.map(|p| p.order_id);
        let _writing = order_id.map(|o| self.order_book.writing(o));
        let settled = from_tx(
            (
                &t.payments_by_id,
                &t.payments_by_transaction,
                &t.webhook_events_by_id,
                &t.orders_by_id,
                &t.stock_by_product,
                &t.pending_orders_by_created,
                &t.stock_ledger_by_product,
                &t.stats_by_day,
                &t.product_sales_by_day,
                &t.customers_by_user,
            )
                .transaction(
                    |(
                        by_id,
                        by_transaction,
                        events,
                        orders,
                        stock,
                        pending,
                        ledger,
                        stats,
                        sales,
                        customers,
                    )| {
                        let tx = OrderTx {
                            orders,
                            stock,
                            pending,
                            ledger,
                            stats,
                            sales,
                            customers,
                        };
                        if let Some((provider, event_id)) = event {
                            if !mark_event_seen(events, provider, event_id, now)? {
                                return Ok(None);
                            }
                        }
                        let applied = apply_outcome(by_id, by_transaction, id, outcome, now)?;
                        let mut settled = Settled {
                            applied,
                            order: None,
                            stray: false,
                        };
                        if !settled.applied.changed {
                            return Ok(Some(settled));
                        }
                        let order_id = settled.applied.payment.order_id;
                        let Some(bytes) = orders.get(order_id.to_key())? else {
                            return abort(StoreError::Corrupt(format!(
                                "payment {id} names missing order {order_id}"
                            )));
                        };
                        let before: Order = decode(&bytes).or_else(abort)?;
                        let (after, stray) = order_after(&before, settled.applied.payment.status);
                        settled.stray = stray;
                        if let Some(mut after) = after {
                            after.updated_at = now;
                            settled.order = Some(write_order_change(&tx, &before, &after)?);
                        }
                        Ok(Some(settled))
                    },
                ),
        )?;
        if let Some(transition) = settled.as_ref().and_then(|s| s.order.as_ref()) {
            self.order_book.put(transition.after.clone());
        }
        Ok(settled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: u64, order: u64, transaction: &str) -> Payment {
        Payment {
            id: PaymentId(id),
            order_id: OrderId(order),
            amount_minor: 1999,
            currency: "USD".into(),
            provider: "paypal".into(),
            transaction_id: transaction.into(),
            settlement_id: None,
            status: PaymentStatus::Created,
            created_at: 1,
            updated_at: 1,
        }
    }

    fn succeeded(settlement: Option<&str>) -> Outcome {
        Outcome {
            status: PaymentStatus::Succeeded,
            settlement_id: settlement.map(Into::into),
        }
    }

    #[test]
    fn payments_are_found_by_id_order_and_provider_reference() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_payment(&sample(10, 7, "ORDER-A")).unwrap();
        store.insert_payment(&sample(11, 7, "ORDER-B")).unwrap();
        store.insert_payment(&sample(12, 8, "ORDER-C")).unwrap();
        let of_order: Vec<u64> = store
            .payments_of_order(OrderId(7))
            .unwrap()
            .iter()
            .map(|p| p.id.0)
            .collect();
        assert_eq!(of_order, vec![10, 11]);
        let found = store.payment_by_reference("paypal", "ORDER-B").unwrap();
        assert_eq!(found.map(|p| p.id), Some(PaymentId(11)));
        assert!(store
            .payment_by_reference("stripe", "ORDER-B")
            .unwrap()
            .is_none());
        let taken = store.insert_payment(&sample(13, 9, "ORDER-A"));
        assert!(matches!(
            taken,
            Err(StoreError::Duplicate("transaction_id"))
        ));
    }

    #[test]
    fn a_replayed_event_changes_nothing_and_a_late_failure_never_unpays() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_payment(&sample(20, 7, "ORDER-A")).unwrap();
        let first = store
            .apply_payment_outcome(
                PaymentId(20),
                &succeeded(Some("CAP-1")),
                Some(("paypal", "WH-1")),
            )
            .unwrap()
            .expect("first delivery applies");
        assert!(first.changed);
        assert_eq!(first.payment.status, PaymentStatus::Succeeded);
        let replay = store
            .apply_payment_outcome(
                PaymentId(20),
                &succeeded(Some("CAP-1")),
                Some(("paypal", "WH-1")),
            )
            .unwrap();
        assert!(replay.is_none(), "same event id is a replay");
        let late_failure = store
            .apply_payment_outcome(
                PaymentId(20),
                &Outcome {
                    status: PaymentStatus::Failed,
                    settlement_id: None,
                },
                Some(("paypal", "WH-2")),
            )
            .unwrap()
            .expect("new event");
        assert!(!late_failure.changed);
        assert_eq!(late_failure.payment.status, PaymentStatus::Succeeded);
        // The capture id now finds the payment too (refund webhooks name it).
        let by_capture = store
            .payment_by_reference("paypal", "CAP-1")
            .unwrap()
            .unwrap();
        assert_eq!(by_capture.refund_reference(), "CAP-1");
    }

    #[test]
    fn an_idempotency_key_is_bound_to_its_first_body() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let user = UserId(5);
        let hash = body_hash(br#"{"order_id":1,"provider":"test"}"#);
        let Reservation::Fresh(id) = store.reserve_payment_request(user, "key-1", &hash).unwrap()
        else {
            panic!("first use is fresh");
        };
        assert_eq!(
            store.reserve_payment_request(user, "key-1", &hash).unwrap(),
            Reservation::Existing(id)
        );
        let other = body_hash(br#"{"order_id":2,"provider":"test"}"#);
        assert_eq!(
            store
                .reserve_payment_request(user, "key-1", &other)
                .unwrap(),
            Reservation::Mismatch
        );
        // Keys are per user.
        assert!(matches!(
            store
                .reserve_payment_request(UserId(6), "key-1", &other)
                .unwrap(),
            Reservation::Fresh(_)
        ));
    }
}
