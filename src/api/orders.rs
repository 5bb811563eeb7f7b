//! `/api/orders/*`: a shopper's own orders. Another user's order is 404,
//! never 403, so ids reveal nothing (invariant 6).

use super::error::{ApiError, ErrorBody};
use super::extract::AuthUser;
use super::pagination::{Page, PageQuery, PageRequest};
use super::AppState;
use crate::domain::order::OrderStatus;
use crate::domain::OrderId;
use crate::services::orders::OrderView;
use actix_web::{web, HttpRequest, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/orders").route(web::get().to(list_orders)))
        .service(web::resource("/api/orders/{id}").route(web::get().to(get_order)))
        .service(web::resource("/api/orders/{id}/cancel").route(web::post().to(cancel_order)));
}

#[utoipa::path(get, path = "/api/orders/", tag = "orders",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "Your orders, newest first", body = Page<OrderView>),
        (status = 401, description = "Not logged in", body = ErrorBody),
    ))]
pub async fn list_orders(
    state: web::Data<AppState>,
    caller: AuthUser,
    req: HttpRequest,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::try_from(page.into_inner())?;
    let (count, orders) = state
        .shop
        .orders_of(caller.0.user.id, page.offset(), page.size)?;
    let results = orders.iter().map(OrderView::new).collect();
    Ok(HttpResponse::Ok().json(Page::new(&req, page, count, results)))
}

#[utoipa::path(get, path = "/api/orders/{id}/", tag = "orders",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 404, description = "No such order of yours", body = ErrorBody),
    ))]
pub async fn get_order(
    state: web::Data<AppState>,
    caller: AuthUser,
    path: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let order = state
        .shop
        .visible_order(&caller.0, OrderId(path.into_inner()))?;
    Ok(HttpResponse::Ok().json(OrderView::new(&order)))
}

#[utoipa::path(post, path = "/api/orders/{id}/cancel/", tag = "orders",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Order id")),
    responses(
        (status = 200, description = "Cancelled; its units are back in stock", body = OrderView),
        (status = 404, description = "No such order of yours", body = ErrorBody),
        (status = 409, description = "Not cancellable in its state (owners: pending only)", body = ErrorBody),
    ))]
pub async fn cancel_order(
    state: web::Data<AppState>,
    caller: AuthUser,
    path: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let order = state
        .shop
        .change_order_status(
            &caller.0,
            OrderId(path.into_inner()),
            OrderStatus::Cancelled,
        )
        .await?;
    Ok(HttpResponse::Ok().json(OrderView::new(&order)))
}
