//! Security regression suite (DESIGN.md invariant 6). `routes()` lists every
//! route with who may call it and what fills its path parameter; the tests
//! walk that table:
//!
//! - another shopper on each of a shopper's objects gets 404, never 403, so
//!   ids reveal nothing, and the object is unchanged;
//! - a shopper on every staff route gets 403 and nothing changes;
//! - nobody on every route that needs a login gets 401;
//! - a route in the OpenAPI document with a path parameter or a login
//!   requirement that the table lacks fails the suite, so it keeps up.
//!
//! `write_cases()` sends each write route a valid body plus one server-owned
//! field at a time: 400 naming the field, nothing changed, and the same body
//! without the field then works (so the 400 came from the field alone).

use crate::helpers::{address_body, body, spawn_app_with, TestApp, TestUser, PASSWORD};
use crate::payments::{fake_razorpay, payments, RZP_KEY_SECRET};
use crate::payments_providers::{paypal_fake_answer, Fake};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use storefront::payments::signature::razorpay_payment_signature;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone, logged in or not.
    Public,
    /// Anyone; it acts on the caller's own cart (anonymous carts by token).
    Cart,
    /// A logged-in user, on their own things.
    User,
    /// Staff only.
    Staff,
    /// Whoever holds the payment's pay-page token (not a login).
    PayPage,
}

/// What fills the `{…}` in a route's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param {
    None,
    /// The owner's pending order.
    Order,
    /// The owner's review.
    Review,
    /// A product on the owner's wishlist (and nobody else's).
    Wished,
    /// A product in the owner's cart (and nobody else's).
    CartLine,
    /// The owner's test-provider payment.
    TestPayment,
    Product,
    Category,
    Brand,
    /// The owner's user id.
    User,
    Provider,
}

/// A request body, built from the fixture.
enum Payload {
    Empty,
    Json(Value),
    Csv(&'static str),
    Form(&'static str),
    Image,
}

struct Route {
    method: Method,
    /// As the OpenAPI document writes it.
    path: &'static str,
    access: Access,
    param: Param,
    /// The path or the body names one of the owner's objects: anyone else
    /// gets 404.
    owned: bool,
    body: fn(&World) -> Payload,
}

fn route(
    method: Method,
    path: &'static str,
    access: Access,
    param: Param,
    owned: bool,
    body: fn(&World) -> Payload,
) -> Route {
    Route {
        method,
        path,
        access,
        param,
        owned,
        body,
    }
}

fn empty(_: &World) -> Payload {
    Payload::Empty
}

/// Every route. A new route goes here; `the_table_lists_every_route_...`
/// fails until it does.
#[rustfmt::skip]
fn routes() -> Vec<Route> {
    use Access::*;
    use Method as M;
    vec![
        // accounts
        route(M::POST, "/api/auth/register/", Public, Param::None, false, empty),
        route(M::POST, "/api/auth/login/", Public, Param::None, false, empty),
        route(M::POST, "/api/auth/refresh/", Public, Param::None, false, empty),
        route(M::POST, "/api/auth/logout/", Public, Param::None, false, empty),
        route(M::GET, "/api/profile/", User, Param::None, false, empty),
        route(M::PATCH, "/api/profile/", User, Param::None, false, |_| {
            Payload::Json(json!({"city": "Shelbyville"}))
        }),
        route(M::POST, "/api/profile/password/", User, Param::None, false, |_| {
            Payload::Json(json!({"old_password": PASSWORD, "new_password": "another horse battery"}))
        }),
        route(M::GET, "/api/admin/users/", Staff, Param::None, false, empty),
        route(M::PATCH, "/api/admin/users/{id}/", Staff, Param::User, false, |_| {
            Payload::Json(json!({"is_staff": true}))
        }),
        // operations
        route(M::GET, "/healthz", Public, Param::None, false, empty),
        route(M::GET, "/metrics", Public, Param::None, false, empty),
        route(M::GET, "/api/openapi.json", Public, Param::None, false, empty),
        // catalog
        route(M::GET, "/api/products/", Public, Param::None, false, empty),
        route(M::POST, "/api/products/", Staff, Param::None, false, |w| {
            Payload::Json(json!({"name": "Smuggled", "price": "1.00", "category": w.category}))
        }),
        route(M::GET, "/api/products/{key}/", Public, Param::Product, false, empty),
        route(M::PUT, "/api/products/{id}/", Staff, Param::Product, false, |w| {
            Payload::Json(json!({"name": "Renamed", "price": "1.00", "category": w.category}))
        }),
        route(M::PATCH, "/api/products/{id}/", Staff, Param::Product, false, |_| {
            Payload::Json(json!({"price": "0.01"}))
        }),
        route(M::DELETE, "/api/products/{id}/", Staff, Param::Product, false, empty),
        route(M::POST, "/api/products/{id}/image/", Staff, Param::Product, false, |_| Payload::Image),
        route(M::GET, "/api/categories/", Public, Param::None, false, empty),
        route(M::POST, "/api/categories/", Staff, Param::None, false, |_| {
            Payload::Json(json!({"name": "Smuggled"}))
        }),
        route(M::GET, "/api/categories/{key}/", Public, Param::Category, false, empty),
        route(M::PUT, "/api/categories/{id}/", Staff, Param::Category, false, |_| {
            Payload::Json(json!({"name": "Renamed"}))
        }),
        route(M::PATCH, "/api/categories/{id}/", Staff, Param::Category, false, |_| {
            Payload::Json(json!({"name": "Renamed"}))
        }),
        route(M::DELETE, "/api/categories/{id}/", Staff, Param::Category, false, empty),
        route(M::GET, "/api/brands/", Public, Param::None, false, empty),
        route(M::POST, "/api/brands/", Staff, Param::None, false, |_| {
            Payload::Json(json!({"name": "Smuggled"}))
        }),
        route(M::GET, "/api/brands/{key}/", Public, Param::Brand, false, empty),
        route(M::PUT, "/api/brands/{id}/", Staff, Param::Brand, false, |_| {
            Payload::Json(json!({"name": "Renamed"}))
        }),
        route(M::PATCH, "/api/brands/{id}/", Staff, Param::Brand, false, |_| {
            Payload::Json(json!({"name": "Renamed"}))
        }),
        route(M::DELETE, "/api/brands/{id}/", Staff, Param::Brand, false, empty),
        route(M::POST, "/api/brands/{id}/logo/", Staff, Param::Brand, false, |_| Payload::Image),
        route(M::POST, "/api/admin/products/import/", Staff, Param::None, false, |_| {
            Payload::Csv("name,price,category\nSmuggled,1.00,Contraband\n")
        }),
        // cart, checkout and orders
        route(M::GET, "/api/cart/", Cart, Param::None, false, empty),
        route(M::DELETE, "/api/cart/", Cart, Param::None, false, empty),
        route(M::POST, "/api/cart/add/", Cart, Param::None, false, |w| {
            Payload::Json(json!({"product_id": w.product, "quantity": 1}))
        }),
        route(M::PATCH, "/api/cart/items/{product_id}/", Cart, Param::CartLine, true, |_| {
            Payload::Json(json!({"quantity": 5}))
        }),
        route(M::DELETE, "/api/cart/items/{product_id}/", Cart, Param::CartLine, true, empty),
        route(M::POST, "/api/checkout/", User, Param::None, false, |_| {
            Payload::Json(address_body())
        }),
        route(M::GET, "/api/orders/", User, Param::None, false, empty),
        route(M::GET, "/api/orders/{id}/", User, Param::Order, true, empty),
        route(M::POST, "/api/orders/{id}/cancel/", User, Param::Order, true, empty),
        route(M::GET, "/api/orders/{id}/payments/", User, Param::Order, true, empty),
        route(M::GET, "/api/admin/orders/", Staff, Param::None, false, empty),
        route(M::PATCH, "/api/admin/orders/{id}/", Staff, Param::Order, false, |_| {
            Payload::Json(json!({"status": "cancelled"}))
        }),
        route(M::POST, "/api/admin/orders/{id}/refund/", Staff, Param::Order, false, empty),
        route(M::POST, "/api/admin/products/{id}/restock/", Staff, Param::Product, false, |_| {
            Payload::Json(json!({"quantity": 5}))
        }),
        route(M::GET, "/api/admin/inventory/", Staff, Param::None, false, empty),
        route(M::GET, "/api/admin/inventory/{product_id}/", Staff, Param::Product, false, empty),
        route(M::POST, "/api/admin/inventory/{product_id}/adjust/", Staff, Param::Product, false, |_| {
            Payload::Json(json!({"delta": 3, "reason": "found behind the shelf"}))
        }),
        route(M::GET, "/api/admin/inventory/{product_id}/ledger/", Staff, Param::Product, false, empty),
        route(M::GET, "/api/admin/analytics/", Staff, Param::None, false, empty),
        route(M::GET, "/api/admin/audit/", Staff, Param::None, false, empty),
        // payments: the body names the owner's order or payment
        route(M::GET, "/api/payment/providers/", Public, Param::None, false, empty),
        route(M::POST, "/api/payment/", User, Param::None, true, |w| {
            Payload::Json(json!({"order_id": w.order, "provider": "test"}))
        }),
        route(M::POST, "/api/payment/razorpay/verify/", User, Param::None, true, |w| {
            Payload::Json(json!({
                "razorpay_order_id": w.razorpay_order,
                "razorpay_payment_id": "pay_1",
                "razorpay_signature": razorpay_payment_signature(RZP_KEY_SECRET, &w.razorpay_order, "pay_1"),
            }))
        }),
        route(M::POST, "/api/payment/paypal/capture/", User, Param::None, true, |w| {
            Payload::Json(json!({"order_id": w.order}))
        }),
        route(M::POST, "/api/payment/webhooks/{provider}/", Public, Param::Provider, false, empty),
        route(M::GET, "/pay/test/{id}", PayPage, Param::TestPayment, true, empty),
        route(M::POST, "/pay/test/{id}", PayPage, Param::TestPayment, true, |_| {
            Payload::Form("outcome=pay")
        }),
        // wishlist and reviews
        route(M::GET, "/api/wishlist/", User, Param::None, false, empty),
        route(M::POST, "/api/wishlist/", User, Param::None, false, |w| {
            Payload::Json(json!({"product_id": w.product}))
        }),
        route(M::DELETE, "/api/wishlist/{product_id}/", User, Param::Wished, true, empty),
        route(M::POST, "/api/wishlist/{product_id}/move-to-cart/", User, Param::Wished, true, empty),
        route(M::GET, "/api/products/{id}/reviews/", Public, Param::Product, false, empty),
        route(M::POST, "/api/products/{id}/reviews/", User, Param::Product, false, |_| {
            Payload::Json(json!({"rating": 1, "comment": "never bought it"}))
        }),
        route(M::PATCH, "/api/reviews/{id}/", User, Param::Review, true, |_| {
            Payload::Json(json!({"rating": 1, "comment": "defaced"}))
        }),
        route(M::DELETE, "/api/reviews/{id}/", User, Param::Review, true, empty),
    ]
}

/// Routes the OpenAPI document leaves out on purpose: the test provider's
/// HTML pay page (a demo page, not part of the JSON API) and the document
/// itself.
const UNDOCUMENTED: &[&str] = &["/pay/test/{}", "/api/openapi.json"];

/// A shop where `ann` owns one of everything and `bob` is another shopper.
struct World {
    app: TestApp,
    staff: TestUser,
    ann: TestUser,
    bob: TestUser,
    category: u64,
    brand: u64,
    /// On sale; ann ordered and reviewed it.
    product: u64,
    /// On ann's wishlist only.
    wished: u64,
    /// In ann's cart only.
    cart_line: u64,
    /// Ann's pending order, with a test-provider and a Razorpay payment.
    order: u64,
    review: u64,
    test_payment: u64,
    pay_token: String,
    /// Razorpay's id of ann's Razorpay payment.
    razorpay_order: String,
    _fakes: (Fake, Fake),
}

async fn json_ok(response: reqwest::Response, what: &str) -> Value {
    let status = response.status();
    let value = body(response).await;
    assert!(status.is_success(), "{what}: {status} {value}");
    value
}

async fn world() -> World {
    let paypal = Fake::start(paypal_fake_answer).await;
    let razorpay = fake_razorpay().await;
    let app = spawn_app_with(|s| s.payments = payments(None, Some(&paypal), Some(&razorpay))).await;
    let staff = app.staff("warden").await;
    let ann = app.shopper("ann").await;
    let bob = app.shopper("bob").await;
    let category = app.category(&staff, "Kitchen").await;
    let brand = json_ok(
        app.post(
            "/api/brands/",
            Some(&staff.access),
            &json!({"name": "Acme"}),
        )
        .await,
        "brand",
    )
    .await["id"]
        .as_u64()
        .unwrap();
    let product = json_ok(
        app.post(
            "/api/products/",
            Some(&staff.access),
            &json!({"name": "Kettle", "price": "19.99", "category": category, "brand": brand, "stock": 10}),
        )
        .await,
        "product",
    )
    .await["id"]
        .as_u64()
        .unwrap();
    let wished = app.product(&staff, category, "Teapot", "9.50", 10).await;
    let cart_line = app.product(&staff, category, "Toaster", "30.00", 10).await;

    app.add_to_cart(&ann, product, 2).await;
    let order = json_ok(app.checkout(&ann, None, &address_body()).await, "checkout").await["id"]
        .as_u64()
        .unwrap();
    app.add_to_cart(&ann, cart_line, 1).await;
    json_ok(
        app.post(
            "/api/wishlist/",
            Some(&ann.access),
            &json!({"product_id": wished}),
        )
        .await,
        "wishlist",
    )
    .await;
    let review = json_ok(
        app.post(
            &format!("/api/products/{product}/reviews/"),
            Some(&ann.access),
            &json!({"rating": 4, "comment": "Boils fast"}),
        )
        .await,
        "review",
    )
    .await["id"]
        .as_u64()
        .unwrap();
    let started = json_ok(
        app.post(
            "/api/payment/",
            Some(&ann.access),
            &json!({"order_id": order, "provider": "razorpay"}),
        )
        .await,
        "razorpay payment",
    )
    .await;
    let razorpay_order = started["next_action"]["order_id"]
        .as_str()
        .unwrap_or_else(|| panic!("razorpay order id: {started}"))
        .to_owned();
    let started = json_ok(
        app.post(
            "/api/payment/",
            Some(&ann.access),
            &json!({"order_id": order, "provider": "test"}),
        )
        .await,
        "test payment",
    )
    .await;
    let test_payment = started["id"].as_u64().unwrap();
    let url = started["next_action"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("pay page url: {started}"));
    let pay_token = url
        .split("token=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .unwrap_or_else(|| panic!("pay page token in {url}"))
        .to_owned();
    World {
        app,
        staff,
        ann,
        bob,
        category,
        brand,
        product,
        wished,
        cart_line,
        order,
        review,
        test_payment,
        pay_token,
        razorpay_order,
        _fakes: (paypal, razorpay),
    }
}

impl World {
    fn param(&self, param: Param) -> String {
        match param {
            Param::None => String::new(),
            Param::Order => self.order.to_string(),
            Param::Review => self.review.to_string(),
            Param::Wished => self.wished.to_string(),
            Param::CartLine => self.cart_line.to_string(),
            Param::TestPayment => self.test_payment.to_string(),
            Param::Product => self.product.to_string(),
            Param::Category => self.category.to_string(),
            Param::Brand => self.brand.to_string(),
            Param::User => self.ann.id.to_string(),
            Param::Provider => "test".into(),
        }
    }

    /// The route's path with its parameter filled in.
    fn path(&self, route: &Route) -> String {
        match route.path.split_once('{') {
            None => route.path.to_owned(),
            Some((before, rest)) => {
                let after = rest.split_once('}').expect("closing brace").1;
                format!("{before}{}{after}", self.param(route.param))
            }
        }
    }

    async fn send(&self, route: &Route, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self
            .app
            .client
            .request(route.method.clone(), self.app.url(&self.path(route)));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request = match (route.body)(self) {
            Payload::Empty => request,
            Payload::Json(value) => request.json(&value),
            Payload::Csv(text) => request.header("content-type", "text/csv").body(text),
            Payload::Form(text) => request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(text),
            Payload::Image => {
                let png =
                    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0".to_vec();
                let part = reqwest::multipart::Part::bytes(png)
                    .file_name("x.png")
                    .mime_str("image/png")
                    .unwrap();
                request.multipart(reqwest::multipart::Form::new().part("image", part))
            }
        };
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn read(&self, path: &str, token: &str) -> Value {
        let response = self.app.get(path, Some(token)).await;
        json_ok(response, path).await
    }

    /// Everything the walks could disturb, as the owner and staff read it.
    async fn snapshot(&self) -> Value {
        let (ann, staff) = (&self.ann.access, &self.staff.access);
        let (order, product) = (self.order, self.product);
        let mut all = Map::new();
        for (path, token) in [
            (format!("/api/orders/{order}/"), ann),
            (format!("/api/orders/{order}/payments/"), ann),
            ("/api/orders/".into(), ann),
            ("/api/wishlist/".into(), ann),
            ("/api/cart/".into(), ann),
            ("/api/profile/".into(), ann),
            (format!("/api/products/{product}/reviews/"), staff),
            ("/api/products/?page_size=100".into(), staff),
            (format!("/api/categories/{}/", self.category), staff),
            ("/api/categories/".into(), staff),
            (format!("/api/brands/{}/", self.brand), staff),
            ("/api/brands/".into(), staff),
            ("/api/admin/users/?page_size=100".into(), staff),
            ("/api/admin/orders/?page_size=100".into(), staff),
            ("/api/admin/inventory/?page_size=100".into(), staff),
            (format!("/api/admin/inventory/{product}/ledger/"), staff),
            ("/api/admin/audit/?page_size=100".into(), staff),
        ] {
            let value = self.read(&path, token).await;
            all.insert(path, value);
        }
        Value::Object(all)
    }
}

/// A 404 from a handler, not from the router: a route missing from the
/// server would also answer 404 and must not pass for a refusal.
fn assert_refused_as_absent(what: &str, status: StatusCode, value: &Value) {
    assert_eq!(status, StatusCode::NOT_FOUND, "{what}: {value}");
    assert_eq!(value["error"]["code"], "not_found", "{what}: {value}");
    assert_ne!(
        value["error"]["message"], "no such path",
        "{what}: the route itself is missing"
    );
}

fn assert_same(before: &Value, after: &Value, what: &str) {
    if before == after {
        return;
    }
    let (Value::Object(b), Value::Object(a)) = (before, after) else {
        panic!("{what} changed");
    };
    let changed: Vec<&String> = b.keys().filter(|k| b.get(*k) != a.get(*k)).collect();
    panic!(
        "{what} changed {changed:?}: before {} after {}",
        json!(changed.iter().map(|k| &b[*k]).collect::<Vec<_>>()),
        json!(changed.iter().map(|k| &a[*k]).collect::<Vec<_>>())
    );
}

fn label(route: &Route) -> String {
    format!("{} {}", route.method, route.path)
}

#[actix_web::test]
async fn another_shopper_gets_404_on_every_route_to_a_shoppers_objects_and_changes_nothing() {
    let w = world().await;
    let before = w.snapshot().await;
    // The owner reaches every object the walk aims at.
    for route in routes()
        .iter()
        .filter(|r| r.owned && r.method == Method::GET)
    {
        let token = (route.access != Access::PayPage).then_some(w.ann.access.as_str());
        let path = match route.access {
            Access::PayPage => format!("{}?token={}", w.path(route), w.pay_token),
            _ => w.path(route),
        };
        let response = w.app.get(&path, token).await;
        assert_eq!(response.status(), StatusCode::OK, "owner: {}", label(route));
    }
    let mut walked = 0;
    for route in routes().iter().filter(|r| r.owned) {
        let (status, value) = w.send(route, Some(&w.bob.access)).await;
        assert_refused_as_absent(&format!("bob on {}", label(route)), status, &value);
        walked += 1;
    }
    assert!(walked >= 12, "the walk covers the owned routes ({walked})");
    assert_same(&before, &w.snapshot().await, "the owner's objects");
}

#[actix_web::test]
async fn a_shopper_gets_403_on_every_staff_route_and_changes_nothing() {
    let w = world().await;
    let before = w.snapshot().await;
    let mut walked = 0;
    for route in routes().iter().filter(|r| r.access == Access::Staff) {
        let (status, value) = w.send(route, Some(&w.bob.access)).await;
        let what = format!("bob on {}", label(route));
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {value}");
        assert_eq!(value["error"]["code"], "forbidden", "{what}: {value}");
        walked += 1;
    }
    assert!(walked >= 25, "the walk covers the staff routes ({walked})");
    assert_same(&before, &w.snapshot().await, "the shop");
}

#[actix_web::test]
async fn nobody_gets_401_on_every_route_that_needs_a_login_and_changes_nothing() {
    let w = world().await;
    let before = w.snapshot().await;
    for route in routes().iter() {
        let what = format!("anonymous {}", label(route));
        match route.access {
            Access::User | Access::Staff => {
                let (status, value) = w.send(route, None).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {value}");
                let code = value["error"]["code"].as_str().unwrap_or_default();
                assert!(
                    ["not_authenticated", "login_required"].contains(&code),
                    "{what}: {value}"
                );
            }
            // Without the page token the payment does not exist.
            Access::PayPage => {
                let (status, value) = w.send(route, None).await;
                assert_refused_as_absent(&what, status, &value);
            }
            // An anonymous shopper has no cart yet, so no line in it.
            Access::Cart if route.owned => {
                let (status, value) = w.send(route, None).await;
                assert_refused_as_absent(&what, status, &value);
            }
            Access::Cart | Access::Public => {}
        }
    }
    // A forged or expired token is no better than none.
    let (status, _) = w
        .send(
            &routes()
                .into_iter()
                .find(|r| r.path == "/api/orders/{id}/")
                .unwrap(),
            Some("not.a.token"),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_same(&before, &w.snapshot().await, "the shop");
}

/// The store's checksum once background work (the order confirmation mail
/// of the setup) has settled: two equal readings in a row.
async fn settled_checksum(app: &TestApp) -> u32 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut last = app.store.checksum().expect("checksum");
    loop {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
        let now = app.store.checksum().expect("checksum");
        if now == last {
            return now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the store never settles"
        );
        last = now;
    }
}

#[actix_web::test]
async fn no_get_route_writes_to_the_store_whoever_calls_it() {
    let w = world().await;
    let mut before = settled_checksum(&w.app).await;
    let callers = [
        ("nobody", None),
        ("the owner", Some(w.ann.access.as_str())),
        (
            "another shopper without a cart",
            Some(w.bob.access.as_str()),
        ),
        ("staff", Some(w.staff.access.as_str())),
    ];
    let mut walked = 0;
    for route in routes().iter().filter(|r| r.method == Method::GET) {
        for (who, token) in callers {
            let (status, value) = w.send(route, token).await;
            assert!(
                !status.is_server_error(),
                "{who} on {}: {status} {value}",
                label(route)
            );
            let after = w.app.store.checksum().expect("checksum");
            assert_eq!(
                before,
                after,
                "{who} on {} wrote to the store",
                label(route)
            );
            before = after;
            walked += 1;
        }
    }
    // The pay page with its token.
    let page = format!("/pay/test/{}?token={}", w.test_payment, w.pay_token);
    assert_eq!(w.app.get(&page, None).await.status(), StatusCode::OK);
    assert_eq!(
        before,
        w.app.store.checksum().unwrap(),
        "the pay page wrote"
    );
    assert!(walked >= 100, "{walked} reads");
}

/// `/api/orders/{id}/` and `/api/orders/{order_id}/` are the same route.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

async fn openapi(app: &TestApp) -> Value {
    json_ok(app.get("/api/openapi.json", None).await, "openapi").await
}

#[actix_web::test]
async fn the_table_lists_every_route_with_a_path_parameter_or_a_login_in_the_openapi_document() {
    let app = spawn_app_with(|_| {}).await;
    let doc = openapi(&app).await;
    let table: BTreeSet<(String, String)> = routes()
        .iter()
        .map(|r| (r.method.to_string(), shape(r.path)))
        .collect();
    let mut documented = BTreeMap::new();
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            if operation.get("responses").is_none() {
                continue; // parameters or a summary, not an operation
            }
            let key = (method.to_uppercase(), shape(path));
            documented.insert(key.clone(), operation.clone());
            // `[{}, {"bearer": []}]` is an optional login (carts, listings).
            let needs_login = operation["security"].as_array().is_some_and(|s| {
                s.iter().any(|r| r.get("bearer").is_some())
                    && !s
                        .iter()
                        .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            if (path.contains('{') || needs_login) && !table.contains(&key) {
                missing.push(format!("{} {path}", key.0));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "add these routes to security::routes(): {missing:?}"
    );
    // And the other way: a row for a route that no longer exists would
    // pass its 404 checks for the wrong reason.
    let stale: Vec<_> = table
        .iter()
        .filter(|key| !documented.contains_key(*key) && !UNDOCUMENTED.contains(&key.1.as_str()))
        .collect();
    assert!(
        stale.is_empty(),
        "routes in the table but not served: {stale:?}"
    );
    // Routes that need a login say so in the document.
    for r in routes() {
        let key = (r.method.to_string(), shape(r.path));
        if let Some(operation) = documented.get(&key) {
            if matches!(r.access, Access::Staff | Access::User) {
                assert!(
                    operation["security"].is_array(),
                    "{} needs a login; its OpenAPI operation should say so",
                    label(&r)
                );
            }
        }
    }
}

// ---------------------------------------------------------------- server-owned fields

/// Who sends a write.
#[derive(Debug, Clone, Copy)]
enum Caller {
    Nobody,
    Ann,
    Bob,
    Staff,
}

struct WriteCase {
    method: Method,
    path: fn(&World) -> String,
    caller: Caller,
    /// A body the route accepts.
    body: fn(&World) -> Value,
    /// Fields the server owns, sent one at a time on top of `body`.
    fields: &'static [&'static str],
    /// What the valid body answers afterwards; `None` when it cannot
    /// succeed in this shop (a provider answer is needed).
    accepted: Option<StatusCode>,
}

fn write(
    method: Method,
    path: fn(&World) -> String,
    caller: Caller,
    body: fn(&World) -> Value,
    fields: &'static [&'static str],
    accepted: Option<StatusCode>,
) -> WriteCase {
    WriteCase {
        method,
        path,
        caller,
        body,
        fields,
        accepted,
    }
}

const PRODUCT_OWNED: &[&str] = &[
    "id",
    "rating",
    "rating_average",
    "rating_count",
    "in_stock",
    "currency",
    "created_at",
    "updated_at",
    "version",
];
const REVIEW_OWNED: &[&str] = &[
    "id",
    "user",
    "user_id",
    "username",
    "product_id",
    "verified_purchase",
    "created_at",
    "updated_at",
];
const CATEGORY_OWNED: &[&str] = &["id", "product_count", "created_at", "updated_at"];

/// Every route that takes a JSON body, in an order where each accepted
/// write leaves the later ones possible (the admin cancel comes last).
#[rustfmt::skip]
fn write_cases() -> Vec<WriteCase> {
    use Caller::*;
    use Method as M;
    vec![
        write(M::POST, |_| "/api/auth/register/".into(), Nobody,
            |_| json!({"username": "newcomer", "email": "newcomer@example.com", "password": PASSWORD}),
            &["id", "is_staff", "is_active", "date_joined", "created_at", "auth_epoch", "password_hash"],
            Some(StatusCode::CREATED)),
        write(M::POST, |_| "/api/auth/login/".into(), Nobody,
            |_| json!({"username": "ann", "password": PASSWORD}),
            &["is_staff", "user_id", "session"], Some(StatusCode::OK)),
        write(M::PATCH, |_| "/api/profile/".into(), Ann,
            |_| json!({"city": "Shelbyville"}),
            &["id", "username", "is_staff", "is_active", "date_joined", "user", "user_id", "password"],
            Some(StatusCode::OK)),
        write(M::POST, |_| "/api/profile/password/".into(), Ann,
            |_| json!({"old_password": PASSWORD, "new_password": "another horse battery"}),
            // Accepted, it would end ann's other sessions; the 400 naming
            // the field is proof enough for this route.
            &["is_staff", "user_id", "auth_epoch"], None),
        write(M::POST, |_| "/api/cart/add/".into(), Ann,
            |w| json!({"product_id": w.product, "quantity": 1}),
            &["id", "price", "price_at_purchase", "unit_price", "line_total", "total", "user", "user_id", "cart_id", "version"],
            Some(StatusCode::OK)),
        write(M::PATCH, |w| format!("/api/cart/items/{}/", w.product), Ann,
            |_| json!({"quantity": 2}),
            &["product_id", "price", "price_at_purchase", "line_total", "user", "version"],
            Some(StatusCode::OK)),
        write(M::POST, |_| "/api/wishlist/".into(), Bob,
            |w| json!({"product_id": w.product}),
            &["id", "user", "user_id", "added_at", "created_at", "price", "available"],
            Some(StatusCode::CREATED)),
        write(M::POST, |w| format!("/api/products/{}/reviews/", w.product), Bob,
            |_| json!({"rating": 5, "comment": "Lovely"}), REVIEW_OWNED,
            Some(StatusCode::CREATED)),
        write(M::PATCH, |w| format!("/api/reviews/{}/", w.review), Ann,
            |_| json!({"comment": "Still boils fast"}), REVIEW_OWNED,
            Some(StatusCode::OK)),
        write(M::POST, |_| "/api/payment/".into(), Ann,
            |w| json!({"order_id": w.order, "provider": "test"}),
            &["id", "status", "payment_status", "amount", "currency", "transaction_id", "user", "user_id"],
            Some(StatusCode::CREATED)),
        write(M::POST, |_| "/api/payment/paypal/capture/".into(), Ann,
            |w| json!({"order_id": w.order}),
            &["status", "payment_status", "amount"], None),
        write(M::POST, |_| "/api/payment/razorpay/verify/".into(), Ann,
            |w| json!({
                "razorpay_order_id": w.razorpay_order,
                "razorpay_payment_id": "pay_1",
                "razorpay_signature": "0".repeat(64),
            }),
            &["status", "payment_status", "amount"], None),
        write(M::POST, |_| "/api/products/".into(), Staff,
            |w| json!({"name": "Milk jug", "price": "4.00", "category": w.category, "stock": 3}),
            PRODUCT_OWNED, Some(StatusCode::CREATED)),
        write(M::PATCH, |w| format!("/api/products/{}/", w.product), Staff,
            |_| json!({"price": "21.00"}), PRODUCT_OWNED, Some(StatusCode::OK)),
        write(M::PUT, |w| format!("/api/products/{}/", w.product), Staff,
            |w| json!({"name": "Kettle", "price": "22.00", "category": w.category, "brand": w.brand}),
            PRODUCT_OWNED, Some(StatusCode::OK)),
        write(M::POST, |_| "/api/categories/".into(), Staff,
            |_| json!({"name": "Garden"}), CATEGORY_OWNED, Some(StatusCode::CREATED)),
        write(M::PATCH, |w| format!("/api/categories/{}/", w.category), Staff,
            |_| json!({"description": "Pots and pans"}), CATEGORY_OWNED, Some(StatusCode::OK)),
        write(M::PUT, |w| format!("/api/categories/{}/", w.category), Staff,
            |_| json!({"name": "Kitchen", "description": "Everything for it"}), CATEGORY_OWNED,
            Some(StatusCode::OK)),
        write(M::POST, |_| "/api/brands/".into(), Staff,
            |_| json!({"name": "Zenith"}), CATEGORY_OWNED, Some(StatusCode::CREATED)),
        write(M::PATCH, |w| format!("/api/brands/{}/", w.brand), Staff,
            |_| json!({"slug": "acme-co"}), CATEGORY_OWNED, Some(StatusCode::OK)),
        write(M::PUT, |w| format!("/api/brands/{}/", w.brand), Staff,
            |_| json!({"name": "Acme"}), CATEGORY_OWNED, Some(StatusCode::OK)),
        write(M::POST, |w| format!("/api/admin/products/{}/restock/", w.product), Staff,
            |_| json!({"quantity": 5}),
            &["on_hand", "received", "stock", "product_id", "by"], Some(StatusCode::OK)),
        write(M::POST, |w| format!("/api/admin/inventory/{}/adjust/", w.product), Staff,
            |_| json!({"delta": -1, "reason": "dented"}),
            &["on_hand", "received", "stock", "product_id", "by", "at"], Some(StatusCode::OK)),
        write(M::PATCH, |w| format!("/api/admin/users/{}/", w.bob.id), Staff,
            |_| json!({"is_active": true}),
            &["id", "username", "email", "date_joined", "password", "password_hash", "auth_epoch"],
            Some(StatusCode::OK)),
        write(M::POST, |_| "/api/checkout/".into(), Ann,
            |_| address_body(),
            &["id", "user", "user_id", "status", "payment_status", "total_price", "items", "price_at_purchase", "currency", "created_at"],
            Some(StatusCode::CREATED)),
        write(M::PATCH, |w| format!("/api/admin/orders/{}/", w.order), Staff,
            |_| json!({"status": "cancelled"}),
            &["id", "user", "payment_status", "total_price", "items", "currency", "created_at", "updated_at"],
            Some(StatusCode::OK)),
    ]
}

#[actix_web::test]
async fn every_write_route_refuses_server_owned_fields_by_name_and_changes_nothing() {
    let w = world().await;
    let mut sent = 0;
    for case in write_cases() {
        let path = (case.path)(&w);
        let what = format!("{} {path}", case.method);
        let token = match case.caller {
            Caller::Nobody => None,
            Caller::Ann => Some(w.ann.access.as_str()),
            Caller::Bob => Some(w.bob.access.as_str()),
            Caller::Staff => Some(w.staff.access.as_str()),
        };
        let before = w.snapshot().await;
        for field in case.fields {
            let mut payload = (case.body)(&w);
            payload[*field] = json!(1);
            let response = w
                .app
                .request(case.method.clone(), &path, token, Some(&payload))
                .await;
            let status = response.status();
            let value = body(response).await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{what} with {field}: {value}"
            );
            assert_eq!(
                value["error"]["code"], "invalid_field",
                "{what} with {field}: {value}"
            );
            assert!(
                value["error"]["fields"][field].is_string(),
                "{what}: the error names {field}: {value}"
            );
            assert!(
                value["error"]["message"].as_str().unwrap().contains(field),
                "{what}: the message names {field}: {value}"
            );
            sent += 1;
        }
        assert_same(&before, &w.snapshot().await, &what);
        if let Some(accepted) = case.accepted {
            let response = w
                .app
                .request(case.method.clone(), &path, token, Some(&(case.body)(&w)))
                .await;
            let status = response.status();
            let value = body(response).await;
            assert_eq!(status, accepted, "{what} without extra fields: {value}");
        }
    }
    assert!(sent >= 150, "{sent} bodies sent");
}

#[actix_web::test]
async fn a_csv_import_with_a_server_owned_column_is_refused_by_name_and_imports_nothing() {
    let w = world().await;
    for column in [
        "id",
        "rating_average",
        "rating_count",
        "created_at",
        "is_staff",
    ] {
        let before = w.snapshot().await;
        let csv = format!("name,price,category,{column}\nSmuggled,1.00,Kitchen,7\n");
        let response = w
            .app
            .client
            .post(w.app.url("/api/admin/products/import/"))
            .bearer_auth(&w.staff.access)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let value = body(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{column}: {value}");
        assert_eq!(value["error"]["code"], "invalid_csv", "{value}");
        assert!(
            value["error"]["fields"][column].is_string(),
            "the error names {column}: {value}"
        );
        assert_same(&before, &w.snapshot().await, column);
    }
    let response = w
        .app
        .client
        .post(w.app.url("/api/admin/products/import/"))
        .bearer_auth(&w.staff.access)
        .header("content-type", "text/csv")
        .body("name,price,category\nSmuggled,1.00,Kitchen\n")
        .send()
        .await
        .unwrap();
    assert_eq!(json_ok(response, "import").await["imported"], 1);
}

/// Every JSON request body in the document is closed (`additionalProperties:
/// false`), down to nested objects, so clients generated from it never add
/// a field the server would refuse.
#[actix_web::test]
async fn the_openapi_document_closes_every_json_request_body() {
    let app = spawn_app_with(|_| {}).await;
    let doc = openapi(&app).await;
    let schemas = &doc["components"]["schemas"];
    let mut open = Vec::new();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            if schema.is_null() {
                continue;
            }
            let mut pending = vec![schema.clone()];
            while let Some(schema) = pending.pop() {
                let resolved = match schema["$ref"].as_str() {
                    Some(r) => schemas[r.rsplit('/').next().unwrap()].clone(),
                    None => schema.clone(),
                };
                for variant in ["oneOf", "anyOf", "allOf"] {
                    if let Some(list) = resolved[variant].as_array() {
                        pending.extend(list.iter().cloned());
                    }
                }
                if let Some(properties) = resolved["properties"].as_object() {
                    checked += 1;
                    if resolved["additionalProperties"] != json!(false) {
                        open.push(format!("{method} {path}: {resolved}"));
                    }
                    pending.extend(properties.values().cloned());
                }
            }
        }
    }
    assert!(checked >= 20, "{checked} request body objects checked");
    assert!(open.is_empty(), "open request bodies: {open:#?}");
}
