//! Staff order management: `/api/admin/orders/*` (list with filters, move
//! along the status machine) and `/api/admin/products/{id}/restock/`, which
//! adds stock through the product's InventoryActor.

use super::error::{ApiError, ErrorBody};
use super::extract::{Json, StaffUser};
use super::pagination::{Page, PageQuery, PageRequest};
use super::AppState;
use crate::domain::audit::Target;
use crate::domain::ledger::{StockCause, StockChange, REASON_MAX};
use crate::domain::order::OrderStatus;
use crate::domain::validation::bounded_text;
use crate::domain::{FieldErrors, OrderId, ProductId, UserId};
use crate::services::orders::{OrderFilter, OrderView};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/admin/orders").route(web::get().to(list_orders)))
        .service(web::resource("/api/admin/orders/{id}").route(web::patch().to(update_order)))
        .service(web::resource("/api/admin/products/{id}/restock").route(web::post().to(restock)));
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StaffOrderQuery {
    /// pending, paid, shipped, delivered or cancelled.
    #[param(pattern = "^(pending|paid|shipped|delivered|cancelled)$")]
    pub status: Option<String>,
    /// Orders of one user id.
    pub user: Option<u64>,
    /// Placed at or after: RFC 3339 or YYYY-MM-DD.
    #[param(schema_with = super::openapi::instant)]
    pub from: Option<String>,
    /// Placed before: RFC 3339 or YYYY-MM-DD.
    #[param(schema_with = super::openapi::instant)]
    pub to: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// shipped, delivered or cancelled (paid comes only from a verified payment).
    #[schema(pattern = "^(pending|paid|shipped|delivered|cancelled)$")]
    pub status: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Restock {
    /// Units received (1 to 1,000,000).
    #[schema(minimum = 1, maximum = 1_000_000)]
    #[serde(deserialize_with = "super::whole::i64")]
    pub quantity: i64,
    /// Optional note kept in the stock ledger (up to 500 characters).
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$"
    )]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StockView {
    pub product_id: u64,
    pub on_hand: i64,
    pub received: i64,
}

pub(crate) fn parse_instant(field: &str, text: &str, errors: &mut FieldErrors) -> Option<i64> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| t.unix_timestamp())
        .or_else(|_| {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            Date::parse(text, &format).map(|d| d.midnight().assume_utc().unix_timestamp())
        });
    errors.check(
        field,
        parsed.map_err(|_| "must be RFC 3339 or YYYY-MM-DD".to_string()),
    )
}

#[utoipa::path(get, path = "/api/admin/orders/", tag = "admin",
    security(("bearer" = [])),
    params(StaffOrderQuery, PageQuery),
    responses(
        (status = 200, description = "Orders, newest first", body = Page<OrderView>),
        (status = 400, description = "Bad filter", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
    ))]
pub async fn list_orders(
    state: web::Data<AppState>,
    _staff: StaffUser,
    req: HttpRequest,
    query: web::Query<StaffOrderQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::try_from(page.into_inner())?;
    let mut errors = FieldErrors::new();
    let status = query.status.as_deref().and_then(|s| {
        errors.check(
            "status",
            OrderStatus::parse(s).ok_or_else(|| "unknown status".to_string()),
        )
    });
    let filter = OrderFilter {
        status,
        user: query.user.map(UserId),
        from: query
            .from
            .as_deref()
            .and_then(|t| parse_instant("from", t, &mut errors)),
        to: query
            .to
            .as_deref()
            .and_then(|t| parse_instant("to", t, &mut errors)),
    };
    errors.into_result()?;
    let orders = state.shop.orders_for_staff(&filter)?;
    let count = orders.len();
    let results = orders
        .iter()
        .skip(page.offset())
        .take(page.size)
        .map(OrderView::new)
        .collect();
    Ok(HttpResponse::Ok().json(Page::new(&req, page, count, results)))
}

#[utoipa::path(patch, path = "/api/admin/orders/{id}/", tag = "admin",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Order id")),
    request_body = StatusChange,
    responses(
        (status = 200, description = "The updated order", body = OrderView),
        (status = 400, description = "Unknown status", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "Illegal transition", body = ErrorBody),
        (status = 502, description = "Cancelling a paid order refunds it; the provider refused", body = ErrorBody),
    ))]
pub async fn update_order(
    state: web::Data<AppState>,
    staff: StaffUser,
    path: web::Path<u64>,
    body: Json<StatusChange>,
) -> Result<HttpResponse, ApiError> {
    let status = OrderStatus::parse(&body.status).ok_or_else(|| {
        ApiError::Validation(FieldErrors::single(
            "status",
            "must be pending, paid, shipped, delivered or cancelled",
        ))
    })?;
    let order = state
        .shop
        .staff_change_status(&staff.0, OrderId(path.into_inner()), status)
        .await?;
    state
        .shop
        .audit(
            &staff.0,
            "order.status",
            Target::Order(order.id.0),
            json!({"status": order.status.as_str()}),
        )
        .await?;
    Ok(HttpResponse::Ok().json(OrderView::new(&order)))
}

#[utoipa::path(post, path = "/api/admin/products/{id}/restock/", tag = "admin",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Product id")),
    request_body = Restock,
    responses(
        (status = 200, description = "New stock level", body = StockView),
        (status = 400, description = "Bad quantity", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
    ))]
pub async fn restock(
    state: web::Data<AppState>,
    staff: StaffUser,
    path: web::Path<u64>,
    body: Json<Restock>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = FieldErrors::new();
    if !(1..=1_000_000).contains(&body.quantity) {
        errors.add("quantity", "must be 1 to 1000000");
    }
    let reason = body
        .reason
        .as_deref()
        .and_then(|r| errors.check("reason", bounded_text(r, 1, REASON_MAX)));
    errors.into_result()?;
    let product = ProductId(path.into_inner());
    let change = StockChange {
        cause: StockCause::Restock,
        by: Some(staff.0.user.id),
        reason: reason.clone(),
    };
    let level = state.shop.restock(product, body.quantity, change).await?;
    state
        .shop
        .audit(
            &staff.0,
            "stock.restock",
            Target::Product(product.0),
            json!({"quantity": body.quantity, "reason": reason, "on_hand": level.on_hand}),
        )
        .await?;
    Ok(HttpResponse::Ok().json(StockView {
        product_id: product.0,
        on_hand: level.on_hand,
        received: level.received,
    }))
}
