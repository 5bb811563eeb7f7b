//! `/api/admin/inventory/*` (staff only): stock, reserved and sold units
//! per product with a low-stock flag, corrections with a reason, and each
//! product's stock ledger. Every change goes through the product's
//! InventoryActor; the ledger entry is written in the same transaction.

use super::error::{ApiError, ErrorBody};
use super::extract::{Json, StaffUser};
use super::pagination::{Page, PageQuery, PageRequest};
use super::AppState;
use crate::domain::audit::Target;
use crate::domain::catalog::STOCK_MAX;
use crate::domain::ledger::{LedgerEntry, StockCause, StockChange, REASON_MAX};
use crate::domain::time::rfc3339;
use crate::domain::validation::bounded_text;
use crate::domain::{FieldErrors, ProductId};
use crate::services::inventory::{InventoryFilter, InventoryRow};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/admin/inventory").route(web::get().to(list_inventory)))
        .service(
            web::resource("/api/admin/inventory/{product_id}").route(web::get().to(get_inventory)),
        )
        .service(
            web::resource("/api/admin/inventory/{product_id}/adjust")
                .route(web::post().to(adjust_stock)),
        )
        .service(
            web::resource("/api/admin/inventory/{product_id}/ledger").route(web::get().to(ledger)),
        );
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct InventoryQuery {
    /// Words of the product name, description, category or brand.
    pub search: Option<String>,
    /// `true`: only products with fewer units on hand than the threshold.
    pub low_stock: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Adjustment {
    /// Units to add (positive) or remove (negative) from stock on hand;
    /// units received move by the same amount.
    #[schema(minimum = -1_000_000_000, maximum = 1_000_000_000)]
    #[serde(deserialize_with = "super::whole::i64")]
    pub delta: i64,
    /// Why (1 to 500 characters), kept in the ledger: "3 broken in transit".
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$"
    )]
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryPage {
    pub count: usize,
    pub next: Option<String>,
    pub previous: Option<String>,
    /// Products with fewer units on hand are flagged `low_stock`.
    pub low_stock_threshold: i64,
    pub results: Vec<InventoryRow>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEntryView {
    /// The stock sequence number of the change (0: creation).
    pub seq: u64,
    pub at: String,
    /// created, checkout, order_cancelled, restock, adjustment or count.
    pub kind: String,
    pub delta_on_hand: i64,
    pub delta_received: i64,
    /// The level after the change.
    pub on_hand: i64,
    pub received: i64,
    pub order_id: Option<u64>,
    /// The staff member who made it.
    pub by: Option<u64>,
    pub reason: Option<String>,
}

impl LedgerEntryView {
    fn new(e: &LedgerEntry) -> Self {
        Self {
            seq: e.seq,
            at: rfc3339(e.at),
            kind: e.change.cause.kind().into(),
            delta_on_hand: e.delta_on_hand,
            delta_received: e.delta_received,
            on_hand: e.on_hand,
            received: e.received,
            order_id: e.change.cause.order().map(|o| o.0),
            by: e.change.by.map(|u| u.0),
            reason: e.change.reason.clone(),
        }
    }
}

#[utoipa::path(get, path = "/api/admin/inventory/", tag = "admin",
    security(("bearer" = [])),
    params(InventoryQuery, PageQuery),
    responses(
        (status = 200, description = "Products by name with their stock figures", body = InventoryPage),
        (status = 400, description = "Bad filter or page", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
    ))]
pub async fn list_inventory(
    state: web::Data<AppState>,
    _staff: StaffUser,
    req: HttpRequest,
    query: web::Query<InventoryQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::try_from(page.into_inner())?;
    let threshold = state.settings.low_stock_threshold;
    let filter = InventoryFilter {
        search: query.search.clone().filter(|s| !s.trim().is_empty()),
        low_stock: query.low_stock.unwrap_or(false),
    };
    let (count, rows) = state
        .shop
        .inventory(&filter, threshold, page.offset(), page.size)
        .await?;
    let links = Page::new(&req, page, count, Vec::<()>::new());
    Ok(HttpResponse::Ok().json(InventoryPage {
        count,
        next: links.next,
        previous: links.previous,
        low_stock_threshold: threshold,
        results: rows,
    }))
}

#[utoipa::path(get, path = "/api/admin/inventory/{product_id}/", tag = "admin",
    security(("bearer" = [])),
    params(("product_id" = u64, Path)),
    responses(
        (status = 200, description = "The product's stock figures", body = InventoryRow),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
    ))]
pub async fn get_inventory(
    state: web::Data<AppState>,
    _staff: StaffUser,
    path: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let row = state
        .shop
        .inventory_row(
            ProductId(path.into_inner()),
            state.settings.low_stock_threshold,
        )
        .await?;
    Ok(HttpResponse::Ok().json(row))
}

#[utoipa::path(post, path = "/api/admin/inventory/{product_id}/adjust/", tag = "admin",
    security(("bearer" = [])),
    params(("product_id" = u64, Path)),
    request_body = Adjustment,
    responses(
        (status = 200, description = "The product's stock figures after the change", body = InventoryRow),
        (status = 400, description = "Zero or too large a delta, missing reason", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 409, description = "Would take stock below zero or below the units reserved", body = ErrorBody),
    ))]
pub async fn adjust_stock(
    state: web::Data<AppState>,
    staff: StaffUser,
    path: web::Path<u64>,
    body: Json<Adjustment>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = FieldErrors::new();
    if body.delta == 0 || body.delta.abs() > STOCK_MAX {
        errors.add(
            "delta",
            format!("must be a non-zero number of units, at most {STOCK_MAX} either way"),
        );
    }
    let reason = errors.check("reason", bounded_text(&body.reason, 1, REASON_MAX));
    errors.into_result()?;
    let product = ProductId(path.into_inner());
    let change = StockChange {
        cause: StockCause::Adjustment,
        by: Some(staff.0.user.id),
        reason: reason.clone(),
    };
    let level = state
        .shop
        .adjust_stock(product, body.delta, body.delta, change)
        .await?;
    state
        .shop
        .audit(
            &staff.0,
            "stock.adjust",
            Target::Product(product.0),
            json!({"delta": body.delta, "reason": reason, "on_hand": level.on_hand}),
        )
        .await?;
    let row = state
        .shop
        .inventory_row(product, state.settings.low_stock_threshold)
        .await?;
    Ok(HttpResponse::Ok().json(row))
}

#[utoipa::path(get, path = "/api/admin/inventory/{product_id}/ledger/", tag = "admin",
    security(("bearer" = [])),
    params(("product_id" = u64, Path), PageQuery),
    responses(
        (status = 200, description = "Every stock change of the product, oldest first; the deltas add up to its stock", body = Page<LedgerEntryView>),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
    ))]
pub async fn ledger(
    state: web::Data<AppState>,
    _staff: StaffUser,
    req: HttpRequest,
    path: web::Path<u64>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::try_from(page.into_inner())?;
    let product = ProductId(path.into_inner());
    let (count, entries) = state.store.ledger_page(product, page.offset(), page.size)?;
    if count == 0 && state.store.product(product)?.is_none() {
        return Err(ApiError::not_found("product"));
    }
    let results = entries.iter().map(LedgerEntryView::new).collect();
    Ok(HttpResponse::Ok().json(Page::new(&req, page, count, results)))
}
