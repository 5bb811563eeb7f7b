//! The staff back office: every admin route refused to shoppers and
//! anonymous callers, user flags and the self-demotion rule, inventory
//! figures and the stock ledger, analytics against a known set of orders
//! (also after a restart), and the audit log of staff writes.

use crate::helpers::{address_body, body, error_code, spawn_app, TestApp, TestUser, PASSWORD};
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use storefront::services::analytics::{date_of, today};

struct Shop {
    app: TestApp,
    staff: TestUser,
    category: u64,
}

async fn shop() -> Shop {
    let app = spawn_app().await;
    let staff = app.staff("boss").await;
    let category = app.category(&staff, "Tools").await;
    Shop {
        app,
        staff,
        category,
    }
}

async fn ok_json(response: reqwest::Response) -> Value {
    let status = response.status();
    let value = body(response).await;
    assert!(status.is_success(), "{status}: {value}");
    value
}

/// Places an order of `lines` for `user`; returns its id.
async fn place(app: &TestApp, user: &TestUser, lines: &[(u64, i64)]) -> u64 {
    for (product, quantity) in lines {
        app.add_to_cart(user, *product, *quantity).await;
    }
    let response = app.checkout(user, None, &address_body()).await;
    ok_json(response).await["id"].as_u64().expect("order id")
}

#[actix_web::test]
async fn every_admin_route_is_refused_to_shoppers_with_403_and_to_anonymous_callers_with_401() {
    let s = shop().await;
    let product = s.app.product(&s.staff, s.category, "Saw", "9.00", 4).await;
    let shopper = s.app.shopper("sam").await;
    let order = place(&s.app, &shopper, &[(product, 1)]).await;
    let routes: Vec<(Method, String, Value)> = vec![
        (Method::GET, "/api/admin/users/".into(), json!(null)),
        (
            Method::PATCH,
            format!("/api/admin/users/{}/", shopper.id),
            json!({"is_staff": true}),
        ),
        (Method::GET, "/api/admin/orders/".into(), json!(null)),
        (
            Method::PATCH,
            format!("/api/admin/orders/{order}/"),
            json!({"status": "cancelled"}),
        ),
        (
            Method::POST,
            format!("/api/admin/products/{product}/restock/"),
            json!({"quantity": 1}),
        ),
        (Method::GET, "/api/admin/inventory/".into(), json!(null)),
        (
            Method::GET,
            format!("/api/admin/inventory/{product}/"),
            json!(null),
        ),
        (
            Method::POST,
            format!("/api/admin/inventory/{product}/adjust/"),
            json!({"delta": -1, "reason": "test"}),
        ),
        (
            Method::GET,
            format!("/api/admin/inventory/{product}/ledger/"),
            json!(null),
        ),
        (Method::GET, "/api/admin/analytics/".into(), json!(null)),
        (Method::GET, "/api/admin/audit/".into(), json!(null)),
    ];
    for (method, path, payload) in &routes {
        let payload = (!payload.is_null()).then_some(payload);
        let shopper_call = s
            .app
            .request(method.clone(), path, Some(&shopper.access), payload)
            .await;
        assert_eq!(
            error_code(shopper_call, StatusCode::FORBIDDEN).await,
            "forbidden",
            "{method} {path} as a shopper"
        );
        let anonymous = s.app.request(method.clone(), path, None, payload).await;
        assert_eq!(
            error_code(anonymous, StatusCode::UNAUTHORIZED).await,
            "not_authenticated",
            "{method} {path} anonymously"
        );
    }
    // Nothing those calls attempted happened.
    let me = ok_json(s.app.get("/api/profile/", Some(&shopper.access)).await).await;
    assert_eq!(me["is_staff"], false, "{me}");
    assert_eq!(s.app.stock_of(product, None).await, 3);
    // And each route works for staff, so the refusals are not 404s in disguise.
    for (method, path, payload) in &routes {
        if *method == Method::GET {
            let response = s.app.get(path, Some(&s.staff.access)).await;
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "{method} {path} as staff"
            );
        }
        let _ = payload;
    }
}

#[actix_web::test]
async fn staff_search_users_set_flags_on_others_and_cannot_demote_or_disable_themselves() {
    let s = shop().await;
    let ann = s.app.shopper("ann").await;
    let _bob = s.app.shopper("bob").await;
    let me = format!("/api/admin/users/{}/", s.staff.id);
    for flags in [json!({"is_staff": false}), json!({"is_active": false})] {
        let refused = s.app.patch(&me, Some(&s.staff.access), &flags).await;
        assert_eq!(
            error_code(refused, StatusCode::CONFLICT).await,
            "self_demotion",
            "{flags}"
        );
    }
    // Still staff and active: the refusals changed nothing.
    let staff_only = ok_json(
        s.app
            .get("/api/admin/users/?is_staff=true", Some(&s.staff.access))
            .await,
    )
    .await;
    assert_eq!(staff_only["count"], 1);
    assert_eq!(staff_only["results"][0]["username"], "boss");
    assert_eq!(staff_only["results"][0]["is_active"], true);

    let found = ok_json(
        s.app
            .get(
                "/api/admin/users/?search=ANN@EXAMPLE",
                Some(&s.staff.access),
            )
            .await,
    )
    .await;
    assert_eq!(found["count"], 1, "{found}");
    assert_eq!(found["results"][0]["id"], ann.id);

    let ann_path = format!("/api/admin/users/{}/", ann.id);
    let disabled = ok_json(
        s.app
            .patch(
                &ann_path,
                Some(&s.staff.access),
                &json!({"is_active": false}),
            )
            .await,
    )
    .await;
    assert_eq!(disabled["is_active"], false);
    let login = s.app.login("ann", &ann.password).await;
    assert_eq!(
        error_code(login, StatusCode::UNAUTHORIZED).await,
        "account_disabled"
    );
    let inactive = ok_json(
        s.app
            .get("/api/admin/users/?is_active=false", Some(&s.staff.access))
            .await,
    )
    .await;
    assert_eq!(inactive["count"], 1);

    let bad = s
        .app
        .patch(
            &ann_path,
            Some(&s.staff.access),
            &json!({"is_superuser": true}),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let missing = s
        .app
        .patch(
            "/api/admin/users/999999/",
            Some(&s.staff.access),
            &json!({"is_active": true}),
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let audit = ok_json(
        s.app
            .get("/api/admin/audit/?action=user.flags", Some(&s.staff.access))
            .await,
    )
    .await;
    assert_eq!(audit["count"], 1, "only the change that happened: {audit}");
    assert_eq!(audit["results"][0]["target_id"], ann.id);
    assert_eq!(audit["results"][0]["actor_username"], "boss");
    assert_eq!(audit["results"][0]["detail"]["is_active"], false);
}

/// Every entry of a product's ledger, all pages.
async fn ledger(app: &TestApp, staff: &TestUser, product: u64) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut page = 1;
    loop {
        let value = ok_json(
            app.get(
                &format!("/api/admin/inventory/{product}/ledger/?page_size=100&page={page}"),
                Some(&staff.access),
            )
            .await,
        )
        .await;
        let results = value["results"].as_array().unwrap().clone();
        entries.extend(results);
        if value["next"].is_null() {
            return entries;
        }
        page += 1;
    }
}

async fn inventory_row(app: &TestApp, staff: &TestUser, product: u64) -> Value {
    ok_json(
        app.get(
            &format!("/api/admin/inventory/{product}/"),
            Some(&staff.access),
        )
        .await,
    )
    .await
}

fn sums(entries: &[Value]) -> (i64, i64) {
    entries.iter().fold((0, 0), |(a, b), e| {
        (
            a + e["delta_on_hand"].as_i64().unwrap(),
            b + e["delta_received"].as_i64().unwrap(),
        )
    })
}

#[actix_web::test]
async fn inventory_shows_stock_sold_and_low_stock_and_every_change_is_in_a_ledger_that_adds_up() {
    let s = shop().await;
    let hammer = s
        .app
        .product(&s.staff, s.category, "Hammer", "12.00", 10)
        .await;
    let pliers = s
        .app
        .product(&s.staff, s.category, "Pliers", "8.00", 3)
        .await;
    let ann = s.app.shopper("ann").await;
    place(&s.app, &ann, &[(hammer, 2)]).await;
    let cancelled = place(&s.app, &ann, &[(hammer, 1)]).await;
    let cancel = s
        .app
        .post(
            &format!("/api/orders/{cancelled}/cancel/"),
            Some(&ann.access),
            &json!({}),
        )
        .await;
    assert_eq!(cancel.status(), StatusCode::OK);
    let restocked = s
        .app
        .post(
            &format!("/api/admin/products/{hammer}/restock/"),
            Some(&s.staff.access),
            &json!({"quantity": 5, "reason": "delivery 42"}),
        )
        .await;
    assert_eq!(restocked.status(), StatusCode::OK);
    let adjust = |delta: Value, reason: Value| {
        let app = &s.app;
        let token = s.staff.access.clone();
        async move {
            app.post(
                &format!("/api/admin/inventory/{hammer}/adjust/"),
                Some(&token),
                &json!({"delta": delta, "reason": reason}),
            )
            .await
        }
    };
    let row = ok_json(adjust(json!(-1), json!("dropped one")).await).await;
    assert_eq!(row["stock"], 12);
    // Refused adjustments change nothing.
    for (delta, reason, status) in [
        (json!(0), json!("nothing"), StatusCode::BAD_REQUEST),
        (json!(-1), json!(""), StatusCode::BAD_REQUEST),
        (json!(-1), json!("x".repeat(501)), StatusCode::BAD_REQUEST),
        (json!(2.5), json!("half"), StatusCode::BAD_REQUEST),
        (json!(-13), json!("too many"), StatusCode::CONFLICT),
    ] {
        let response = adjust(delta.clone(), reason).await;
        assert_eq!(response.status(), status, "delta {delta}");
    }
    let unknown = s
        .app
        .post(
            "/api/admin/inventory/999999/adjust/",
            Some(&s.staff.access),
            &json!({"delta": 1, "reason": "ghost"}),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    // A stock figure set in a product edit is a counted level.
    let edited = s
        .app
        .patch(
            &format!("/api/products/{hammer}/"),
            Some(&s.staff.access),
            &json!({"stock": 11}),
        )
        .await;
    assert_eq!(edited.status(), StatusCode::OK);

    let row = inventory_row(&s.app, &s.staff, hammer).await;
    // 10 - 2 - 1 + 1 + 5 - 1 - 1 on hand; 10 + 5 - 1 - 1 received.
    assert_eq!(row["stock"], 11, "{row}");
    assert_eq!(row["received"], 13);
    assert_eq!(row["sold"], 2, "the cancelled order is not sold");
    assert_eq!(row["reserved"], 0);
    assert_eq!(row["low_stock"], false);

    let entries = ledger(&s.app, &s.staff, hammer).await;
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "created",
            "checkout",
            "checkout",
            "order_cancelled",
            "restock",
            "adjustment",
            "count"
        ]
    );
    assert_eq!(entries[3]["order_id"], cancelled);
    assert_eq!(entries[4]["reason"], "delivery 42");
    assert_eq!(entries[5]["by"], s.staff.id);
    assert_eq!(entries[5]["reason"], "dropped one");
    assert_eq!(sums(&entries), (11, 13));
    assert_eq!(entries.last().unwrap()["on_hand"], 11);

    let low = ok_json(
        s.app
            .get(
                "/api/admin/inventory/?low_stock=true",
                Some(&s.staff.access),
            )
            .await,
    )
    .await;
    assert_eq!(low["low_stock_threshold"], 5);
    let low_ids: Vec<u64> = low["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["product_id"].as_u64().unwrap())
        .collect();
    assert_eq!(low_ids, vec![pliers]);
    assert_eq!(low["results"][0]["low_stock"], true);
    let all = ok_json(
        s.app
            .get("/api/admin/inventory/?page_size=1", Some(&s.staff.access))
            .await,
    )
    .await;
    assert_eq!(all["count"], 2);
    assert_eq!(all["results"][0]["name"], "Hammer", "by name");
    assert!(all["next"].is_string());
}

#[actix_web::test]
async fn the_ledger_of_a_product_sold_by_concurrent_checkouts_adds_up_to_its_stock() {
    let s = shop().await;
    let nails = s
        .app
        .product(&s.staff, s.category, "Nails", "1.00", 15)
        .await;
    let buyers = s.app.shoppers("buyer", 8).await;
    for buyer in &buyers {
        s.app.add_to_cart(buyer, nails, 2).await;
    }
    let address = address_body();
    let placed = join_all(buyers.iter().map(|b| s.app.checkout(b, None, &address))).await;
    let won = placed
        .iter()
        .filter(|r| r.status() == StatusCode::CREATED)
        .count() as i64;
    assert_eq!(won, 7, "15 units make 7 orders of 2");
    let entries = ledger(&s.app, &s.staff, nails).await;
    assert_eq!(entries.len() as i64, 1 + won);
    let row = inventory_row(&s.app, &s.staff, nails).await;
    assert_eq!(row["stock"], 1);
    assert_eq!(sums(&entries), (1, 15));
    assert_eq!(row["sold"], 14);
}

fn totals_of(report: &Value) -> Value {
    report["totals"].clone()
}

#[actix_web::test]
async fn analytics_match_a_known_set_of_orders_and_are_the_same_after_a_restart() {
    let s = shop().await;
    let awl = s
        .app
        .product(&s.staff, s.category, "Awl", "10.00", 50)
        .await;
    let brace = s
        .app
        .product(&s.staff, s.category, "Brace", "25.00", 50)
        .await;
    let (ann, bob, cy, dee) = (
        s.app.shopper("ann").await,
        s.app.shopper("bob").await,
        s.app.shopper("cyd").await,
        s.app.shopper("dee").await,
    );
    place(&s.app, &ann, &[(awl, 2)]).await; // 20.00
    place(&s.app, &bob, &[(brace, 2), (awl, 1)]).await; // 60.00
    let dropped = place(&s.app, &cy, &[(brace, 2)]).await; // 50.00, cancelled below
    let cancel = s
        .app
        .patch(
            &format!("/api/admin/orders/{dropped}/"),
            Some(&s.staff.access),
            &json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(cancel.status(), StatusCode::OK);
    place(&s.app, &ann, &[(awl, 1)]).await; // 10.00, ann's second order
    s.app.add_to_cart(&dee, awl, 1).await; // a cart that never checks out
                                           // An anonymous cart merged into eve's cart at login is one cart started, not two.
    let anonymous = ok_json(
        s.app
            .post(
                "/api/cart/add/",
                None,
                &json!({"product_id": brace, "quantity": 1}),
            )
            .await,
    )
    .await;
    let token = anonymous["cart_token"].as_str().expect("cart token");
    assert_eq!(s.app.register("eve").await.status(), StatusCode::CREATED);
    let login = s
        .app
        .client
        .post(s.app.url("/api/auth/login/"))
        .header("X-Cart-Token", token)
        .json(&json!({"username": "eve", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let eve = ok_json(login).await["access"].as_str().unwrap().to_owned();
    let cart = ok_json(s.app.get("/api/cart/", Some(&eve)).await).await;
    assert_eq!(cart["items"][0]["product_id"], brace, "merged: {cart}");

    let day = date_of(today()).to_string();
    let path = format!("/api/admin/analytics/?from={day}&to={day}&interval=day");
    let report = ok_json(s.app.get(&path, Some(&s.staff.access)).await).await;
    let expected = json!({
        "orders": 4,
        "cancelled": 1,
        "revenue": "90.00",
        "average_order_value": "30.00",
        "units": 6,
        "new_customers": 3,
        // ann twice (her cart empties at checkout), bob, cyd, dee, eve's.
        "carts_started": 6,
        "conversion_rate": "0.6667",
    });
    assert_eq!(totals_of(&report), expected, "{report}");
    assert_eq!(report["orders_by_status"]["pending"], 3);
    assert_eq!(report["orders_by_status"]["cancelled"], 1);
    assert_eq!(report["orders_by_status"]["paid"], 0);
    assert_eq!(report["series"].as_array().unwrap().len(), 1);
    assert_eq!(report["series"][0]["period"], day);
    assert_eq!(report["series"][0]["revenue"], "90.00");
    let top = &report["top_products"];
    assert_eq!(top["by_units"][0]["product_id"], awl);
    assert_eq!(top["by_units"][0]["units"], 4);
    assert_eq!(top["by_units"][0]["revenue"], "40.00");
    assert_eq!(top["by_revenue"][0]["product_id"], brace);
    assert_eq!(
        top["by_revenue"][0]["units"], 2,
        "cy's cancelled pair is not counted"
    );
    assert_eq!(top["by_revenue"][0]["revenue"], "50.00");

    // A week and a month holding today give the same totals.
    for interval in ["week", "month"] {
        let wide = ok_json(
            s.app
                .get(
                    &format!("/api/admin/analytics/?to={day}&interval={interval}"),
                    Some(&s.staff.access),
                )
                .await,
        )
        .await;
        assert_eq!(totals_of(&wide), expected, "{interval}");
        let series = wide["series"].as_array().unwrap();
        assert_eq!(
            series.last().unwrap()["orders"],
            4,
            "{interval}: the period holding today"
        );
    }
    // Bad queries are 400s.
    for query in [
        "from=2026-13-01",
        "interval=hour",
        "from=2026-12-02&to=2026-12-01",
        "from=2000-01-01&to=2026-12-01",
        "top=0",
    ] {
        let response = s
            .app
            .get(
                &format!("/api/admin/analytics/?{query}"),
                Some(&s.staff.access),
            )
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
    }

    let staff = s.staff.clone();
    let app = s.app.restart().await;
    let again = ok_json(app.get(&path, Some(&staff.access)).await).await;
    assert_eq!(again, report, "the same figures after a restart");
}

#[actix_web::test]
async fn staff_writes_are_in_the_audit_log_with_who_what_and_when_and_it_filters_and_pages() {
    let s = shop().await;
    let brand = ok_json(
        s.app
            .post(
                "/api/brands/",
                Some(&s.staff.access),
                &json!({"name": "Acme"}),
            )
            .await,
    )
    .await["id"]
        .as_u64()
        .unwrap();
    let drill = s
        .app
        .product(&s.staff, s.category, "Drill", "80.00", 4)
        .await;
    ok_json(
        s.app
            .patch(
                &format!("/api/products/{drill}/"),
                Some(&s.staff.access),
                &json!({"price": "75.00", "brand": brand}),
            )
            .await,
    )
    .await;
    ok_json(
        s.app
            .post(
                &format!("/api/admin/inventory/{drill}/adjust/"),
                Some(&s.staff.access),
                &json!({"delta": 2, "reason": "found in back room"}),
            )
            .await,
    )
    .await;
    let ann = s.app.shopper("ann").await;
    let order = place(&s.app, &ann, &[(drill, 1)]).await;
    ok_json(
        s.app
            .patch(
                &format!("/api/admin/orders/{order}/"),
                Some(&s.staff.access),
                &json!({"status": "cancelled"}),
            )
            .await,
    )
    .await;
    // A refused write is not logged.
    let refused = s
        .app
        .patch(
            &format!("/api/admin/orders/{order}/"),
            Some(&s.staff.access),
            &json!({"status": "shipped"}),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);

    let all = ok_json(s.app.get("/api/admin/audit/", Some(&s.staff.access)).await).await;
    let actions: Vec<&str> = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "order.status",
            "stock.adjust",
            "product.update",
            "product.create",
            "brand.create",
            "category.create"
        ],
        "newest first"
    );
    for entry in all["results"].as_array().unwrap() {
        assert_eq!(entry["actor"], s.staff.id);
        assert_eq!(entry["actor_username"], "boss");
        assert!(entry["at"].as_str().unwrap().starts_with("20"), "{entry}");
    }
    let update = &all["results"][2];
    assert_eq!(update["target_type"], "product");
    assert_eq!(update["target_id"], drill);
    assert_eq!(update["detail"]["price"], "75.00");
    assert_eq!(all["results"][1]["detail"]["reason"], "found in back room");
    assert_eq!(all["results"][0]["detail"]["status"], "cancelled");

    let products = ok_json(
        s.app
            .get(
                &format!("/api/admin/audit/?action=product&target_id={drill}&page_size=1"),
                Some(&s.staff.access),
            )
            .await,
    )
    .await;
    assert_eq!(products["count"], 2);
    assert_eq!(products["results"][0]["action"], "product.update");
    assert!(products["next"].is_string());
    let by_target = ok_json(
        s.app
            .get("/api/admin/audit/?target_type=order", Some(&s.staff.access))
            .await,
    )
    .await;
    assert_eq!(by_target["count"], 1);
    let nobody = ok_json(
        s.app
            .get(
                &format!("/api/admin/audit/?actor={}", ann.id),
                Some(&s.staff.access),
            )
            .await,
    )
    .await;
    assert_eq!(nobody["count"], 0);
    let later = ok_json(
        s.app
            .get("/api/admin/audit/?from=2999-01-01", Some(&s.staff.access))
            .await,
    )
    .await;
    assert_eq!(later["count"], 0);
    let bad = s
        .app
        .get("/api/admin/audit/?from=yesterday", Some(&s.staff.access))
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn the_low_stock_threshold_comes_from_the_settings() {
    let app = crate::helpers::spawn_app_with(|settings| settings.low_stock_threshold = 20).await;
    let staff = app.staff("counter").await;
    let category = app.category(&staff, "Bolts").await;
    let bolts = app.product(&staff, category, "Bolts", "0.50", 19).await;
    let nuts = app.product(&staff, category, "Nuts", "0.40", 20).await;
    let low = ok_json(
        app.get("/api/admin/inventory/?low_stock=true", Some(&staff.access))
            .await,
    )
    .await;
    assert_eq!(low["low_stock_threshold"], 20);
    assert_eq!(low["count"], 1);
    assert_eq!(low["results"][0]["product_id"], bolts);
    let row = inventory_row(&app, &staff, nuts).await;
    assert_eq!(row["low_stock"], false, "20 is not under 20");
}
