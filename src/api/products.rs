//! `/api/products/*`: the shopper listing (search, filters, ordering,
//! DRF-style pages), product detail by id or slug, and staff CRUD.
//!
//! Invariants: shoppers never see inactive products (404, as if absent);
//! listings and details are served from the in-memory index snapshot, never
//! by scanning sled; every write goes through the catalog service, so it is
//! indexed and durable before the response.

use super::error::{ApiError, ErrorBody};
use super::extract::{Json, MaybeUser, StaffUser};
use super::AppState;
use crate::catalog::index::{Doc, Query, Snapshot, SortOrder};
use crate::catalog::view::write_doc;
use crate::domain::audit::Target;
use crate::domain::catalog::{
    parse_image_url, parse_slug, parse_stock, NewProduct, DESCRIPTION_MAX, NAME_MAX,
};
use crate::domain::ledger::{StockCause, StockChange};
use crate::domain::money::{Currency, Money};
use crate::domain::validation::bounded_text;
use crate::domain::{BrandId, CategoryId, FieldErrors, ProductId};
use crate::store::catalog::Deletion;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

/// Largest page; bigger `page_size` values are clamped to it (as DRF's `max_page_size`).
pub const MAX_PAGE_SIZE: usize = 100;
pub const DEFAULT_PAGE_SIZE: usize = 20;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/products")
            .route(web::get().to(list_products))
            .route(web::post().to(create_product)),
    )
    .service(
        web::resource("/api/products/{key}")
            .route(web::get().to(get_product))
            .route(web::put().to(replace_product))
            .route(web::patch().to(patch_product))
            .route(web::delete().to(delete_product)),
    );
}

// ---------- views ----------

pub use crate::catalog::view::{BrandRef, CategoryRef, ProductView};

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductPage<'a> {
    /// Matching products over all pages.
    pub count: usize,
    /// URL of the next page, null on the last.
    pub next: Option<String>,
    /// URL of the previous page, null on the first.
    pub previous: Option<String>,
    pub results: Vec<ProductView<'a>>,
}

// ---------- listing ----------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Words that must all appear (as word prefixes) in the name, description,
    /// category or brand name; case and accents are ignored. Without
    /// `ordering`, products whose name holds every word come first.
    pub search: Option<String>,
    /// Category id or slug.
    #[param(
        max_length = 100,
        pattern = "^([0-9]{1,19}|([a-z0-9][a-z0-9-]*)?[a-z]([a-z0-9-]*[a-z0-9])?)$"
    )]
    pub category: Option<String>,
    /// Brand id or slug.
    #[param(
        max_length = 100,
        pattern = "^([0-9]{1,19}|([a-z0-9][a-z0-9-]*)?[a-z]([a-z0-9-]*[a-z0-9])?)$"
    )]
    pub brand: Option<String>,
    /// Lowest price, a decimal string ("10.00").
    #[param(schema_with = money_text)]
    pub min_price: Option<String>,
    /// Highest price, a decimal string.
    #[param(schema_with = money_text)]
    pub max_price: Option<String>,
    /// `true`: only products with stock on hand.
    pub in_stock: Option<bool>,
    /// `price`, `-price`, `name`, `-created_at` (default without search) or `-rating`.
    #[param(schema_with = ordering_schema)]
    pub ordering: Option<String>,
    /// 1-based page number; a page past the last one is 404.
    #[param(minimum = 1, maximum = 18446744073709551615u64)]
    pub page: Option<u64>,
    /// Products per page (default 20); values over 100 are clamped to 100.
    #[param(minimum = 1, maximum = 18446744073709551615u64)]
    pub page_size: Option<u64>,
}

fn money_text() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .pattern(Some(super::openapi::MONEY_PATTERN))
        .build()
}

fn ordering_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(["price", "-price", "name", "-created_at", "-rating"]))
        .build()
}

/// Resolves a category given as id or slug.
pub fn category_in(snapshot: &Snapshot, key: &str) -> Option<CategoryId> {
    match key.parse::<u64>() {
        Ok(id) => snapshot.category(CategoryId(id)).map(|c| c.id),
        Err(_) => snapshot.category_by_slug(key).map(|c| c.id),
    }
}

pub fn brand_in(snapshot: &Snapshot, key: &str) -> Option<BrandId> {
    match key.parse::<u64>() {
        Ok(id) => snapshot.brand(BrandId(id)).map(|b| b.id),
        Err(_) => snapshot.brand_by_slug(key).map(|b| b.id),
    }
}

/// The URL of this listing up to the page number, DRF style: the request's
/// other parameters in their order, decoded and encoded again, then
/// `page=`. Built once per request for both `next` and `previous`.
fn page_url_prefix(req: &HttpRequest) -> String {
    let info = req.connection_info();
    let query = req.query_string();
    let mut url = String::with_capacity(64 + query.len() * 2);
    url.push_str(info.scheme());
    url.push_str("://");
    url.push_str(info.host());
    url.push_str(req.path().trim_end_matches('/'));
    url.push_str("/?");
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if key == "page" {
            continue;
        }
        encode_component(&key, &mut url);
        url.push('=');
        encode_component(&value, &mut url);
        url.push('&');
    }
    url.push_str("page=");
    url
}

/// Percent-encodes all but unreserved characters (RFC 3986).
fn encode_component(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xF)]));
        }
    }
}

fn parse_price_filter(
    field: &str,
    text: &str,
    currency: Currency,
    errors: &mut FieldErrors,
) -> Option<i64> {
    errors
        .check(field, Money::parse_decimal(text, currency))
        .map(|m| m.minor)
}

#[utoipa::path(get, path = "/api/products/", tag = "catalog",
    security((), ("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "One page of products", body = ProductPage),
        (status = 400, description = "Invalid filter, ordering or page", body = ErrorBody),
        (status = 404, description = "Page past the last one", body = ErrorBody),
    ))]
pub async fn list_products(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: MaybeUser,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let params = params.into_inner();
    let snapshot = state.catalog.index().snapshot();
    let currency = state.catalog.currency();
    let mut errors = FieldErrors::new();
    let mut query = Query {
        search: params.search.filter(|s| !s.trim().is_empty()),
        in_stock: params.in_stock.unwrap_or(false),
        include_inactive: caller.0.as_ref().is_some_and(|i| i.user.is_staff),
        ..Query::default()
    };
    if let Some(key) = params.category.as_deref() {
        query.category = category_in(&snapshot, key);
        if query.category.is_none() {
            errors.add("category", format!("no category with id or slug \"{key}\""));
        }
    }
    if let Some(key) = params.brand.as_deref() {
        query.brand = brand_in(&snapshot, key);
        if query.brand.is_none() {
            errors.add("brand", format!("no brand with id or slug \"{key}\""));
        }
    }
    if let Some(text) = params.min_price.as_deref() {
        query.min_price = parse_price_filter("min_price", text, currency, &mut errors);
    }
    if let Some(text) = params.max_price.as_deref() {
        query.max_price = parse_price_filter("max_price", text, currency, &mut errors);
    }
    if let Some(text) = params.ordering.as_deref() {
        query.ordering = SortOrder::parse(text);
        if query.ordering.is_none() {
            errors.add(
                "ordering",
                "must be one of price, -price, name, -created_at, -rating",
            );
        }
    }
    let page = params.page.unwrap_or(1);
    if page == 0 {
        errors.add("page", "pages start at 1");
    }
    let page_size = params.page_size.unwrap_or(DEFAULT_PAGE_SIZE as u64);
    if page_size == 0 {
        errors.add("page_size", "must be at least 1");
    }
    errors.into_result()?;
    let page_size = page_size.min(MAX_PAGE_SIZE as u64) as usize;
    let page = usize::try_from(page).unwrap_or(usize::MAX);
    query.limit = page_size;
    query.offset = (page - 1).saturating_mul(page_size);
    let (count, docs) = snapshot.query(&query);
    if page > 1 && query.offset >= count {
        return Err(ApiError::NotFound(format!(
            "page {page} is past the last page ({} products, {} per page)",
            count, page_size
        )));
    }
    let has_next = query.offset + page_size < count;
    let prefix = (has_next || page > 1).then(|| page_url_prefix(&req));
    let url = |page: usize| prefix.as_deref().map(|p| format!("{p}{page}"));
    let next = if has_next { url(page + 1) } else { None };
    let previous = if page > 1 { url(page - 1) } else { None };
    let mut body = Vec::with_capacity(page_capacity(&docs, &next, &previous));
    write_page(
        &mut body,
        count,
        next.as_deref(),
        previous.as_deref(),
        &docs,
        &snapshot,
    )
    .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body))
}

/// Writes the JSON of a `ProductPage`, byte for byte what serde would
/// write, from the documents' pre-rendered views: rendering each product's
/// view per request was most of a listing's cost.
fn write_page(
    out: &mut Vec<u8>,
    count: usize,
    next: Option<&str>,
    previous: Option<&str>,
    docs: &[&Doc],
    snapshot: &Snapshot,
) -> serde_json::Result<()> {
    out.extend_from_slice(b"{\"count\":");
    serde_json::to_writer(&mut *out, &count)?;
    out.extend_from_slice(b",\"next\":");
    serde_json::to_writer(&mut *out, &next)?;
    out.extend_from_slice(b",\"previous\":");
    serde_json::to_writer(&mut *out, &previous)?;
    out.extend_from_slice(b",\"results\":[");
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_doc(doc, snapshot, out)?;
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

/// A page's size in bytes, rounded up, so the body is not reallocated while
/// it is written.
fn page_capacity(docs: &[&Doc], next: &Option<String>, previous: &Option<String>) -> usize {
    // Per product: stock digits, the in_stock flag and a comma. The URLs
    // are percent-encoded by `page_url_prefix`, so JSON rarely escapes anything.
    let products: usize = docs
        .iter()
        .map(|d| d.rendered().map_or(1024, |r| r.len()) + 32)
        .sum();
    let urls: usize = [next, previous]
        .iter()
        .map(|u| u.as_ref().map_or(0, |u| u.len() + 16))
        .sum();
    128 + products + urls
}

// ---------- detail ----------

#[utoipa::path(get, path = "/api/products/{key}/", tag = "catalog",
    security((), ("bearer" = [])),
    params(("key" = String, Path, description = "Product id or slug")),
    responses(
        (status = 200, description = "The product", body = ProductView),
        (status = 404, description = "No such product (or inactive, for shoppers)", body = ErrorBody),
    ))]
pub async fn get_product(
    state: web::Data<AppState>,
    caller: MaybeUser,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let snapshot = state.catalog.index().snapshot();
    let doc = match key.parse::<u64>() {
        Ok(id) => snapshot.product(ProductId(id)),
        Err(_) => snapshot.product_by_slug(&key),
    };
    let is_staff = caller.0.as_ref().is_some_and(|i| i.user.is_staff);
    match doc {
        Some(doc) if doc.product.is_active || is_staff => {
            let mut body = Vec::with_capacity(doc.rendered().map_or(1024, |r| r.len() + 32));
            write_doc(doc, &snapshot, &mut body).map_err(|e| ApiError::Internal(e.into()))?;
            Ok(HttpResponse::Ok()
                .content_type(actix_web::http::header::ContentType::json())
                .body(body))
        }
        _ => Err(ApiError::not_found("product")),
    }
}

// ---------- staff writes ----------

/// Distinguishes an absent field (`None`) from an explicit null (`Some(None)`).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Body of POST (name, price and category required), PUT (the same; absent
/// optional fields reset) and PATCH (only the fields given change).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductWrite {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: Option<String>,
    /// Lowercase letters, digits and hyphens; derived from the name when absent.
    #[schema(
        max_length = 100,
        pattern = "^([a-z0-9][a-z0-9-]*)?[a-z]([a-z0-9-]*[a-z0-9])?$"
    )]
    pub slug: Option<String>,
    #[schema(
        max_length = 10000,
        pattern = "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$"
    )]
    pub description: Option<String>,
    /// Decimal string ("19.99") or a whole number of currency units; never a float.
    #[schema(schema_with = price_schema)]
    pub price: Option<Value>,
    /// Category id or slug.
    #[schema(schema_with = reference_schema)]
    pub category: Option<Value>,
    /// Brand id or slug; null for none.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = reference_schema)]
    pub brand: Option<Option<Value>>,
    /// External http(s) image URL; null to remove. Upload files at `/api/products/{id}/image/`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 2000, pattern = "^(|https?://[^\\s\"<>/?#:@\\u0000-\\u001F\\u007F-\\u009F][^\\s\"<>\\u0000-\\u001F\\u007F-\\u009F]*)$")]
    pub image: Option<Option<String>>,
    /// Units on hand. At creation it is the initial stock; later it is a
    /// stock correction that goes through the inventory owner.
    #[serde(default, deserialize_with = "super::whole::opt_i64")]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub stock: Option<i64>,
    pub is_active: Option<bool>,
}

/// A price as written: a decimal string in the shop currency or a whole
/// number of units (the served document fits the pattern to the currency).
fn price_schema() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{OneOfBuilder, Type};
    use utoipa::openapi::ObjectBuilder;
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(super::openapi::MONEY_PATTERN)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .maximum(Some(999_999_999_999_999i64)),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build()
        .into()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Replace,
    Patch,
}

/// Validated changes of a product write.
struct ProductChanges {
    name: Option<String>,
    slug: Option<String>,
    description: Option<String>,
    price: Option<Money>,
    category: Option<CategoryId>,
    brand: Option<Option<BrandId>>,
    image: Option<Option<String>>,
    stock: Option<i64>,
    is_active: Option<bool>,
}

pub fn parse_price(value: &Value, currency: Currency) -> Result<Money, String> {
    match value {
        Value::String(text) => Money::parse_decimal(text, currency),
        Value::Number(n) => {
            // `12.0` is a whole number too (JSON Schema's `integer` includes it).
            let whole = n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                    .map(|f| f as i64)
            });
            match whole {
                Some(units) if units < 0 => Err("must not be negative".into()),
                Some(units) => Money::parse_decimal(&units.to_string(), currency),
                None if n.as_f64().is_some_and(|f| f < 0.0) => Err("must not be negative".into()),
                None if n.as_f64().is_some_and(|f| f.fract() == 0.0) => Err("is too large".into()),
                None => Err("send fractional prices as a string like \"19.99\"".into()),
            }
        }
        _ => Err("must be a decimal string like \"19.99\"".into()),
    }
}

/// A category or brand given by id or slug (null, for a brand: none).
fn reference_schema() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{OneOfBuilder, Type};
    use utoipa::openapi::ObjectBuilder;
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(100))
                .pattern(Some(
                    "^([0-9]{1,19}|([a-z0-9][a-z0-9-]*)?[a-z]([a-z0-9-]*[a-z0-9])?)$",
                )),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build()
        .into()
}

fn reference_key(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

fn parse_changes(
    body: ProductWrite,
    mode: Mode,
    snapshot: &Snapshot,
    currency: Currency,
) -> Result<ProductChanges, FieldErrors> {
    let mut errors = FieldErrors::new();
    if mode != Mode::Patch {
        for (field, present) in [
            ("name", body.name.is_some()),
            ("price", body.price.is_some()),
            ("category", body.category.is_some()),
        ] {
            if !present {
                errors.add(field, "this field is required");
            }
        }
    }
    let name = body
        .name
        .and_then(|n| errors.check("name", bounded_text(&n, 1, NAME_MAX)));
    let slug = body.slug.and_then(|s| errors.check("slug", parse_slug(&s)));
    let description = body
        .description
        .and_then(|d| errors.check("description", bounded_text(&d, 0, DESCRIPTION_MAX)));
    let price = body
        .price
        .and_then(|p| errors.check("price", parse_price(&p, currency)));
    let category = body.category.and_then(|value| {
        let found = reference_key(&value).and_then(|k| category_in(snapshot, &k));
        if found.is_none() {
            errors.add("category", "no such category");
        }
        found
    });
    let brand = body.brand.map(|value| {
        value.and_then(|value| {
            let found = reference_key(&value).and_then(|k| brand_in(snapshot, &k));
            if found.is_none() {
                errors.add("brand", "no such brand");
            }
            found
        })
    });
    let image = body.image.map(|url| {
        url.filter(|u| !u.trim().is_empty())
            .and_then(|u| errors.check("image", parse_image_url(&u)))
    });
    let stock = body
        .stock
        .and_then(|s| errors.check("stock", parse_stock(s)));
    errors.into_result()?;
    let mut changes = ProductChanges {
        name,
        slug,
        description,
        price,
        category,
        brand,
        image,
        stock,
        is_active: body.is_active,
    };
    if mode == Mode::Replace {
        // PUT replaces the whole record: absent optional fields take their defaults.
        changes.description.get_or_insert_with(String::new);
        changes.brand.get_or_insert(None);
        changes.image.get_or_insert(None);
        changes.is_active.get_or_insert(true);
    }
    Ok(changes)
}

#[utoipa::path(post, path = "/api/products/", tag = "catalog",
    security(("bearer" = [])),
    request_body = ProductWrite,
    responses(
        (status = 201, description = "Product created", body = ProductView),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 409, description = "Slug taken", body = ErrorBody),
    ))]
pub async fn create_product(
    state: web::Data<AppState>,
    staff: StaffUser,
    body: Json<ProductWrite>,
) -> Result<HttpResponse, ApiError> {
    let catalog = &state.catalog;
    let snapshot = catalog.index().snapshot();
    let c = parse_changes(
        body.into_inner(),
        Mode::Create,
        &snapshot,
        catalog.currency(),
    )?;
    let (Some(name), Some(price), Some(category)) = (c.name, c.price, c.category) else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "required fields passed validation unset"
        )));
    };
    let slug = match c.slug {
        Some(slug) => slug,
        None => catalog.free_product_slug(&name)?,
    };
    let (product, stock) = catalog
        .create_product(NewProduct {
            name,
            slug,
            description: c.description.unwrap_or_default(),
            price,
            category,
            brand: c.brand.flatten(),
            image: c.image.flatten(),
            is_active: c.is_active.unwrap_or(true),
            stock: c.stock.unwrap_or(0),
        })
        .await?;
    tracing::info!(product_id = %product.id, "product created");
    let snapshot = catalog.index().snapshot();
    let view = ProductView::new(&product, stock.on_hand, &snapshot);
    state
        .shop
        .audit(
            &staff.0,
            "product.create",
            Target::Product(product.id.0),
            json!(view),
        )
        .await?;
    Ok(HttpResponse::Created().json(view))
}

fn product_id(key: &str) -> Result<ProductId, ApiError> {
    key.parse().map_err(|_| ApiError::not_found("product"))
}

async fn write_product(
    state: &AppState,
    staff: &StaffUser,
    key: &str,
    body: ProductWrite,
    mode: Mode,
) -> Result<HttpResponse, ApiError> {
    let catalog = &state.catalog;
    let id = product_id(key)?;
    let snapshot = catalog.index().snapshot();
    if snapshot.product(id).is_none() {
        return Err(ApiError::not_found("product"));
    }
    let c = parse_changes(body, mode, &snapshot, catalog.currency())?;
    let stock = c.stock;
    let product = catalog
        .update_product(id, |p| {
            if let Some(v) = &c.name {
                p.name = v.clone();
            }
            if let Some(v) = &c.slug {
                p.slug = v.clone();
            }
            if let Some(v) = &c.description {
                p.description = v.clone();
            }
            if let Some(v) = c.price {
                p.price = v;
            }
            if let Some(v) = c.category {
                p.category = v;
            }
            if let Some(v) = c.brand {
                p.brand = v;
            }
            if let Some(v) = &c.image {
                p.image = v.clone();
            }
            if let Some(v) = c.is_active {
                p.is_active = v;
            }
        })
        .await?;
    if let Some(units) = stock {
        let change = StockChange {
            cause: StockCause::Count,
            by: Some(staff.0.user.id),
            reason: Some("stock set in a product edit".into()),
        };
        state.shop.set_stock(id, units, change).await?;
    }
    tracing::info!(product_id = %id, "product updated");
    let snapshot = catalog.index().snapshot();
    let on_hand = snapshot.product(id).map(|d| d.on_hand()).unwrap_or(0);
    let view = ProductView::new(&product, on_hand, &snapshot);
    let action = match mode {
        Mode::Replace => "product.replace",
        _ => "product.update",
    };
    state
        .shop
        .audit(&staff.0, action, Target::Product(id.0), json!(view))
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(put, path = "/api/products/{key}/", tag = "catalog",
    security(("bearer" = [])),
    params(("key" = u64, Path, description = "Product id (writes take the id, not the slug)")),
    request_body = ProductWrite,
    responses(
        (status = 200, description = "Product replaced", body = ProductView),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 409, description = "Slug taken or stock conflict", body = ErrorBody),
    ))]
pub async fn replace_product(
    state: web::Data<AppState>,
    staff: StaffUser,
    key: web::Path<String>,
    body: Json<ProductWrite>,
) -> Result<HttpResponse, ApiError> {
    write_product(&state, &staff, &key, body.into_inner(), Mode::Replace).await
}

#[utoipa::path(patch, path = "/api/products/{key}/", tag = "catalog",
    security(("bearer" = [])),
    params(("key" = u64, Path, description = "Product id (writes take the id, not the slug)")),
    request_body = ProductWrite,
    responses(
        (status = 200, description = "Product updated", body = ProductView),
        (status = 400, description = "Invalid fields", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 409, description = "Slug taken or stock conflict", body = ErrorBody),
    ))]
pub async fn patch_product(
    state: web::Data<AppState>,
    staff: StaffUser,
    key: web::Path<String>,
    body: Json<ProductWrite>,
) -> Result<HttpResponse, ApiError> {
    write_product(&state, &staff, &key, body.into_inner(), Mode::Patch).await
}

#[utoipa::path(delete, path = "/api/products/{key}/", tag = "catalog",
    security(("bearer" = [])),
    params(("key" = u64, Path, description = "Product id (writes take the id, not the slug)")),
    responses(
        (status = 200, description = "Orders reference the product: it was deactivated instead", body = ProductView),
        (status = 204, description = "Product deleted"),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
    ))]
pub async fn delete_product(
    state: web::Data<AppState>,
    staff: StaffUser,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = product_id(&key)?;
    let old_image = state.catalog.store().product(id)?.and_then(|p| p.image);
    let deletion = state.catalog.delete_product(id).await?;
    let kind = match &deletion {
        Deletion::Soft(_) => "deactivated",
        Deletion::Hard => "deleted",
    };
    state
        .shop
        .audit(
            &staff.0,
            "product.delete",
            Target::Product(id.0),
            json!({"outcome": kind}),
        )
        .await?;
    match deletion {
        Deletion::Soft(product) => {
            tracing::info!(product_id = %id, "product deactivated (referenced by orders)");
            let snapshot = state.catalog.index().snapshot();
            let on_hand = snapshot.product(id).map(|d| d.on_hand()).unwrap_or(0);
            Ok(HttpResponse::Ok().json(ProductView::new(&product, on_hand, &snapshot)))
        }
        Deletion::Hard => {
            tracing::info!(product_id = %id, "product deleted");
            if let Some(image) = old_image {
                crate::catalog::media::remove(state.store.data_dir(), &image);
            }
            Ok(HttpResponse::NoContent().finish())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::generate;
    use crate::catalog::index::CatalogIndex;

    /// The page URLs as they were built before they shared one prefix.
    fn reference_page_url(req: &HttpRequest, page: usize) -> String {
        let info = req.connection_info();
        let pairs: Vec<(String, String)> =
            web::Query::<Vec<(String, String)>>::from_query(req.query_string())
                .map(|q| q.into_inner())
                .unwrap_or_default();
        let encode = |text: &str| {
            let mut out = String::new();
            for b in text.bytes() {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            out
        };
        let mut query: Vec<String> = pairs
            .iter()
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        query.push(format!("page={page}"));
        format!(
            "{}://{}{}/?{}",
            info.scheme(),
            info.host(),
            req.path().trim_end_matches('/'),
            query.join("&")
        )
    }

    #[test]
    fn page_urls_keep_the_other_parameters_re_encoded_in_order() {
        let queries = [
            "",
            "page=2",
            "ordering=-price&page=3&category=kitchen",
            "search=caf%C3%A9+mug&page_size=2&page=2&page=9",
            "x&=y&a=%zz&b=%E2%9C%93&c=a%26b%3Dc&d=+&e=%2B&page",
            "search=%FF%FE&sp%20ace=1",
        ];
        for query in queries {
            for host in ["shop.example.com", "127.0.0.1:8080"] {
                let req = actix_web::test::TestRequest::with_uri(&format!("/api/products?{query}"))
                    .insert_header(("host", host))
                    .to_http_request();
                let prefix = page_url_prefix(&req);
                for page in [1, 2, 10, usize::MAX] {
                    assert_eq!(
                        format!("{prefix}{page}"),
                        reference_page_url(&req, page),
                        "{query}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_written_page_is_the_serialised_product_page() {
        let generate::GeneratedShop { _dir, store, .. } = generate::generated_shop(30, 3);
        let index = CatalogIndex::build(&store).expect("index");
        let snapshot = index.snapshot();
        let urls = [
            None,
            Some("http://127.0.0.1:8080/api/products/?search=caf%C3%A9&page=2".to_owned()),
            Some("http://h\"ost\\/api/products/?page=1".to_owned()),
        ];
        for limit in [0, 1, 20] {
            let (count, docs) = snapshot.query(&Query {
                limit,
                ..Query::default()
            });
            for next in &urls {
                for previous in &urls {
                    let mut written = Vec::new();
                    write_page(
                        &mut written,
                        count,
                        next.as_deref(),
                        previous.as_deref(),
                        &docs,
                        &snapshot,
                    )
                    .expect("write");
                    let page = ProductPage {
                        count,
                        next: next.clone(),
                        previous: previous.clone(),
                        results: docs
                            .iter()
                            .map(|d| ProductView::of_doc(d, &snapshot))
                            .collect(),
                    };
                    let serialised = serde_json::to_vec(&page).expect("serialise");
                    assert_eq!(
                        String::from_utf8_lossy(&written),
                        String::from_utf8_lossy(&serialised)
                    );
                }
            }
        }
    }
}
