//! PayPal Orders v2: an OAuth2 client-credentials token (cached until shortly
//! before it expires), orders created with intent CAPTURE and a decimal
//! amount, captures and refunds with `PayPal-Request-Id`, and webhooks
//! verified by PayPal's own verify-webhook-signature API.
//!
//! Invariant kept here: a capture counts only when PayPal reports its status
//! COMPLETED, and a webhook only when PayPal answers `SUCCESS` for it.

use super::http::{self, Answer};
use super::{
    decimal_to_minor, header, text, Captured, CreatePayment, Created, EventKind, NextAction,
    ProviderError, ProviderName, RefundPayment, Refunded, WebhookEvent,
};
use crate::config::PayPalSettings;
use crate::domain::money::format_minor;
use actix_web::http::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

pub const NAME: ProviderName = "paypal";

/// A token is renewed this long before PayPal says it expires, so a request
/// never starts with a token that dies in flight.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

pub struct PayPalClient {
    http: reqwest::Client,
    client_id: String,
    client_secret: String,
    webhook_id: Option<String>,
    api_base: String,
    /// Held across a token fetch so concurrent requests share one fetch.
    token: Mutex<Option<CachedToken>>,
}

struct CachedToken {
    value: String,
    renew_at: Instant,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct Link {
    href: String,
    rel: String,
}

#[derive(Deserialize)]
struct Order {
    id: String,
    #[serde(default)]
    links: Vec<Link>,
}

#[derive(Deserialize)]
struct CaptureOrder {
    #[serde(default)]
    purchase_units: Vec<CaptureUnit>,
}

#[derive(Deserialize)]
struct CaptureUnit {
    payments: Option<CapturePayments>,
}

#[derive(Deserialize)]
struct CapturePayments {
    #[serde(default)]
    captures: Vec<Capture>,
}

#[derive(Deserialize)]
struct Capture {
    id: String,
    status: String,
    amount: Option<Amount>,
    status_details: Option<StatusDetails>,
}

#[derive(Deserialize)]
struct Amount {
    currency_code: String,
    value: String,
}

#[derive(Deserialize)]
struct StatusDetails {
    reason: Option<String>,
}

#[derive(Deserialize)]
struct RefundAnswer {
    id: String,
    status: String,
    status_details: Option<StatusDetails>,
}

#[derive(Deserialize)]
struct ErrorBody {
    name: Option<String>,
    message: Option<String>,
    #[serde(default)]
    details: Vec<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    issue: Option<String>,
    description: Option<String>,
}

#[derive(Serialize)]
struct VerifyRequest<'a> {
    auth_algo: &'a str,
    cert_url: &'a str,
    transmission_id: &'a str,
    transmission_sig: &'a str,
    transmission_time: &'a str,
    webhook_id: &'a str,
    /// The raw body as received: re-serialising it could change the bytes
    /// PayPal checks.
    webhook_event: &'a RawValue,
}

#[derive(Deserialize)]
struct VerifyAnswer {
    verification_status: String,
}

impl PayPalClient {
    pub fn new(settings: &PayPalSettings, timeout: Duration) -> Result<Self, ProviderError> {
        Ok(Self {
            http: http::client(NAME, timeout)?,
            client_id: settings.client_id.clone(),
            client_secret: settings.client_secret.clone(),
            webhook_id: settings.webhook_id.clone(),
            api_base: settings.api_base.clone(),
            token: Mutex::new(None),
        })
    }

    /// A valid access token, fetched only when the cached one is near expiry.
    async fn token(&self) -> Result<String, ProviderError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref() {
            if Instant::now() < token.renew_at {
                return Ok(token.value.clone());
            }
        }
        let request = self
            .http
            .post(http::url(&self.api_base, "/v1/oauth2/token"))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[("grant_type", "client_credentials")]);
        let answer: TokenAnswer = ok_json(http::send(NAME, request).await?)?;
        let lifetime = Duration::from_secs(answer.expires_in);
        // Short-lived tokens (tests, odd configs) are used for half their life.
        let margin = TOKEN_MARGIN.min(lifetime / 2);
        *cached = Some(CachedToken {
            value: answer.access_token.clone(),
            renew_at: Instant::now() + lifetime - margin,
        });
        Ok(answer.access_token)
    }

    /// Sends an authenticated request; a 401 drops the cached token so the next call fetches a new one.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, ProviderError> {
        let token = self.token().await?;
        let answer = http::send(NAME, request.bearer_auth(token)).await?;
        if answer.status == reqwest::StatusCode::UNAUTHORIZED {
            *self.token.lock().await = None;
        }
        Ok(answer)
    }

    fn post_json(&self, path: &str, request_id: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(http::url(&self.api_base, path))
            .header("PayPal-Request-Id", request_id)
            .json(body)
    }

    /// Creates an order with intent CAPTURE; the shopper approves it at PayPal.
    pub async fn create(&self, request: &CreatePayment) -> Result<Created, ProviderError> {
        let body = json!({
            "intent": "CAPTURE",
            "purchase_units": [{
                "reference_id": request.payment_id.to_string(),
                "custom_id": request.order_id.to_string(),
                "amount": {
                    "currency_code": request.amount.currency.code(),
                    "value": request.amount.to_decimal(),
                },
            }],
        });
        let answer = self
            .send(self.post_json("/v2/checkout/orders", &request.idempotency_key, &body))
            .await?;
        let order: Order = ok_json(answer)?;
        let url = approval_link(&order)?;
        Ok(Created {
            transaction_id: order.id,
            next_action: NextAction::Redirect { url },
        })
    }

    /// The approval link of an existing order.
    pub async fn resume(&self, transaction_id: &str) -> Result<NextAction, ProviderError> {
        let path = format!("/v2/checkout/orders/{}", http::segment(transaction_id));
        let order: Order = ok_json(
            self.send(self.http.get(http::url(&self.api_base, &path)))
                .await?,
        )?;
        Ok(NextAction::Redirect {
            url: approval_link(&order)?,
        })
    }

    /// Captures an approved order. `Ok` only for a COMPLETED capture;
    /// PENDING is `Pending`, DECLINED or FAILED is `Refused`.
    pub async fn capture(
        &self,
        transaction_id: &str,
        idempotency_key: &str,
    ) -> Result<Captured, ProviderError> {
        let path = format!(
            "/v2/checkout/orders/{}/capture",
            http::segment(transaction_id)
        );
        let answer = self
            .send(self.post_json(&path, idempotency_key, &json!({})))
            .await?;
        let order: CaptureOrder = ok_json(answer)?;
        let capture = order
            .purchase_units
            .into_iter()
            .filter_map(|unit| unit.payments)
            .flat_map(|payments| payments.captures)
            .next()
            .ok_or_else(|| ProviderError::protocol(NAME, "capture answer without a capture"))?;
        let reason = || {
            capture
                .status_details
                .as_ref()
                .and_then(|d| d.reason.clone())
                .unwrap_or_else(|| capture.status.clone())
        };
        match capture.status.as_str() {
            "COMPLETED" => Ok(Captured {
                amount: capture
                    .amount
                    .as_ref()
                    .and_then(|a| decimal_to_minor(&a.value, &a.currency_code)),
                currency: capture
                    .amount
                    .as_ref()
                    .map(|a| a.currency_code.to_ascii_uppercase()),
                capture_id: capture.id,
            }),
            "PENDING" => Err(ProviderError::Pending {
                provider: NAME,
                reason: reason(),
            }),
            _ => Err(ProviderError::Refused {
                provider: NAME,
                reason: reason(),
            }),
        }
    }

    /// Refunds `amount` of a capture (`reference` is the capture id).
    pub async fn refund(&self, request: &RefundPayment) -> Result<Refunded, ProviderError> {
        let path = format!(
            "/v2/payments/captures/{}/refund",
            http::segment(&request.reference)
        );
        let body = json!({
            "amount": {
                "currency_code": request.amount.currency.code(),
                "value": format_minor(request.amount.minor, request.amount.currency),
            },
        });
        let answer = self
            .send(self.post_json(&path, &request.idempotency_key, &body))
            .await?;
        let refund: RefundAnswer = ok_json(answer)?;
        match refund.status.as_str() {
            "COMPLETED" => Ok(Refunded {
                refund_id: refund.id,
                pending: false,
            }),
            "PENDING" => Ok(Refunded {
                refund_id: refund.id,
                pending: true,
            }),
            _ => Err(ProviderError::Refused {
                provider: NAME,
                reason: refund
                    .status_details
                    .and_then(|d| d.reason)
                    .unwrap_or(refund.status),
            }),
        }
    }

    /// Asks PayPal whether it signed this webhook, then normalises it.
    pub async fn verify_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookEvent, ProviderError> {
        let Some(webhook_id) = self.webhook_id.as_deref() else {
            return Err(ProviderError::Misconfigured {
                provider: NAME,
                detail: "STOREFRONT_PAYPAL_WEBHOOK_ID is not set".into(),
            });
        };
        let get = |name| header(headers, name).ok_or(ProviderError::BadSignature);
        let text_body = std::str::from_utf8(body).map_err(|_| ProviderError::BadSignature)?;
        let raw: &RawValue =
            serde_json::from_str(text_body).map_err(|_| ProviderError::BadSignature)?;
        let verify = VerifyRequest {
            auth_algo: get("paypal-auth-algo")?,
            cert_url: get("paypal-cert-url")?,
            transmission_id: get("paypal-transmission-id")?,
            transmission_sig: get("paypal-transmission-sig")?,
            transmission_time: get("paypal-transmission-time")?,
            webhook_id,
            webhook_event: raw,
        };
        let request = self
            .http
            .post(http::url(
                &self.api_base,
                "/v1/notifications/verify-webhook-signature",
            ))
            .json(&verify);
        let answer: VerifyAnswer = ok_json(self.send(request).await?)?;
        if answer.verification_status != "SUCCESS" {
            return Err(ProviderError::BadSignature);
        }
        parse_event(body)
    }
}

fn approval_link(order: &Order) -> Result<String, ProviderError> {
    order
        .links
        .iter()
        .find(|l| l.rel == "approve" || l.rel == "payer-action")
        .map(|l| l.href.clone())
        .ok_or_else(|| ProviderError::protocol(NAME, "order without an approval link"))
}

/// A 2xx answer as `T`; otherwise the issue PayPal named.
fn ok_json<T: serde::de::DeserializeOwned>(answer: Answer) -> Result<T, ProviderError> {
    if answer.status.is_success() {
        return answer.json(NAME);
    }
    let reason = serde_json::from_slice::<ErrorBody>(&answer.body)
        .ok()
        .and_then(|e| {
            let detail = e.details.into_iter().next();
            match detail {
                Some(ErrorDetail {
                    issue: Some(issue),
                    description,
                }) => Some(match description {
                    Some(d) => format!("{issue}: {d}"),
                    None => issue,
                }),
                _ => e.message.or(e.name),
            }
        })
        .unwrap_or_else(|| answer.status.to_string());
    Err(http::status_error(NAME, answer.status, reason))
}

/// Normalises a verified PayPal webhook body.
pub fn parse_event(body: &[u8]) -> Result<WebhookEvent, ProviderError> {
    let event: Value = serde_json::from_slice(body)
        .map_err(|e| ProviderError::bad_event(format!("not JSON: {e}")))?;
    let id = text(&event, "/id").ok_or_else(|| ProviderError::bad_event("no event id"))?;
    let event_type =
        text(&event, "/event_type").ok_or_else(|| ProviderError::bad_event("no event type"))?;
    let resource = event.pointer("/resource").unwrap_or(&Value::Null);
    let amount = || {
        let value = text(resource, "/amount/value")?;
        let currency = text(resource, "/amount/currency_code")?;
        decimal_to_minor(&value, &currency)
    };
    let currency = text(resource, "/amount/currency_code").map(|c| c.to_ascii_uppercase());
    let order_of_capture = text(resource, "/supplementary_data/related_ids/order_id");
    let (kind, transaction_id, settlement_id) = match event_type.as_str() {
        "PAYMENT.CAPTURE.COMPLETED" => (
            EventKind::Succeeded,
            order_of_capture,
            text(resource, "/id"),
        ),
        "PAYMENT.CAPTURE.DENIED" | "PAYMENT.CAPTURE.DECLINED" => {
            (EventKind::Failed, order_of_capture, text(resource, "/id"))
        }
        // The resource is the refund; its "up" link names the capture.
        "PAYMENT.CAPTURE.REFUNDED" => (EventKind::Refunded, None, capture_of_refund(resource)),
        "CHECKOUT.ORDER.APPROVED" => (EventKind::Approved, text(resource, "/id"), None),
        _ => (EventKind::Other, None, None),
    };
    if kind != EventKind::Other && transaction_id.is_none() && settlement_id.is_none() {
        return Err(ProviderError::bad_event(format!(
            "{event_type} names no order or capture"
        )));
    }
    Ok(WebhookEvent {
        provider: NAME,
        provider_event_id: id,
        kind,
        transaction_id,
        settlement_id,
        amount: amount(),
        currency,
        failure_reason: text(resource, "/status_details/reason"),
        event_type,
    })
}

fn capture_of_refund(resource: &Value) -> Option<String> {
    resource
        .get("links")?
        .as_array()?
        .iter()
        .find(|l| l.get("rel").and_then(Value::as_str) == Some("up"))
        .and_then(|l| l.get("href").and_then(Value::as_str))
        .and_then(|href| href.trim_end_matches('/').rsplit('/').next())
        .map(str::to_owned)
}
