//! Stripe over its REST API: PaymentIntents (form-encoded, amounts in minor
//! units, lower-case currency), refunds, and `Stripe-Signature` webhooks.
//!
//! Invariant kept here: a Stripe payment is reported as succeeded only from
//! a webhook whose HMAC over `"{t}.{raw body}"` matches the endpoint secret
//! and whose timestamp is within the tolerance; the client-side confirmation
//! is never trusted.

use super::http::{self, Answer};
use super::signature::verify_stripe_signature;
use super::{
    header, int, text, Clock, CreatePayment, Created, EventKind, NextAction, ProviderError,
    ProviderName, RefundPayment, Refunded, WebhookEvent, SIGNATURE_TOLERANCE_SECS,
};
use crate::config::StripeSettings;
use actix_web::http::header::HeaderMap;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

pub const NAME: ProviderName = "stripe";

pub struct StripeClient {
    http: reqwest::Client,
    secret_key: String,
    webhook_secret: String,
    api_base: String,
    clock: Clock,
    tolerance_secs: i64,
}

#[derive(Deserialize)]
struct PaymentIntent {
    id: String,
    client_secret: Option<String>,
}

#[derive(Deserialize)]
struct Refund {
    id: String,
    status: Option<String>,
    failure_reason: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: Option<String>,
    code: Option<String>,
    decline_code: Option<String>,
}

impl StripeClient {
    pub fn new(
        settings: &StripeSettings,
        timeout: Duration,
        clock: Clock,
    ) -> Result<Self, ProviderError> {
        Ok(Self {
            http: http::client(NAME, timeout)?,
            secret_key: settings.secret_key.clone(),
            webhook_secret: settings.webhook_secret.clone(),
            api_base: settings.api_base.clone(),
            clock,
            tolerance_secs: SIGNATURE_TOLERANCE_SECS,
        })
    }

    /// Changes how old a signed webhook may be.
    pub fn with_tolerance(mut self, tolerance_secs: i64) -> Self {
        self.tolerance_secs = tolerance_secs;
        self
    }

    fn post(
        &self,
        path: &str,
        idempotency_key: &str,
        form: &[(&str, String)],
    ) -> reqwest::RequestBuilder {
        // Built with serde_urlencoded directly so the exact bytes are known
        // (brackets in keys such as metadata[order_id] are percent-encoded as Stripe expects).
        let body = serde_urlencoded::to_string(form).unwrap_or_default();
        self.http
            .post(http::url(&self.api_base, path))
            .bearer_auth(&self.secret_key)
            .header("Idempotency-Key", idempotency_key)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
    }

    /// Creates a PaymentIntent for the order's total; the client confirms it with Stripe.js.
    pub async fn create(&self, request: &CreatePayment) -> Result<Created, ProviderError> {
        let form = [
            ("amount", request.amount.minor.to_string()),
            (
                "currency",
                request.amount.currency.code().to_ascii_lowercase(),
            ),
            // Cards only: accepted by every Stripe API version (and by test doubles).
            ("payment_method_types[]", "card".to_owned()),
            ("metadata[order_id]", request.order_id.to_string()),
            ("metadata[payment_id]", request.payment_id.to_string()),
        ];
        let answer = http::send(
            NAME,
            self.post("/v1/payment_intents", &request.idempotency_key, &form),
        )
        .await?;
        let intent: PaymentIntent = ok_json(answer)?;
        let client_secret = intent
            .client_secret
            .ok_or_else(|| ProviderError::protocol(NAME, "PaymentIntent without client_secret"))?;
        Ok(Created {
            transaction_id: intent.id,
            next_action: NextAction::StripeConfirm { client_secret },
        })
    }

    /// The client secret of an existing PaymentIntent.
    pub async fn resume(&self, transaction_id: &str) -> Result<NextAction, ProviderError> {
        let request = self
            .http
            .get(http::url(
                &self.api_base,
                &format!("/v1/payment_intents/{}", http::segment(transaction_id)),
            ))
            .bearer_auth(&self.secret_key);
        let intent: PaymentIntent = ok_json(http::send(NAME, request).await?)?;
        let client_secret = intent
            .client_secret
            .ok_or_else(|| ProviderError::protocol(NAME, "PaymentIntent without client_secret"))?;
        Ok(NextAction::StripeConfirm { client_secret })
    }

    /// Refunds `amount` of a PaymentIntent (`reference` is its id).
    pub async fn refund(&self, request: &RefundPayment) -> Result<Refunded, ProviderError> {
        let form = [
            ("payment_intent", request.reference.clone()),
            ("amount", request.amount.minor.to_string()),
        ];
        let answer = http::send(
            NAME,
            self.post("/v1/refunds", &request.idempotency_key, &form),
        )
        .await?;
        let refund: Refund = ok_json(answer)?;
        match refund.status.as_deref() {
            Some("failed") | Some("canceled") => Err(ProviderError::Refused {
                provider: NAME,
                reason: refund
                    .failure_reason
                    .unwrap_or_else(|| "refund failed".into()),
            }),
            Some("succeeded") => Ok(Refunded {
                refund_id: refund.id,
                pending: false,
            }),
            _ => Ok(Refunded {
                refund_id: refund.id,
                pending: true,
            }),
        }
    }

    /// Verifies `Stripe-Signature` and normalises the event.
    pub fn verify_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookEvent, ProviderError> {
        let signature = header(headers, "stripe-signature").ok_or(ProviderError::BadSignature)?;
        verify_stripe_signature(
            &self.webhook_secret,
            signature,
            body,
            (self.clock)(),
            self.tolerance_secs,
        )?;
        parse_event(body)
    }
}

/// A 2xx answer as `T`; otherwise the error Stripe described.
fn ok_json<T: serde::de::DeserializeOwned>(answer: Answer) -> Result<T, ProviderError> {
    if answer.status.is_success() {
        return answer.json(NAME);
    }
    let reason = serde_json::from_slice::<ErrorBody>(&answer.body)
        .ok()
        .map(|e| {
            let code = e.error.decline_code.or(e.error.code);
            match (e.error.message, code) {
                (Some(message), Some(code)) => format!("{message} ({code})"),
                (Some(message), None) => message,
                (None, Some(code)) => code,
                (None, None) => answer.status.to_string(),
            }
        })
        .unwrap_or_else(|| answer.status.to_string());
    Err(http::status_error(NAME, answer.status, reason))
}

/// Normalises a verified Stripe event body.
pub fn parse_event(body: &[u8]) -> Result<WebhookEvent, ProviderError> {
    let event: Value = serde_json::from_slice(body)
        .map_err(|e| ProviderError::bad_event(format!("not JSON: {e}")))?;
    let id = text(&event, "/id").ok_or_else(|| ProviderError::bad_event("no event id"))?;
    let event_type =
        text(&event, "/type").ok_or_else(|| ProviderError::bad_event("no event type"))?;
    let object = event.pointer("/data/object").unwrap_or(&Value::Null);
    let currency = text(object, "/currency").map(|c| c.to_ascii_uppercase());
    let (kind, transaction_id, amount) = match event_type.as_str() {
        "payment_intent.succeeded" => (
            EventKind::Succeeded,
            text(object, "/id"),
            // amount_received is what was actually collected.
            int(object, "/amount_received").or_else(|| int(object, "/amount")),
        ),
        "payment_intent.payment_failed" => (
            EventKind::Failed,
            text(object, "/id"),
            int(object, "/amount"),
        ),
        "charge.refunded" => (
            EventKind::Refunded,
            text(object, "/payment_intent"),
            int(object, "/amount_refunded"),
        ),
        _ => (EventKind::Other, None, None),
    };
    if kind != EventKind::Other && transaction_id.is_none() {
        return Err(ProviderError::bad_event(format!(
            "{event_type} without a PaymentIntent id"
        )));
    }
    Ok(WebhookEvent {
        provider: NAME,
        provider_event_id: id,
        event_type,
        kind,
        transaction_id,
        settlement_id: None,
        amount,
        currency,
        failure_reason: text(object, "/last_payment_error/message"),
    })
}
