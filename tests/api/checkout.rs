//! Checkout: login required, empty carts, addresses, the order it writes,
//! Idempotency-Key retries, frozen prices, and the hot-product storms that
//! try to oversell or deadlock.

use crate::helpers::{address_body, body, error_code, spawn_app, units_sold, TestApp, TestUser};
use futures_util::future::join_all;
use rand::seq::SliceRandom;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

struct Shop {
    app: TestApp,
    staff: TestUser,
    /// "Kettle", 25.00, stock 10.
    kettle: u64,
    /// "Teacup", 4.50, stock 20.
    cup: u64,
}

async fn shop() -> Shop {
    let app = spawn_app().await;
    let staff = app.staff("cashier").await;
    let kitchen = app.category(&staff, "Kitchen").await;
    let kettle = app.product(&staff, kitchen, "Kettle", "25.00", 10).await;
    let cup = app.product(&staff, kitchen, "Teacup", "4.50", 20).await;
    Shop {
        app,
        staff,
        kettle,
        cup,
    }
}

async fn order_count(app: &TestApp, staff: &TestUser) -> usize {
    app.all_orders(staff, "").await.len()
}

#[actix_web::test]
async fn anonymoucheckout_answer_is_401_with_a_message_and_keeps_the_cart() {
    let s = shop().await;
    let cart = body(
        s.app
            .post(
                "/api/cart/add/",
                None,
                &json!({"product_id": s.kettle, "quantity": 1}),
            )
            .await,
    )
    .await;
    let token = cart["cart_token"].as_str().unwrap();
    let response = s
        .app
        .client
        .post(s.app.url("/api/checkout/"))
        .header("X-Cart-Token", token)
        .json(&address_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let error = body(response).await;
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("log in"),
        "{error}"
    );
    let kept = body(
        s.app
            .client
            .get(s.app.url("/api/cart/"))
            .header("X-Cart-Token", token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(kept["items"][0]["quantity"], 1);
    assert_eq!(s.app.stock_of(s.kettle, None).await, 10);
}

#[actix_web::test]
async fn checkout_of_an_empty_cart_is_400() {
    let s = shop().await;
    let user = s.app.shopper("empty").await;
    let response = s.app.checkout(&user, None, &address_body()).await;
    assert_eq!(
        error_code(response, StatusCode::BAD_REQUEST).await,
        "empty_cart"
    );
    assert_eq!(order_count(&s.app, &s.staff).await, 0);
}

#[actix_web::test]
async fn checkout_without_an_address_names_the_missing_fields_and_changes_nothing() {
    let s = shop().await;
    let user = s.app.shopper("nowhere").await;
    s.app.add_to_cart(&user, s.kettle, 1).await;
    let cases: &[(Option<Value>, &[&str], &str)] = &[
        (
            None,
            &[
                "shipping_address.address",
                "shipping_address.city",
                "shipping_address.country",
            ],
            "no body and no profile address",
        ),
        (
            Some(json!({})),
            &["shipping_address.address"],
            "empty object",
        ),
        (
            Some(json!({"shipping_address": {"address": "1 Road", "country": "FR"}})),
            &["shipping_address.city"],
            "city missing",
        ),
        (
            Some(json!({"shipping_address": {"address": "  ", "city": "Lyon", "country": "FR"}})),
            &["shipping_address.address"],
            "blank address",
        ),
    ];
    for (payload, fields, why) in cases {
        let mut builder = s
            .app
            .client
            .post(s.app.url("/api/checkout/"))
            .bearer_auth(&user.access);
        if let Some(payload) = payload {
            builder = builder.json(payload);
        }
        let response = builder.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{why}");
        let error = body(response).await;
        for field in *fields {
            assert!(
                error["error"]["fields"][field].is_string(),
                "{why}: {field} not named in {error}"
            );
        }
    }
    let bad_body = s
        .app
        .checkout(
            &user,
            None,
            &json!({"shipping_address": {"address": "1 Road", "city": "Lyon", "country": "FR"}, "total_price": "0.01"}),
        )
        .await;
    assert_eq!(bad_body.status(), StatusCode::BAD_REQUEST, "unknown field");
    assert_eq!(s.app.stock_of(s.kettle, None).await, 10);
    assert_eq!(order_count(&s.app, &s.staff).await, 0);
    let cart = body(s.app.get("/api/cart/", Some(&user.access)).await).await;
    assert_eq!(cart["items"][0]["quantity"], 1, "cart kept");
}

#[actix_web::test]
async fn checkout_writes_the_order_empties_the_cart_and_takes_the_stock() {
    let s = shop().await;
    let user = s.app.shopper("buyer").await;
    s.app.add_to_cart(&user, s.kettle, 2).await;
    s.app.add_to_cart(&user, s.cup, 3).await;
    let response = s.app.checkout(&user, None, &address_body()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let order = body(response).await;
    assert_eq!(order["status"], "pending");
    assert_eq!(order["payment_status"], "unpaid");
    assert_eq!(order["user"], user.id);
    assert_eq!(order["total_price"], "63.50");
    assert_eq!(order["shipping_address"]["city"], "Springfield");
    let mut items: Vec<(u64, String, i64, String)> = order["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["product_id"].as_u64().unwrap(),
                i["product_name"].as_str().unwrap().to_owned(),
                i["quantity"].as_i64().unwrap(),
                i["price_at_purchase"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    items.sort();
    let mut expected = vec![
        (s.kettle, "Kettle".to_owned(), 2, "25.00".to_owned()),
        (s.cup, "Teacup".to_owned(), 3, "4.50".to_owned()),
    ];
    expected.sort();
    assert_eq!(items, expected);

    let cart = body(s.app.get("/api/cart/", Some(&user.access)).await).await;
    assert!(cart["items"].as_array().unwrap().is_empty(), "{cart}");
    assert_eq!(s.app.stock_of(s.kettle, None).await, 8);
    assert_eq!(s.app.stock_of(s.cup, None).await, 17);
    let id = order["id"].as_u64().unwrap();
    let detail = body(
        s.app
            .get(&format!("/api/orders/{id}/"), Some(&user.access))
            .await,
    )
    .await;
    assert_eq!(detail, order, "the stored order is what was acknowledged");
}

#[actix_web::test]
async fn an_idempotent_retry_returns_the_same_order_and_another_body_is_422() {
    let s = shop().await;
    let user = s.app.shopper("retrier").await;
    s.app.add_to_cart(&user, s.kettle, 3).await;
    let first = s
        .app
        .checkout(&user, Some("retry-1"), &address_body())
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = body(first).await;
    // The shopper fills the cart again before the retry: a retry must not
    // turn it into a second order.
    s.app.add_to_cart(&user, s.kettle, 1).await;
    for attempt in 0..2 {
        let again = s
            .app
            .checkout(&user, Some("retry-1"), &address_body())
            .await;
        assert_eq!(again.status(), StatusCode::CREATED, "retry {attempt}");
        assert_eq!(body(again).await["id"], first["id"], "retry {attempt}");
    }
    assert_eq!(order_count(&s.app, &s.staff).await, 1);
    assert_eq!(s.app.stock_of(s.kettle, None).await, 7, "taken once");

    let mut other = address_body();
    other["shipping_address"]["city"] = json!("Shelbyville");
    let response = s.app.checkout(&user, Some("retry-1"), &other).await;
    assert_eq!(
        error_code(response, StatusCode::UNPROCESSABLE_ENTITY).await,
        "idempotency_key_reused"
    );
    assert_eq!(order_count(&s.app, &s.staff).await, 1);
    let cart = body(s.app.get("/api/cart/", Some(&user.access)).await).await;
    assert_eq!(cart["items"][0]["quantity"], 1, "the new cart is untouched");

    // Keys belong to their user: another shopper's same key is a new order.
    let other_user = s.app.shopper("stranger").await;
    s.app.add_to_cart(&other_user, s.cup, 1).await;
    let response = s
        .app
        .checkout(&other_user, Some("retry-1"), &address_body())
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_ne!(body(response).await["id"], first["id"]);
}

#[actix_web::test]
async fn concurrent_retries_with_one_key_place_one_order() {
    let s = shop().await;
    let user = s.app.shopper("hasty").await;
    s.app.add_to_cart(&user, s.kettle, 2).await;
    let address = address_body();
    let attempts = join_all((0..8).map(|_| s.app.checkout(&user, Some("once"), &address))).await;
    let mut ids = Vec::new();
    for response in attempts {
        assert_eq!(response.status(), StatusCode::CREATED);
        ids.push(body(response).await["id"].as_u64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry answered with the same order");
    assert_eq!(order_count(&s.app, &s.staff).await, 1);
    assert_eq!(s.app.stock_of(s.kettle, None).await, 8);
}

#[actix_web::test]
async fn a_price_change_after_checkout_leaves_the_order_unchanged() {
    let s = shop().await;
    let user = s.app.shopper("frozen").await;
    s.app.add_to_cart(&user, s.cup, 2).await;
    let order = body(s.app.checkout(&user, None, &address_body()).await).await;
    assert_eq!(order["total_price"], "9.00");
    let r = s
        .app
        .patch(
            &format!("/api/products/{}/", s.cup),
            Some(&s.staff.access),
            &json!({"price": "99.99", "name": "Golden Teacup"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let id = order["id"].as_u64().unwrap();
    for token in [&user.access, &s.staff.access] {
        let now = body(s.app.get(&format!("/api/orders/{id}/"), Some(token)).await).await;
        assert_eq!(now["total_price"], "9.00");
        assert_eq!(now["items"][0]["price_at_purchase"], "4.50");
        assert_eq!(now["items"][0]["product_name"], "Teacup");
    }
    s.app.add_to_cart(&user, s.cup, 1).await;
    let cart = body(s.app.get("/api/cart/", Some(&user.access)).await).await;
    assert_eq!(
        cart["items"][0]["unit_price"], "99.99",
        "carts show current prices"
    );
}

#[actix_web::test]
async fn staff_stock_edits_go_through_the_inventory_and_carts_and_checkout_see_them() {
    let s = shop().await;
    let user = s.app.shopper("late").await;
    s.app.add_to_cart(&user, s.kettle, 4).await;
    let r = s
        .app
        .patch(
            &format!("/api/products/{}/", s.kettle),
            Some(&s.staff.access),
            &json!({"stock": 3}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["stock"], 3);
    let response = s.app.checkout(&user, None, &address_body()).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let error = body(response).await;
    assert_eq!(error["error"]["code"], "insufficient_stock");
    assert!(
        error["error"]["fields"][s.kettle.to_string()]
            .as_str()
            .unwrap()
            .contains("3 available"),
        "{error}"
    );
    let r = s
        .app
        .patch(
            &format!("/api/cart/items/{}/", s.kettle),
            Some(&user.access),
            &json!({"quantity": 4}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "the cart sees 3 too");
    let r = s
        .app
        .patch(
            &format!("/api/cart/items/{}/", s.kettle),
            Some(&user.access),
            &json!({"quantity": 3}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let response = s.app.checkout(&user, None, &address_body()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(s.app.stock_of(s.kettle, None).await, 0);
    let level = s
        .app
        .store
        .stock_level(storefront::domain::ProductId(s.kettle))
        .unwrap()
        .unwrap();
    assert_eq!(level.on_hand, 0);
    assert_eq!(level.received, 3, "received follows a counted correction");
    // Raising it again is seen at once.
    let r = s
        .app
        .patch(
            &format!("/api/products/{}/", s.kettle),
            Some(&s.staff.access),
            &json!({"stock": 6}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    s.app.add_to_cart(&user, s.kettle, 6).await;
    let response = s.app.checkout(&user, None, &address_body()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(s.app.stock_of(s.kettle, None).await, 0);
}

/// Checks invariant 1 for `products`: on hand >= 0 and
/// received == on hand + units in non-cancelled orders.
async fn assert_stock_balances(app: &TestApp, staff: &TestUser, products: &[u64]) {
    let orders = app.all_orders(staff, "").await;
    let sold = units_sold(&orders);
    for product in products {
        let level = app
            .store
            .stock_level(storefront::domain::ProductId(*product))
            .unwrap()
            .unwrap();
        let shown = app.stock_of(*product, Some(&staff.access)).await;
        assert_eq!(shown, level.on_hand, "product {product}: shown == stored");
        assert!(level.on_hand >= 0, "product {product}: {level:?}");
        assert_eq!(
            level.received,
            level.on_hand + sold.get(product).copied().unwrap_or(0),
            "product {product}: received == on hand + sold"
        );
    }
}

#[actix_web::test]
async fn two_hundred_shoppers_racing_for_ten_units_get_exactly_ten_orders() {
    let s = shop().await;
    let shoppers = s.app.shoppers("racer", 200).await;
    join_all(shoppers.iter().map(|u| s.app.add_to_cart(u, s.kettle, 1))).await;
    let address = address_body();
    let answers = tokio::time::timeout(
        Duration::from_secs(60),
        join_all(shoppers.iter().map(|u| s.app.checkout(u, None, &address))),
    )
    .await
    .expect("the storm ends");
    let mut placed = 0;
    let mut refused = 0;
    for response in answers {
        match response.status() {
            StatusCode::CREATED => placed += 1,
            StatusCode::CONFLICT => {
                let error = body(response).await;
                assert_eq!(error["error"]["code"], "insufficient_stock", "{error}");
                let message = error["error"]["message"].as_str().unwrap();
                assert!(message.contains("Kettle"), "names the product: {message}");
                assert_eq!(
                    error["error"]["fields"][s.kettle.to_string()],
                    "asked for 1, 0 available",
                    "{error}"
                );
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", response.text().await.unwrap()),
        }
    }
    assert_eq!((placed, refused), (10, 190));
    assert_eq!(s.app.stock_of(s.kettle, None).await, 0);
    assert_eq!(order_count(&s.app, &s.staff).await, 10);
    assert_stock_balances(&s.app, &s.staff, &[s.kettle]).await;
}

#[actix_web::test]
async fn concurrent_multi_product_carts_in_shuffled_order_neither_deadlock_nor_oversell() {
    let app = spawn_app().await;
    let staff = app.staff("clerk").await;
    let shelf = app.category(&staff, "Shelf").await;
    let products = vec![
        app.product(&staff, shelf, "Alpha", "1.00", 12).await,
        app.product(&staff, shelf, "Beta", "2.00", 9).await,
        app.product(&staff, shelf, "Gamma", "3.00", 15).await,
    ];
    let shoppers = app.shoppers("mixer", 60).await;
    let mut rng = rand::thread_rng();
    let mut plans = Vec::new();
    for _ in &shoppers {
        let mut lines: Vec<(u64, i64)> = products.iter().map(|p| (*p, 1)).collect();
        lines.shuffle(&mut rng);
        // Some carts hold two of a product, some skip one.
        if rand::Rng::gen_bool(&mut rng, 0.3) {
            lines[0].1 = 2;
        }
        if rand::Rng::gen_bool(&mut rng, 0.3) {
            lines.pop();
        }
        plans.push(lines);
    }
    join_all(shoppers.iter().zip(&plans).map(|(u, lines)| {
        let app = &app;
        async move {
            for (product, quantity) in lines {
                app.add_to_cart(u, *product, *quantity).await;
            }
        }
    }))
    .await;
    let demand: i64 = plans.iter().flatten().map(|(_, q)| q).sum();
    assert!(demand > 36, "demand {demand} exceeds the 36 units in stock");

    let answers = tokio::time::timeout(
        Duration::from_secs(60),
        join_all(shoppers.iter().map(|u| checkout_answer(&app, u))),
    )
    .await
    .expect("no deadlock: every checkout answers");
    let mut acknowledged: HashMap<u64, i64> = HashMap::new();
    for (status, value) in &answers {
        match *status {
            StatusCode::CREATED => {
                for item in value["items"].as_array().unwrap() {
                    *acknowledged
                        .entry(item["product_id"].as_u64().unwrap())
                        .or_default() += item["quantity"].as_i64().unwrap();
                }
            }
            StatusCode::CONFLICT => {
                assert_eq!(value["error"]["code"], "insufficient_stock", "{value}")
            }
            other => panic!("unexpected {other}: {value}"),
        }
    }
    let placed = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert!(placed > 0, "some orders went through");
    assert_stock_balances(&app, &staff, &products).await;
    let sold = units_sold(&app.all_orders(&staff, "").await);
    assert_eq!(sold, acknowledged, "the orders are exactly the 201s");
    // A refused checkout keeps its cart; a placed one empties it.
    for ((status, _), (user, lines)) in answers.iter().zip(shoppers.iter().zip(&plans)) {
        let cart = body(app.get("/api/cart/", Some(&user.access)).await).await;
        let count = cart["items"].as_array().unwrap().len();
        if *status == StatusCode::CREATED {
            assert_eq!(count, 0, "{}: emptied", user.username);
        } else {
            assert_eq!(count, lines.len(), "{}: kept", user.username);
        }
    }
}

async fn checkout_answer(app: &TestApp, user: &TestUser) -> (StatusCode, Value) {
    let response = app.checkout(user, None, &address_body()).await;
    let status = response.status();
    (status, body(response).await)
}

#[actix_web::test]
async fn a_cart_change_racing_a_checkout_ends_in_the_cart_or_in_the_order() {
    let s = shop().await;
    let user = s.app.shopper("fidget").await;
    let address = address_body();
    // The kettle has 10 units and each round may sell one: more rounds than
    // units would let the add fail for lack of stock, not for the race.
    for round in 0..10 {
        s.app.add_to_cart(&user, s.cup, 1).await;
        let kettle = json!({"product_id": s.kettle, "quantity": 1});
        let add = s.app.post("/api/cart/add/", Some(&user.access), &kettle);
        let (added, placed) = futures_util::join!(add, s.app.checkout(&user, None, &address));
        assert_eq!(added.status(), StatusCode::OK, "round {round}");
        let status = placed.status();
        let order = body(placed).await;
        assert_eq!(status, StatusCode::CREATED, "round {round}: {order}");
        let in_order = order["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["product_id"] == s.kettle);
        let cart = body(s.app.get("/api/cart/", Some(&user.access)).await).await;
        let in_cart = cart["items"].as_array().unwrap().len();
        assert_eq!(
            (in_order, in_cart),
            if in_order { (true, 0) } else { (false, 1) },
            "round {round}: the kettle is in exactly one place"
        );
        s.app.delete("/api/cart/", Some(&user.access)).await;
        if s.app.stock_of(s.kettle, None).await == 0 {
            break;
        }
    }
}
