//! `GET /api/admin/audit/` (staff only): the append-only log of staff
//! writes, newest first, filtered by actor, action, target and time.

use super::admin_orders::parse_instant;
use super::error::{ApiError, ErrorBody};
use super::extract::StaffUser;
use super::pagination::{Page, PageQuery, PageRequest};
use super::AppState;
use crate::domain::audit::{AuditEntry, AuditFilter};
use crate::domain::time::rfc3339;
use crate::domain::{FieldErrors, UserId};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/admin/audit").route(web::get().to(list_audit)));
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// User id of the staff member who acted.
    pub actor: Option<u64>,
    /// An action (`product.update`) or a resource (`product`: every product action).
    pub action: Option<String>,
    /// product, category, brand, order, user or review.
    #[param(pattern = "^(|product|category|brand|order|user|review)$")]
    pub target_type: Option<String>,
    pub target_id: Option<u64>,
    /// At or after: RFC 3339 or YYYY-MM-DD.
    #[param(schema_with = super::openapi::instant)]
    pub from: Option<String>,
    /// Before: RFC 3339 or YYYY-MM-DD.
    #[param(schema_with = super::openapi::instant)]
    pub to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub id: u64,
    /// RFC 3339.
    pub at: String,
    pub actor: u64,
    pub actor_username: String,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<u64>,
    /// What changed (the record after the change, or the fields sent).
    #[schema(value_type = Object)]
    pub detail: Value,
}

impl AuditView {
    fn new(e: &AuditEntry) -> Self {
        Self {
            id: e.id,
            at: rfc3339(e.at),
            actor: e.actor.0,
            actor_username: e.actor_username.clone(),
            action: e.action.clone(),
            target_type: e.target_type.clone(),
            target_id: e.target_id,
            detail: serde_json::from_str(&e.detail).unwrap_or(Value::String(e.detail.clone())),
        }
    }
}

/// What audit entries can be about (`Target` kinds).
const TARGET_TYPES: [&str; 6] = ["product", "category", "brand", "order", "user", "review"];

#[utoipa::path(get, path = "/api/admin/audit/", tag = "admin",
    security(("bearer" = [])),
    params(AuditQuery, PageQuery),
    responses(
        (status = 200, description = "Staff writes, newest first", body = Page<AuditView>),
        (status = 400, description = "Bad filter or page", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
    ))]
pub async fn list_audit(
    state: web::Data<AppState>,
    _staff: StaffUser,
    req: HttpRequest,
    query: web::Query<AuditQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::try_from(page.into_inner())?;
    let mut errors = FieldErrors::new();
    let filter = AuditFilter {
        actor: query.actor.map(UserId),
        action: query.action.clone().filter(|a| !a.is_empty()),
        target_type: query.target_type.clone().filter(|t| !t.is_empty()),
        target_id: query.target_id,
        from: query
            .from
            .as_deref()
            .and_then(|t| parse_instant("from", t, &mut errors)),
        to: query
            .to
            .as_deref()
            .and_then(|t| parse_instant("to", t, &mut errors)),
    };
    if let Some(kind) = &filter.target_type {
        if !TARGET_TYPES.contains(&kind.as_str()) {
            errors.add(
                "target_type",
                format!("must be one of {}", TARGET_TYPES.join(", ")),
            );
        }
    }
    errors.into_result()?;
    let (count, entries) = state.store.audit_page(&filter, page.offset(), page.size)?;
    let results = entries.iter().map(AuditView::new).collect();
    Ok(HttpResponse::Ok().json(Page::new(&req, page, count, results)))
}
