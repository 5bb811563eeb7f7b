//! Wishlists: the round trip, idempotent adds, refusals of unknown and
//! inactive products, owners only, and move-to-cart through the cart path.

use crate::helpers::{body, error_code, spawn_app, TestApp, TestUser};
use reqwest::StatusCode;
use serde_json::json;

struct Shop {
    app: TestApp,
    staff: TestUser,
    /// "Lamp", 40.00, stock 3.
    lamp: u64,
    /// "Vase", 15.50, stock 0.
    vase: u64,
}

async fn shop() -> Shop {
    let app = spawn_app().await;
    let staff = app.staff("keeper").await;
    let home = app.category(&staff, "Home").await;
    let lamp = app.product(&staff, home, "Lamp", "40.00", 3).await;
    let vase = app.product(&staff, home, "Vase", "15.50", 0).await;
    Shop {
        app,
        staff,
        lamp,
        vase,
    }
}

async fn wishlist(app: &TestApp, user: &TestUser) -> Vec<serde_json::Value> {
    let response = app.get("/api/wishlist/", Some(&user.access)).await;
    assert_eq!(response.status(), StatusCode::OK);
    body(response).await.as_array().expect("a list").clone()
}

#[actix_web::test]
async fn a_product_goes_on_the_wishlist_once_shows_price_and_stock_and_comes_off() {
    let s = shop().await;
    let ann = s.app.shopper("ann").await;
    let add = json!({"product_id": s.lamp});
    let first = s.app.post("/api/wishlist/", Some(&ann.access), &add).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = body(first).await;
    let again = s.app.post("/api/wishlist/", Some(&ann.access), &add).await;
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "a second add is not an error"
    );
    assert_eq!(body(again).await, first, "and changes nothing");
    s.app
        .post(
            "/api/wishlist/",
            Some(&ann.access),
            &json!({"product_id": s.vase}),
        )
        .await;

    let items = wishlist(&s.app, &ann).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0]["product_id"], s.lamp);
    assert_eq!(items[0]["price"], "40.00");
    assert_eq!(items[0]["stock"], 3);
    assert_eq!(items[0]["available"], true);
    assert_eq!(items[1]["product_id"], s.vase);
    assert_eq!(items[1]["available"], false, "sold out");

    // Other shoppers have their own list.
    let bob = s.app.shopper("bob").await;
    assert!(wishlist(&s.app, &bob).await.is_empty());
    let not_bobs = s
        .app
        .delete(&format!("/api/wishlist/{}/", s.lamp), Some(&bob.access))
        .await;
    assert_eq!(
        error_code(not_bobs, StatusCode::NOT_FOUND).await,
        "not_found"
    );

    let removed = s
        .app
        .delete(&format!("/api/wishlist/{}/", s.lamp), Some(&ann.access))
        .await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let items = wishlist(&s.app, &ann).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["product_id"], s.vase);
    let twice = s
        .app
        .delete(&format!("/api/wishlist/{}/", s.lamp), Some(&ann.access))
        .await;
    assert_eq!(error_code(twice, StatusCode::NOT_FOUND).await, "not_found");
}

#[actix_web::test]
async fn unknown_and_inactive_products_and_bad_bodies_are_refused() {
    let s = shop().await;
    let ann = s.app.shopper("ann").await;
    let hidden = s
        .app
        .patch(
            &format!("/api/products/{}/", s.vase),
            Some(&s.staff.access),
            &json!({"is_active": false}),
        )
        .await;
    assert_eq!(hidden.status(), StatusCode::OK);
    let cases = [
        (
            json!({"product_id": 999_999}),
            StatusCode::NOT_FOUND,
            "unknown product",
        ),
        (
            json!({"product_id": s.vase}),
            StatusCode::NOT_FOUND,
            "inactive product",
        ),
        (
            json!({"product_id": "lamp"}),
            StatusCode::BAD_REQUEST,
            "id as text",
        ),
        (json!({}), StatusCode::BAD_REQUEST, "no product"),
        (
            json!({"product_id": s.lamp, "note": "x"}),
            StatusCode::BAD_REQUEST,
            "unknown field",
        ),
    ];
    for (payload, status, case) in cases {
        let response = s
            .app
            .post("/api/wishlist/", Some(&ann.access), &payload)
            .await;
        assert_eq!(response.status(), status, "{case}");
        let value = body(response).await;
        assert!(value["error"]["code"].is_string(), "{case}: {value}");
    }
    assert!(wishlist(&s.app, &ann).await.is_empty(), "nothing was added");
    let anonymous = s
        .app
        .post("/api/wishlist/", None, &json!({"product_id": s.lamp}))
        .await;
    assert_eq!(
        error_code(anonymous, StatusCode::UNAUTHORIZED).await,
        "not_authenticated"
    );
    assert_eq!(
        s.app.get("/api/wishlist/", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn move_to_cart_puts_one_unit_in_the_cart_and_leaves_the_wishlist_alone_when_it_cannot() {
    let s = shop().await;
    let ann = s.app.shopper("ann").await;
    for product in [s.lamp, s.vase] {
        let added = s
            .app
            .post(
                "/api/wishlist/",
                Some(&ann.access),
                &json!({"product_id": product}),
            )
            .await;
        assert_eq!(added.status(), StatusCode::CREATED);
    }
    let moved = s
        .app
        .post(
            &format!("/api/wishlist/{}/move-to-cart/", s.lamp),
            Some(&ann.access),
            &json!({}),
        )
        .await;
    assert_eq!(moved.status(), StatusCode::OK);
    let cart = body(moved).await;
    assert_eq!(cart["items"][0]["product_id"], s.lamp);
    assert_eq!(cart["items"][0]["quantity"], 1);
    assert_eq!(cart["total"], "40.00");
    // The cart the shopper reads is that same cart.
    let read = body(s.app.get("/api/cart/", Some(&ann.access)).await).await;
    assert_eq!(read["items"], cart["items"]);

    // Sold out: the cart refuses, so the product stays on the wishlist.
    let sold_out = s
        .app
        .post(
            &format!("/api/wishlist/{}/move-to-cart/", s.vase),
            Some(&ann.access),
            &json!({}),
        )
        .await;
    assert_eq!(
        error_code(sold_out, StatusCode::CONFLICT).await,
        "insufficient_stock"
    );
    let items = wishlist(&s.app, &ann).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["product_id"], s.vase);
    let not_listed = s
        .app
        .post(
            &format!("/api/wishlist/{}/move-to-cart/", s.lamp),
            Some(&ann.access),
            &json!({}),
        )
        .await;
    assert_eq!(
        error_code(not_listed, StatusCode::NOT_FOUND).await,
        "not_found"
    );
}
