//! Orders: the owner's list and detail, privacy between shoppers, cancel
//! returning stock exactly once, the staff status machine, filters,
//! restocks, and a kill -9 in the middle of a checkout storm.

use crate::helpers::{
    address_body, all_orders_at, body, error_code, spawn_app, spawn_binary, units_sold, TestApp,
    TestUser, PASSWORD,
};
use futures_util::future::join_all;
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Shop {
    app: TestApp,
    staff: TestUser,
    /// "Drum", 30.00, stock 10.
    drum: u64,
    /// "Flute", 12.00, stock 10.
    flute: u64,
}

async fn shop() -> Shop {
    let app = spawn_app().await;
    let staff = app.staff("conductor").await;
    let music = app.category(&staff, "Music").await;
    let drum = app.product(&staff, music, "Drum", "30.00", 10).await;
    let flute = app.product(&staff, music, "Flute", "12.00", 10).await;
    Shop {
        app,
        staff,
        drum,
        flute,
    }
}

/// Puts `lines` in the user's cart and checks out; returns the order.
async fn place(app: &TestApp, user: &TestUser, lines: &[(u64, i64)]) -> Value {
    for (product, quantity) in lines {
        app.add_to_cart(user, *product, *quantity).await;
    }
    let response = app.checkout(user, None, &address_body()).await;
    let status = response.status();
    let order = body(response).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    order
}

fn id(order: &Value) -> u64 {
    order["id"].as_u64().unwrap()
}

#[actix_web::test]
async fn owners_list_their_orders_newest_first_in_pages_and_read_each_one() {
    let s = shop().await;
    let user = s.app.shopper("collector").await;
    let other = s.app.shopper("bystander").await;
    let mut placed = Vec::new();
    for n in 0..5 {
        placed.push(id(&place(&s.app, &user, &[(s.flute, 1)]).await));
        if n == 2 {
            place(&s.app, &other, &[(s.drum, 1)]).await;
        }
    }
    placed.reverse();
    let first = body(
        s.app
            .get("/api/orders/?page_size=2", Some(&user.access))
            .await,
    )
    .await;
    assert_eq!(first["count"], 5, "only the caller's orders count");
    let mut seen: Vec<u64> = Vec::new();
    let mut page = 1;
    loop {
        let value = body(
            s.app
                .get(
                    &format!("/api/orders/?page_size=2&page={page}"),
                    Some(&user.access),
                )
                .await,
        )
        .await;
        let results = value["results"].as_array().unwrap();
        assert!(results.len() <= 2);
        seen.extend(results.iter().map(id));
        if value["next"].is_null() {
            break;
        }
        page += 1;
    }
    assert_eq!(seen, placed, "newest first, every order once");
    let detail = body(
        s.app
            .get(&format!("/api/orders/{}/", placed[0]), Some(&user.access))
            .await,
    )
    .await;
    assert_eq!(detail["items"][0]["product_name"], "Flute");
    assert_eq!(detail["user"], user.id);
    let anonymous = s.app.get("/api/orders/", None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_shopper_cannot_read_or_cancel_another_shoppers_order() {
    let s = shop().await;
    let alice = s.app.shopper("alice").await;
    let bob = s.app.shopper("bob").await;
    let order = id(&place(&s.app, &bob, &[(s.drum, 2)]).await);
    let cases: &[(Method, String, &str)] = &[
        (Method::GET, format!("/api/orders/{order}/"), "read"),
        (
            Method::POST,
            format!("/api/orders/{order}/cancel/"),
            "cancel",
        ),
        (
            Method::GET,
            "/api/orders/999999999/".into(),
            "read a missing order",
        ),
    ];
    for (method, path, why) in cases {
        let response = s
            .app
            .request(method.clone(), path, Some(&alice.access), Some(&json!({})))
            .await;
        assert_eq!(
            error_code(response, StatusCode::NOT_FOUND).await,
            "not_found",
            "{why}"
        );
    }
    let list = body(s.app.get("/api/orders/", Some(&alice.access)).await).await;
    assert_eq!(list["count"], 0);
    let still = body(
        s.app
            .get(&format!("/api/orders/{order}/"), Some(&bob.access))
            .await,
    )
    .await;
    assert_eq!(still["status"], "pending", "alice changed nothing");
    assert_eq!(s.app.stock_of(s.drum, None).await, 8);
    let staff_admin = s
        .app
        .patch(
            &format!("/api/admin/orders/{order}/"),
            Some(&alice.access),
            &json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(staff_admin.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn an_owner_cancel_returns_stock_once_and_a_second_cancel_is_409() {
    let s = shop().await;
    let user = s.app.shopper("regretful").await;
    let order = id(&place(&s.app, &user, &[(s.drum, 3), (s.flute, 2)]).await);
    assert_eq!(s.app.stock_of(s.drum, None).await, 7);
    let response = s
        .app
        .post(
            &format!("/api/orders/{order}/cancel/"),
            Some(&user.access),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await["status"], "cancelled");
    assert_eq!(s.app.stock_of(s.drum, None).await, 10);
    assert_eq!(s.app.stock_of(s.flute, None).await, 10);
    let again = s
        .app
        .post(
            &format!("/api/orders/{order}/cancel/"),
            Some(&user.access),
            &json!({}),
        )
        .await;
    assert_eq!(
        error_code(again, StatusCode::CONFLICT).await,
        "invalid_transition"
    );
    let by_staff = s
        .app
        .patch(
            &format!("/api/admin/orders/{order}/"),
            Some(&s.staff.access),
            &json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(by_staff.status(), StatusCode::CONFLICT);
    assert_eq!(s.app.stock_of(s.drum, None).await, 10, "returned once");
    assert_eq!(s.app.stock_of(s.flute, None).await, 10, "returned once");

    // Concurrent cancels of one order: one wins, stock comes back once.
    let order = id(&place(&s.app, &user, &[(s.drum, 4)]).await);
    let path = format!("/api/orders/{order}/cancel/");
    let empty = json!({});
    let answers = join_all((0..6).map(|_| s.app.post(&path, Some(&user.access), &empty))).await;
    let ok = answers
        .iter()
        .filter(|r| r.status() == StatusCode::OK)
        .count();
    let conflicts = answers
        .iter()
        .filter(|r| r.status() == StatusCode::CONFLICT)
        .count();
    assert_eq!((ok, conflicts), (1, 5));
    assert_eq!(s.app.stock_of(s.drum, None).await, 10);
    // The inventory owner saw the returned units: all 10 can be bought.
    let buyer = s.app.shopper("afterwards").await;
    place(&s.app, &buyer, &[(s.drum, 10)]).await;
    assert_eq!(s.app.stock_of(s.drum, None).await, 0);
}

#[actix_web::test]
async fn staff_move_orders_only_along_the_state_machine() {
    let s = shop().await;
    let user = s.app.shopper("patient").await;
    let order = id(&place(&s.app, &user, &[(s.flute, 2)]).await);
    let path = format!("/api/admin/orders/{order}/");
    let cases: &[(Value, StatusCode, &str)] = &[
        (
            json!({"status": "shipped"}),
            StatusCode::CONFLICT,
            "pending -> shipped skips paid",
        ),
        (
            json!({"status": "delivered"}),
            StatusCode::CONFLICT,
            "pending -> delivered",
        ),
        (
            json!({"status": "paid"}),
            StatusCode::CONFLICT,
            "paid only comes from a payment",
        ),
        (
            json!({"status": "pending"}),
            StatusCode::CONFLICT,
            "pending -> pending",
        ),
        (
            json!({"status": "lost"}),
            StatusCode::BAD_REQUEST,
            "unknown status",
        ),
        (
            json!({"status": "shipped", "payment_status": "paid"}),
            StatusCode::BAD_REQUEST,
            "server-owned field",
        ),
        (json!({}), StatusCode::BAD_REQUEST, "no status"),
    ];
    for (payload, status, why) in cases {
        let response = s.app.patch(&path, Some(&s.staff.access), payload).await;
        assert_eq!(response.status(), *status, "{why}");
        let current = body(
            s.app
                .get(&format!("/api/orders/{order}/"), Some(&user.access))
                .await,
        )
        .await;
        assert_eq!(current["status"], "pending", "{why}");
        assert_eq!(current["payment_status"], "unpaid", "{why}");
    }
    assert_eq!(s.app.stock_of(s.flute, None).await, 8);
    let response = s
        .app
        .patch(
            &path,
            Some(&s.staff.access),
            &json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await["status"], "cancelled");
    assert_eq!(s.app.stock_of(s.flute, None).await, 10);
    let missing = s
        .app
        .patch(
            "/api/admin/orders/999999999/",
            Some(&s.staff.access),
            &json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn staff_filter_orders_by_status_and_user() {
    let s = shop().await;
    let ann = s.app.shopper("ann").await;
    let ben = s.app.shopper("ben").await;
    let a1 = id(&place(&s.app, &ann, &[(s.drum, 1)]).await);
    let b1 = id(&place(&s.app, &ben, &[(s.flute, 1)]).await);
    let a2 = id(&place(&s.app, &ann, &[(s.flute, 1)]).await);
    let r = s
        .app
        .post(
            &format!("/api/orders/{a1}/cancel/"),
            Some(&ann.access),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let ids = |orders: Vec<Value>| orders.iter().map(id).collect::<Vec<u64>>();
    let cases: Vec<(String, Vec<u64>, &str)> = vec![
        (String::new(), vec![a2, b1, a1], "all, newest first"),
        ("&status=pending".into(), vec![a2, b1], "pending"),
        ("&status=cancelled".into(), vec![a1], "cancelled"),
        ("&status=shipped".into(), vec![], "none shipped"),
        (format!("&user={}", ann.id), vec![a2, a1], "ann's"),
        (
            format!("&user={}&status=pending", ann.id),
            vec![a2],
            "ann's pending",
        ),
        (format!("&user={}", ben.id), vec![b1], "ben's"),
    ];
    for (filter, expected, why) in cases {
        assert_eq!(
            ids(s.app.all_orders(&s.staff, &filter).await),
            expected,
            "{why}"
        );
    }
    let bad = s
        .app
        .get("/api/admin/orders/?status=lost", Some(&s.staff.access))
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let shopper = s.app.get("/api/admin/orders/", Some(&ann.access)).await;
    assert_eq!(shopper.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn restock_adds_stock_for_staff_and_is_forbidden_to_shoppers() {
    let s = shop().await;
    let user = s.app.shopper("hoarder").await;
    place(&s.app, &user, &[(s.drum, 10)]).await;
    let path = format!("/api/admin/products/{}/restock/", s.drum);
    let forbidden = s
        .app
        .post(&path, Some(&user.access), &json!({"quantity": 5}))
        .await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let cases: &[(Value, &str)] = &[
        (json!({"quantity": 0}), "zero"),
        (json!({"quantity": -5}), "negative"),
        (json!({"quantity": 1_000_001}), "too many"),
        (json!({"quantity": 5, "received": 100}), "unknown field"),
    ];
    for (payload, why) in cases {
        let response = s.app.post(&path, Some(&s.staff.access), payload).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{why}");
    }
    assert_eq!(s.app.stock_of(s.drum, None).await, 0);
    let response = s
        .app
        .post(&path, Some(&s.staff.access), &json!({"quantity": 5}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let level = body(response).await;
    assert_eq!(level["on_hand"], 5);
    assert_eq!(level["received"], 15);
    assert_eq!(s.app.stock_of(s.drum, None).await, 5);
    // The restocked units can be bought at once.
    let again = s.app.shopper("second").await;
    place(&s.app, &again, &[(s.drum, 5)]).await;
    let missing = s
        .app
        .post(
            "/api/admin/products/999999999/restock/",
            Some(&s.staff.access),
            &json!({"quantity": 5}),
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

/// A shop served by the real binary, for crash tests.
struct Remote {
    client: reqwest::Client,
    address: String,
}

impl Remote {
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        payload: Option<&Value>,
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let mut builder = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            builder = builder.bearer_auth(token);
        }
        if let Some(payload) = payload {
            builder = builder.json(payload);
        }
        let response = builder.send().await?;
        let status = response.status();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn ok(&self, method: Method, path: &str, token: Option<&str>, payload: Value) -> Value {
        let (status, value) = self
            .send(method, path, token, Some(&payload))
            .await
            .expect("server up");
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    async fn login(&self, username: &str) -> String {
        self.ok(
            Method::POST,
            "/api/auth/login/",
            None,
            json!({"username": username, "password": PASSWORD}),
        )
        .await["access"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// What the storm was told: placed orders (id -> items) and acknowledged cancels.
#[derive(Default)]
struct Acknowledged {
    orders: HashMap<u64, Value>,
    cancelled: Vec<u64>,
}

#[actix_web::test]
async fn every_acknowledged_order_survives_a_kill_9_mid_storm_and_stock_balances() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let created = std::process::Command::new(env!("CARGO_BIN_EXE_storefront"))
        .args([
            "create-admin",
            "--username",
            "nightwatch",
            "--email",
            "nightwatch@example.com",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("STOREFRONT_ADMIN_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let mut server = spawn_binary(dir.path(), &[]).expect("first start");
    let shop = Arc::new(Remote {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        address: server.address.clone(),
    });
    let staff = shop.login("nightwatch").await;
    let category = shop
        .ok(
            Method::POST,
            "/api/categories/",
            Some(&staff),
            json!({"name": "Storm"}),
        )
        .await["id"]
        .as_u64()
        .unwrap();
    let mut initial = HashMap::new();
    for (name, stock) in [("Anchor", 60), ("Buoy", 40), ("Compass", 25)] {
        let product = shop
            .ok(
                Method::POST,
                "/api/products/",
                Some(&staff),
                json!({"name": name, "price": "5.00", "category": category, "stock": stock}),
            )
            .await["id"]
            .as_u64()
            .unwrap();
        initial.insert(product, stock as i64);
    }
    let products: Vec<u64> = initial.keys().copied().collect();
    let mut tokens = Vec::new();
    for n in 0..24 {
        let name = format!("sailor{n}");
        shop.ok(
            Method::POST,
            "/api/auth/register/",
            None,
            json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD}),
        )
        .await;
        tokens.push(shop.login(&name).await);
    }

    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));
    let storm: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(n, token)| {
            let shop = shop.clone();
            let token = token.clone();
            let products = products.clone();
            let acknowledged = acknowledged.clone();
            actix_web::rt::spawn(async move {
                for round in 0.. {
                    let product = products[(n + round) % products.len()];
                    let add = json!({"product_id": product, "quantity": 1 + (n + round) % 2});
                    match shop
                        .send(Method::POST, "/api/cart/add/", Some(&token), Some(&add))
                        .await
                    {
                        Ok(_) => {}
                        Err(_) => return,
                    }
                    let placed = shop
                        .send(
                            Method::POST,
                            "/api/checkout/",
                            Some(&token),
                            Some(&address_body()),
                        )
                        .await;
                    let order = match placed {
                        Ok((StatusCode::CREATED, order)) => order,
                        Ok(_) => continue,
                        Err(_) => return,
                    };
                    let id = order["id"].as_u64().unwrap();
                    acknowledged.lock().unwrap().orders.insert(id, order);
                    if round % 3 == 2 {
                        let path = format!("/api/orders/{id}/cancel/");
                        match shop.send(Method::POST, &path, Some(&token), None).await {
                            Ok((StatusCode::OK, _)) => {
                                acknowledged.lock().unwrap().cancelled.push(id)
                            }
                            Ok((status, value)) => panic!("cancel {id}: {status} {value}"),
                            Err(_) => return,
                        }
                    }
                }
            })
        })
        .collect();
    let delay = rand::thread_rng().gen_range(300..1500);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    server.kill_9();
    for task in storm {
        task.await.expect("storm task");
    }
    let acknowledged = Arc::try_unwrap(acknowledged)
        .ok()
        .unwrap()
        .into_inner()
        .unwrap();
    assert!(
        !acknowledged.orders.is_empty(),
        "the storm placed orders before the kill ({delay} ms)"
    );

    let server = spawn_binary(dir.path(), &[]).expect("restart");
    let shop = Remote {
        client: reqwest::Client::new(),
        address: server.address.clone(),
    };
    let staff = shop.login("nightwatch").await;
    let orders = all_orders_at(&shop.client, &shop.address, &staff, "").await;
    let stored: HashMap<u64, &Value> = orders.iter().map(|o| (id(o), o)).collect();
    for (order_id, acked) in &acknowledged.orders {
        let order = stored
            .get(order_id)
            .unwrap_or_else(|| panic!("acknowledged order {order_id} lost"));
        assert_eq!(order["items"], acked["items"], "order {order_id}");
        assert_eq!(
            order["total_price"], acked["total_price"],
            "order {order_id}"
        );
    }
    for order_id in &acknowledged.cancelled {
        assert_eq!(
            stored[order_id]["status"], "cancelled",
            "acknowledged cancel of {order_id}"
        );
    }
    let sold = units_sold(&orders);
    for (product, received) in &initial {
        let (status, detail) = shop
            .send(
                Method::GET,
                &format!("/api/products/{product}/"),
                None,
                None,
            )
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK);
        let on_hand = detail["stock"].as_i64().unwrap();
        assert!(on_hand >= 0);
        assert_eq!(
            *received,
            on_hand + sold.get(product).copied().unwrap_or(0),
            "product {product}: received == on hand + sold after kill -9 at {delay} ms"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

#[actix_web::test]
async fn checkouts_and_cancels_racing_on_one_product_keep_the_inventory_figure_exact() {
    let s = shop().await;
    let shoppers = s.app.shoppers("churner", 24).await;
    let address = address_body();
    let empty = json!({});
    join_all(shoppers.iter().map(|user| {
        let (app, address, empty, drum) = (&s.app, &address, &empty, s.drum);
        async move {
            for _ in 0..6 {
                let added = app
                    .post(
                        "/api/cart/add/",
                        Some(&user.access),
                        &json!({"product_id": drum, "quantity": 1}),
                    )
                    .await;
                if added.status() != StatusCode::OK {
                    continue;
                }
                let response = app.checkout(user, None, address).await;
                match response.status() {
                    StatusCode::CREATED => {
                        let order = id(&body(response).await);
                        let cancel = app
                            .post(
                                &format!("/api/orders/{order}/cancel/"),
                                Some(&user.access),
                                empty,
                            )
                            .await;
                        assert_eq!(cancel.status(), StatusCode::OK);
                    }
                    StatusCode::CONFLICT => {}
                    other => panic!("checkout: {other}"),
                }
            }
        }
    }))
    .await;
    let stored = s
        .app
        .store
        .stock_level(storefront::domain::ProductId(s.drum))
        .unwrap()
        .unwrap();
    let shown = s.app.stock_of(s.drum, None).await;
    assert_eq!(
        shown, stored.on_hand,
        "the inventory owner's figure is the stored one"
    );
    let sold = units_sold(&s.app.all_orders(&s.staff, "").await);
    assert_eq!(
        stored.received,
        stored.on_hand + sold.get(&s.drum).copied().unwrap_or(0)
    );
    // A staff count is applied from the owner's figure: it must land exactly.
    let r = s
        .app
        .patch(
            &format!("/api/products/{}/", s.drum),
            Some(&s.staff.access),
            &json!({"stock": 7}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let after = s
        .app
        .store
        .stock_level(storefront::domain::ProductId(s.drum))
        .unwrap()
        .unwrap();
    assert_eq!(after.on_hand, 7, "stored stock after a count of 7");
    assert_eq!(s.app.stock_of(s.drum, None).await, 7);
}

#[actix_web::test]
async fn actors_stopped_for_idleness_mid_storm_cost_no_request_a_5xx() {
    let app = crate::helpers::spawn_app_with(|settings| {
        settings.actor_idle_timeout = Duration::from_millis(1);
    })
    .await;
    let staff = app.staff("sweeper").await;
    let shelf = app.category(&staff, "Shelf").await;
    let product = app.product(&staff, shelf, "Lantern", "8.00", 20).await;
    let shoppers = app.shoppers("idler", 60).await;
    let address = address_body();
    let answers = join_all(shoppers.iter().map(|user| {
        let (app, address) = (&app, &address);
        async move {
            let mut statuses = Vec::new();
            for _ in 0..3 {
                let added = app
                    .post(
                        "/api/cart/add/",
                        Some(&user.access),
                        &json!({"product_id": product, "quantity": 1}),
                    )
                    .await;
                statuses.push(added.status());
                statuses.push(app.checkout(user, None, address).await.status());
            }
            statuses
        }
    }))
    .await;
    let statuses: Vec<StatusCode> = answers.into_iter().flatten().collect();
    let failed: Vec<&StatusCode> = statuses.iter().filter(|s| s.is_server_error()).collect();
    assert!(
        failed.is_empty(),
        "{} server errors: {failed:?}",
        failed.len()
    );
    let placed = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(placed, 20, "every unit sold, none twice");
    assert_eq!(app.stock_of(product, None).await, 0);
}
