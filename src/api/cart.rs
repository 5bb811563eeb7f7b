//! `/api/cart/*`: the caller's cart. Logged-in users have one cart; anonymous
//! shoppers get one on their first add, reached by the token returned in the
//! body (`cart_token`), the `X-Cart-Token` header and a `cart_token` cookie.

use super::error::{ApiError, ErrorBody};
use super::extract::{Json, MaybeUser};
use super::AppState;
use crate::domain::ProductId;
use crate::services::carts::{CartRef, CartView};
use actix_web::cookie::{time::Duration as CookieAge, Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

pub const CART_TOKEN_HEADER: &str = "X-Cart-Token";
pub const CART_TOKEN_COOKIE: &str = "cart_token";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/cart")
            .route(web::get().to(get_cart))
            .route(web::delete().to(clear_cart)),
    )
    .service(web::resource("/api/cart/add").route(web::post().to(add_to_cart)))
    .service(
        web::resource("/api/cart/items/{product_id}")
            .route(web::patch().to(set_quantity))
            .route(web::delete().to(remove_item)),
    );
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddToCart {
    #[serde(deserialize_with = "super::whole::u64")]
    #[schema(maximum = 9_223_372_036_854_775_807i64)]
    pub product_id: u64,
    /// Units to add (default 1).
    #[schema(minimum = 1, maximum = 999)]
    #[serde(default, deserialize_with = "super::whole::opt_i64")]
    pub quantity: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQuantity {
    /// New quantity; 0 removes the line.
    #[schema(minimum = 0, maximum = 999)]
    #[serde(deserialize_with = "super::whole::i64")]
    pub quantity: i64,
}

/// The anonymous cart token a request carries, from the header or the cookie.
pub fn cart_token(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(CART_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.cookie(CART_TOKEN_COOKIE).map(|c| c.value().to_owned()))
        .filter(|t| !t.is_empty())
}

fn resolve(
    state: &AppState,
    caller: &MaybeUser,
    req: &HttpRequest,
    create: bool,
) -> Result<Option<CartRef>, ApiError> {
    let user = caller.0.as_ref().map(|i| i.user.id);
    Ok(state
        .shop
        .resolve_cart(user, cart_token(req).as_deref(), create)?)
}

/// Renders a cart; anonymous carts also get the token header and cookie.
fn render(view: CartView) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if let Some(token) = &view.cart_token {
        response.insert_header((CART_TOKEN_HEADER, token.as_str()));
        response.cookie(
            Cookie::build(CART_TOKEN_COOKIE, token.clone())
                .path("/")
                .http_only(true)
                .same_site(SameSite::Lax)
                .max_age(CookieAge::days(30))
                .finish(),
        );
    }
    response.json(view)
}

#[utoipa::path(get, path = "/api/cart/", tag = "cart",
    security((), ("bearer" = [])),
    params(("X-Cart-Token" = Option<String>, Header, description = "Anonymous cart token")),
    responses((status = 200, description = "The cart (empty, with no token, before the first add)", body = CartView)))]
pub async fn get_cart(
    state: web::Data<AppState>,
    caller: MaybeUser,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    match resolve(&state, &caller, &req, false)? {
        Some(cart) => Ok(render(state.shop.cart(&cart).await?)),
        None => Ok(render(state.shop.empty_cart_view())),
    }
}

#[utoipa::path(post, path = "/api/cart/add/", tag = "cart",
    security((), ("bearer" = [])),
    params(("X-Cart-Token" = Option<String>, Header, description = "Anonymous cart token")),
    request_body = AddToCart,
    responses(
        (status = 200, description = "The updated cart", body = CartView),
        (status = 400, description = "Quantity under 1 or over 999", body = ErrorBody),
        (status = 404, description = "Unknown or inactive product", body = ErrorBody),
        (status = 409, description = "Not enough stock", body = ErrorBody),
    ))]
pub async fn add_to_cart(
    state: web::Data<AppState>,
    caller: MaybeUser,
    req: HttpRequest,
    body: Json<AddToCart>,
) -> Result<HttpResponse, ApiError> {
    let product = ProductId(body.product_id);
    let quantity = body.quantity.unwrap_or(1);
    crate::services::carts::check_add_quantity(quantity)?;
    let cart = resolve(&state, &caller, &req, true)?.ok_or_else(|| ApiError::not_found("cart"))?;
    Ok(render(
        state.shop.add_to_cart(&cart, product, quantity).await?,
    ))
}

#[utoipa::path(patch, path = "/api/cart/items/{product_id}/", tag = "cart",
    security((), ("bearer" = [])),
    params(("product_id" = u64, Path), ("X-Cart-Token" = Option<String>, Header, description = "Anonymous cart token")),
    request_body = SetQuantity,
    responses(
        (status = 200, description = "The updated cart", body = CartView),
        (status = 400, description = "Bad quantity", body = ErrorBody),
        (status = 404, description = "Not in the cart", body = ErrorBody),
        (status = 409, description = "Not enough stock", body = ErrorBody),
    ))]
pub async fn set_quantity(
    state: web::Data<AppState>,
    caller: MaybeUser,
    req: HttpRequest,
    path: web::Path<u64>,
    body: Json<SetQuantity>,
) -> Result<HttpResponse, ApiError> {
    let cart = resolve(&state, &caller, &req, false)?.ok_or_else(|| ApiError::not_found("cart"))?;
    Ok(render(
        state
            .shop
            .set_cart_quantity(&cart, ProductId(path.into_inner()), body.quantity)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/cart/items/{product_id}/", tag = "cart",
    security((), ("bearer" = [])),
    params(("product_id" = u64, Path), ("X-Cart-Token" = Option<String>, Header, description = "Anonymous cart token")),
    responses(
        (status = 200, description = "The updated cart", body = CartView),
        (status = 404, description = "Not in the cart", body = ErrorBody),
    ))]
pub async fn remove_item(
    state: web::Data<AppState>,
    caller: MaybeUser,
    req: HttpRequest,
    path: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let cart = resolve(&state, &caller, &req, false)?.ok_or_else(|| ApiError::not_found("cart"))?;
    Ok(render(
        state
            .shop
            .remove_from_cart(&cart, ProductId(path.into_inner()))
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/cart/", tag = "cart",
    security((), ("bearer" = [])),
    params(("X-Cart-Token" = Option<String>, Header, description = "Anonymous cart token")),
    responses((status = 200, description = "The emptied cart", body = CartView)))]
pub async fn clear_cart(
    state: web::Data<AppState>,
    caller: MaybeUser,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    match resolve(&state, &caller, &req, false)? {
        Some(cart) => Ok(render(state.shop.clear_cart(&cart).await?)),
        None => Ok(render(state.shop.empty_cart_view())),
    }
}
