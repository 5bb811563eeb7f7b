//! `POST /api/checkout/`: the caller's cart becomes an order. Honours an
//! `Idempotency-Key` header: the same key and body return the same order;
//! the same key with another body is 422.

use super::error::{ApiError, ErrorBody};
use super::extract::{idempotency_key, json_body, MaybeUser};
use super::AppState;
use crate::services::checkout::{AddressInput, CheckoutOutcome};
use crate::services::orders::OrderView;
use crate::services::ShopError;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/checkout").route(web::post().to(checkout)));
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// Where to ship; omitted fields come from your profile.
    pub shipping_address: Option<AddressBody>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
    pub name: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub phone: Option<String>,
}

#[utoipa::path(post, path = "/api/checkout/", tag = "orders",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Retry-safe key: the same key and body return the same order")),
    request_body(content = CheckoutRequest, description = "Optional; an empty body ships to your profile address"),
    responses(
        (status = 201, description = "Order placed (or replayed for a repeated Idempotency-Key)", body = OrderView),
        (status = 400, description = "Empty cart or missing address fields", body = ErrorBody),
        (status = 401, description = "Log in to check out (the cart is kept)", body = ErrorBody),
        (status = 409, description = "Not enough stock: each short product and what is available", body = ErrorBody),
        (status = 422, description = "Idempotency-Key reused with another body", body = ErrorBody),
    ))]
pub async fn checkout(
    state: web::Data<AppState>,
    caller: MaybeUser,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let Some(identity) = caller.0 else {
        return Err(ShopError::LoginRequired("log in to check out; your cart is kept").into());
    };
    let key = idempotency_key(&req)?;
    let request: CheckoutRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CheckoutRequest::default()
    } else {
        json_body(&body)?
    };
    let address = request.shipping_address.map(|a| AddressInput {
        name: a.name,
        address: a.address,
        city: a.city,
        postal_code: a.postal_code,
        country: a.country,
        phone: a.phone,
    });
    let idempotency = key.map(|k| (k, Sha256::digest(&body).into()));
    let outcome = state.shop.checkout(&identity, address, idempotency).await?;
    Ok(match outcome {
        CheckoutOutcome::Placed(order) => {
            // The confirmation is in the outbox and flushed: send it now.
            state.mailer.wake();
            HttpResponse::Created().json(OrderView::new(&order))
        }
        CheckoutOutcome::Replayed(order) => HttpResponse::Created()
            .insert_header(("Idempotent-Replayed", "true"))
            .json(OrderView::new(&order)),
    })
}
