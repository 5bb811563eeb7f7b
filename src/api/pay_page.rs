//! `/pay/test/{id}?token=...`: the built-in test provider's pay page. GET
//! shows the amount with Pay and Decline; the POST is signed by the test
//! provider and settles through the same verified webhook path as a real
//! provider, then redirects back to the page, which shows the outcome.

use super::error::ApiError;
use super::AppState;
use crate::domain::PaymentId;
use crate::payments::test_provider::{render_pay_page, PayForm};
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/pay/test/{id}")
            .route(web::get().to(show))
            .route(web::post().to(choose)),
    );
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    pub token: String,
}

fn html(page: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        // The page carries its own token in links; keep it out of caches and referrers.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(page)
}

pub async fn show(
    state: web::Data<AppState>,
    path: web::Path<u64>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let payment = state
        .shop
        .test_payment(PaymentId(path.into_inner()), &query.token)?;
    Ok(html(render_pay_page(&payment, &query.token)))
}

pub async fn choose(
    state: web::Data<AppState>,
    path: web::Path<u64>,
    query: web::Query<PageQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let form: PayForm = serde_urlencoded::from_bytes(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_form",
            format!("send outcome=pay or outcome=decline ({e})"),
        )
    })?;
    let id = PaymentId(path.into_inner());
    state.shop.test_pay(id, &query.token, form.outcome).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            format!("/pay/test/{id}?token={}", query.token),
        ))
        .finish())
}
