//! `/api/auth/*`: register, login, token refresh, logout.

use super::cart::cart_token;
use super::error::{ApiError, ErrorBody};
use super::extract::{client_address, Json};
use super::profile::UserView;
use super::AppState;
use crate::auth::TokenPair;
use crate::domain::account::{ProfilePatch, Registration};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/auth/register").route(web::post().to(register)))
        .service(web::resource("/api/auth/login").route(web::post().to(login)))
        .service(web::resource("/api/auth/refresh").route(web::post().to(refresh)))
        .service(web::resource("/api/auth/logout").route(web::post().to(logout)));
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3-32 letters, digits, `.`, `_` or `-`.
    #[schema(pattern = "^[A-Za-z0-9._-]{3,32}$")]
    pub username: String,
    #[schema(
        max_length = 254,
        pattern = "^[A-Za-z0-9_%+-]{1,32}(\\.[A-Za-z0-9_%+-]{1,31})?@([A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?\\.){1,4}[A-Za-z]{2,12}$"
    )]
    pub email: String,
    /// At least 8 characters, not the username.
    #[schema(min_length = 8, max_length = 256, pattern = "\\S")]
    pub password: String,
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
pub struct LoginRequest {
    /// Username or email.
    #[schema(min_length = 1, pattern = "\\S")]
    pub username: Option<String>,
    /// Email (alternative to `username`).
    #[schema(min_length = 1, pattern = "\\S")]
    pub email: Option<String>,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// A refresh token from login or a previous refresh.
    pub refresh: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// Short-lived JWT for `Authorization: Bearer`.
    pub access: String,
    /// Long-lived, single-use token for `/api/auth/refresh/`.
    pub refresh: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

impl From<TokenPair> for TokenResponse {
    fn from(pair: TokenPair) -> Self {
        Self {
            access: pair.access,
            refresh: pair.refresh,
            token_type: "Bearer",
            expires_in: pair.access_expires_in,
        }
    }
}

#[utoipa::path(post, path = "/api/auth/register/", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created", body = UserView),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 409, description = "Username or email taken", body = ErrorBody),
    ))]
pub async fn register(
    state: web::Data<AppState>,
    body: Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let form = Registration::parse(
        &body.username,
        &body.email,
        &body.password,
        ProfilePatch {
            phone: body.phone,
            address: body.address,
            city: body.city,
            postal_code: body.postal_code,
            country: body.country,
        },
    )?;
    let user = state.accounts.register(form).await?;
    let profile = state.store.profile(user.id)?;
    Ok(HttpResponse::Created().json(UserView::new(&user, profile)))
}

#[utoipa::path(post, path = "/api/auth/login/", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "Wrong credentials or disabled account", body = ErrorBody),
        (status = 429, description = "Too many failed attempts", body = ErrorBody),
    ))]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let login = body
        .username
        .or(body.email)
        .filter(|l| !l.trim().is_empty())
        .ok_or_else(|| {
            ApiError::Validation(crate::domain::FieldErrors::single(
                "username",
                "give a username or an email",
            ))
        })?;
    let address = client_address(&req, state.settings.trust_proxy);
    let (user, pair) = state
        .accounts
        .login(&login, body.password, &address)
        .await?;
    // An anonymous cart brought to login joins the user's cart. A failed
    // merge must not fail the login: the anonymous cart is still there.
    if let Some(token) = cart_token(&req) {
        if let Err(e) = state.shop.merge_anonymous_cart(user.id, &token).await {
            tracing::warn!(user_id = %user.id, error = %e, "cart merge at login failed");
        }
    }
    Ok(HttpResponse::Ok().json(TokenResponse::from(pair)))
}

#[utoipa::path(post, path = "/api/auth/refresh/", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New token pair; the old refresh token is spent", body = TokenResponse),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "Invalid, expired or already used refresh token", body = ErrorBody),
    ))]
pub async fn refresh(
    state: web::Data<AppState>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let pair = state.accounts.refresh(&body.refresh).await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(pair)))
}

#[utoipa::path(post, path = "/api/auth/logout/", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "Session ended; its tokens no longer work"),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "Invalid or already ended session", body = ErrorBody),
    ))]
pub async fn logout(
    state: web::Data<AppState>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let (user, session) = state.accounts.logout(&body.refresh).await?;
    state.shop.sessions_ended(user, Some(session), None);
    Ok(HttpResponse::NoContent().finish())
}
