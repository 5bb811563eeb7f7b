//! HTTP handlers, one module per resource. Each handler parses its input
//! into domain types, authorizes the caller, calls the service, actor or
//! store that owns the data, and renders a view; rules live elsewhere.

pub mod admin_analytics;
pub mod admin_audit;
pub mod admin_inventory;
pub mod admin_orders;
pub mod admin_users;
pub mod assets;
pub mod auth;
pub mod brands;
pub mod cart;
pub mod categories;
pub mod checkout;
pub mod error;
pub mod extract;
pub mod health;
pub mod import;
pub mod limits;
pub mod media;
pub mod metrics;
pub mod openapi;
pub mod orders;
pub mod pagination;
pub mod pay_page;
pub mod payments;
pub mod products;
pub mod profile;
pub mod reviews;
pub mod webhooks;
pub mod whole;
pub mod wishlist;

use crate::auth::Accounts;
use crate::catalog::Catalog;
use crate::config::Settings;
use crate::services::Shop;
use crate::store::Store;
use actix_web::dev::ServiceResponse;
use actix_web::http::header;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{web, HttpResponse, ResponseError};
use error::ApiError;

/// Shared by every worker; everything inside is cheap to reach concurrently.
pub struct AppState {
    pub settings: Settings,
    pub store: Store,
    pub accounts: Accounts,
    /// Products, categories, brands and their search index.
    pub catalog: Catalog,
    /// Carts, checkout, orders and stock: the actor-backed services.
    pub shop: Shop,
    pub metrics: metrics::Metrics,
    /// Wakes the mail sender after a confirmation was queued.
    pub mailer: crate::mail::Mailer,
    /// Live sockets open per user (the per-user cap).
    pub live_sockets: crate::ws::limits::UserSockets,
    /// Budgets of the expensive routes (see `limits`).
    pub limiter: limits::RateLimiter,
}

/// Registers every resource's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(auth::configure)
        .configure(admin_users::configure)
        .configure(admin_orders::configure)
        .configure(admin_inventory::configure)
        .configure(admin_analytics::configure)
        .configure(admin_audit::configure)
        .configure(wishlist::configure)
        .configure(reviews::configure)
        .configure(cart::configure)
        .configure(checkout::configure)
        .configure(orders::configure)
        .configure(payments::configure)
        .configure(webhooks::configure)
        .configure(pay_page::configure)
        .configure(profile::configure)
        .configure(import::configure)
        .configure(products::configure)
        .configure(categories::configure)
        .configure(brands::configure)
        .configure(media::configure)
        .configure(health::configure)
        .configure(openapi::configure)
        .configure(crate::ws::configure)
        // Last: the static client files sit under the remaining paths.
        .configure(assets::configure);
}

/// Unknown paths get the JSON 404.
pub async fn not_found() -> HttpResponse {
    ApiError::NotFound("no such path".into()).error_response()
}

/// Turns actix's own bare 404/405 responses into the JSON error shape;
/// responses that are already JSON pass through untouched.
pub fn json_error_pages<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new()
        .handler(actix_web::http::StatusCode::METHOD_NOT_ALLOWED, |res| {
            replace_unless_json(res, ApiError::MethodNotAllowed)
        })
        .handler(actix_web::http::StatusCode::NOT_FOUND, |res| {
            replace_unless_json(res, ApiError::NotFound("no such path".into()))
        })
}

fn replace_unless_json<B>(
    res: ServiceResponse<B>,
    error: ApiError,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    // actix lists the route's methods in `Allow` (RFC 9110 requires it on 405).
    let allow = res.headers().get(header::ALLOW).cloned();
    let (req, _) = res.into_parts();
    let mut response = error.error_response();
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    let res = ServiceResponse::new(req, response).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}
