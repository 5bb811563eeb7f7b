//! `/api/admin/users/*` (staff only): list and search accounts, and set
//! `is_active` / `is_staff`. A staff member can never demote or disable
//! themselves, so a shop cannot lock out its last administrator by accident.

use super::error::{ApiError, ErrorBody};
use super::extract::{Json, StaffUser};
use super::pagination::{Page, PageQuery, PageRequest};
use super::profile::UserView;
use super::AppState;
use crate::domain::audit::Target;
use crate::domain::UserId;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/admin/users").route(web::get().to(list_users)))
        .service(web::resource("/api/admin/users/{id}").route(web::patch().to(update_user)));
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct UserFilter {
    /// Substring of the username or email, case-insensitive.
    pub search: Option<String>,
    pub is_staff: Option<bool>,
    pub is_active: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserFlags {
    pub is_active: Option<bool>,
    pub is_staff: Option<bool>,
}

#[utoipa::path(get, path = "/api/admin/users/", tag = "admin",
    security(("bearer" = [])),
    params(UserFilter, PageQuery),
    responses(
        (status = 200, description = "Accounts, oldest first", body = Page<UserView>),
        (status = 400, description = "Bad page", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
    ))]
pub async fn list_users(
    state: web::Data<AppState>,
    _staff: StaffUser,
    req: HttpRequest,
    filter: web::Query<UserFilter>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::try_from(page.into_inner())?;
    let needle = filter.search.as_deref().map(str::to_lowercase);
    let matching = state.store.users_matching(|user| {
        needle.as_deref().is_none_or(|n| {
            user.username.to_lowercase().contains(n) || user.email.to_lowercase().contains(n)
        }) && filter.is_staff.is_none_or(|s| user.is_staff == s)
            && filter.is_active.is_none_or(|a| user.is_active == a)
    })?;
    let count = matching.len();
    let mut results = Vec::new();
    for user in matching.into_iter().skip(page.offset()).take(page.size) {
        let profile = state.store.profile(user.id)?;
        results.push(UserView::new(&user, profile));
    }
    Ok(HttpResponse::Ok().json(Page::new(&req, page, count, results)))
}

#[utoipa::path(patch, path = "/api/admin/users/{id}/", tag = "admin",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "User id")),
    request_body = UserFlags,
    responses(
        (status = 200, description = "Updated account", body = UserView),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Would remove your own staff flag or disable yourself", body = ErrorBody),
    ))]
pub async fn update_user(
    state: web::Data<AppState>,
    staff: StaffUser,
    path: web::Path<u64>,
    body: Json<UserFlags>,
) -> Result<HttpResponse, ApiError> {
    let id = UserId(path.into_inner());
    let flags = body.into_inner();
    if id == staff.0.user.id && (flags.is_active == Some(false) || flags.is_staff == Some(false)) {
        return Err(ApiError::conflict(
            "self_demotion",
            "you cannot remove your own staff flag or disable your own account",
        ));
    }
    let user = state
        .store
        .update_user(id, |user| {
            if let Some(active) = flags.is_active {
                user.is_active = active;
            }
            if let Some(is_staff) = flags.is_staff {
                user.is_staff = is_staff;
            }
        })
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::not_found("user"),
            other => other.into(),
        })?;
    state.store.durable().await?;
    // Live sockets keep the rights they authenticated with; end them when
    // those rights shrink.
    if flags.is_active == Some(false) || flags.is_staff == Some(false) {
        state.shop.sessions_ended(user.id, None, None);
    }
    state
        .shop
        .audit(
            &staff.0,
            "user.flags",
            Target::User(user.id.0),
            json!({"is_active": flags.is_active, "is_staff": flags.is_staff}),
        )
        .await?;
    let profile = state.store.profile(user.id)?;
    Ok(HttpResponse::Ok().json(UserView::new(&user, profile)))
}
