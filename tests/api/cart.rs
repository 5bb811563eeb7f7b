//! Carts: anonymous tokens (body, header, cookie), changes and versions,
//! refused changes that leave the cart alone, availability after stock
//! drops, persistence across restarts and the merge at login.

use crate::helpers::{body, error_code, spawn_app, spawn_binary, TestApp, TestUser, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

struct Shop {
    app: TestApp,
    staff: TestUser,
    /// "Lamp", 9.99, stock 5.
    lamp: u64,
    /// "Rug", 40.00, stock 2.
    rug: u64,
}

async fn shop() -> Shop {
    let app = spawn_app().await;
    let staff = app.staff("keeper").await;
    let home = app.category(&staff, "Home").await;
    let lamp = app.product(&staff, home, "Lamp", "9.99", 5).await;
    let rug = app.product(&staff, home, "Rug", "40.00", 2).await;
    Shop {
        app,
        staff,
        lamp,
        rug,
    }
}

/// A request carrying an anonymous cart token as the header.
async fn with_token(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    payload: Option<Value>,
) -> reqwest::Response {
    let mut builder = app
        .client
        .request(method, app.url(path))
        .header("X-Cart-Token", token);
    if let Some(payload) = payload {
        builder = builder.json(&payload);
    }
    builder.send().await.unwrap()
}

fn quantities(cart: &Value) -> Vec<(u64, i64)> {
    let mut lines: Vec<(u64, i64)> = cart["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["product_id"].as_u64().unwrap(),
                i["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    lines.sort();
    lines
}

async fn user_cart(app: &TestApp, user: &TestUser) -> Value {
    let response = app.get("/api/cart/", Some(&user.access)).await;
    assert_eq!(response.status(), StatusCode::OK);
    body(response).await
}

#[actix_web::test]
async fn an_anonymous_add_returns_a_token_that_works_as_header_and_as_cookie() {
    let s = shop().await;
    let response = s
        .app
        .post(
            "/api/cart/add/",
            None,
            &json!({"product_id": s.lamp, "quantity": 2}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let header = response
        .headers()
        .get("X-Cart-Token")
        .expect("X-Cart-Token header")
        .to_str()
        .unwrap()
        .to_owned();
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("cart_token="))
        .expect("cart_token cookie");
    let cart = body(response).await;
    let token = cart["cart_token"].as_str().expect("cart_token in body");
    assert_eq!(token, header);
    assert!(
        cookie.starts_with(&format!("cart_token={token};")),
        "{cookie}"
    );
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert_eq!(quantities(&cart), vec![(s.lamp, 2)]);

    let by_header = body(with_token(&s.app, Method::GET, "/api/cart/", token, None).await).await;
    assert_eq!(quantities(&by_header), vec![(s.lamp, 2)]);
    assert_eq!(by_header["id"], cart["id"]);

    let by_cookie = s
        .app
        .client
        .post(s.app.url("/api/cart/add/"))
        .header("Cookie", format!("cart_token={token}"))
        .json(&json!({"product_id": s.rug, "quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), StatusCode::OK);
    let by_cookie = body(by_cookie).await;
    assert_eq!(
        by_cookie["id"], cart["id"],
        "the cookie reaches the same cart"
    );
    assert_eq!(quantities(&by_cookie), {
        let mut both = vec![(s.lamp, 2), (s.rug, 1)];
        both.sort();
        both
    });

    let unknown = with_token(&s.app, Method::GET, "/api/cart/", "not-a-real-token", None).await;
    let unknown = body(unknown).await;
    assert!(unknown["items"].as_array().unwrap().is_empty());
    assert!(
        unknown["cart_token"].is_null(),
        "unknown tokens are not adopted"
    );
}

/// A cart request, the lines expected after it, and why.
type Step = (Method, String, Option<Value>, Vec<(u64, i64)>, &'static str);

#[actix_web::test]
async fn add_set_remove_and_clear_each_raise_the_version() {
    let s = shop().await;
    let user = s.app.shopper("carter").await;
    let t = Some(user.access.as_str());
    let empty = user_cart(&s.app, &user).await;
    let mut version = empty["version"].as_u64().unwrap();

    let steps: Vec<Step> = vec![
        (
            Method::POST,
            "/api/cart/add/".into(),
            Some(json!({"product_id": s.lamp, "quantity": 1})),
            vec![(s.lamp, 1)],
            "add",
        ),
        (
            Method::POST,
            "/api/cart/add/".into(),
            Some(json!({"product_id": s.lamp, "quantity": 2})),
            vec![(s.lamp, 3)],
            "add again adds up",
        ),
        (
            Method::POST,
            "/api/cart/add/".into(),
            Some(json!({"product_id": s.rug})),
            vec![(s.lamp, 3), (s.rug, 1)],
            "quantity defaults to 1",
        ),
        (
            Method::PATCH,
            format!("/api/cart/items/{}/", s.lamp),
            Some(json!({"quantity": 5})),
            vec![(s.lamp, 5), (s.rug, 1)],
            "set",
        ),
        (
            Method::DELETE,
            format!("/api/cart/items/{}/", s.rug),
            None,
            vec![(s.lamp, 5)],
            "remove",
        ),
        (
            Method::PATCH,
            format!("/api/cart/items/{}/", s.lamp),
            Some(json!({"quantity": 0})),
            vec![],
            "set 0 removes",
        ),
        (
            Method::POST,
            "/api/cart/add/".into(),
            Some(json!({"product_id": s.rug, "quantity": 2})),
            vec![(s.rug, 2)],
            "add after emptying",
        ),
        (Method::DELETE, "/api/cart/".into(), None, vec![], "clear"),
    ];
    for (method, path, payload, expected, why) in steps {
        let response = s.app.request(method, &path, t, payload.as_ref()).await;
        assert_eq!(response.status(), StatusCode::OK, "{why}");
        let cart = body(response).await;
        let mut expected = expected;
        expected.sort();
        assert_eq!(quantities(&cart), expected, "{why}");
        let next = cart["version"].as_u64().unwrap();
        assert!(next > version, "{why}: version {next} after {version}");
        version = next;
        assert_eq!(
            user_cart(&s.app, &user).await["version"].as_u64().unwrap(),
            version,
            "{why}: GET shows the same version"
        );
    }
    // Totals are computed from current prices.
    s.app.add_to_cart(&user, s.lamp, 2).await;
    let cart = s.app.add_to_cart(&user, s.rug, 1).await;
    assert_eq!(cart["total"], "59.98");
    assert_eq!(cart["item_count"], 3);
}

#[actix_web::test]
async fn refused_cart_changes_are_4xx_and_leave_the_cart_and_its_version_unchanged() {
    let s = shop().await;
    let user = s.app.shopper("refused").await;
    let t = Some(user.access.as_str());
    s.app.add_to_cart(&user, s.lamp, 2).await;
    let hidden_home = s.app.category(&s.staff, "Hidden").await;
    let hidden = s
        .app
        .product(&s.staff, hidden_home, "Retired Vase", "5.00", 10)
        .await;
    let r = s
        .app
        .patch(
            &format!("/api/products/{hidden}/"),
            Some(&s.staff.access),
            &json!({"is_active": false}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let before = user_cart(&s.app, &user).await;

    let lamp_item = format!("/api/cart/items/{}/", s.lamp);
    let rug_item = format!("/api/cart/items/{}/", s.rug);
    let cases: Vec<(Method, String, Option<Value>, StatusCode, &str)> = vec![
        (
            Method::POST,
            "/api/cart/add/".into(),
            Some(json!({"product_id": s.lamp, "quantity": 4})),
            StatusCode::CONFLICT,
            "2 in cart + 4 is more than the 5 in stock",
        ),
        (
            Method::POST,
            "/api/cart/add/".into(),
            Some(json!({"product_id": s.rug, "quantity": 3})),
            StatusCode::CONFLICT,
            "more than stock in one go",
        ),
        (
            Method::POST,
            "/api/cart/add/".into(),
            Some(json!({"product_id": s.lamp, "quantity": 0})),
            StatusCode::BAD_REQUEST,
            "quantity 0",
        ),
        (
            Method::POST,
            "/api/cart/add/".into(),
            Some(json!({"product_id": s.lamp, "quantity": -1})),
            StatusCode::BAD_REQUEST,
            "negative quantity",
        ),
        (
            Method::POST,
            "/api/cart/add/".into(),
            Some(json!({"product_id": s.lamp, "quantity": 1000})),
            StatusCode::BAD_REQUEST,
            "quantity 1000",
        ),
        (
            Method::POST,
            "/api/cart/add/".into(),
            Some(json!({"product_id": s.lamp, "quantity": 9_000_000_000_i64})),
            StatusCode::BAD_REQUEST,
            "absurd quantity",
        ),
        (
            Method::POST,
            "/api/cart/add/".into(),
            Some(json!({"product_id": 987_654_321, "quantity": 1})),
            StatusCode::NOT_FOUND,
            "unknown product",
        ),
        (
            Method::POST,
            "/api/cart/add/".into(),
            Some(json!({"product_id": hidden, "quantity": 1})),
            StatusCode::NOT_FOUND,
            "inactive product",
        ),
        (
            Method::POST,
            "/api/cart/add/".into(),
            Some(json!({"product_id": s.lamp, "quantity": 1, "price": "0.01"})),
            StatusCode::BAD_REQUEST,
            "unknown field",
        ),
        (
            Method::POST,
            "/api/cart/add/".into(),
            Some(json!({"product_id": "lamp"})),
            StatusCode::BAD_REQUEST,
            "product id of the wrong type",
        ),
        (
            Method::PATCH,
            lamp_item.clone(),
            Some(json!({"quantity": 6})),
            StatusCode::CONFLICT,
            "set above stock",
        ),
        (
            Method::PATCH,
            lamp_item.clone(),
            Some(json!({"quantity": -2})),
            StatusCode::BAD_REQUEST,
            "set negative",
        ),
        (
            Method::PATCH,
            lamp_item.clone(),
            Some(json!({"quantity": 1000})),
            StatusCode::BAD_REQUEST,
            "set 1000",
        ),
        (
            Method::PATCH,
            rug_item.clone(),
            Some(json!({"quantity": 1})),
            StatusCode::NOT_FOUND,
            "set a product not in the cart",
        ),
        (
            Method::DELETE,
            rug_item.clone(),
            None,
            StatusCode::NOT_FOUND,
            "remove a product not in the cart",
        ),
    ];
    for (method, path, payload, status, why) in cases {
        let response = s.app.request(method, &path, t, payload.as_ref()).await;
        assert_eq!(response.status(), status, "{why}");
        let value = body(response).await;
        assert!(value["error"]["message"].is_string(), "{why}: {value}");
        let after = user_cart(&s.app, &user).await;
        assert_eq!(quantities(&after), quantities(&before), "{why}");
        assert_eq!(after["version"], before["version"], "{why}");
    }
    // Refused anonymous adds create no cart.
    let response = s
        .app
        .post(
            "/api/cart/add/",
            None,
            &json!({"product_id": s.lamp, "quantity": 0}),
        )
        .await;
    assert!(response.headers().get("X-Cart-Token").is_none());
    assert_eq!(
        error_code(response, StatusCode::BAD_REQUEST).await,
        "invalid_quantity"
    );
}

#[actix_web::test]
async fn a_line_is_marked_unavailable_once_stock_drops_below_its_quantity() {
    let s = shop().await;
    let user = s.app.shopper("watcher").await;
    let cart = s.app.add_to_cart(&user, s.lamp, 4).await;
    assert_eq!(cart["items"][0]["available"], true);
    let r = s
        .app
        .patch(
            &format!("/api/products/{}/", s.lamp),
            Some(&s.staff.access),
            &json!({"stock": 3}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let cart = user_cart(&s.app, &user).await;
    assert_eq!(cart["items"][0]["available"], false);
    assert_eq!(cart["items"][0]["stock"], 3);
    assert_eq!(cart["items"][0]["quantity"], 4, "the line itself is kept");
    let r = s
        .app
        .patch(
            &format!("/api/products/{}/", s.lamp),
            Some(&s.staff.access),
            &json!({"is_active": false, "stock": 10}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let cart = user_cart(&s.app, &user).await;
    assert_eq!(
        cart["items"][0]["available"], false,
        "inactive products are unavailable whatever the stock"
    );
}

#[actix_web::test]
async fn anonymous_cart_merges_into_the_user_cart_at_login_capped_by_stock() {
    let s = shop().await;
    let user = s.app.shopper("merger").await;
    s.app.add_to_cart(&user, s.lamp, 3).await;
    s.app.add_to_cart(&user, s.rug, 1).await;

    let anonymous = body(
        s.app
            .post(
                "/api/cart/add/",
                None,
                &json!({"product_id": s.lamp, "quantity": 4}),
            )
            .await,
    )
    .await;
    let token = anonymous["cart_token"].as_str().unwrap().to_owned();
    let r = with_token(
        &s.app,
        Method::POST,
        "/api/cart/add/",
        &token,
        Some(json!({"product_id": s.rug, "quantity": 1})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);

    let login = s
        .app
        .client
        .post(s.app.url("/api/auth/login/"))
        .header("X-Cart-Token", &token)
        .json(&json!({"username": "merger", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let access = body(login).await["access"].as_str().unwrap().to_owned();
    let merged = body(s.app.get("/api/cart/", Some(&access)).await).await;
    let mut expected = vec![(s.lamp, 5), (s.rug, 2)];
    expected.sort();
    assert_eq!(
        quantities(&merged),
        expected,
        "3 + 4 lamps capped at 5 in stock; 1 + 1 rugs"
    );

    let old = body(with_token(&s.app, Method::GET, "/api/cart/", &token, None).await).await;
    assert!(
        old["items"].as_array().unwrap().is_empty(),
        "the anonymous cart is gone: {old}"
    );
    let r = with_token(
        &s.app,
        Method::DELETE,
        &format!("/api/cart/items/{}/", s.lamp),
        &token,
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let again = body(s.app.get("/api/cart/", Some(&access)).await).await;
    assert_eq!(
        quantities(&again),
        expected,
        "a second look changes nothing"
    );
}

#[actix_web::test]
async fn carts_survive_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let created = std::process::Command::new(env!("CARGO_BIN_EXE_storefront"))
        .args([
            "create-admin",
            "--username",
            "owner",
            "--email",
            "owner@example.com",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("STOREFRONT_ADMIN_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let client = reqwest::Client::new();
    let mut first = spawn_binary(dir.path(), &[]).expect("first start");
    let login = |address: String, name: &'static str| {
        let client = client.clone();
        async move {
            let r = client
                .post(format!("{address}/api/auth/login/"))
                .json(&json!({"username": name, "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "login {name}");
            body(r).await["access"].as_str().unwrap().to_owned()
        }
    };
    let staff = login(first.address.clone(), "owner").await;
    let post = |address: &str, token: Option<&str>, path: &str, payload: Value| {
        let mut b = client.post(format!("{address}{path}")).json(&payload);
        if let Some(token) = token {
            b = b.bearer_auth(token);
        }
        b.send()
    };
    let cat = body(
        post(
            &first.address,
            Some(&staff),
            "/api/categories/",
            json!({"name": "Books"}),
        )
        .await
        .unwrap(),
    )
    .await["id"]
        .as_u64()
        .unwrap();
    let book = body(
        post(
            &first.address,
            Some(&staff),
            "/api/products/",
            json!({"name": "Atlas", "price": "12.00", "category": cat, "stock": 8}),
        )
        .await
        .unwrap(),
    )
    .await["id"]
        .as_u64()
        .unwrap();
    let r = post(
        &first.address,
        None,
        "/api/auth/register/",
        json!({"username": "reader", "email": "reader@example.com", "password": PASSWORD}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let reader = login(first.address.clone(), "reader").await;
    let r = post(
        &first.address,
        Some(&reader),
        "/api/cart/add/",
        json!({"product_id": book, "quantity": 3}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let version = body(r).await["version"].as_u64().unwrap();
    let anonymous = body(
        post(
            &first.address,
            None,
            "/api/cart/add/",
            json!({"product_id": book, "quantity": 2}),
        )
        .await
        .unwrap(),
    )
    .await;
    let token = anonymous["cart_token"].as_str().unwrap().to_owned();
    first.kill_9();

    let second = spawn_binary(dir.path(), &[]).expect("second start");
    let cart = body(
        client
            .get(format!("{}/api/cart/", second.address))
            .bearer_auth(&reader)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(quantities(&cart), vec![(book, 3)]);
    assert_eq!(cart["version"].as_u64().unwrap(), version);
    let cart = body(
        client
            .get(format!("{}/api/cart/", second.address))
            .header("X-Cart-Token", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(quantities(&cart), vec![(book, 2)], "anonymous cart kept");
}
