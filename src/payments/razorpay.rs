//! Razorpay: Orders API with Basic auth (amounts in subunits), the payment
//! signature Checkout returns, refunds, and `X-Razorpay-Signature` webhooks
//! deduplicated on `x-razorpay-event-id`.
//!
//! Invariant kept here: a Razorpay payment counts only when its signature
//! over the order id *we stored* and the payment id verifies, or when a
//! webhook's HMAC over the raw body verifies; both compared in constant time.
//! Razorpay's Orders and Refunds APIs take no idempotency header, so
//! retries are made safe by the shop's own Idempotency-Key reservation and
//! the `receipt` (our payment id) sent with each request.

use super::http::{self, Answer};
use super::signature::{verify_razorpay_payment_signature, verify_razorpay_webhook_signature};
use super::{
    header, int, text, CreatePayment, Created, EventKind, NextAction, ProviderError, ProviderName,
    RefundPayment, Refunded, WebhookEvent,
};
use crate::config::RazorpaySettings;
use crate::domain::payment::Payment;
use actix_web::http::header::HeaderMap;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

pub const NAME: ProviderName = "razorpay";

pub struct RazorpayClient {
    http: reqwest::Client,
    key_id: String,
    key_secret: String,
    webhook_secret: Option<String>,
    api_base: String,
}

#[derive(Deserialize)]
struct Order {
    id: String,
    amount: i64,
    currency: String,
}

#[derive(Deserialize)]
struct RefundAnswer {
    id: String,
    status: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: Option<String>,
    description: Option<String>,
}

impl RazorpayClient {
    pub fn new(settings: &RazorpaySettings, timeout: Duration) -> Result<Self, ProviderError> {
        Ok(Self {
            http: http::client(NAME, timeout)?,
            key_id: settings.key_id.clone(),
            key_secret: settings.key_secret.clone(),
            webhook_secret: settings.webhook_secret.clone(),
            api_base: settings.api_base.clone(),
        })
    }

    fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(http::url(&self.api_base, path))
            .basic_auth(&self.key_id, Some(&self.key_secret))
            .json(body)
    }

    /// Creates a Razorpay order; the shopper pays it in Razorpay Checkout.
    pub async fn create(&self, request: &CreatePayment) -> Result<Created, ProviderError> {
        let body = json!({
            "amount": request.amount.minor,
            "currency": request.amount.currency.code(),
            "receipt": format!("payment_{}", request.payment_id),
            "notes": {
                "order_id": request.order_id.to_string(),
                "payment_id": request.payment_id.to_string(),
            },
        });
        let order: Order = ok_json(http::send(NAME, self.post("/v1/orders", &body)).await?)?;
        Ok(Created {
            next_action: NextAction::RazorpayCheckout {
                order_id: order.id.clone(),
                key_id: self.key_id.clone(),
                amount: order.amount,
                currency: order.currency.to_ascii_uppercase(),
            },
            transaction_id: order.id,
        })
    }

    /// The Checkout parameters of an existing attempt (no request needed).
    pub fn resume(&self, payment: &Payment) -> Result<NextAction, ProviderError> {
        Ok(NextAction::RazorpayCheckout {
            order_id: payment.transaction_id.clone(),
            key_id: self.key_id.clone(),
            amount: payment.amount_minor,
            currency: payment.currency.clone(),
        })
    }

    /// Checks Checkout's `razorpay_signature`. `order_id` must be the one we
    /// stored for the payment, never the one the client sent.
    pub fn verify_payment_signature(
        &self,
        order_id: &str,
        payment_id: &str,
        signature: &str,
    ) -> Result<(), ProviderError> {
        if verify_razorpay_payment_signature(&self.key_secret, order_id, payment_id, signature) {
            Ok(())
        } else {
            Err(ProviderError::BadSignature)
        }
    }

    /// Refunds `amount` of a payment (`reference` is the `pay_...` id).
    pub async fn refund(&self, request: &RefundPayment) -> Result<Refunded, ProviderError> {
        let path = format!("/v1/payments/{}/refund", http::segment(&request.reference));
        let body = json!({
            "amount": request.amount.minor,
            "receipt": request.idempotency_key,
        });
        let refund: RefundAnswer = ok_json(http::send(NAME, self.post(&path, &body)).await?)?;
        match refund.status.as_deref() {
            Some("failed") => Err(ProviderError::Refused {
                provider: NAME,
                reason: "refund failed".into(),
            }),
            Some("processed") => Ok(Refunded {
                refund_id: refund.id,
                pending: false,
            }),
            _ => Ok(Refunded {
                refund_id: refund.id,
                pending: true,
            }),
        }
    }

    /// Verifies `X-Razorpay-Signature` and normalises the event; the event
    /// id comes from `x-razorpay-event-id` (the dedupe key).
    pub fn verify_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookEvent, ProviderError> {
        let Some(secret) = self.webhook_secret.as_deref() else {
            return Err(ProviderError::Misconfigured {
                provider: NAME,
                detail: "STOREFRONT_RAZORPAY_WEBHOOK_SECRET is not set".into(),
            });
        };
        let signature =
            header(headers, "x-razorpay-signature").ok_or(ProviderError::BadSignature)?;
        if !verify_razorpay_webhook_signature(secret, body, signature) {
            return Err(ProviderError::BadSignature);
        }
        let event_id = header(headers, "x-razorpay-event-id")
            .filter(|id| !id.is_empty())
            .ok_or_else(|| ProviderError::bad_event("no x-razorpay-event-id header"))?;
        parse_event(event_id, body)
    }
}

/// A 2xx answer as `T`; otherwise Razorpay's error description.
fn ok_json<T: serde::de::DeserializeOwned>(answer: Answer) -> Result<T, ProviderError> {
    if answer.status.is_success() {
        return answer.json(NAME);
    }
    let reason = serde_json::from_slice::<ErrorBody>(&answer.body)
        .ok()
        .and_then(|e| e.error.description.or(e.error.code))
        .unwrap_or_else(|| answer.status.to_string());
    Err(http::status_error(NAME, answer.status, reason))
}

/// Normalises a verified Razorpay webhook body.
pub fn parse_event(event_id: &str, body: &[u8]) -> Result<WebhookEvent, ProviderError> {
    let event: Value = serde_json::from_slice(body)
        .map_err(|e| ProviderError::bad_event(format!("not JSON: {e}")))?;
    let event_type =
        text(&event, "/event").ok_or_else(|| ProviderError::bad_event("no event type"))?;
    let payment = event
        .pointer("/payload/payment/entity")
        .unwrap_or(&Value::Null);
    let order = event
        .pointer("/payload/order/entity")
        .unwrap_or(&Value::Null);
    let refund = event
        .pointer("/payload/refund/entity")
        .unwrap_or(&Value::Null);
    let currency_of = |v: &Value| text(v, "/currency").map(|c| c.to_ascii_uppercase());
    let (kind, transaction_id, settlement_id, amount, currency) = match event_type.as_str() {
        "payment.captured" => (
            EventKind::Succeeded,
            text(payment, "/order_id"),
            text(payment, "/id"),
            int(payment, "/amount"),
            currency_of(payment),
        ),
        "order.paid" => (
            EventKind::Succeeded,
            text(order, "/id").or_else(|| text(payment, "/order_id")),
            text(payment, "/id"),
            int(order, "/amount_paid").or_else(|| int(payment, "/amount")),
            currency_of(order).or_else(|| currency_of(payment)),
        ),
        "payment.failed" => (
            EventKind::Failed,
            text(payment, "/order_id"),
            text(payment, "/id"),
            int(payment, "/amount"),
            currency_of(payment),
        ),
        "refund.processed" => (
            EventKind::Refunded,
            text(payment, "/order_id"),
            text(refund, "/payment_id"),
            int(refund, "/amount"),
            currency_of(refund),
        ),
        _ => (EventKind::Other, None, None, None, None),
    };
    if kind != EventKind::Other && transaction_id.is_none() && settlement_id.is_none() {
        return Err(ProviderError::bad_event(format!(
            "{event_type} names no order or payment"
        )));
    }
    Ok(WebhookEvent {
        provider: NAME,
        provider_event_id: event_id.to_owned(),
        event_type,
        kind,
        transaction_id,
        settlement_id,
        amount,
        currency,
        failure_reason: text(payment, "/error_description"),
    })
}
