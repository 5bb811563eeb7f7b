//! `/api/profile/*`: the caller's own account and CustomerProfile.

use super::auth::TokenResponse;
use super::error::{ApiError, ErrorBody};
use super::extract::{AuthUser, Json};
use super::AppState;
use crate::auth::AuthError;
use crate::domain::account::{Email, Password, Profile, ProfilePatch, User};
use crate::domain::time::rfc3339;
use crate::domain::FieldErrors;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/profile")
            .route(web::get().to(get_profile))
            .route(web::patch().to(update_profile)),
    )
    .service(web::resource("/api/profile/password").route(web::post().to(change_password)));
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileView {
    pub phone: String,
    pub address: String,
    pub city: String,
    pub postal_code: String,
    pub country: String,
}

/// A user as their owner (or staff) sees them.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: u64,
    pub username: String,
    pub email: String,
    pub is_staff: bool,
    pub is_active: bool,
    /// RFC 3339.
    pub date_joined: String,
    pub profile: ProfileView,
}

impl UserView {
    pub fn new(user: &User, profile: Profile) -> Self {
        Self {
            id: user.id.0,
            username: user.username.clone(),
            email: user.email.clone(),
            is_staff: user.is_staff,
            is_active: user.is_active,
            date_joined: rfc3339(user.created_at),
            profile: ProfileView {
                phone: profile.phone,
                address: profile.address,
                city: profile.city,
                postal_code: profile.postal_code,
                country: profile.country,
            },
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    #[schema(
        max_length = 254,
        pattern = "^[A-Za-z0-9_%+-]{1,32}(\\.[A-Za-z0-9_%+-]{1,31})?@([A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?\\.){1,4}[A-Za-z]{2,12}$"
    )]
    pub email: Option<String>,
    #[schema(max_length = 40, pattern = "^(\\+?[ ().-]*([0-9][ ().-]*){6,20})?$")]
    pub phone: Option<String>,
    #[schema(
        max_length = 300,
        pattern = "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$"
    )]
    pub address: Option<String>,
    #[schema(
        max_length = 100,
        pattern = "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$"
    )]
    pub city: Option<String>,
    #[schema(
        max_length = 20,
        pattern = "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$"
    )]
    pub postal_code: Option<String>,
    #[schema(
        max_length = 100,
        pattern = "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$"
    )]
    pub country: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub old_password: String,
    #[schema(min_length = 8, max_length = 256, pattern = "\\S")]
    pub new_password: String,
}

#[utoipa::path(get, path = "/api/profile/", tag = "profile",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Your account", body = UserView),
        (status = 401, description = "Not logged in", body = ErrorBody),
    ))]
pub async fn get_profile(
    state: web::Data<AppState>,
    caller: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let user = caller.0.user;
    let profile = state.store.profile(user.id)?;
    Ok(HttpResponse::Ok().json(UserView::new(&user, profile)))
}

#[utoipa::path(patch, path = "/api/profile/", tag = "profile",
    security(("bearer" = [])),
    request_body = ProfileUpdate,
    responses(
        (status = 200, description = "Updated account", body = UserView),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 409, description = "Email taken", body = ErrorBody),
    ))]
pub async fn update_profile(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: Json<ProfileUpdate>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = FieldErrors::new();
    let email = body
        .email
        .and_then(|e| errors.check("email", Email::parse(&e)));
    let patch = ProfilePatch {
        phone: body.phone,
        address: body.address,
        city: body.city,
        postal_code: body.postal_code,
        country: body.country,
    }
    .parse(&mut errors);
    errors.into_result()?;
    let (user, profile) = state.store.update_account(caller.0.user.id, email, patch)?;
    state.store.durable().await?;
    Ok(HttpResponse::Ok().json(UserView::new(&user, profile)))
}

#[utoipa::path(post, path = "/api/profile/password/", tag = "profile",
    security(("bearer" = [])),
    request_body = PasswordChange,
    responses(
        (status = 200, description = "Password changed; every other session ended; new tokens for this client", body = TokenResponse),
        (status = 400, description = "Wrong old password or weak new one", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
    ))]
pub async fn change_password(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let identity = caller.0;
    let new_password = Password::parse(&body.new_password, Some(&identity.user.username))
        .map_err(|m| AuthError::Invalid(FieldErrors::single("new_password", m)))?;
    let pair = state
        .accounts
        .change_password(&identity, body.old_password, new_password)
        .await?;
    state
        .shop
        .sessions_ended(identity.user.id, None, Some(pair.session));
    Ok(HttpResponse::Ok().json(TokenResponse::from(pair)))
}
