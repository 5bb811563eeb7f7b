//! `/api/categories/*`: the category list with product counts (for shoppers)
//! and staff CRUD. A category with products cannot be deleted (409), so no
//! product ever points at a missing category.

use super::error::{ApiError, ErrorBody};
use super::extract::{Json, StaffUser};
use super::AppState;
use crate::catalog::index::Snapshot;
use crate::domain::audit::Target;
use crate::domain::catalog::{parse_slug, Category, DESCRIPTION_MAX, NAME_MAX};
use crate::domain::validation::bounded_text;
use crate::domain::{CategoryId, FieldErrors};
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/categories")
            .route(web::get().to(list_categories))
            .route(web::post().to(create_category)),
    )
    .service(
        web::resource("/api/categories/{key}")
            .route(web::get().to(get_category))
            .route(web::put().to(replace_category))
            .route(web::patch().to(patch_category))
            .route(web::delete().to(delete_category)),
    );
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryView {
    pub id: u64,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    /// Active products in the category.
    pub product_count: usize,
}

impl CategoryView {
    fn new(category: &Category, snapshot: &Snapshot) -> Self {
        Self {
            id: category.id.0,
            name: category.name.clone(),
            slug: category.slug.clone(),
            description: category.description.clone(),
            product_count: snapshot.category_counts(category.id).active,
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
pub struct CategoryWrite {
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
    #[schema(value_type = Option<String>, max_length = 10000, pattern = "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$")]
    pub description: Option<Option<String>>,
}

struct Parsed {
    name: Option<String>,
    slug: Option<String>,
    description: Option<Option<String>>,
}

fn parse(body: CategoryWrite, name_required: bool) -> Result<Parsed, FieldErrors> {
    let mut errors = FieldErrors::new();
    if name_required && body.name.is_none() {
        errors.add("name", "this field is required");
    }
    let name = body
        .name
        .and_then(|n| errors.check("name", bounded_text(&n, 1, NAME_MAX)));
    let slug = body.slug.and_then(|s| errors.check("slug", parse_slug(&s)));
    let description = body.description.map(|d| {
        d.and_then(|d| errors.check("description", bounded_text(&d, 0, DESCRIPTION_MAX)))
            .filter(|d| !d.is_empty())
    });
    errors.into_result()?;
    Ok(Parsed {
        name,
        slug,
        description,
    })
}

fn find(snapshot: &Snapshot, key: &str) -> Option<CategoryId> {
    super::products::category_in(snapshot, key)
}

#[utoipa::path(get, path = "/api/categories/", tag = "catalog",
    responses((status = 200, description = "Every category, by name, with product counts", body = [CategoryView])))]
pub async fn list_categories(state: web::Data<AppState>) -> HttpResponse {
    let snapshot = state.catalog.index().snapshot();
    let list: Vec<CategoryView> = snapshot
        .categories()
        .iter()
        .map(|(c, _)| CategoryView::new(c, &snapshot))
        .collect();
    HttpResponse::Ok().json(list)
}

#[utoipa::path(get, path = "/api/categories/{key}/", tag = "catalog",
    params(("key" = String, Path, description = "Category id or slug")),
    responses(
        (status = 200, description = "The category", body = CategoryView),
        (status = 404, description = "No such category", body = ErrorBody),
    ))]
pub async fn get_category(
    state: web::Data<AppState>,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let snapshot = state.catalog.index().snapshot();
    let category = find(&snapshot, &key)
        .and_then(|id| snapshot.category(id))
        .ok_or_else(|| ApiError::not_found("category"))?;
    Ok(HttpResponse::Ok().json(CategoryView::new(category, &snapshot)))
}

#[utoipa::path(post, path = "/api/categories/", tag = "catalog",
    security(("bearer" = [])),
    request_body = CategoryWrite,
    responses(
        (status = 201, description = "Category created", body = CategoryView),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 409, description = "Slug taken", body = ErrorBody),
    ))]
pub async fn create_category(
    state: web::Data<AppState>,
    staff: StaffUser,
    body: Json<CategoryWrite>,
) -> Result<HttpResponse, ApiError> {
    let parsed = parse(body.into_inner(), true)?;
    let name = parsed.name.unwrap_or_default();
    let slug = match parsed.slug {
        Some(slug) => slug,
        None => state.catalog.free_category_slug(&name)?,
    };
    let category = state
        .catalog
        .create_category(name, slug, parsed.description.flatten())
        .await?;
    let snapshot = state.catalog.index().snapshot();
    let view = CategoryView::new(&category, &snapshot);
    state
        .shop
        .audit(
            &staff.0,
            "category.create",
            Target::Category(category.id.0),
            json!(view),
        )
        .await?;
    Ok(HttpResponse::Created().json(view))
}

async fn write(
    state: &AppState,
    staff: &StaffUser,
    key: &str,
    body: CategoryWrite,
    replace: bool,
) -> Result<HttpResponse, ApiError> {
    let id: CategoryId = key.parse().map_err(|_| ApiError::not_found("category"))?;
    let mut parsed = parse(body, replace)?;
    if replace {
        parsed.description.get_or_insert(None);
    }
    let category = state
        .catalog
        .update_category(id, |c| {
            if let Some(v) = &parsed.name {
                c.name = v.clone();
            }
            if let Some(v) = &parsed.slug {
                c.slug = v.clone();
            }
            if let Some(v) = &parsed.description {
                c.description = v.clone();
            }
        })
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::not_found("category"),
            e => e.into(),
        })?;
    let snapshot = state.catalog.index().snapshot();
    let view = CategoryView::new(&category, &snapshot);
    let action = if replace {
        "category.replace"
    } else {
        "category.update"
    };
    state
        .shop
        .audit(&staff.0, action, Target::Category(id.0), json!(view))
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(put, path = "/api/categories/{key}/", tag = "catalog",
    security(("bearer" = [])),
    params(("key" = u64, Path, description = "Category id (writes take the id, not the slug)")),
    request_body = CategoryWrite,
    responses(
        (status = 200, description = "Category replaced", body = CategoryView),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 404, description = "No such category", body = ErrorBody),
        (status = 409, description = "Slug taken", body = ErrorBody),
    ))]
pub async fn replace_category(
    state: web::Data<AppState>,
    staff: StaffUser,
    key: web::Path<String>,
    body: Json<CategoryWrite>,
) -> Result<HttpResponse, ApiError> {
    write(&state, &staff, &key, body.into_inner(), true).await
}

#[utoipa::path(patch, path = "/api/categories/{key}/", tag = "catalog",
    security(("bearer" = [])),
    params(("key" = u64, Path, description = "Category id (writes take the id, not the slug)")),
    request_body = CategoryWrite,
    responses(
        (status = 200, description = "Category updated", body = CategoryView),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 404, description = "No such category", body = ErrorBody),
        (status = 409, description = "Slug taken", body = ErrorBody),
    ))]
pub async fn patch_category(
    state: web::Data<AppState>,
    staff: StaffUser,
    key: web::Path<String>,
    body: Json<CategoryWrite>,
) -> Result<HttpResponse, ApiError> {
    write(&state, &staff, &key, body.into_inner(), false).await
}

#[utoipa::path(delete, path = "/api/categories/{key}/", tag = "catalog",
    security(("bearer" = [])),
    params(("key" = u64, Path, description = "Category id (writes take the id, not the slug)")),
    responses(
        (status = 204, description = "Category deleted"),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 404, description = "No such category", body = ErrorBody),
        (status = 409, description = "The category still has products", body = ErrorBody),
    ))]
pub async fn delete_category(
    state: web::Data<AppState>,
    staff: StaffUser,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: CategoryId = key.parse().map_err(|_| ApiError::not_found("category"))?;
    state
        .catalog
        .delete_category(id)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::not_found("category"),
            e => e.into(),
        })?;
    state
        .shop
        .audit(
            &staff.0,
            "category.delete",
            Target::Category(id.0),
            json!({}),
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
