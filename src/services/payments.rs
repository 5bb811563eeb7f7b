//! Payments: starting an attempt at a provider, settling it from a verified
//! answer (webhook, PayPal capture, Razorpay Checkout signature, the test
//! provider's signed callback), staff refunds, and the sweeper that cancels
//! orders left unpaid.
//!
//! Invariant kept here (DESIGN.md 3 and 7): an order becomes paid only in
//! `settle`, from an outcome whose signature or provider answer was
//! verified; the payment, the order, the webhook's dedupe marker and any
//! returned stock are one sled transaction, flushed before the caller may
//! answer 2xx, and only then is `order.updated` published. Stock goes back
//! through the cancellation path (`store::orders::return_units` in the
//! transaction, then `Returned` to each InventoryActor).

use super::orders::OrderView;
use super::{Shop, ShopError};
use crate::actors::inventory::Returned;
use crate::actors::registry::Lookup;
use crate::auth::Identity;
use crate::domain::money::{format_minor, Currency, Money};
use crate::domain::order::{Order, OrderStatus, PaymentStatus as OrderPayment};
use crate::domain::payment::{Payment, PaymentStatus};
use crate::domain::time::{now_unix, rfc3339};
use crate::domain::{OrderId, PaymentId};
use crate::payments::test_provider::{self, TestOutcome};
use crate::payments::{
    idempotency_key_for, CreatePayment, EventKind, NextAction, Provider, ProviderError,
    RefundPayment, WebhookEvent,
};
use crate::store::orders::StockReturn;
use crate::store::payments::{Outcome, Reservation, Settled};
use crate::store::StoreError;
use actix_web::http::header::HeaderMap;
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// How many expired orders one sweep cancels at most; the next sweep takes the rest.
const SWEEP_BATCH: usize = 500;

/// Errors of the payment service; the API maps each to one status.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The order cannot take a payment now (paid, cancelled, ...).
    #[error("{0}")]
    NotPayable(String),
    #[error("this Idempotency-Key was already used with a different request")]
    KeyReused,
    /// A verified event names a payment this shop never made.
    #[error("the event names no payment of this shop")]
    UnknownPayment,
    /// A verified success whose amount or currency is not the payment's.
    #[error("amount mismatch: {0}")]
    AmountMismatch(String),
    /// A verified event of a type the shop does not handle.
    #[error("unhandled event type '{0}'")]
    UnhandledEvent(String),
    #[error("{0}")]
    NotRefundable(String),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Shop(#[from] ShopError),
}

impl From<StoreError> for PaymentError {
    fn from(e: StoreError) -> Self {
        PaymentError::Shop(ShopError::Store(e))
    }
}

/// A payment attempt as clients see it: no provider secrets, only the ids
/// needed to follow it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PaymentView {
    pub id: u64,
    pub order_id: u64,
    /// stripe, paypal, razorpay or test.
    pub provider: String,
    /// created, pending, succeeded, failed or refunded.
    pub status: PaymentStatus,
    pub amount: String,
    pub currency: String,
    /// The provider's id of this attempt (for Stripe, the PaymentIntent id).
    pub transaction_id: String,
    pub created_at: String,
    pub updated_at: String,
}

impl PaymentView {
    pub fn new(payment: &Payment) -> Self {
        let amount = Currency::parse(&payment.currency)
            .map(|c| format_minor(payment.amount_minor, c))
            .unwrap_or_else(|_| payment.amount_minor.to_string());
        Self {
            id: payment.id.0,
            order_id: payment.order_id.0,
            provider: payment.provider.clone(),
            status: payment.status,
            amount,
            currency: payment.currency.clone(),
            transaction_id: payment.transaction_id.clone(),
            created_at: rfc3339(payment.created_at),
            updated_at: rfc3339(payment.updated_at),
        }
    }
}

/// A started (or, for a repeated Idempotency-Key, resumed) attempt.
pub struct Started {
    pub payment: Payment,
    pub next_action: NextAction,
    pub replayed: bool,
}

/// How a webhook ended; every variant is a 2xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookResult {
    /// The event changed the payment (and maybe the order).
    Applied,
    /// A new event that changed nothing (late failure after success, ...).
    Unchanged,
    /// This event id was processed before.
    Duplicate,
}

/// A payment and its order after a client-side verify or capture.
pub struct Settlement {
    pub payment: Payment,
    pub order: Order,
}

/// A staff refund's result.
pub struct Refund {
    pub order: Order,
    pub payment: Payment,
    pub refund_id: String,
    /// The provider accepted it but has not settled it yet.
    pub pending: bool,
}

/// What the PayPal capture route is given: our order id, or PayPal's.
pub enum CaptureTarget {
    Order(OrderId),
    PayPalOrder(String),
}

impl Shop {
    /// Names of the enabled providers.
    pub fn payment_providers(&self) -> Vec<&'static str> {
        self.payments.enabled()
    }

    /// An order only its owner may pay; anyone else (staff included) gets
    /// "not found".
    fn own_order(&self, caller: &Identity, id: OrderId) -> Result<Order, PaymentError> {
        match self.store.order(id)? {
            Some(order) if order.user_id == caller.user.id => Ok(order),
            _ => Err(PaymentError::NotFound("order")),
        }
    }

    /// Starts a payment attempt for the caller's pending, unpaid order.
    /// With an Idempotency-Key (and the SHA-256 of the body), a retry gets
    /// the same attempt back, and the provider sees the same idempotency key.
    pub async fn start_payment(
        &self,
        caller: &Identity,
        order_id: OrderId,
        provider_name: &str,
        idempotency: Option<(String, Vec<u8>)>,
    ) -> Result<Started, PaymentError> {
        let order = self.own_order(caller, order_id)?;
        let provider = self.payments.get(provider_name)?;
        let id = match &idempotency {
            Some((key, hash)) => {
                match self
                    .store
                    .reserve_payment_request(caller.user.id, key, hash)?
                {
                    Reservation::Mismatch => return Err(PaymentError::KeyReused),
                    Reservation::Existing(id) => {
                        if let Some(payment) = self.store.payment(id)? {
                            let next_action = provider.resume(&payment).await?;
                            return Ok(Started {
                                payment,
                                next_action,
                                replayed: true,
                            });
                        }
                        // Reserved but not created (the first try failed at
                        // the provider): create it now, under the same id.
                        id
                    }
                    Reservation::Fresh(id) => id,
                }
            }
            None => PaymentId(self.store.next_id()?),
        };
        check_payable(&order)?;
        // The reservation is durable before the provider hears of the id, so
        // a retry after a crash reuses the provider's idempotency key.
        self.store.durable().await?;
        let amount = Money::new(order.total, order.currency);
        let created = provider
            .create(&CreatePayment {
                payment_id: id,
                order_id: order.id,
                amount,
                idempotency_key: idempotency_key_for(id, "create"),
            })
            .await?;
        let now = now_unix();
        let payment = Payment {
            id,
            order_id: order.id,
            amount_minor: order.total,
            currency: order.currency.code().to_owned(),
            provider: provider.name().to_owned(),
            transaction_id: created.transaction_id,
            settlement_id: None,
            status: PaymentStatus::Created,
            created_at: now,
            updated_at: now,
        };
        match self.store.insert_payment(&payment) {
            Ok(()) => {}
            // A concurrent retry with the same key created it first.
            Err(StoreError::Duplicate(_)) if idempotency.is_some() => {}
            Err(e) => return Err(e.into()),
        }
        self.store.durable().await?;
        let payment = self.store.payment(id)?.unwrap_or(payment);
        Ok(Started {
            payment,
            next_action: created.next_action,
            replayed: false,
        })
    }

    /// Every attempt for an order its owner or staff may see.
    pub fn order_payments(
        &self,
        caller: &Identity,
        order_id: OrderId,
    ) -> Result<Vec<Payment>, PaymentError> {
        let order = self.visible_order(caller, order_id)?;
        Ok(self.store.payments_of_order(order.id)?)
    }

    /// A provider callback: verified first (anything unsigned or badly
    /// signed is refused before its body is read), then applied once per
    /// event id.
    pub async fn handle_webhook(
        &self,
        provider_name: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookResult, PaymentError> {
        let provider = self.payments.get(provider_name)?;
        let event = provider.verify_webhook(headers, body).await?;
        tracing::info!(
            provider = event.provider,
            event_id = %event.provider_event_id,
            event_type = %event.event_type,
            "verified payment webhook"
        );
        if event.kind == EventKind::Other {
            return Err(PaymentError::UnhandledEvent(event.event_type));
        }
        let payment = self.payment_of_event(&event)?;
        let outcome = match event.kind {
            // PayPal: the shopper approved; the money moves only with our capture.
            EventKind::Approved => self.capture_outcome(provider, &payment).await?,
            _ => {
                event
                    .check_amount(&payment)
                    .map_err(PaymentError::AmountMismatch)?;
                event
                    .outcome()
                    .ok_or_else(|| PaymentError::UnhandledEvent(event.event_type.clone()))?
            }
        };
        let settled = self
            .settle(
                &payment,
                &outcome,
                Some((event.provider, &event.provider_event_id)),
            )
            .await?;
        Ok(match settled {
            None => WebhookResult::Duplicate,
            Some(s) if s.applied.changed => WebhookResult::Applied,
            Some(_) => WebhookResult::Unchanged,
        })
    }

    fn payment_of_event(&self, event: &WebhookEvent) -> Result<Payment, PaymentError> {
        for reference in event.references() {
            if let Some(payment) = self.store.payment_by_reference(event.provider, reference)? {
                return Ok(payment);
            }
        }
        Err(PaymentError::UnknownPayment)
    }

    /// Razorpay Checkout's answer: the signature is checked against the
    /// Razorpay order id *we stored*, never one the client could choose.
    pub async fn verify_razorpay(
        &self,
        caller: &Identity,
        razorpay_order_id: &str,
        razorpay_payment_id: &str,
        signature: &str,
    ) -> Result<Settlement, PaymentError> {
        let provider = self.payments.get(crate::payments::razorpay::NAME)?;
        let payment = self
            .store
            .payment_by_reference(provider.name(), razorpay_order_id)?
            .ok_or(PaymentError::NotFound("payment"))?;
        self.own_order(caller, payment.order_id)?;
        provider.verify_payment_signature(
            &payment.transaction_id,
            razorpay_payment_id,
            signature,
        )?;
        let outcome = Outcome {
            status: PaymentStatus::Succeeded,
            settlement_id: Some(razorpay_payment_id.to_owned()),
        };
        self.settle(&payment, &outcome, None).await?;
        self.settlement(payment.id)
    }

    /// The PayPal return: captures the approved order. A capture PayPal
    /// declines marks the attempt failed and is a 502 naming PayPal's reason.
    pub async fn capture_paypal(
        &self,
        caller: &Identity,
        target: CaptureTarget,
    ) -> Result<Settlement, PaymentError> {
        let provider = self.payments.get(crate::payments::paypal::NAME)?;
        let payment = match target {
            CaptureTarget::PayPalOrder(id) => self
                .store
                .payment_by_reference(provider.name(), &id)?
                .ok_or(PaymentError::NotFound("payment"))?,
            CaptureTarget::Order(order_id) => {
                self.own_order(caller, order_id)?;
                self.store
                    .payments_of_order(order_id)?
                    .into_iter()
                    .rev()
                    .find(|p| p.provider == provider.name())
                    .ok_or(PaymentError::NotFound("payment"))?
            }
        };
        self.own_order(caller, payment.order_id)?;
        let outcome = self.capture_outcome(provider, &payment).await;
        let refusal = match &outcome {
            Err(PaymentError::Provider(refused @ ProviderError::Refused { .. })) => {
                Some(refused.to_string())
            }
            _ => None,
        };
        let outcome = match (outcome, refusal) {
            (Ok(outcome), _) => outcome,
            (Err(_), Some(reason)) => {
                // Recorded (and flushed) before the 502, so the shopper sees
                // the failed attempt and may try again.
                let failed = Outcome {
                    status: PaymentStatus::Failed,
                    settlement_id: None,
                };
                self.settle(&payment, &failed, None).await?;
                return Err(PaymentError::Provider(ProviderError::Refused {
                    provider: provider.name(),
                    reason,
                }));
            }
            (Err(e), None) => return Err(e),
        };
        self.settle(&payment, &outcome, None).await?;
        self.settlement(payment.id)
    }

    /// Captures at PayPal and turns the answer into an outcome: COMPLETED
    /// (for exactly the payment's amount) succeeds, PENDING waits for the
    /// webhook.
    async fn capture_outcome(
        &self,
        provider: &Provider,
        payment: &Payment,
    ) -> Result<Outcome, PaymentError> {
        if payment.status.is_final() {
            return Ok(Outcome {
                status: payment.status,
                settlement_id: None,
            });
        }
        match provider
            .capture(
                &payment.transaction_id,
                &idempotency_key_for(payment.id, "capture"),
            )
            .await
        {
            Ok(captured) => {
                let check = WebhookEvent {
                    provider: provider.name(),
                    provider_event_id: String::new(),
                    event_type: "capture".into(),
                    kind: EventKind::Succeeded,
                    transaction_id: None,
                    settlement_id: None,
                    amount: captured.amount,
                    currency: captured.currency.clone(),
                    failure_reason: None,
                };
                check
                    .check_amount(payment)
                    .map_err(PaymentError::AmountMismatch)?;
                Ok(Outcome {
                    status: PaymentStatus::Succeeded,
                    settlement_id: Some(captured.capture_id),
                })
            }
            Err(ProviderError::Pending { .. }) => Ok(Outcome {
                status: PaymentStatus::Pending,
                settlement_id: None,
            }),
            Err(e) => Err(e.into()),
        }
    }

    fn settlement(&self, id: PaymentId) -> Result<Settlement, PaymentError> {
        let payment = self
            .store
            .payment(id)?
            .ok_or(PaymentError::NotFound("payment"))?;
        let order = self
            .store
            .order(payment.order_id)?
            .ok_or(PaymentError::NotFound("order"))?;
        Ok(Settlement { payment, order })
    }

    /// The one place a payment outcome reaches an order: one transaction,
    /// then the inventory actors hear of returned stock, then the flush,
    /// then `order.updated`. A success for an order that no longer takes
    /// one is refunded in the background.
    async fn settle(
        &self,
        payment: &Payment,
        outcome: &Outcome,
        event: Option<(&str, &str)>,
    ) -> Result<Option<Settled>, PaymentError> {
        let settled = self.store.settle_payment(payment.id, outcome, event)?;
        if let Some(change) = settled.as_ref().and_then(|s| s.order.as_ref()) {
            self.tell_returned(&change.returned).await;
        }
        self.store.durable().await?;
        if let Some(settled) = &settled {
            if let Some(change) = &settled.order {
                self.publish_order_updated(&change.after);
            }
            if settled.stray {
                tracing::warn!(payment_id = %payment.id, order_id = %payment.order_id,
                    "payment succeeded for an order that no longer takes one; refunding it");
                let shop = self.clone();
                let stray = settled.applied.payment.clone();
                actix_web::rt::spawn(async move { shop.refund_stray(stray).await });
            }
        }
        Ok(settled)
    }

    /// Gives back a success that paid nothing (a second attempt, or an
    /// order cancelled meanwhile). The order is not touched.
    async fn refund_stray(&self, payment: Payment) {
        let result = async {
            let provider = self.payments.get(&payment.provider)?;
            provider.refund(&refund_request(&payment)?).await?;
            let refunded = Outcome {
                status: PaymentStatus::Refunded,
                settlement_id: None,
            };
            self.store
                .apply_payment_outcome(payment.id, &refunded, None)?;
            self.store.durable().await?;
            Ok::<_, PaymentError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::error!(payment_id = %payment.id, error = %e,
                "refunding a stray payment failed; refund it at the provider by hand");
        }
    }

    /// Tells each product's InventoryActor about units a cancellation put
    /// back (the cancellation path's second half).
    pub(crate) async fn tell_returned(&self, returned: &[StockReturn]) {
        for returned in returned {
            if let Ok(addr) = self
                .inventory
                .send(Lookup::new(returned.product_id.0))
                .await
            {
                // Awaited, so the stock a client reads after our answer
                // already shows the return. A stopped actor loses nothing:
                // its successor loads the stored level, which holds it.
                let _ = addr
                    .send(Returned {
                        quantity: returned.quantity,
                        seq: returned.seq,
                    })
                    .await;
            }
        }
    }

    /// Staff refund of a paid order that has not shipped: the provider
    /// first; only when it accepts is the payment marked refunded, the order
    /// cancelled and its stock returned. A refusal changes nothing here.
    pub async fn refund_order(&self, order_id: OrderId) -> Result<Refund, PaymentError> {
        let order = self
            .store
            .order(order_id)?
            .ok_or(PaymentError::NotFound("order"))?;
        if order.status != OrderStatus::Paid || order.payment_status != OrderPayment::Paid {
            return Err(PaymentError::NotRefundable(format!(
                "only a paid order that has not shipped can be refunded; this one is {} and {}",
                order.status.as_str(),
                order.payment_status.as_str()
            )));
        }
        let payment = self
            .store
            .payments_of_order(order_id)?
            .into_iter()
            .find(|p| p.status == PaymentStatus::Succeeded)
            .ok_or_else(|| {
                PaymentError::NotRefundable("the order has no successful payment".into())
            })?;
        let provider = self.payments.get(&payment.provider)?;
        let refunded = provider.refund(&refund_request(&payment)?).await?;
        let outcome = Outcome {
            status: PaymentStatus::Refunded,
            settlement_id: None,
        };
        self.settle(&payment, &outcome, None).await?;
        let Settlement { payment, order } = self.settlement(payment.id)?;
        Ok(Refund {
            order,
            payment,
            refund_id: refunded.refund_id,
            pending: refunded.pending,
        })
    }

    /// The test provider's pay page data: the payment, if the link's token
    /// is right.
    pub fn test_payment(&self, id: PaymentId, token: &str) -> Result<Payment, PaymentError> {
        let test = self
            .payments
            .test_provider()
            .ok_or_else(|| ProviderError::NotEnabled(test_provider::NAME.into()))?;
        let payment = self
            .store
            .payment(id)?
            .filter(|p| p.provider == test_provider::NAME && test.check_page_token(id, token))
            .ok_or(PaymentError::NotFound("payment"))?;
        Ok(payment)
    }

    /// Pay or Decline on the test pay page: the test provider signs the
    /// choice and it goes through `handle_webhook` like any provider's.
    pub async fn test_pay(
        &self,
        id: PaymentId,
        token: &str,
        outcome: TestOutcome,
    ) -> Result<Payment, PaymentError> {
        let payment = self.test_payment(id, token)?;
        let test = self
            .payments
            .test_provider()
            .ok_or_else(|| ProviderError::NotEnabled(test_provider::NAME.into()))?;
        let callback = test.sign_outcome(&payment, outcome);
        self.handle_webhook(test_provider::NAME, &callback.headers(), &callback.body)
            .await?;
        self.store
            .payment(id)?
            .ok_or(PaymentError::NotFound("payment"))
    }

    /// A staff status change. Cancelling a paid order refunds it through
    /// its provider first (DESIGN.md: "refund through the provider when
    /// paid"); every other change is the plain state machine.
    pub async fn staff_change_status(
        &self,
        staff: &Identity,
        id: OrderId,
        to: OrderStatus,
    ) -> Result<Order, PaymentError> {
        if to == OrderStatus::Cancelled {
            if let Some(order) = self.store.order(id)? {
                if order.status == OrderStatus::Paid {
                    return Ok(self.refund_order(id).await?.order);
                }
            }
        }
        Ok(self.change_order_status(staff, id, to).await?)
    }

    /// Cancels pending orders placed more than `ttl` ago and still unpaid,
    /// returning their stock; returns how many. An order whose payment is
    /// pending at the provider is left for the provider to finish.
    pub async fn expire_unpaid_orders(&self, ttl: Duration) -> Result<usize, PaymentError> {
        let cutoff = now_unix() - ttl.as_secs() as i64;
        let mut expired = Vec::new();
        for id in self.store.pending_orders_before(cutoff, SWEEP_BATCH)? {
            let in_flight = self
                .store
                .payments_of_order(id)?
                .iter()
                .any(|p| p.status == PaymentStatus::Pending);
            if in_flight {
                continue;
            }
            if let Some(change) = self.store.expire_unpaid_order(id, cutoff)? {
                self.tell_returned(&change.returned).await;
                expired.push(change.after);
            }
        }
        if expired.is_empty() {
            return Ok(0);
        }
        self.store.durable().await?;
        for order in &expired {
            tracing::info!(order_id = %order.id, "cancelled an order left unpaid");
            self.publish_order_updated(order);
        }
        Ok(expired.len())
    }
}

fn check_payable(order: &Order) -> Result<(), PaymentError> {
    if order.status != OrderStatus::Pending || order.payment_status == OrderPayment::Paid {
        return Err(PaymentError::NotPayable(format!(
            "only a pending, unpaid order can be paid; this one is {} and {}",
            order.status.as_str(),
            order.payment_status.as_str()
        )));
    }
    Ok(())
}

fn refund_request(payment: &Payment) -> Result<RefundPayment, PaymentError> {
    let currency = Currency::parse(&payment.currency)
        .map_err(|e| StoreError::Corrupt(format!("payment {} currency: {e}", payment.id)))?;
    Ok(RefundPayment {
        reference: payment.refund_reference().to_owned(),
        amount: Money::new(payment.amount_minor, currency),
        idempotency_key: idempotency_key_for(payment.id, "refund"),
    })
}

/// The order view next to a payment, for the verify and capture answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettlementView {
    pub payment: PaymentView,
    pub order: OrderView,
}

impl SettlementView {
    pub fn new(settlement: &Settlement) -> Self {
        Self {
            payment: PaymentView::new(&settlement.payment),
            order: OrderView::new(&settlement.order),
        }
    }
}
