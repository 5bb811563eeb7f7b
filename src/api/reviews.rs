//! Product reviews: `/api/products/{id}/reviews/` (list, write) and
//! `/api/reviews/{id}/` (the author edits; the author or staff delete; to
//! other shoppers the review is 404, as every object they do not own).
//! Comments go back exactly as stored, as JSON strings: the server never
//! renders them as HTML.

use super::error::{ApiError, ErrorBody};
use super::extract::{AuthUser, Json, MaybeUser};
use super::pagination::{Page, PageQuery, PageRequest};
use super::AppState;
use crate::domain::audit::Target;
use crate::domain::review::{parse_comment, parse_rating};
use crate::domain::{FieldErrors, ProductId, ReviewId};
use crate::services::reviews::{ReviewOrder, ReviewView};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/products/{id}/reviews")
            .route(web::get().to(list_reviews))
            .route(web::post().to(create_review)),
    )
    .service(
        web::resource("/api/reviews/{id}")
            .route(web::patch().to(update_review))
            .route(web::delete().to(delete_review)),
    );
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ReviewQuery {
    /// `-created_at` (newest first, the default) or `-rating` (highest first).
    #[param(schema_with = review_ordering)]
    pub ordering: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewWrite {
    /// 1 to 5 (required when creating).
    #[serde(default, deserialize_with = "super::whole::opt_i64")]
    #[schema(minimum = 1, maximum = 5)]
    pub rating: Option<i64>,
    /// Plain text, up to 4,000 characters.
    #[schema(
        max_length = 4000,
        pattern = "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$"
    )]
    pub comment: Option<String>,
}

fn review_ordering() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(["-created_at", "-rating"]))
        .build()
}

fn parse_write(body: ReviewWrite) -> Result<(Option<u8>, Option<String>), FieldErrors> {
    let mut errors = FieldErrors::new();
    let rating = body
        .rating
        .and_then(|r| errors.check("rating", parse_rating(r)));
    let comment = body
        .comment
        .and_then(|c| errors.check("comment", parse_comment(&c)));
    errors.into_result()?;
    Ok((rating, comment))
}

#[utoipa::path(get, path = "/api/products/{id}/reviews/", tag = "reviews",
    security((), ("bearer" = [])),
    params(("id" = u64, Path, description = "Product id"), ReviewQuery, PageQuery),
    responses(
        (status = 200, description = "A page of reviews", body = Page<ReviewView>),
        (status = 400, description = "Bad ordering or page", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
    ))]
pub async fn list_reviews(
    state: web::Data<AppState>,
    caller: MaybeUser,
    req: HttpRequest,
    path: web::Path<u64>,
    query: web::Query<ReviewQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::try_from(page.into_inner())?;
    let order = match query.ordering.as_deref() {
        None | Some("-created_at") => ReviewOrder::Newest,
        Some("-rating") => ReviewOrder::HighestRated,
        Some(_) => {
            return Err(FieldErrors::single("ordering", "must be -created_at or -rating").into())
        }
    };
    let is_staff = caller.0.as_ref().is_some_and(|i| i.user.is_staff);
    let reviews = state
        .shop
        .product_reviews(ProductId(path.into_inner()), is_staff, order)?;
    let results = reviews
        .iter()
        .skip(page.offset())
        .take(page.size)
        .map(ReviewView::new)
        .collect();
    Ok(HttpResponse::Ok().json(Page::new(&req, page, reviews.len(), results)))
}

#[utoipa::path(post, path = "/api/products/{id}/reviews/", tag = "reviews",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Product id")),
    request_body = ReviewWrite,
    responses(
        (status = 201, description = "Review stored; the product's rating moved with it", body = ReviewView),
        (status = 400, description = "Rating missing or outside 1-5, comment too long", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 409, description = "You already reviewed this product", body = ErrorBody),
    ))]
pub async fn create_review(
    state: web::Data<AppState>,
    caller: AuthUser,
    path: web::Path<u64>,
    body: Json<ReviewWrite>,
) -> Result<HttpResponse, ApiError> {
    let (rating, comment) = parse_write(body.into_inner())?;
    let Some(rating) = rating else {
        return Err(FieldErrors::single("rating", "this field is required").into());
    };
    let review = state
        .shop
        .create_review(
            &caller.0,
            ProductId(path.into_inner()),
            rating,
            comment.unwrap_or_default(),
        )
        .await?;
    Ok(HttpResponse::Created().json(ReviewView::new(&review)))
}

#[utoipa::path(patch, path = "/api/reviews/{id}/", tag = "reviews",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Review id")),
    request_body = ReviewWrite,
    responses(
        (status = 200, description = "Updated review", body = ReviewView),
        (status = 400, description = "Invalid rating or comment", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Staff cannot edit another's review", body = ErrorBody),
        (status = 404, description = "No such review of yours", body = ErrorBody),
    ))]
pub async fn update_review(
    state: web::Data<AppState>,
    caller: AuthUser,
    path: web::Path<u64>,
    body: Json<ReviewWrite>,
) -> Result<HttpResponse, ApiError> {
    let (rating, comment) = parse_write(body.into_inner())?;
    let review = state
        .shop
        .update_review(&caller.0, ReviewId(path.into_inner()), rating, comment)
        .await?;
    Ok(HttpResponse::Ok().json(ReviewView::new(&review)))
}

#[utoipa::path(delete, path = "/api/reviews/{id}/", tag = "reviews",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Review id")),
    responses(
        (status = 204, description = "Deleted; the product's rating moved with it"),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 404, description = "No such review of yours (staff: no such review)", body = ErrorBody),
    ))]
pub async fn delete_review(
    state: web::Data<AppState>,
    caller: AuthUser,
    path: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let review = state
        .shop
        .delete_review(&caller.0, ReviewId(path.into_inner()))
        .await?;
    if review.user_id != caller.0.user.id {
        state
            .shop
            .audit(
                &caller.0,
                "review.delete",
                Target::Review(review.id.0),
                json!({"product_id": review.product_id.0, "author": review.user_id.0}),
            )
            .await?;
    }
    Ok(HttpResponse::NoContent().finish())
}
