//! Reviews and ratings: one review per user and product, rating bounds,
//! the verified-purchase flag, the product's average after every add, edit
//! and delete, who may edit or delete, and ordering the catalog by rating.

use crate::helpers::{address_body, body, error_code, spawn_app, TestApp, TestUser};
use reqwest::StatusCode;
use serde_json::{json, Value};
use storefront::domain::order::{OrderStatus, PaymentStatus};
use storefront::domain::OrderId;

struct Shop {
    app: TestApp,
    staff: TestUser,
    category: u64,
    /// "Kettle", 30.00, stock 20.
    kettle: u64,
}

async fn shop() -> Shop {
    let app = spawn_app().await;
    let staff = app.staff("moderator").await;
    let category = app.category(&staff, "Kitchen").await;
    let kettle = app.product(&staff, category, "Kettle", "30.00", 20).await;
    Shop {
        app,
        staff,
        category,
        kettle,
    }
}

async fn review(app: &TestApp, user: &TestUser, product: u64, payload: Value) -> reqwest::Response {
    app.post(
        &format!("/api/products/{product}/reviews/"),
        Some(&user.access),
        &payload,
    )
    .await
}

async fn rating_of(app: &TestApp, product: u64) -> (Value, Value) {
    let p = body(app.get(&format!("/api/products/{product}/"), None).await).await;
    (p["rating_average"].clone(), p["rating_count"].clone())
}

#[actix_web::test]
async fn the_average_follows_every_add_edit_and_delete_and_each_user_reviews_once() {
    let s = shop().await;
    let (ann, bob, cat) = (
        s.app.shopper("ann").await,
        s.app.shopper("bob").await,
        s.app.shopper("cat").await,
    );
    assert_eq!(rating_of(&s.app, s.kettle).await, (Value::Null, json!(0)));

    let created = review(
        &s.app,
        &ann,
        s.kettle,
        json!({"rating": 5, "comment": "Boils fast"}),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let ann_review = body(created).await;
    assert_eq!(ann_review["rating"], 5);
    assert_eq!(ann_review["username"], "ann");
    assert_eq!(rating_of(&s.app, s.kettle).await, (json!("5.00"), json!(1)));

    let second = review(&s.app, &ann, s.kettle, json!({"rating": 1})).await;
    assert_eq!(
        error_code(second, StatusCode::CONFLICT).await,
        "already_reviewed"
    );
    assert_eq!(rating_of(&s.app, s.kettle).await, (json!("5.00"), json!(1)));

    let bob_review = body(review(&s.app, &bob, s.kettle, json!({"rating": 2})).await).await;
    assert_eq!(rating_of(&s.app, s.kettle).await, (json!("3.50"), json!(2)));
    let cat_review = body(review(&s.app, &cat, s.kettle, json!({"rating": 4})).await).await;
    assert_eq!(rating_of(&s.app, s.kettle).await, (json!("3.67"), json!(3)));

    let ann_path = format!("/api/reviews/{}/", ann_review["id"]);
    let edited = s
        .app
        .patch(&ann_path, Some(&ann.access), &json!({"rating": 1}))
        .await;
    assert_eq!(edited.status(), StatusCode::OK);
    let edited = body(edited).await;
    assert_eq!(edited["rating"], 1);
    assert_eq!(edited["comment"], "Boils fast", "an absent field is kept");
    assert_eq!(rating_of(&s.app, s.kettle).await, (json!("2.33"), json!(3)));

    // To another shopper it does not exist (404, not 403); staff see it
    // but cannot edit it.
    let refused = s
        .app
        .patch(&ann_path, Some(&bob.access), &json!({"rating": 5}))
        .await;
    assert_eq!(
        error_code(refused, StatusCode::NOT_FOUND).await,
        "not_found"
    );
    let refused = s
        .app
        .patch(&ann_path, Some(&s.staff.access), &json!({"rating": 5}))
        .await;
    assert_eq!(
        error_code(refused, StatusCode::FORBIDDEN).await,
        "forbidden"
    );
    let refused = s.app.delete(&ann_path, Some(&bob.access)).await;
    assert_eq!(
        error_code(refused, StatusCode::NOT_FOUND).await,
        "not_found"
    );
    assert_eq!(rating_of(&s.app, s.kettle).await, (json!("2.33"), json!(3)));

    // Staff remove bob's review; cat removes their own.
    let bob_path = format!("/api/reviews/{}/", bob_review["id"]);
    let removed = s.app.delete(&bob_path, Some(&s.staff.access)).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert_eq!(rating_of(&s.app, s.kettle).await, (json!("2.50"), json!(2)));
    let cat_path = format!("/api/reviews/{}/", cat_review["id"]);
    let removed = s.app.delete(&cat_path, Some(&cat.access)).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert_eq!(rating_of(&s.app, s.kettle).await, (json!("1.00"), json!(1)));
    let gone = s.app.delete(&cat_path, Some(&cat.access)).await;
    assert_eq!(error_code(gone, StatusCode::NOT_FOUND).await, "not_found");
    // Having deleted it, cat may review again.
    let again = review(&s.app, &cat, s.kettle, json!({"rating": 3})).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(rating_of(&s.app, s.kettle).await, (json!("2.00"), json!(2)));

    // The staff removal is in the audit log.
    let audit = body(
        s.app
            .get(
                "/api/admin/audit/?action=review.delete",
                Some(&s.staff.access),
            )
            .await,
    )
    .await;
    assert_eq!(audit["count"], 1, "{audit}");
    assert_eq!(audit["results"][0]["target_id"], bob_review["id"]);
}

#[actix_web::test]
async fn bad_ratings_and_comments_are_refused_and_change_nothing() {
    let s = shop().await;
    let ann = s.app.shopper("ann").await;
    let cases = [
        (json!({"rating": 0}), "rating", "below 1"),
        (json!({"rating": 6}), "rating", "above 5"),
        (json!({"rating": -3}), "rating", "negative"),
        (json!({"comment": "no rating"}), "rating", "rating missing"),
        (
            json!({"rating": 4, "comment": "x".repeat(4001)}),
            "comment",
            "comment too long",
        ),
    ];
    for (payload, field, case) in cases {
        let response = review(&s.app, &ann, s.kettle, payload).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        let value = body(response).await;
        assert!(
            value["error"]["fields"][field].is_string(),
            "{case}: {value}"
        );
    }
    for (payload, case) in [
        (json!({"rating": 4.5}), "fraction"),
        (json!({"rating": "5"}), "text"),
        (
            json!({"rating": 5, "verified_purchase": true}),
            "server-owned field",
        ),
    ] {
        let response = review(&s.app, &ann, s.kettle, payload).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
    }
    let unknown = review(&s.app, &ann, 999_999, json!({"rating": 5})).await;
    assert_eq!(
        error_code(unknown, StatusCode::NOT_FOUND).await,
        "not_found"
    );
    let anonymous = s
        .app
        .post(
            &format!("/api/products/{}/reviews/", s.kettle),
            None,
            &json!({"rating": 5}),
        )
        .await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(rating_of(&s.app, s.kettle).await, (Value::Null, json!(0)));
    let list = body(
        s.app
            .get(&format!("/api/products/{}/reviews/", s.kettle), None)
            .await,
    )
    .await;
    assert_eq!(list["count"], 0);
    // Markup is stored and returned as the text it is.
    let html = "<script>alert(1)</script> & <b>great</b>";
    let created = body(
        review(
            &s.app,
            &ann,
            s.kettle,
            json!({"rating": 5, "comment": html}),
        )
        .await,
    )
    .await;
    assert_eq!(created["comment"], html);
    let bad_edit = s
        .app
        .patch(
            &format!("/api/reviews/{}/", created["id"]),
            Some(&ann.access),
            &json!({"rating": 9}),
        )
        .await;
    assert_eq!(bad_edit.status(), StatusCode::BAD_REQUEST);
    assert_eq!(rating_of(&s.app, s.kettle).await, (json!("5.00"), json!(1)));
}

#[actix_web::test]
async fn verified_purchase_needs_a_paid_or_delivered_order_with_the_product() {
    let s = shop().await;
    let buyer = s.app.shopper("buyer").await;
    let browser = s.app.shopper("browser").await;
    let pending = s.app.shopper("pending").await;
    for user in [&buyer, &pending] {
        s.app.add_to_cart(user, s.kettle, 1).await;
        let placed = s.app.checkout(user, None, &address_body()).await;
        assert_eq!(placed.status(), StatusCode::CREATED);
        if user.username == "buyer" {
            // What a verified payment does to the order.
            let id = body(placed).await["id"].as_u64().unwrap();
            s.app
                .store
                .update_order(OrderId(id), |o| {
                    o.status = OrderStatus::Paid;
                    o.payment_status = PaymentStatus::Paid;
                })
                .unwrap();
            s.app.store.durable().await.unwrap();
        }
    }
    for (user, verified) in [(&buyer, true), (&browser, false), (&pending, false)] {
        let created = body(review(&s.app, user, s.kettle, json!({"rating": 4})).await).await;
        assert_eq!(
            created["verified_purchase"], verified,
            "{}: {created}",
            user.username
        );
    }
    let listed = body(
        s.app
            .get(&format!("/api/products/{}/reviews/", s.kettle), None)
            .await,
    )
    .await;
    let verified: Vec<_> = listed["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["username"].as_str().unwrap().to_owned(),
                r["verified_purchase"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verified,
        vec![
            ("pending".into(), false),
            ("browser".into(), false),
            ("buyer".into(), true),
        ],
        "newest first"
    );
}

#[actix_web::test]
async fn reviews_list_newest_or_highest_first_and_the_catalog_orders_by_rating() {
    let s = shop().await;
    let toaster = s
        .app
        .product(&s.staff, s.category, "Toaster", "25.00", 5)
        .await;
    let blender = s
        .app
        .product(&s.staff, s.category, "Blender", "60.00", 5)
        .await;
    let users = s.app.shoppers("rater", 3).await;
    // Kettle 3,4,5 -> 4.00; Toaster 5,5 -> 5.00; Blender none.
    for (user, rating) in users.iter().zip([3, 4, 5]) {
        let r = review(&s.app, user, s.kettle, json!({"rating": rating})).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    for user in &users[..2] {
        review(&s.app, user, toaster, json!({"rating": 5})).await;
    }
    let listing = body(s.app.get("/api/products/?ordering=-rating", None).await).await;
    let order: Vec<u64> = listing["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(order, vec![toaster, s.kettle, blender]);

    let path = format!("/api/products/{}/reviews/", s.kettle);
    let newest = body(s.app.get(&format!("{path}?page_size=2"), None).await).await;
    assert_eq!(newest["count"], 3);
    let ratings = |page: &Value| -> Vec<i64> {
        page["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["rating"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ratings(&newest), vec![5, 4]);
    assert!(newest["next"].is_string());
    let highest = body(s.app.get(&format!("{path}?ordering=-rating"), None).await).await;
    assert_eq!(ratings(&highest), vec![5, 4, 3]);
    let bad = s.app.get(&format!("{path}?ordering=rating"), None).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}
