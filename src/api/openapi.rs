//! `GET /api/openapi.json`: the OpenAPI 3.1 document of every route.
//! Each handler carries its `#[utoipa::path]`; list new ones here.

use super::limits::Group;
use super::AppState;
use super::{
    admin_analytics, admin_audit, admin_inventory, admin_orders, admin_users, auth, brands, cart,
    categories, checkout, error, health, import, media, orders, payments, products, profile,
    reviews, webhooks, wishlist,
};
use crate::domain::money::Currency;
use actix_web::http::Method;
use actix_web::{web, HttpResponse};
use serde_json::Value;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{KnownFormat, OneOfBuilder, SchemaFormat, SchemaType};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, Required, Schema, Type,
};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Storefront API", description = "Real-time e-commerce server: REST API. Paths are shown with a trailing slash; the form without it works too."),
    paths(
        auth::register, auth::login, auth::refresh, auth::logout,
        profile::get_profile, profile::update_profile, profile::change_password,
        admin_users::list_users, admin_users::update_user,
        health::healthz, health::metrics,
        products::list_products, products::get_product, products::create_product,
        products::replace_product, products::patch_product, products::delete_product,
        categories::list_categories, categories::get_category, categories::create_category,
        categories::replace_category, categories::patch_category, categories::delete_category,
        brands::list_brands, brands::get_brand, brands::create_brand,
        brands::replace_brand, brands::patch_brand, brands::delete_brand,
        media::upload_product_image, media::upload_brand_logo,
        cart::get_cart, cart::add_to_cart, cart::set_quantity, cart::remove_item, cart::clear_cart,
        checkout::checkout,
        orders::list_orders, orders::get_order, orders::cancel_order,
        admin_orders::list_orders, admin_orders::update_order, admin_orders::restock,
        admin_inventory::list_inventory, admin_inventory::get_inventory,
        admin_inventory::adjust_stock, admin_inventory::ledger,
        admin_analytics::analytics, admin_audit::list_audit,
        wishlist::get_wishlist, wishlist::add_to_wishlist, wishlist::remove_from_wishlist,
        wishlist::move_to_cart,
        reviews::list_reviews, reviews::create_review, reviews::update_review,
        reviews::delete_review,
        payments::start_payment, payments::providers, payments::order_payments,
        payments::razorpay_verify, payments::paypal_capture, payments::refund,
        webhooks::receive,
        import::import_products,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    modifiers(&BearerAuth, &SharedResponses, &RequiredAtCreation),
    tags(
        (name = "auth", description = "Register, log in, refresh and log out"),
        (name = "profile", description = "Your own account"),
        (name = "cart", description = "Your cart (anonymous carts by token)"),
        (name = "orders", description = "Checkout and your orders"),
        (name = "wishlist", description = "Your saved products"),
        (name = "reviews", description = "Product reviews and ratings"),
        (name = "admin", description = "Staff back office"),
        (name = "payments", description = "Payments with Stripe, PayPal, Razorpay or the test provider"),
        (name = "ops", description = "Health and metrics"),
        (name = "catalog", description = "Products, categories, brands, search and images"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// POST and PUT of products, categories and brands share their body type
/// with PATCH, but need some fields that PATCH leaves optional: they get a
/// copy of the schema with those fields required.
struct RequiredAtCreation;

impl Modify for RequiredAtCreation {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let cases: [(&str, &str, &[&str], &str, &str); 4] = [
            (
                "ProductWrite",
                "ProductCreate",
                &["name", "price", "category"],
                "/api/products/",
                "/api/products/{key}/",
            ),
            (
                "CategoryWrite",
                "CategoryCreate",
                &["name"],
                "/api/categories/",
                "/api/categories/{key}/",
            ),
            (
                "BrandWrite",
                "BrandCreate",
                &["name"],
                "/api/brands/",
                "/api/brands/{key}/",
            ),
            (
                "ReviewWrite",
                "ReviewCreate",
                &["rating"],
                "/api/products/{id}/reviews/",
                "",
            ),
        ];
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for (write, create, required, collection, item) in cases {
            let Some(RefOr::T(Schema::Object(object))) = components.schemas.get(write) else {
                continue;
            };
            let mut object = object.clone();
            object.required = required.iter().map(|f| f.to_string()).collect();
            // A required field may not be null either (null reads as absent).
            for field in required {
                if let Some(RefOr::T(property)) = object.properties.get_mut(*field) {
                    forbid_null(property);
                }
            }
            components
                .schemas
                .insert(create.into(), RefOr::T(Schema::Object(object)));
            let body = || {
                RequestBodyBuilder::new()
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name(create)))
                            .build(),
                    )
                    .required(Some(Required::True))
                    .build()
            };
            if let Some(post) = openapi
                .paths
                .paths
                .get_mut(collection)
                .and_then(|p| p.post.as_mut())
            {
                post.request_body = Some(body());
            }
            if let Some(put) = openapi
                .paths
                .paths
                .get_mut(item)
                .and_then(|p| p.put.as_mut())
            {
                put.request_body = Some(body());
            }
        }
    }
}

fn forbid_null(schema: &mut Schema) {
    match schema {
        Schema::Object(object) => {
            if let SchemaType::Array(types) = &object.schema_type {
                let types: Vec<Type> = types.iter().filter(|t| **t != Type::Null).cloned().collect();
                object.schema_type = SchemaType::from_iter(types);
            }
        }
        Schema::OneOf(one_of) => one_of.items.retain(|item| {
            !matches!(item, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null))
        }),
        _ => {}
    }
}

/// Responses every operation may give because of what runs before its
/// handler: the extractors (bad JSON, query or path), authentication, the
/// rate limiter and the store. The annotations list what the handler itself
/// decides; an annotation's own description of a status wins.
struct SharedResponses;

const BAD_REQUEST: &str = "BadRequest";
const UNAUTHORIZED: &str = "Unauthorized";
const FORBIDDEN: &str = "Forbidden";
const NOT_FOUND: &str = "NotFound";
const PAYLOAD_TOO_LARGE: &str = "PayloadTooLarge";
const UNSUPPORTED_MEDIA_TYPE: &str = "UnsupportedMediaType";
const TOO_MANY_REQUESTS: &str = "TooManyRequests";
const UNAVAILABLE: &str = "Unavailable";

fn error_response(description: &str, retry_after: bool) -> Response {
    let body = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/json", body);
    if retry_after {
        let seconds = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0));
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(seconds)
                .description(Some("Seconds to wait before trying again"))
                .build(),
        );
    }
    response.build()
}

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, description, retry_after) in [
            (BAD_REQUEST, "Malformed JSON, query string or field", false),
            (
                UNAUTHORIZED,
                "No, an invalid or an expired access token",
                false,
            ),
            (FORBIDDEN, "Staff only", false),
            (
                NOT_FOUND,
                "No such resource (or a path segment of the wrong type)",
                false,
            ),
            (PAYLOAD_TOO_LARGE, "The body is over the size limit", false),
            (
                UNSUPPORTED_MEDIA_TYPE,
                "The body is not sent as application/json",
                false,
            ),
            (
                TOO_MANY_REQUESTS,
                "Over the rate limit of this kind of request",
                true,
            ),
            (
                UNAVAILABLE,
                "Storage unavailable or full, or the shop is overloaded; try again",
                true,
            ),
        ] {
            components.responses.insert(
                name.into(),
                RefOr::T(error_response(description, retry_after)),
            );
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                (Method::GET, item.get.as_mut()),
                (Method::PUT, item.put.as_mut()),
                (Method::POST, item.post.as_mut()),
                (Method::DELETE, item.delete.as_mut()),
                (Method::PATCH, item.patch.as_mut()),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    add_shared_responses(path, &method, operation);
                }
            }
        }
    }
}

fn add_shared_responses(path: &str, method: &Method, operation: &mut Operation) {
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let has = |place: ParameterIn| parameters.iter().any(|p| p.parameter_in == place);
    let json_body = operation
        .request_body
        .as_ref()
        .is_some_and(|b| b.content.contains_key("application/json"));
    let mut shared = Vec::new();
    if json_body || has(ParameterIn::Query) {
        shared.push(("400", BAD_REQUEST));
    }
    if operation.security.is_some() {
        shared.push(("401", UNAUTHORIZED));
    }
    if path.starts_with("/api/admin/") {
        shared.push(("403", FORBIDDEN));
    }
    if has(ParameterIn::Path) {
        shared.push(("404", NOT_FOUND));
    }
    if json_body {
        shared.push(("413", PAYLOAD_TOO_LARGE));
        shared.push(("415", UNSUPPORTED_MEDIA_TYPE));
    }
    // A listing is in the search group only with `search`; the document
    // lists the 429 whenever a request to the operation can get one.
    if Group::of(method, path, "search=x").is_some() {
        shared.push(("429", TOO_MANY_REQUESTS));
    }
    if path.starts_with("/api/") {
        shared.push(("503", UNAVAILABLE));
    }
    for (status, name) in shared {
        operation
            .responses
            .responses
            .entry(status.into())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    }
}

/// A query date: YYYY-MM-DD.
pub fn day() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .into()
}

/// A query instant: RFC 3339, or YYYY-MM-DD for midnight UTC.
pub fn instant() -> Schema {
    let format = |f| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(f)))
    };
    OneOfBuilder::new()
        .item(format(KnownFormat::Date))
        .item(format(KnownFormat::DateTime))
        .into()
}

/// The pattern of a money amount in a currency with two decimals (USD, EUR).
/// Schemas use it for every amount; the served document swaps in the shop
/// currency's own (see `money_pattern`).
pub const MONEY_PATTERN: &str = r"^[0-9]{1,15}(\.[0-9]{1,2})?$";

/// The amounts `Money::parse_decimal` accepts in `currency`: up to 15 whole
/// digits (far from overflow) and at most the currency's decimals.
fn money_pattern(currency: Currency) -> String {
    match currency.exponent() {
        0 => r"^[0-9]{1,15}$".to_owned(),
        n => format!(r"^[0-9]{{1,15}}(\.[0-9]{{1,{n}}})?$"),
    }
}

/// The document as served: the amounts in the shop currency.
pub fn document_for(currency: Currency) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let pattern = Value::String(money_pattern(currency));
    replace_money_patterns(&mut doc, &pattern);
    doc
}

fn replace_money_patterns(value: &mut Value, pattern: &Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "pattern" && child.as_str() == Some(MONEY_PATTERN) {
                    *child = pattern.clone();
                } else {
                    replace_money_patterns(child, pattern);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| replace_money_patterns(item, pattern)),
        _ => {}
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/openapi.json").route(web::get().to(document)));
}

async fn document(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(document_for(state.catalog.currency()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_money_pattern_follows_the_currency() {
        assert_eq!(money_pattern(Currency::USD), MONEY_PATTERN);
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(money_pattern(jpy), r"^[0-9]{1,15}$");
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(money_pattern(kwd), r"^[0-9]{1,15}(\.[0-9]{1,3})?$");
    }
}
