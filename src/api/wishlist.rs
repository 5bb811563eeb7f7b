//! `/api/wishlist/*`: the caller's saved products. Adding is idempotent
//! (201 the first time, 200 after, same body); move-to-cart adds one unit
//! through the ordinary cart path and then drops the product from the list.

use super::error::{ApiError, ErrorBody};
use super::extract::{AuthUser, Json};
use super::AppState;
use crate::domain::ProductId;
use crate::services::carts::CartView;
use crate::services::wishlists::WishlistItemView;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/wishlist")
            .route(web::get().to(get_wishlist))
            .route(web::post().to(add_to_wishlist)),
    )
    .service(
        web::resource("/api/wishlist/{product_id}").route(web::delete().to(remove_from_wishlist)),
    )
    .service(
        web::resource("/api/wishlist/{product_id}/move-to-cart")
            .route(web::post().to(move_to_cart)),
    );
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WishlistAdd {
    #[serde(deserialize_with = "super::whole::u64")]
    #[schema(maximum = 9_223_372_036_854_775_807i64)]
    pub product_id: u64,
}

#[utoipa::path(get, path = "/api/wishlist/", tag = "wishlist",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Your wishlist, oldest addition first, with current price and availability", body = [WishlistItemView]),
        (status = 401, description = "Not logged in", body = ErrorBody),
    ))]
pub async fn get_wishlist(
    state: web::Data<AppState>,
    caller: AuthUser,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.shop.wishlist(caller.0.user.id)?))
}

#[utoipa::path(post, path = "/api/wishlist/", tag = "wishlist",
    security(("bearer" = [])),
    request_body = WishlistAdd,
    responses(
        (status = 201, description = "Added", body = WishlistItemView),
        (status = 200, description = "Already on the wishlist; nothing changed", body = WishlistItemView),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 404, description = "Unknown or inactive product", body = ErrorBody),
    ))]
pub async fn add_to_wishlist(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: Json<WishlistAdd>,
) -> Result<HttpResponse, ApiError> {
    let (added, item) = state
        .shop
        .wishlist_add(caller.0.user.id, ProductId(body.product_id))
        .await?;
    Ok(if added {
        HttpResponse::Created().json(item)
    } else {
        HttpResponse::Ok().json(item)
    })
}

#[utoipa::path(delete, path = "/api/wishlist/{product_id}/", tag = "wishlist",
    security(("bearer" = [])),
    params(("product_id" = u64, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 404, description = "Not on your wishlist", body = ErrorBody),
    ))]
pub async fn remove_from_wishlist(
    state: web::Data<AppState>,
    caller: AuthUser,
    path: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    state
        .shop
        .wishlist_remove(caller.0.user.id, ProductId(path.into_inner()))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/wishlist/{product_id}/move-to-cart/", tag = "wishlist",
    security(("bearer" = [])),
    params(("product_id" = u64, Path)),
    responses(
        (status = 200, description = "One unit is in your cart and the product left the wishlist", body = CartView),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 404, description = "Not on your wishlist", body = ErrorBody),
        (status = 409, description = "Out of stock or no longer for sale; the wishlist is unchanged", body = ErrorBody),
    ))]
pub async fn move_to_cart(
    state: web::Data<AppState>,
    caller: AuthUser,
    path: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let cart = state
        .shop
        .wishlist_move_to_cart(caller.0.user.id, ProductId(path.into_inner()))
        .await?;
    Ok(HttpResponse::Ok().json(cart))
}
