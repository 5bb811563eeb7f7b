//! `/healthz` for load balancers and `/metrics` for Prometheus.

use super::error::ApiError;
use super::AppState;
use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(healthz)))
        .service(web::resource("/metrics").route(web::get().to(metrics)));
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub users: usize,
}

#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "The server and its store answer", body = Health)))]
pub async fn healthz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // A read through sled proves the store is open, not just the socket.
    state.store.meta_flag("demo_seeded")?;
    Ok(HttpResponse::Ok().json(Health {
        status: "ok",
        users: state.store.user_count(),
    }))
}

#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let text = state.metrics.render(state.store.commit_stats());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text)
}
