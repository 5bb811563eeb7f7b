//! Abuse and limits against the real server: per-address and per-user rate
//! limits on the expensive routes (429 + Retry-After in the error shape),
//! the request-head timeout that cuts off slow clients, and the cap on
//! concurrent password hashes.

use crate::helpers::{body, error_code, spawn_app_with, TestApp, PASSWORD};
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};
use storefront::config::{Rate, RateLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn app_with_limits(limits: RateLimits) -> TestApp {
    spawn_app_with(|s| {
        s.rate_limits = limits;
        // Lets a test speak for many clients through X-Forwarded-For.
        s.trust_proxy = true;
    })
    .await
}

/// Asserts a 429 in the error shape and returns its Retry-After seconds.
async fn refused(response: reqwest::Response, window: u64) -> u64 {
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .expect("Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!(
        (1..=window).contains(&retry_after),
        "Retry-After {retry_after} within the window {window}"
    );
    assert_eq!(
        error_code(response, StatusCode::TOO_MANY_REQUESTS).await,
        "rate_limited"
    );
    retry_after
}

#[actix_web::test]
async fn registering_beyond_the_budget_is_429_and_creates_nothing() {
    let app = app_with_limits(RateLimits {
        register: Some(Rate::per(3, 3600)),
        ..RateLimits::unlimited()
    })
    .await;
    for n in 0..3 {
        assert_eq!(
            app.register(&format!("early{n}")).await.status(),
            StatusCode::CREATED
        );
    }
    refused(app.register("late").await, 3600).await;
    assert_eq!(
        app.login("late", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED,
        "the refused registration created no account"
    );
    // Another client address has its own budget.
    let other = app
        .client
        .post(app.url("/api/auth/register/"))
        .header("X-Forwarded-For", "203.0.113.9")
        .json(&json!({"username": "late", "email": "late@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::CREATED);
}

#[actix_web::test]
async fn checkout_is_limited_per_user_even_across_addresses() {
    let app = app_with_limits(RateLimits {
        checkout: Some(Rate::per(2, 60)),
        ..RateLimits::unlimited()
    })
    .await;
    let alice = app.shopper("alice").await;
    let bob = app.shopper("bob").await;
    let checkout_from = |user: &crate::helpers::TestUser, address: &str| {
        app.client
            .post(app.url("/api/checkout/"))
            .bearer_auth(&user.access)
            .header("X-Forwarded-For", address)
            .json(&json!({}))
            .send()
    };
    // An empty cart is a 400, but the attempt still counts.
    for n in 0..2 {
        let response = checkout_from(&alice, &format!("198.51.100.{n}"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
    refused(checkout_from(&alice, "198.51.100.77").await.unwrap(), 60).await;
    let response = checkout_from(&bob, "198.51.100.78").await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "bob has his own budget"
    );
}

#[actix_web::test]
async fn search_and_login_are_limited_per_address_and_listing_is_not() {
    let app = app_with_limits(RateLimits {
        search: Some(Rate::per(3, 60)),
        login: Some(Rate::per(2, 60)),
        ..RateLimits::unlimited()
    })
    .await;
    for _ in 0..3 {
        let response = app.get("/api/products/?search=lamp", None).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    refused(app.get("/api/products/?search=lamp", None).await, 60).await;
    for _ in 0..10 {
        assert_eq!(
            app.get("/api/products/", None).await.status(),
            StatusCode::OK
        );
    }

    assert_eq!(app.register("carol").await.status(), StatusCode::CREATED);
    for _ in 0..2 {
        assert_eq!(app.login("carol", PASSWORD).await.status(), StatusCode::OK);
    }
    // Even the right password waits once the address spent its budget.
    refused(app.login("carol", PASSWORD).await, 60).await;
}

#[actix_web::test]
async fn starting_payments_is_limited() {
    let app = app_with_limits(RateLimits {
        payment: Some(Rate::per(1, 60)),
        ..RateLimits::unlimited()
    })
    .await;
    let dave = app.shopper("dave").await;
    let payload = json!({"order_id": 999999, "provider": "test"});
    let start = || app.post("/api/payment/", Some(&dave.access), &payload);
    let first = start().await;
    assert_ne!(first.status(), StatusCode::TOO_MANY_REQUESTS);
    refused(start().await, 60).await;
}

#[actix_web::test]
async fn slow_clients_are_cut_off_and_do_not_hold_the_server() {
    let app = spawn_app_with(|s| {
        s.header_timeout = Duration::from_millis(500);
        s.workers = Some(1);
    })
    .await;
    // Slowloris: many connections that never finish their request head.
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: shop\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(stream);
    }
    let started = Instant::now();
    let response = app.get("/healthz", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a normal request is served while slow clients hang: {:?}",
        started.elapsed()
    );
    // Each slow connection is answered (408) and closed by the timeout.
    let deadline = Duration::from_secs(5);
    for mut stream in slow {
        let mut seen = Vec::new();
        let read = tokio::time::timeout(deadline, stream.read_to_end(&mut seen)).await;
        assert!(
            read.is_ok(),
            "a slow connection stayed open past {deadline:?}"
        );
        let text = String::from_utf8_lossy(&seen);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408"),
            "slow client got: {text}"
        );
    }
}

#[actix_web::test]
async fn a_login_flood_beyond_the_hash_queue_gets_503_not_a_pile_up() {
    let app = spawn_app_with(|s| {
        s.password_hash_concurrency = 1;
        s.password_hash_queue = 1;
    })
    .await;
    assert_eq!(app.register("erin").await.status(), StatusCode::CREATED);
    let flood: Vec<_> = (0..16).map(|_| app.login("erin", PASSWORD)).collect();
    let responses = futures_util::future::join_all(flood).await;
    let (mut ok, mut busy) = (0, 0);
    for response in responses {
        match response.status() {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(response.headers().contains_key("retry-after"));
                let value = body(response).await;
                assert_eq!(value["error"]["code"], "unavailable", "{value}");
                busy += 1;
            }
            other => panic!("unexpected {other}: {}", response.text().await.unwrap()),
        }
    }
    assert!(ok >= 1, "the admitted logins succeed");
    assert!(busy >= 1, "logins past the queue are turned away at once");
    // Once the flood is over, logins work again.
    assert_eq!(app.login("erin", PASSWORD).await.status(), StatusCode::OK);
}
