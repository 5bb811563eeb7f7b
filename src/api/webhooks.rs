//! `POST /api/payment/webhooks/{provider}/`: provider callbacks. The raw
//! body and headers go to the provider's verifier untouched (signatures
//! cover the exact bytes); an unsigned, badly signed, unknown or unhandled
//! event is a 400 and changes nothing. A 2xx is sent only after the event's
//! dedupe marker and its effect are flushed, so a provider that retries
//! after a crash finds either nothing or everything.

use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::services::payments::WebhookResult;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/payment/webhooks/{provider}").route(web::post().to(receive)));
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAnswer {
    pub received: bool,
    /// applied, unchanged (e.g. a late failure after success) or duplicate.
    pub result: WebhookResult,
}

#[utoipa::path(post, path = "/api/payment/webhooks/{provider}/", tag = "payments",
    params(("provider" = String, Path, pattern = "^(stripe|paypal|razorpay|test)$", description = "stripe, paypal, razorpay (or test)")),
    request_body(content = String, description = "The provider's event, exactly as sent"),
    responses(
        (status = 200, description = "Processed (or a duplicate of a processed event)", body = WebhookAnswer),
        (status = 400, description = "Unsigned, badly signed, unknown or unhandled event; nothing changed", body = ErrorBody),
    ))]
pub async fn receive(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let result = state
        .shop
        .handle_webhook(&path.into_inner(), req.headers(), &body)
        .await?;
    Ok(HttpResponse::Ok().json(WebhookAnswer {
        received: true,
        result,
    }))
}
