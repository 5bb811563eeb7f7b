//! The one HTTP error shape (DESIGN.md invariant 8):
//! `{"error": {"code": "...", "message": "...", "fields": {"name": "..."}}}`.
//!
//! Every layer's error enum converts into `ApiError`, and `status()` is the
//! single table from error to HTTP status. Internal causes are logged with
//! their chain and never sent to the client.

use crate::actors::cart::CheckoutError;
use crate::auth::AuthError;
use crate::domain::cart::CartError;
use crate::domain::FieldErrors;
use crate::payments::ProviderError;
use crate::services::payments::PaymentError;
use crate::services::ShopError;
use crate::store::StoreError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: String,
        fields: FieldErrors,
    },
    #[error("some fields are invalid")]
    Validation(FieldErrors),
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("this method is not allowed on this path")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        fields: FieldErrors,
    },
    #[error("the request body is too large (limit {limit} bytes)")]
    PayloadTooLarge { limit: usize },
    #[error("send the body as application/json")]
    UnsupportedMediaType,
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// The disk is full: writes are refused until space returns; reads still work.
    #[error(
        "the shop's disk is full: changes are paused until space is freed, browsing still works"
    )]
    StorageFull,
    /// An upstream service (a payment provider) refused or answered badly.
    #[error("{message}")]
    BadGateway { code: &'static str, message: String },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_failed`, `not_found`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Per-field problems, when the error is about specific fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
            fields: FieldErrors::new(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict {
            code,
            message: message.into(),
            fields: FieldErrors::new(),
        }
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(format!("{what} not found"))
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } => code,
            ApiError::Validation(_) => "validation_failed",
            ApiError::Unauthorized { code, .. } => code,
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict { code, .. } => code,
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Unprocessable { code, .. } => code,
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::StorageFull => "storage_full",
            ApiError::BadGateway { code, .. } => code,
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// What the client is shown (the WebSocket sends the same object in its
    /// error frames); internal causes are logged here, never shown.
    pub fn detail(&self) -> ErrorDetail {
        match self {
            ApiError::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
            }
            ApiError::Unavailable(message) => tracing::warn!(%message, "service unavailable"),
            ApiError::StorageFull => tracing::warn!("write refused: the disk is full"),
            _ => {}
        }
        ErrorDetail {
            code: self.code().to_owned(),
            message: self.to_string(),
            fields: self.fields().map(|f| f.0.clone()),
        }
    }

    fn fields(&self) -> Option<&FieldErrors> {
        match self {
            ApiError::BadRequest { fields, .. }
            | ApiError::Validation(fields)
            | ApiError::Conflict { fields, .. } => Some(fields).filter(|f| !f.is_empty()),
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } | ApiError::Validation(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::StorageFull => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = ErrorBody {
            error: self.detail(),
        };
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::TooManyRequests { retry_after, .. } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            ApiError::Unauthorized { .. } => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::Unavailable(_) | ApiError::StorageFull => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            _ => {}
        }
        response.json(body)
    }
}

impl From<FieldErrors> for ApiError {
    fn from(fields: FieldErrors) -> Self {
        ApiError::Validation(fields)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(field) => ApiError::Conflict {
                code: "already_exists",
                message: format!("{field} is already taken"),
                fields: FieldErrors::single(field, "is already taken"),
            },
            StoreError::NotFound => ApiError::NotFound("not found".into()),
            StoreError::Missing(field) => {
                ApiError::Validation(FieldErrors::single(field, format!("no such {field}")))
            }
            StoreError::InUse(what) => ApiError::conflict(
                "in_use",
                format!("this {what} still has products; move or delete them first"),
            ),
            StoreError::OutOfStock(message) => ApiError::conflict("insufficient_stock", message),
            StoreError::Contended => ApiError::conflict(
                "concurrent_update",
                "the record changed while this request ran; try again",
            ),
            e if e.is_out_of_space() => ApiError::StorageFull,
            e if e.is_unavailable() => {
                tracing::error!(error = %e, "storage unavailable");
                ApiError::Unavailable("storage is temporarily unavailable; try again".into())
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Invalid(fields) => ApiError::Validation(fields),
            AuthError::BadCredentials => ApiError::Unauthorized {
                code: "invalid_credentials",
                message: e.to_string(),
            },
            AuthError::Inactive => ApiError::Unauthorized {
                code: "account_disabled",
                message: e.to_string(),
            },
            AuthError::Throttled { retry_after } => ApiError::TooManyRequests {
                message: "too many failed login attempts; try again later".into(),
                retry_after: retry_after.as_secs().max(1),
            },
            AuthError::BadToken(reason) => ApiError::Unauthorized {
                code: "invalid_token",
                message: reason.into(),
            },
            AuthError::Missing => ApiError::Unauthorized {
                code: "not_authenticated",
                message: "log in first: send 'Authorization: Bearer <access token>'".into(),
            },
            AuthError::Taken(field) => StoreError::Duplicate(field).into(),
            AuthError::Hashing => ApiError::Internal(anyhow::anyhow!("password hashing failed")),
            AuthError::Busy => ApiError::Unavailable(
                "the server is busy checking passwords; try again in a few seconds".into(),
            ),
            AuthError::Store(inner) => inner.into(),
        }
    }
}

impl From<ShopError> for ApiError {
    fn from(e: ShopError) -> Self {
        match e {
            ShopError::Invalid(fields) => ApiError::Validation(fields),
            ShopError::NotFound(what) => ApiError::not_found(what),
            ShopError::Cart(rule) => match rule {
                CartError::NotEnoughStock { .. } => {
                    ApiError::conflict("insufficient_stock", rule.to_string())
                }
                CartError::NotInCart => ApiError::NotFound(rule.to_string()),
                CartError::ProductUnavailable => ApiError::not_found("product"),
                CartError::QuantityTooSmall | CartError::QuantityTooLarge => ApiError::BadRequest {
                    code: "invalid_quantity",
                    message: rule.to_string(),
                    fields: FieldErrors::single("quantity", rule.to_string()),
                },
                CartError::TooManyLines => ApiError::bad_request("cart_full", rule.to_string()),
            },
            ShopError::Checkout(failure) => match failure {
                CheckoutError::EmptyCart => {
                    ApiError::bad_request("empty_cart", "the cart is empty")
                }
                CheckoutError::Unavailable(products) => {
                    let mut fields = FieldErrors::new();
                    for (id, name) in &products {
                        fields.add(&id.to_string(), format!("{name} is no longer for sale"));
                    }
                    ApiError::Conflict {
                        code: "products_unavailable",
                        message: "some products in the cart are no longer for sale; remove them and try again".into(),
                        fields,
                    }
                }
                CheckoutError::Short(lines) => {
                    let mut fields = FieldErrors::new();
                    let mut parts = Vec::new();
                    for line in &lines {
                        let text =
                            format!("asked for {}, {} available", line.requested, line.available);
                        parts.push(format!("{} ({text})", line.name));
                        fields.add(&line.product_id.to_string(), text);
                    }
                    ApiError::Conflict {
                        code: "insufficient_stock",
                        message: format!("not enough stock: {}", parts.join("; ")),
                        fields,
                    }
                }
                CheckoutError::Replayed { .. } => ApiError::Unprocessable {
                    code: "idempotency_key_reused",
                    message: "this Idempotency-Key was already used with a different request"
                        .into(),
                },
                CheckoutError::WorkerUnavailable => {
                    ApiError::Unavailable("the shop is busy restarting a worker; try again".into())
                }
                CheckoutError::Store(store) => store.into(),
            },
            ShopError::Transition(rule) => {
                ApiError::conflict("invalid_transition", rule.to_string())
            }
            ShopError::Refused(message) => ApiError::conflict("refused", message),
            ShopError::Forbidden(message) => ApiError::Forbidden(message.into()),
            ShopError::Conflict { code, message } => ApiError::conflict(code, message),
            ShopError::LoginRequired(message) => ApiError::Unauthorized {
                code: "login_required",
                message: message.into(),
            },
            ShopError::Unavailable => {
                ApiError::Unavailable("a worker is restarting; try again".into())
            }
            ShopError::Store(store) => store.into(),
        }
    }
}
impl From<ProviderError> for ApiError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::Refused { .. } => ApiError::BadGateway {
                code: "payment_refused",
                message: e.to_string(),
            },
            ProviderError::BadSignature => {
                ApiError::bad_request("bad_signature", "the signature could not be verified")
            }
            ProviderError::BadEvent(_) => ApiError::bad_request("bad_webhook", e.to_string()),
            ProviderError::NotEnabled(_) => ApiError::BadRequest {
                code: "provider_not_enabled",
                message: e.to_string(),
                fields: FieldErrors::single("provider", "is not an enabled payment provider"),
            },
            ProviderError::Unsupported { .. } => {
                ApiError::bad_request("unsupported_operation", e.to_string())
            }
            ProviderError::Pending { .. } => ApiError::conflict("payment_pending", e.to_string()),
            ProviderError::Unavailable { .. } | ProviderError::Timeout { .. } => {
                tracing::warn!(error = %e, "payment provider unavailable");
                ApiError::Unavailable(e.to_string())
            }
            ProviderError::Misconfigured { provider, .. } => {
                // The detail names our configuration; it is logged, not shown.
                tracing::error!(error = %e, "payment provider misconfigured");
                ApiError::Unavailable(format!("payments with {provider} are unavailable"))
            }
            ProviderError::Protocol { provider, .. } => {
                tracing::error!(error = %e, "payment provider answered unexpectedly");
                ApiError::BadGateway {
                    code: "provider_error",
                    message: format!("{provider} answered unexpectedly; try again"),
                }
            }
        }
    }
}

impl From<PaymentError> for ApiError {
    fn from(e: PaymentError) -> Self {
        match e {
            PaymentError::NotFound(what) => ApiError::not_found(what),
            PaymentError::NotPayable(message) => ApiError::conflict("order_not_payable", message),
            PaymentError::KeyReused => ApiError::Unprocessable {
                code: "idempotency_key_reused",
                message: e.to_string(),
            },
            PaymentError::UnknownPayment => ApiError::bad_request("unknown_payment", e.to_string()),
            PaymentError::AmountMismatch(_) => {
                tracing::error!(error = %e, "verified payment for the wrong amount; not paid");
                ApiError::bad_request("amount_mismatch", e.to_string())
            }
            PaymentError::UnhandledEvent(_) => {
                ApiError::bad_request("unhandled_event", e.to_string())
            }
            PaymentError::NotRefundable(message) => ApiError::conflict("not_refundable", message),
            PaymentError::Provider(inner) => inner.into(),
            PaymentError::Shop(inner) => inner.into(),
        }
    }
}

#[cfg(test)]
mod provider_error_tests {
    use super::*;

    #[test]
    fn provider_errors_map_to_the_documented_statuses() {
        let cases = [
            (
                ProviderError::Refused {
                    provider: "stripe",
                    reason: "Your card was declined.".into(),
                },
                StatusCode::BAD_GATEWAY,
                "payment_refused",
            ),
            (
                ProviderError::BadSignature,
                StatusCode::BAD_REQUEST,
                "bad_signature",
            ),
            (
                ProviderError::NotEnabled("bitcoin".into()),
                StatusCode::BAD_REQUEST,
                "provider_not_enabled",
            ),
            (
                ProviderError::Timeout { provider: "paypal" },
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
            ),
            (
                ProviderError::Misconfigured {
                    provider: "paypal",
                    detail: "secret key sk_live_x rejected".into(),
                },
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
            ),
        ];
        for (error, status, code) in cases {
            let api: ApiError = error.into();
            assert_eq!(api.status_code(), status, "{api}");
            assert_eq!(api.code(), code);
            assert!(
                !api.to_string().contains("sk_live"),
                "no secrets in messages"
            );
        }
        let refused: ApiError = ProviderError::Refused {
            provider: "stripe",
            reason: "Your card was declined.".into(),
        }
        .into();
        assert!(refused.to_string().contains("Your card was declined."));
    }
}
