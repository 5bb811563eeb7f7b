//! `/api/brands/*`: the brand list with product counts (for shoppers)
//! and staff CRUD. A brand with products cannot be deleted (409), so no
//! product ever points at a missing brand.

use super::error::{ApiError, ErrorBody};
use super::extract::{Json, StaffUser};
use super::AppState;
use crate::catalog::index::Snapshot;
use crate::domain::audit::Target;
use crate::domain::catalog::{parse_image_url, parse_slug, Brand, NAME_MAX};
use crate::domain::validation::bounded_text;
use crate::domain::{BrandId, FieldErrors};
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/brands")
            .route(web::get().to(list_brands))
            .route(web::post().to(create_brand)),
    )
    .service(
        web::resource("/api/brands/{key}")
            .route(web::get().to(get_brand))
            .route(web::put().to(replace_brand))
            .route(web::patch().to(patch_brand))
            .route(web::delete().to(delete_brand)),
    );
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BrandView {
    pub id: u64,
    pub name: String,
    pub slug: String,
    /// `/media/...` path or external URL.
    pub logo: Option<String>,
    /// Active products in the brand.
    pub product_count: usize,
}

impl BrandView {
    pub fn new(brand: &Brand, snapshot: &Snapshot) -> Self {
        Self {
            id: brand.id.0,
            name: brand.name.clone(),
            slug: brand.slug.clone(),
            logo: brand.logo.clone(),
            product_count: snapshot.brand_counts(brand.id).active,
        }
    }
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Body of POST and PUT (name required) and PATCH.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandWrite {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: Option<String>,
    /// Unique; derived from the name when absent at creation.
    #[schema(
        max_length = 100,
        pattern = "^([a-z0-9][a-z0-9-]*)?[a-z]([a-z0-9-]*[a-z0-9])?$"
    )]
    pub slug: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    /// External http(s) logo URL; null to remove. Upload files at `/api/brands/{id}/logo/`.
    #[schema(value_type = Option<String>, max_length = 2000, pattern = "^(|https?://[^\\s\"<>/?#:@\\u0000-\\u001F\\u007F-\\u009F][^\\s\"<>\\u0000-\\u001F\\u007F-\\u009F]*)$")]
    pub logo: Option<Option<String>>,
}

struct Parsed {
    name: Option<String>,
    slug: Option<String>,
    logo: Option<Option<String>>,
}

fn parse(body: BrandWrite, name_required: bool) -> Result<Parsed, FieldErrors> {
    let mut errors = FieldErrors::new();
    if name_required && body.name.is_none() {
        errors.add("name", "this field is required");
    }
    let name = body
        .name
        .and_then(|n| errors.check("name", bounded_text(&n, 1, NAME_MAX)));
    let slug = body.slug.and_then(|s| errors.check("slug", parse_slug(&s)));
    let logo = body.logo.map(|url| {
        url.filter(|u| !u.trim().is_empty())
            .and_then(|u| errors.check("logo", parse_image_url(&u)))
    });
    errors.into_result()?;
    Ok(Parsed { name, slug, logo })
}

fn find(snapshot: &Snapshot, key: &str) -> Option<BrandId> {
    super::products::brand_in(snapshot, key)
}

#[utoipa::path(get, path = "/api/brands/", tag = "catalog",
    responses((status = 200, description = "Every brand, by name, with product counts", body = [BrandView])))]
pub async fn list_brands(state: web::Data<AppState>) -> HttpResponse {
    let snapshot = state.catalog.index().snapshot();
    let list: Vec<BrandView> = snapshot
        .brands()
        .iter()
        .map(|(c, _)| BrandView::new(c, &snapshot))
        .collect();
    HttpResponse::Ok().json(list)
}

#[utoipa::path(get, path = "/api/brands/{key}/", tag = "catalog",
    params(("key" = String, Path, description = "Brand id or slug")),
    responses(
        (status = 200, description = "The brand", body = BrandView),
        (status = 404, description = "No such brand", body = ErrorBody),
    ))]
pub async fn get_brand(
    state: web::Data<AppState>,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let snapshot = state.catalog.index().snapshot();
    let brand = find(&snapshot, &key)
        .and_then(|id| snapshot.brand(id))
        .ok_or_else(|| ApiError::not_found("brand"))?;
    Ok(HttpResponse::Ok().json(BrandView::new(brand, &snapshot)))
}

#[utoipa::path(post, path = "/api/brands/", tag = "catalog",
    security(("bearer" = [])),
    request_body = BrandWrite,
    responses(
        (status = 201, description = "Brand created", body = BrandView),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 409, description = "Slug taken", body = ErrorBody),
    ))]
pub async fn create_brand(
    state: web::Data<AppState>,
    staff: StaffUser,
    body: Json<BrandWrite>,
) -> Result<HttpResponse, ApiError> {
    let parsed = parse(body.into_inner(), true)?;
    let name = parsed.name.unwrap_or_default();
    let slug = match parsed.slug {
        Some(slug) => slug,
        None => state.catalog.free_brand_slug(&name)?,
    };
    let brand = state
        .catalog
        .create_brand(name, slug, parsed.logo.flatten())
        .await?;
    let snapshot = state.catalog.index().snapshot();
    let view = BrandView::new(&brand, &snapshot);
    state
        .shop
        .audit(
            &staff.0,
            "brand.create",
            Target::Brand(brand.id.0),
            json!(view),
        )
        .await?;
    Ok(HttpResponse::Created().json(view))
}

async fn write(
    state: &AppState,
    staff: &StaffUser,
    key: &str,
    body: BrandWrite,
    replace: bool,
) -> Result<HttpResponse, ApiError> {
    let id: BrandId = key.parse().map_err(|_| ApiError::not_found("brand"))?;
    let mut parsed = parse(body, replace)?;
    if replace {
        parsed.logo.get_or_insert(None);
    }
    let brand = state
        .catalog
        .update_brand(id, |c| {
            if let Some(v) = &parsed.name {
                c.name = v.clone();
            }
            if let Some(v) = &parsed.slug {
                c.slug = v.clone();
            }
            if let Some(v) = &parsed.logo {
                c.logo = v.clone();
            }
        })
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::not_found("brand"),
            e => e.into(),
        })?;
    let snapshot = state.catalog.index().snapshot();
    let view = BrandView::new(&brand, &snapshot);
    let action = if replace {
        "brand.replace"
    } else {
        "brand.update"
    };
    state
        .shop
        .audit(&staff.0, action, Target::Brand(id.0), json!(view))
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(put, path = "/api/brands/{key}/", tag = "catalog",
    security(("bearer" = [])),
    params(("key" = u64, Path, description = "Brand id (writes take the id, not the slug)")),
    request_body = BrandWrite,
    responses(
        (status = 200, description = "Brand replaced", body = BrandView),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 404, description = "No such brand", body = ErrorBody),
        (status = 409, description = "Slug taken", body = ErrorBody),
    ))]
pub async fn replace_brand(
    state: web::Data<AppState>,
    staff: StaffUser,
    key: web::Path<String>,
    body: Json<BrandWrite>,
) -> Result<HttpResponse, ApiError> {
    write(&state, &staff, &key, body.into_inner(), true).await
}

#[utoipa::path(patch, path = "/api/brands/{key}/", tag = "catalog",
    security(("bearer" = [])),
    params(("key" = u64, Path, description = "Brand id (writes take the id, not the slug)")),
    request_body = BrandWrite,
    responses(
        (status = 200, description = "Brand updated", body = BrandView),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 404, description = "No such brand", body = ErrorBody),
        (status = 409, description = "Slug taken", body = ErrorBody),
    ))]
pub async fn patch_brand(
    state: web::Data<AppState>,
    staff: StaffUser,
    key: web::Path<String>,
    body: Json<BrandWrite>,
) -> Result<HttpResponse, ApiError> {
    write(&state, &staff, &key, body.into_inner(), false).await
}

#[utoipa::path(delete, path = "/api/brands/{key}/", tag = "catalog",
    security(("bearer" = [])),
    params(("key" = u64, Path, description = "Brand id (writes take the id, not the slug)")),
    responses(
        (status = 204, description = "Brand deleted"),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 404, description = "No such brand", body = ErrorBody),
        (status = 409, description = "The brand still has products", body = ErrorBody),
    ))]
pub async fn delete_brand(
    state: web::Data<AppState>,
    staff: StaffUser,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: BrandId = key.parse().map_err(|_| ApiError::not_found("brand"))?;
    state.catalog.delete_brand(id).await.map_err(|e| match e {
        crate::store::StoreError::NotFound => ApiError::not_found("brand"),
        e => e.into(),
    })?;
    state
        .shop
        .audit(&staff.0, "brand.delete", Target::Brand(id.0), json!({}))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
