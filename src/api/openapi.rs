//! `GET /api/openapi.json`: the OpenAPI 3.1 document of every route.
//! Each handler carries its `#[utoipa::path]`; list new ones here.

use super::{
    admin_analytics, admin_audit, admin_inventory, admin_orders, admin_users, auth, brands, cart,
    categories, checkout, error, health, import, media, orders, payments, products, profile,
    reviews, webhooks, wishlist,
};
use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
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
    modifiers(&BearerAuth),
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

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/openapi.json").route(web::get().to(document)));
}

async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
