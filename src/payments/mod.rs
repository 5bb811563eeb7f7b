//! Payment providers: Stripe, PayPal, Razorpay and the built-in `test`
//! provider, behind one enum with the same operations.
//!
//! The shop never sees card data: it creates a payment at the provider,
//! hands the client what it needs to pay there (`NextAction`), and learns
//! the outcome only from an answer it has verified — a signed webhook, a
//! PayPal capture answer, or a Razorpay payment signature (DESIGN.md
//! invariant 7). Every create, capture and refund carries an idempotency
//! key derived from our payment id, so a retried request cannot charge or
//! refund twice at providers that honour one.

mod error;
mod http;
pub mod paypal;
pub mod razorpay;
pub mod signature;
pub mod stripe;
pub mod test_provider;

pub use error::{ProviderError, ProviderName};

use crate::config::PaymentSettings;
use crate::domain::money::{Currency, Money};
use crate::domain::payment::{Payment, PaymentStatus};
use crate::domain::{OrderId, PaymentId};
use crate::store::payments::Outcome;
use actix_web::http::header::HeaderMap;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use utoipa::ToSchema;

/// Seconds since the Unix epoch; injectable so signature-age checks are tested without sleeping.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// How old a signed webhook or callback may be (Stripe's own default).
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

pub fn system_clock() -> Clock {
    Arc::new(crate::domain::time::now_unix)
}

/// What `create` needs. `idempotency_key` goes to the provider; derive it
/// from the payment id (`idempotency_key_for`) so a retry of the same
/// attempt reuses it.
#[derive(Debug, Clone)]
pub struct CreatePayment {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub amount: Money,
    pub idempotency_key: String,
}

/// The provider-side idempotency key of one attempt (or of its refund).
pub fn idempotency_key_for(payment_id: PaymentId, operation: &str) -> String {
    format!("storefront-{operation}-{payment_id}")
}

/// A payment created at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// Stripe PaymentIntent id, PayPal order id, Razorpay order id, or test transaction.
    pub transaction_id: String,
    pub next_action: NextAction,
}

/// What the client does next to pay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NextAction {
    /// Confirm with Stripe.js using this client secret.
    StripeConfirm { client_secret: String },
    /// Send the shopper to this page (PayPal approval, test pay page).
    Redirect { url: String },
    /// Open Razorpay Checkout with this order and public key id.
    RazorpayCheckout {
        order_id: String,
        key_id: String,
        /// Minor units, as Razorpay Checkout expects.
        amount: i64,
        currency: String,
    },
}

/// A completed capture (PayPal). Only returned when the capture status is COMPLETED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// The id refunds are made against; store it as the payment's settlement id.
    pub capture_id: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
}

/// A refund request. `reference` is `Payment::refund_reference()`.
#[derive(Debug, Clone)]
pub struct RefundPayment {
    pub reference: String,
    pub amount: Money,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refunded {
    pub refund_id: String,
    /// Accepted but not settled yet; the money still goes back.
    pub pending: bool,
}

/// What a verified webhook reports, the same for every provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Succeeded,
    Failed,
    Refunded,
    /// PayPal: the shopper approved the order; it still needs a capture.
    Approved,
    /// Verified but of no interest to the shop.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub provider: ProviderName,
    /// The dedupe key (store it with `store::payments::mark_event_seen`).
    pub provider_event_id: String,
    /// The provider's own event type, for logs.
    pub event_type: String,
    pub kind: EventKind,
    /// Our `Payment::transaction_id`, when the event names it.
    pub transaction_id: Option<String>,
    /// The capture / payment id, when the event names it (refund events may
    /// name only this one).
    pub settlement_id: Option<String>,
    /// Minor units.
    pub amount: Option<i64>,
    /// Upper case ISO 4217.
    pub currency: Option<String>,
    pub failure_reason: Option<String>,
}

impl WebhookEvent {
    /// The provider ids to look the payment up by, most specific first
    /// (`Store::payment_by_reference` / `store::payments::payment_id_by_reference`).
    pub fn references(&self) -> impl Iterator<Item = &str> {
        self.transaction_id
            .as_deref()
            .into_iter()
            .chain(self.settlement_id.as_deref())
    }

    /// The status change this event asks for, if any.
    pub fn outcome(&self) -> Option<Outcome> {
        let status = match self.kind {
            EventKind::Succeeded => PaymentStatus::Succeeded,
            EventKind::Failed => PaymentStatus::Failed,
            EventKind::Refunded => PaymentStatus::Refunded,
            EventKind::Approved | EventKind::Other => return None,
        };
        Some(Outcome {
            status,
            settlement_id: self.settlement_id.clone(),
        })
    }

    /// A success must be for exactly the payment's amount and currency;
    /// anything else is refused (and logged by the caller) rather than paid.
    pub fn check_amount(&self, payment: &Payment) -> Result<(), String> {
        if self.kind != EventKind::Succeeded {
            return Ok(());
        }
        match (self.amount, self.currency.as_deref()) {
            (Some(amount), Some(currency))
                if amount == payment.amount_minor
                    && currency.eq_ignore_ascii_case(&payment.currency) =>
            {
                Ok(())
            }
            (amount, currency) => Err(format!(
                "paid {} {} but the payment is for {} {}",
                amount.map_or("?".into(), |a| a.to_string()),
                currency.unwrap_or("?"),
                payment.amount_minor,
                payment.currency
            )),
        }
    }
}

/// One configured provider.
pub enum Provider {
    Stripe(stripe::StripeClient),
    PayPal(paypal::PayPalClient),
    Razorpay(razorpay::RazorpayClient),
    Test(test_provider::TestProvider),
}

impl Provider {
    pub fn name(&self) -> ProviderName {
        match self {
            Provider::Stripe(_) => stripe::NAME,
            Provider::PayPal(_) => paypal::NAME,
            Provider::Razorpay(_) => razorpay::NAME,
            Provider::Test(_) => test_provider::NAME,
        }
    }

    /// Creates the payment at the provider.
    pub async fn create(&self, request: &CreatePayment) -> Result<Created, ProviderError> {
        match self {
            Provider::Stripe(p) => p.create(request).await,
            Provider::PayPal(p) => p.create(request).await,
            Provider::Razorpay(p) => p.create(request).await,
            Provider::Test(p) => p.create(request),
        }
    }

    /// The next action again for an attempt already created (an
    /// Idempotency-Key retry), without creating anything new.
    pub async fn resume(&self, payment: &Payment) -> Result<NextAction, ProviderError> {
        match self {
            Provider::Stripe(p) => p.resume(&payment.transaction_id).await,
            Provider::PayPal(p) => p.resume(&payment.transaction_id).await,
            Provider::Razorpay(p) => p.resume(payment),
            Provider::Test(p) => Ok(p.next_action(payment.id)),
        }
    }

    /// Captures an approved payment (PayPal only). `Ok` only when the
    /// provider says COMPLETED.
    pub async fn capture(
        &self,
        transaction_id: &str,
        idempotency_key: &str,
    ) -> Result<Captured, ProviderError> {
        match self {
            Provider::PayPal(p) => p.capture(transaction_id, idempotency_key).await,
            other => Err(ProviderError::Unsupported {
                provider: other.name(),
                operation: "capture",
            }),
        }
    }

    /// Checks a client-side payment signature (Razorpay Checkout's answer).
    pub fn verify_payment_signature(
        &self,
        provider_order_id: &str,
        provider_payment_id: &str,
        signature: &str,
    ) -> Result<(), ProviderError> {
        match self {
            Provider::Razorpay(p) => {
                p.verify_payment_signature(provider_order_id, provider_payment_id, signature)
            }
            other => Err(ProviderError::Unsupported {
                provider: other.name(),
                operation: "payment signatures",
            }),
        }
    }

    pub async fn refund(&self, request: &RefundPayment) -> Result<Refunded, ProviderError> {
        match self {
            Provider::Stripe(p) => p.refund(request).await,
            Provider::PayPal(p) => p.refund(request).await,
            Provider::Razorpay(p) => p.refund(request).await,
            Provider::Test(p) => Ok(p.refund(request)),
        }
    }

    /// Verifies a webhook (or the test provider's callback) from its headers
    /// and raw body, and normalises it. Anything unsigned or badly signed is
    /// `BadSignature`; the body is parsed only after the signature holds.
    pub async fn verify_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookEvent, ProviderError> {
        match self {
            Provider::Stripe(p) => p.verify_webhook(headers, body),
            Provider::PayPal(p) => p.verify_webhook(headers, body).await,
            Provider::Razorpay(p) => p.verify_webhook(headers, body),
            Provider::Test(p) => p.verify_webhook(headers, body),
        }
    }
}

/// The enabled providers, built once at start-up from the settings.
#[derive(Clone)]
pub struct Providers {
    providers: Arc<Vec<Provider>>,
}

impl Providers {
    /// Builds a client for every provider with credentials. The test
    /// provider's callback secret is created in `data_dir` on first use.
    pub fn from_settings(settings: &PaymentSettings, data_dir: &Path) -> anyhow::Result<Self> {
        Self::with_clock(settings, data_dir, system_clock())
    }

    /// As `from_settings`, with the clock used for signature ages.
    pub fn with_clock(
        settings: &PaymentSettings,
        data_dir: &Path,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let mut providers = Vec::new();
        if let Some(s) = &settings.stripe {
            providers.push(Provider::Stripe(stripe::StripeClient::new(
                s,
                settings.timeout,
                clock.clone(),
            )?));
        }
        if let Some(s) = &settings.paypal {
            providers.push(Provider::PayPal(paypal::PayPalClient::new(
                s,
                settings.timeout,
            )?));
        }
        if let Some(s) = &settings.razorpay {
            providers.push(Provider::Razorpay(razorpay::RazorpayClient::new(
                s,
                settings.timeout,
            )?));
        }
        if settings.test_provider {
            let secret = test_provider::load_or_create_secret(data_dir)?;
            providers.push(Provider::Test(test_provider::TestProvider::new(
                secret, clock,
            )));
        }
        Ok(Self {
            providers: Arc::new(providers),
        })
    }

    /// The provider called `name`; `NotEnabled` (a 400) when it is unknown
    /// or not configured.
    pub fn get(&self, name: &str) -> Result<&Provider, ProviderError> {
        self.providers
            .iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| ProviderError::NotEnabled(name.chars().take(40).collect()))
    }

    /// Names of the enabled providers, for `GET /api/payment/providers/`.
    pub fn enabled(&self) -> Vec<ProviderName> {
        self.providers.iter().map(Provider::name).collect()
    }

    /// The test provider, for the pay page and its callback.
    pub fn test_provider(&self) -> Option<&test_provider::TestProvider> {
        self.providers.iter().find_map(|p| match p {
            Provider::Test(t) => Some(t),
            _ => None,
        })
    }
}

/// Converts a provider's decimal string ("19.99") in `currency` to minor units.
pub(crate) fn decimal_to_minor(value: &str, currency: &str) -> Option<i64> {
    let currency = Currency::parse(currency).ok()?;
    Money::parse_decimal(value, currency).ok().map(|m| m.minor)
}

/// A header's value as text, if present and visible ASCII.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A string at a JSON pointer.
pub(crate) fn text(value: &serde_json::Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

/// An integer at a JSON pointer.
pub(crate) fn int(value: &serde_json::Value, pointer: &str) -> Option<i64> {
    value.pointer(pointer).and_then(serde_json::Value::as_i64)
}
