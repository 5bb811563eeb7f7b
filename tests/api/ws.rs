//! The live WebSocket protocol, driven by real WebSocket clients against the
//! real server: cart sync between sockets and REST, order and stock pushes,
//! the staff feed, and the robustness rules (auth, bad frames, limits,
//! heartbeat, token expiry). The example frames in protocol/examples are
//! checked here too, so the protocol document stays true.

use crate::helpers::{address_body, body, spawn_app, spawn_app_with, TestApp, TestUser};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const WAIT: Duration = Duration::from_secs(5);

pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Pushes read while waiting for a reply, in arrival order.
    pushes: VecDeque<Value>,
    next_id: u64,
    pub hello: Value,
}

impl WsClient {
    pub async fn connect(app: &TestApp) -> Self {
        let url = format!("ws://127.0.0.1:{}/api/ws/", app.port);
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket handshake");
        let mut client = Self {
            stream,
            pushes: VecDeque::new(),
            next_id: 0,
            hello: Value::Null,
        };
        client.hello = client.recv().await;
        assert_eq!(client.hello["type"], "hello", "{}", client.hello);
        client
    }

    /// Connects and authenticates with an access token.
    pub async fn user(app: &TestApp, user: &TestUser) -> Self {
        let mut client = Self::connect(app).await;
        let reply = client
            .request(json!({"type": "auth", "token": user.access}))
            .await;
        assert_eq!(reply["type"], "ok", "auth of {}: {reply}", user.username);
        client
    }

    pub async fn guest(app: &TestApp) -> Self {
        let mut client = Self::connect(app).await;
        let reply = client.request(json!({"type": "auth"})).await;
        assert_eq!(reply["type"], "ok", "{reply}");
        client
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::Text(text.to_owned()))
            .await
            .expect("frame sent");
    }

    /// The next frame of any kind (pings are answered by the client library).
    pub async fn next_message(&mut self) -> Option<Message> {
        loop {
            match tokio::time::timeout(WAIT, self.stream.next()).await {
                Err(_) => panic!("no frame within {WAIT:?}"),
                Ok(None) | Ok(Some(Err(_))) => return None,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(Some(Ok(message))) => return Some(message),
            }
        }
    }

    /// The next JSON text frame.
    pub async fn recv(&mut self) -> Value {
        match self.next_message().await {
            Some(Message::Text(text)) => serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("server sent non-JSON: {text}")),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Sends a request with a fresh id (unless it has one) and returns its
    /// reply; pushes that arrive first are kept for `push`.
    pub async fn request(&mut self, mut frame: Value) -> Value {
        if frame.get("id").is_none() {
            self.next_id += 1;
            frame["id"] = json!(format!("r{}", self.next_id));
        }
        let id = frame["id"].clone();
        self.send_text(&frame.to_string()).await;
        self.reply_to(&id).await
    }

    pub async fn reply_to(&mut self, id: &Value) -> Value {
        loop {
            let frame = self.recv().await;
            let is_reply = frame["type"] == "ok" || frame["type"] == "error";
            if is_reply && frame["id"] == *id {
                return frame;
            }
            assert!(!is_reply, "reply to another request: {frame}");
            self.pushes.push_back(frame);
        }
    }

    /// The next push of type `kind` (earlier pushes of other types are skipped).
    pub async fn push(&mut self, kind: &str) -> Value {
        while let Some(frame) = self.pushes.pop_front() {
            if frame["type"] == kind {
                return frame;
            }
        }
        loop {
            let frame = self.recv().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// The next push of type `kind` whose `data` satisfies `wanted`; pushes
    /// caused by one's own earlier requests are passed over.
    pub async fn push_where(&mut self, kind: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let frame = self.push(kind).await;
            if wanted(&frame["data"]) {
                return frame;
            }
        }
    }

    /// Asserts that no push of type `kind` arrives within `within`.
    pub async fn no_push(&mut self, kind: &str, within: Duration) {
        assert!(
            !self.pushes.iter().any(|f| f["type"] == kind),
            "unexpected {kind}: {:?}",
            self.pushes
        );
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Text(text)))) => {
                    let frame: Value = serde_json::from_str(&text).expect("JSON");
                    assert_ne!(frame["type"], kind, "unexpected push: {frame}");
                    self.pushes.push_back(frame);
                }
                Ok(Some(Ok(_))) => continue,
                Ok(None) | Ok(Some(Err(_))) => panic!("socket closed while waiting"),
            }
        }
    }

    /// Reads until the server closes; returns the close code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            match self.next_message().await {
                Some(Message::Close(Some(frame))) => {
                    return (u16::from(frame.code), frame.reason.into_owned())
                }
                Some(Message::Close(None)) | None => return (0, String::new()),
                Some(Message::Text(text)) => {
                    self.pushes
                        .push_back(serde_json::from_str(&text).unwrap_or(Value::Null));
                }
                Some(_) => continue,
            }
        }
    }
}

/// A staff member, a shopper and one product (10 at 9.99).
struct Shop {
    app: TestApp,
    staff: TestUser,
    product: u64,
}

async fn shop_with(configure: impl FnOnce(&mut storefront::config::Settings)) -> Shop {
    let app = spawn_app_with(configure).await;
    let staff = app.staff("keeper").await;
    let category = app.category(&staff, "Kitchen").await;
    let product = app.product(&staff, category, "Blue mug", "9.99", 10).await;
    Shop {
        app,
        staff,
        product,
    }
}

async fn shop() -> Shop {
    shop_with(|_| {}).await
}

async fn place_order(app: &TestApp, user: &TestUser, product: u64, quantity: i64) -> Value {
    app.add_to_cart(user, product, quantity).await;
    let response = app.checkout(user, None, &address_body()).await;
    let status = response.status();
    let order = body(response).await;
    assert_eq!(status, StatusCode::CREATED, "checkout: {order}");
    order
}

#[actix_web::test]
async fn two_sockets_of_one_user_see_each_others_cart_changes() {
    let shop = shop().await;
    let ada = shop.app.shopper("ada").await;
    let mut laptop = WsClient::user(&shop.app, &ada).await;
    let mut phone = WsClient::user(&shop.app, &ada).await;

    let reply = laptop
        .request(json!({"type": "cart.add", "product_id": shop.product, "quantity": 2}))
        .await;
    assert_eq!(reply["data"]["item_count"], 2, "{reply}");
    let version = reply["data"]["version"].as_u64().unwrap();

    let pushed = phone.push("cart.updated").await;
    assert_eq!(pushed["data"]["item_count"], 2, "{pushed}");
    assert_eq!(pushed["data"]["version"].as_u64(), Some(version));
    assert_eq!(pushed["data"]["items"][0]["product_id"], shop.product);

    let reply = phone
        .request(json!({"type": "cart.set_quantity", "product_id": shop.product, "quantity": 5}))
        .await;
    assert_eq!(reply["data"]["item_count"], 5, "{reply}");
    // The laptop also hears its own add first; a newer version follows.
    let pushed = laptop
        .push_where("cart.updated", |cart| {
            cart["version"].as_u64() > Some(version)
        })
        .await;
    assert_eq!(pushed["data"]["item_count"], 5, "{pushed}");
    assert!(pushed["data"]["version"].as_u64().unwrap() > version);

    // The REST view agrees with what the sockets were told.
    let rest = body(shop.app.get("/api/cart/", Some(&ada.access)).await).await;
    assert_eq!(rest["item_count"], 5);
    assert_eq!(rest["version"], pushed["data"]["version"]);
}

#[actix_web::test]
async fn a_rest_cart_change_reaches_the_users_socket_and_not_another_users() {
    let shop = shop().await;
    let ada = shop.app.shopper("ada").await;
    let bob = shop.app.shopper("bob").await;
    let mut ada_socket = WsClient::user(&shop.app, &ada).await;
    let mut bob_socket = WsClient::user(&shop.app, &bob).await;

    shop.app.add_to_cart(&ada, shop.product, 3).await;

    let pushed = ada_socket.push("cart.updated").await;
    assert_eq!(pushed["data"]["item_count"], 3, "{pushed}");
    bob_socket
        .no_push("cart.updated", Duration::from_millis(300))
        .await;
}

#[actix_web::test]
async fn an_anonymous_cart_is_followed_by_its_token_and_rest_changes_reach_it() {
    let shop = shop().await;
    let mut tab = WsClient::guest(&shop.app).await;
    let reply = tab
        .request(json!({"type": "cart.add", "product_id": shop.product}))
        .await;
    let token = reply["data"]["cart_token"]
        .as_str()
        .expect("a new cart's token")
        .to_owned();

    let mut other_tab = WsClient::connect(&shop.app).await;
    let reply = other_tab
        .request(json!({"type": "auth", "cart_token": token}))
        .await;
    assert_eq!(reply["data"]["cart"]["item_count"], 1, "{reply}");

    let response = shop
        .app
        .client
        .post(shop.app.url("/api/cart/add/"))
        .header("X-Cart-Token", &token)
        .json(&json!({"product_id": shop.product, "quantity": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for socket in [&mut tab, &mut other_tab] {
        let pushed = socket
            .push_where("cart.updated", |cart| cart["item_count"] != 1)
            .await;
        assert_eq!(pushed["data"]["item_count"], 3, "{pushed}");
        assert!(
            pushed["data"]["cart_token"].is_null(),
            "pushes never carry the token"
        );
    }

    let mut stranger = WsClient::connect(&shop.app).await;
    let reply = stranger
        .request(json!({"type": "auth", "cart_token": "0123456789abcdef"}))
        .await;
    assert_eq!(reply["error"]["code"], "invalid_token", "{reply}");
}

#[actix_web::test]
async fn a_staff_status_change_reaches_the_owner_and_the_staff_feed_and_no_other_user() {
    let shop = shop().await;
    let ada = shop.app.shopper("ada").await;
    let bob = shop.app.shopper("bob").await;
    let mut ada_socket = WsClient::user(&shop.app, &ada).await;
    let mut bob_socket = WsClient::user(&shop.app, &bob).await;
    let mut feed = WsClient::user(&shop.app, &shop.staff).await;
    let reply = feed.request(json!({"type": "admin.subscribe"})).await;
    assert_eq!(reply["data"]["subscribed"], true, "{reply}");
    feed.push("dashboard.stats").await;

    let order = place_order(&shop.app, &ada, shop.product, 1).await;
    let id = order["id"].as_u64().unwrap();
    let created = ada_socket.push("order.created").await;
    assert_eq!(created["data"]["id"], id);
    let created = feed.push("order.created").await;
    assert_eq!(created["data"]["id"], id);

    let response = shop
        .app
        .patch(
            &format!("/api/admin/orders/{id}/"),
            Some(&shop.staff.access),
            &json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let updated = ada_socket.push("order.updated").await;
    assert_eq!(updated["data"]["id"], id);
    assert_eq!(updated["data"]["status"], "cancelled");
    let updated = feed.push("order.updated").await;
    assert_eq!(updated["data"]["status"], "cancelled");
    bob_socket
        .no_push("order.updated", Duration::from_millis(300))
        .await;
    bob_socket
        .no_push("order.created", Duration::from_millis(10))
        .await;

    // The owner's own cancel is pushed too.
    let order = place_order(&shop.app, &ada, shop.product, 1).await;
    let id = order["id"].as_u64().unwrap();
    let response = shop
        .app
        .post(
            &format!("/api/orders/{id}/cancel/"),
            Some(&ada.access),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let updated = ada_socket
        .push_where("order.updated", |order| order["id"] == id)
        .await;
    assert_eq!(updated["data"]["status"], "cancelled");
    let updated = feed
        .push_where("order.updated", |order| order["id"] == id)
        .await;
    assert_eq!(updated["data"]["status"], "cancelled");
}

#[actix_web::test]
async fn watchers_of_a_product_get_stock_changed_after_a_checkout() {
    let shop = shop().await;
    let ada = shop.app.shopper("ada").await;
    let mut page = WsClient::guest(&shop.app).await;
    let reply = page
        .request(json!({"type": "product.watch", "product_id": shop.product}))
        .await;
    assert_eq!(reply["data"]["stock"], 10, "{reply}");
    let mut elsewhere = WsClient::guest(&shop.app).await;

    place_order(&shop.app, &ada, shop.product, 3).await;

    let pushed = page.push("stock.changed").await;
    assert_eq!(
        pushed["data"],
        json!({"product_id": shop.product, "stock": 7})
    );
    elsewhere
        .no_push("stock.changed", Duration::from_millis(300))
        .await;

    let reply = page
        .request(json!({"type": "product.unwatch", "product_id": shop.product}))
        .await;
    assert_eq!(reply["type"], "ok");
    place_order(&shop.app, &ada, shop.product, 1).await;
    page.no_push("stock.changed", Duration::from_millis(300))
        .await;
}

#[actix_web::test]
async fn the_staff_dashboard_gets_figures_on_subscribe_and_when_they_change() {
    let shop = shop_with(|s| s.live.dashboard_interval = Duration::from_millis(300)).await;
    let ada = shop.app.shopper("ada").await;
    let mut feed = WsClient::user(&shop.app, &shop.staff).await;
    feed.request(json!({"type": "admin.subscribe"})).await;
    let stats = feed.push("dashboard.stats").await["data"].clone();
    assert_eq!(stats["orders_today"], 0, "{stats}");
    assert_eq!(stats["pending_orders"], 0);
    assert_eq!(stats["revenue_today"], "0.00");
    assert_eq!(stats["low_stock_count"], 0);

    // Two orders in quick succession: the figures follow, coalesced.
    place_order(&shop.app, &ada, shop.product, 3).await;
    place_order(&shop.app, &ada, shop.product, 3).await;
    let mut stats = feed.push("dashboard.stats").await["data"].clone();
    if stats["orders_today"] != 2 {
        stats = feed.push("dashboard.stats").await["data"].clone();
    }
    assert_eq!(stats["orders_today"], 2, "{stats}");
    assert_eq!(stats["pending_orders"], 2);
    assert_eq!(stats["revenue_today"], "59.94");
    assert_eq!(stats["low_stock_count"], 1, "4 left is low stock: {stats}");
    assert_eq!(stats["low_stock"][0]["product_id"], shop.product);
    assert_eq!(stats["low_stock"][0]["stock"], 4);

    // A shopper may not see it.
    let mut shopper = WsClient::user(&shop.app, &ada).await;
    let reply = shopper.request(json!({"type": "admin.subscribe"})).await;
    assert_eq!(reply["error"]["code"], "forbidden", "{reply}");
    shopper
        .no_push("dashboard.stats", Duration::from_millis(400))
        .await;
}

#[actix_web::test]
async fn requests_before_auth_are_refused_and_an_unauthenticated_socket_is_closed() {
    let app = spawn_app_with(|s| s.live.auth_timeout = Duration::from_millis(400)).await;
    let mut socket = WsClient::connect(&app).await;
    assert_eq!(socket.hello["auth_timeout_ms"], 400);
    let reply = socket.request(json!({"type": "cart.get"})).await;
    assert_eq!(reply["error"]["code"], "not_authenticated", "{reply}");
    let (code, reason) = socket.closed().await;
    assert_eq!((code, reason.as_str()), (4001, "auth timeout"));

    // An authenticated one outlives the auth timeout.
    let mut guest = WsClient::guest(&app).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let reply = guest.request(json!({"type": "ping"})).await;
    assert_eq!(reply["type"], "ok");
}

#[actix_web::test]
async fn three_failed_auths_close_the_socket() {
    let app = spawn_app().await;
    let mut socket = WsClient::connect(&app).await;
    for _ in 0..3 {
        let reply = socket
            .request(json!({"type": "auth", "token": "forged.token.here"}))
            .await;
        assert_eq!(reply["error"]["code"], "invalid_token", "{reply}");
    }
    assert_eq!(socket.closed().await.0, 4002);
}

#[actix_web::test]
async fn malformed_and_unknown_frames_get_error_frames_and_the_socket_lives_on() {
    let app = spawn_app().await;
    let ada = app.shopper("ada").await;
    let mut socket = WsClient::user(&app, &ada).await;
    let cases = [
        ("not json", "malformed_json", "plain text"),
        ("[]", "malformed_json", "an array"),
        ("{\"id\": 1}", "malformed_json", "no type"),
        ("{\"type\": \"cart.fly\"}", "unknown_type", "unknown type"),
        (
            "{\"type\": \"cart.add\", \"product_id\": -1}",
            "invalid_frame",
            "negative id",
        ),
        (
            "{\"type\": \"cart.add\", \"product_id\": 1, \"quantity\": \"2\"}",
            "invalid_frame",
            "quantity as a string",
        ),
        (
            "{\"type\": \"auth\", \"token\": 5}",
            "invalid_frame",
            "token not a string",
        ),
        (
            "{\"type\": \"ping\", \"id\": {\"a\": 1}}",
            "invalid_frame",
            "object id",
        ),
        ("\"\u{0}\"", "malformed_json", "a JSON string"),
    ];
    for (text, code, why) in cases {
        socket.send_text(text).await;
        let reply = socket.recv().await;
        assert_eq!(reply["type"], "error", "{why}: {reply}");
        assert_eq!(reply["error"]["code"], code, "{why}: {reply}");
        assert!(reply["error"]["message"].is_string(), "{why}");
    }
    socket
        .stream
        .send(Message::Binary(vec![1, 2, 3]))
        .await
        .unwrap();
    let reply = socket.recv().await;
    assert_eq!(reply["error"]["code"], "unsupported_frame", "{reply}");
    let reply = socket.request(json!({"type": "cart.get"})).await;
    assert_eq!(reply["type"], "ok", "still usable: {reply}");
}

#[actix_web::test]
async fn an_oversized_frame_gets_an_error_and_close_1009_and_changes_nothing() {
    let shop = shop().await;
    let ada = shop.app.shopper("ada").await;
    let mut socket = WsClient::user(&shop.app, &ada).await;
    let padding = "x".repeat(70 * 1024);
    let frame = json!({"type": "cart.add", "product_id": shop.product, "pad": padding});
    socket.send_text(&frame.to_string()).await;
    let reply = socket.recv().await;
    assert_eq!(reply["error"]["code"], "frame_too_large", "{reply}");
    let (code, _) = socket.closed().await;
    assert_eq!(code, u16::from(CloseCode::Size));
    let cart = body(shop.app.get("/api/cart/", Some(&ada.access)).await).await;
    assert_eq!(cart["item_count"], 0);
}

#[actix_web::test]
async fn a_flood_of_frames_is_rate_limited_with_a_clear_error() {
    let app = spawn_app_with(|s| {
        s.live.rate_per_sec = 5;
        s.live.rate_burst = 5;
    })
    .await;
    let mut socket = WsClient::guest(&app).await;
    for n in 0..12 {
        socket
            .send_text(&json!({"type": "ping", "id": n}).to_string())
            .await;
    }
    let mut limited = 0;
    for _ in 0..12 {
        let reply = socket.recv().await;
        if reply["type"] == "error" {
            assert_eq!(reply["error"]["code"], "rate_limited", "{reply}");
            assert!(reply["error"]["message"].as_str().unwrap().contains("wait"));
            limited += 1;
        }
    }
    // The burst left after auth (4) passes; the rest are refused.
    assert!((7..=9).contains(&limited), "{limited} refused");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reply = socket.request(json!({"type": "ping"})).await;
    assert_eq!(reply["type"], "ok", "tokens come back: {reply}");
}

#[actix_web::test]
async fn a_user_may_hold_only_the_configured_number_of_sockets() {
    let app = spawn_app_with(|s| s.live.max_sessions_per_user = 2).await;
    let ada = app.shopper("ada").await;
    let first = WsClient::user(&app, &ada).await;
    let _second = WsClient::user(&app, &ada).await;
    let mut third = WsClient::connect(&app).await;
    let reply = third
        .request(json!({"type": "auth", "token": ada.access}))
        .await;
    assert_eq!(reply["error"]["code"], "too_many_sessions", "{reply}");
    assert_eq!(third.closed().await.0, 4009);

    drop(first);
    // The server notices the closed socket shortly after.
    let mut fourth = WsClient::connect(&app).await;
    let mut reply = Value::Null;
    for _ in 0..20 {
        reply = fourth
            .request(json!({"type": "auth", "token": ada.access}))
            .await;
        if reply["type"] == "ok" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        fourth = WsClient::connect(&app).await;
    }
    assert_eq!(reply["type"], "ok", "a freed place is usable: {reply}");
}

#[actix_web::test]
async fn a_silent_client_is_closed_after_the_heartbeat_timeout() {
    let app = spawn_app_with(|s| {
        s.live.heartbeat = Duration::from_millis(100);
        s.live.client_timeout = Duration::from_millis(400);
    })
    .await;
    let mut silent = WsClient::guest(&app).await;
    let mut lively = WsClient::guest(&app).await;
    // `silent` does not read, so it never answers the pings.
    let lively_task = async {
        // Reading answers pings automatically.
        lively
            .no_push("never-sent", Duration::from_millis(900))
            .await;
        let reply = lively.request(json!({"type": "ping"})).await;
        assert_eq!(reply["type"], "ok", "a client answering pings stays");
    };
    let silence = tokio::time::sleep(Duration::from_millis(900));
    tokio::join!(lively_task, silence);
    assert_eq!(silent.closed().await.0, 4000);
}

#[actix_web::test]
async fn an_expiring_token_is_announced_and_closes_the_socket_unless_renewed() {
    let app = spawn_app_with(|s| {
        s.access_token_ttl = Duration::from_secs(4);
        s.live.expiry_warning = Duration::from_millis(3500);
    })
    .await;
    let bob = app.shopper("bob").await;
    let ada = app.shopper("ada").await;
    let mut lapsing = WsClient::user(&app, &ada).await;
    let mut renewed = WsClient::user(&app, &ada).await;

    let notice = renewed.push("session.expiring").await;
    assert!(notice["data"]["expires_at"].is_i64(), "{notice}");
    assert!(notice["data"]["expires_in_ms"].as_i64().unwrap() <= 4000);
    // Refresh a second later so the new token expires later than the old one.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let tokens = body(
        app.post("/api/auth/refresh/", None, &json!({"refresh": ada.refresh}))
            .await,
    )
    .await;
    let fresh = tokens["access"].as_str().expect("fresh token");
    let reply = renewed
        .request(json!({"type": "auth", "token": fresh}))
        .await;
    assert_eq!(reply["type"], "ok", "{reply}");

    lapsing.push("session.expiring").await;
    assert_eq!(lapsing.closed().await, (4003, "token expired".into()));
    let reply = renewed.request(json!({"type": "ping"})).await;
    assert_eq!(reply["type"], "ok", "the renewed socket lives on: {reply}");

    // A re-auth as somebody else is refused.
    let reply = renewed
        .request(json!({"type": "auth", "token": bob.access}))
        .await;
    assert_eq!(reply["error"]["code"], "user_mismatch", "{reply}");
}

#[actix_web::test]
async fn logout_closes_the_sockets_of_that_login_only() {
    let app = spawn_app().await;
    let ada = app.shopper("ada").await;
    let ada_elsewhere = {
        let response = app.login("ada", &ada.password).await;
        let tokens = body(response).await;
        tokens["access"].as_str().unwrap().to_owned()
    };
    let mut this_login = WsClient::user(&app, &ada).await;
    let mut other_login = WsClient::connect(&app).await;
    other_login
        .request(json!({"type": "auth", "token": ada_elsewhere}))
        .await;

    let response = app
        .post("/api/auth/logout/", None, &json!({"refresh": ada.refresh}))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(this_login.closed().await, (4004, "session ended".into()));
    let reply = other_login.request(json!({"type": "ping"})).await;
    assert_eq!(reply["type"], "ok", "{reply}");
}

#[actix_web::test]
async fn a_client_that_stops_reading_is_told_to_resync_or_closed() {
    let shop = shop_with(|s| s.live.outbound_queue = 4).await;
    let ada = shop.app.shopper("ada").await;
    // A small receive buffer so the server's writes back up quickly.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket
        .connect(format!("127.0.0.1:{}", shop.app.port).parse().unwrap())
        .await
        .unwrap();
    let url = format!("ws://127.0.0.1:{}/api/ws/", shop.app.port);
    let (stream, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
        .await
        .unwrap();
    let mut slow = WsClient {
        stream,
        pushes: VecDeque::new(),
        next_id: 0,
        hello: Value::Null,
    };
    slow.recv().await;
    slow.request(json!({"type": "auth", "token": ada.access}))
        .await;

    // Many large pushes while the client reads nothing: a cart of many lines.
    let staff = &shop.staff;
    let category = shop.app.category(staff, "Bulk").await;
    let mut products = Vec::new();
    for n in 0..40 {
        let name = format!("Bulk item number {n} with a fairly long descriptive name");
        products.push(shop.app.product(staff, category, &name, "1.00", 999).await);
    }
    let started = std::time::Instant::now();
    let mut changes = 0;
    while started.elapsed() < Duration::from_secs(20) && changes < 3000 {
        for &product in &products {
            shop.app.add_to_cart(&ada, product, 1).await;
            changes += 1;
        }
        if changes >= 1200 {
            break;
        }
    }
    // The shop kept serving: every change above was acknowledged. Now read.
    let mut told = false;
    loop {
        match slow.next_message().await {
            Some(Message::Text(text)) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["type"] == "resync" {
                    assert_eq!(frame["data"]["reason"], "lagged");
                    told = true;
                    break;
                }
            }
            Some(Message::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), 4008, "{frame:?}");
                told = true;
                break;
            }
            Some(_) => continue,
            None => break,
        }
    }
    assert!(
        told,
        "the slow client was neither told to resync nor closed"
    );
}

/// Protocol examples: `"$product"` and `"$access_token"` stand for values
/// the test makes; `"<kind>"` matches any value of that kind.
fn substitute(value: &Value, product: u64, token: &str) -> Value {
    match value {
        Value::String(s) if s == "$product" => json!(product),
        Value::String(s) if s == "$access_token" => json!(token),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| substitute(v, product, token))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, product, token)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn matches(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    let kind = |pattern: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(format!("{path}: expected {pattern}, got {actual}"))
        }
    };
    match expected {
        Value::String(s) if s == "<string>" => kind(s, actual.is_string()),
        Value::String(s) if s == "<integer>" => kind(s, actual.is_i64() || actual.is_u64()),
        Value::String(s) if s == "<object>" => kind(s, actual.is_object()),
        Value::String(s) if s == "<array>" => kind(s, actual.is_array()),
        Value::String(s) if s == "<any>" => Ok(()),
        Value::Object(map) => {
            let Some(actual_map) = actual.as_object() else {
                return Err(format!("{path}: expected an object, got {actual}"));
            };
            for (key, value) in map {
                let child = actual_map.get(key).unwrap_or(&Value::Null);
                if !actual_map.contains_key(key) {
                    return Err(format!("{path}.{key}: missing in {actual}"));
                }
                matches(value, child, &format!("{path}.{key}"))?;
            }
            Ok(())
        }
        Value::Array(items) => {
            let Some(actual_items) = actual.as_array() else {
                return Err(format!("{path}: expected an array, got {actual}"));
            };
            if items.len() != actual_items.len() {
                return Err(format!("{path}: expected {expected}, got {actual}"));
            }
            for (n, (e, a)) in items.iter().zip(actual_items).enumerate() {
                matches(e, a, &format!("{path}[{n}]"))?;
            }
            Ok(())
        }
        other => kind(&other.to_string(), other == actual),
    }
}

#[actix_web::test]
async fn every_example_frame_in_the_protocol_is_answered_as_documented() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol/examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("protocol/examples")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "examples found: {}", files.len());
    let shop = shop().await;
    let mut failures = Vec::new();
    for (n, file) in files.iter().enumerate() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let example: Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).expect(&name);
        let setup: Vec<&str> = example["setup"]
            .as_array()
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        // A fresh product and shopper per example, so no example sees another's state.
        let product = if setup.contains(&"product") {
            let category = shop.app.category(&shop.staff, &format!("Ex {n}")).await;
            shop.app
                .product(&shop.staff, category, &format!("Example {n}"), "9.99", 10)
                .await
        } else {
            shop.product
        };
        let shopper = shop.app.shopper(&format!("example{n}")).await;
        if setup.contains(&"cart") {
            shop.app.add_to_cart(&shopper, product, 1).await;
        }
        let mut socket = match example["as"].as_str() {
            Some("none") => WsClient::connect(&shop.app).await,
            Some("guest") => WsClient::guest(&shop.app).await,
            Some("shopper") => WsClient::user(&shop.app, &shopper).await,
            Some("staff") => WsClient::user(&shop.app, &shop.staff).await,
            other => panic!("{name}: unknown `as` {other:?}"),
        };
        let expected = substitute(&example["reply"], product, &shopper.access);
        let reply = if let Some(text) = example["request_text"].as_str() {
            socket.send_text(text).await;
            socket.recv().await
        } else {
            let request = substitute(&example["request"], product, &shopper.access);
            socket.send_text(&request.to_string()).await;
            socket.reply_to(&request["id"]).await
        };
        if let Err(why) = matches(&expected, &reply, "reply") {
            failures.push(format!("{name}: {why}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
