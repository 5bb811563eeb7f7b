//! Payment throughput over loopback (figures are printed, not asserted).
//! Starts the release `storefront` binary with the `test` provider on a
//! fresh data dir, places PAYMENTS_BENCH_ORDERS orders (default 4,000) for
//! 64 shoppers through the real API, then times two phases, 64 concurrent
//! keep-alive clients each:
//!   start:  `POST /api/payment/` with a fresh Idempotency-Key per order
//!           (key reservation, flush, attempt written, flush, 201);
//!   settle: Pay on each attempt's pay page, which signs the callback and
//!           settles it through the verified webhook path (signature check,
//!           one transaction for event marker + payment + order, flush, 303).
//! Every 2xx was acknowledged only after the group-commit flush covering it.
//!
//! Run: `cargo bench --bench payments`.

mod common;

use common::{call, login, percentile, start_server, PASSWORD, STAFF};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const CLIENTS: usize = 64;
const PRODUCTS: usize = 100;
fn report(name: &str, mut latencies: Vec<Duration>, errors: usize, elapsed: Duration) {
    latencies.sort();
    println!(
        "| {name} | {} | {:.0} | {:.1} ms | {:.1} ms | {errors} |",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
}

/// Runs `step` on every item with CLIENTS concurrent workers; returns the
/// latencies of the steps that succeeded, the error count and the wall time.
async fn phase<T, F, Fut>(items: Vec<T>, step: F) -> (Vec<Duration>, usize, Duration)
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let queue = Arc::new(Mutex::new(items));
    let step = Arc::new(step);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CLIENTS {
        let (queue, step) = (queue.clone(), step.clone());
        workers.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0);
            loop {
                let Some(item) = queue.lock().await.pop() else {
                    break;
                };
                let began = Instant::now();
                if step(item).await {
                    latencies.push(began.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for worker in workers {
        if let Ok((l, e)) = worker.await {
            latencies.extend(l);
            errors += e;
        }
    }
    (latencies, errors, started.elapsed())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let orders_wanted: usize = std::env::var("PAYMENTS_BENCH_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000);
    let dir = tempfile::tempdir()?;
    let server = start_server(dir.path(), &[("STOREFRONT_TEST_PAYMENTS", "true")])?;
    let base = server.base.clone();
    let client = Client::builder()
        .pool_max_idle_per_host(CLIENTS * 2)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let staff = login(&client, &base, STAFF).await?;
    let (_, category) = call(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/categories/"),
        Some(&staff),
        json!({"name": "Bench"}),
    )
    .await?;
    let category = category["id"].as_u64().unwrap_or_default();
    let mut products = Vec::new();
    for n in 0..PRODUCTS {
        let (_, product) = call(&client, reqwest::Method::POST, format!("{base}/api/products/"), Some(&staff),
            json!({"name": format!("Bench product {n}"), "price": "9.99", "category": category, "stock": 1_000_000})).await?;
        products.push(product["id"].as_u64().unwrap_or_default());
    }
    let mut tokens = Vec::new();
    for n in 0..CLIENTS {
        let username = format!("payer{n}");
        call(&client, reqwest::Method::POST, format!("{base}/api/auth/register/"), None,
            json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD,
                   "address": "1 Bench Road", "city": "Loadville", "country": "US"})).await?;
        tokens.push(login(&client, &base, &username).await?);
    }

    // Untimed: the orders to pay, each shopper checking out in turn.
    let per_shopper = orders_wanted.div_ceil(CLIENTS);
    let shoppers: Vec<(usize, String)> = tokens.iter().cloned().enumerate().collect();
    let placed = Arc::new(Mutex::new(Vec::new()));
    let (c, b, p, out) = (
        client.clone(),
        base.clone(),
        products.clone(),
        placed.clone(),
    );
    phase(shoppers, move |(n, token): (usize, String)| {
        let (client, base, products, out) = (c.clone(), b.clone(), p.clone(), out.clone());
        async move {
            for k in 0..per_shopper {
                let product = products[(n * 31 + k * 7) % products.len()];
                let added = call(
                    &client,
                    reqwest::Method::POST,
                    format!("{base}/api/cart/add/"),
                    Some(&token),
                    json!({"product_id": product, "quantity": 1}),
                )
                .await;
                if !matches!(added, Ok((StatusCode::OK, _))) {
                    return false;
                }
                let order = call(
                    &client,
                    reqwest::Method::POST,
                    format!("{base}/api/checkout/"),
                    Some(&token),
                    json!({}),
                )
                .await;
                match order {
                    Ok((StatusCode::CREATED, order)) => out
                        .lock()
                        .await
                        .push((token.clone(), order["id"].as_u64().unwrap_or_default())),
                    _ => return false,
                }
            }
            true
        }
    })
    .await;
    let orders = std::mem::take(&mut *placed.lock().await);
    println!(
        "{} orders, {CLIENTS} concurrent clients, release server on loopback, test provider\n",
        orders.len()
    );
    println!("| phase | requests | per second | p50 | p99 | errors |");
    println!("|---|---|---|---|---|---|");

    let links = Arc::new(Mutex::new(Vec::new()));
    let (c, b, out) = (client.clone(), base.clone(), links.clone());
    let (latencies, errors, elapsed) = phase(orders, move |(token, order): (String, u64)| {
        let (client, base, out) = (c.clone(), b.clone(), out.clone());
        async move {
            let response = client
                .post(format!("{base}/api/payment/"))
                .bearer_auth(&token)
                .header("Idempotency-Key", format!("bench-{order}"))
                .json(&json!({"order_id": order, "provider": "test"}))
                .send()
                .await;
            let Ok(response) = response else { return false };
            if response.status() != StatusCode::CREATED {
                return false;
            }
            let started: Value = response.json().await.unwrap_or(Value::Null);
            match started["next_action"]["url"].as_str() {
                Some(url) => {
                    out.lock().await.push(url.to_owned());
                    true
                }
                None => false,
            }
        }
    })
    .await;
    report("start (POST /api/payment/)", latencies, errors, elapsed);

    let links = std::mem::take(&mut *links.lock().await);
    let (c, b) = (client.clone(), base.clone());
    let (latencies, errors, elapsed) = phase(links, move |url: String| {
        let (client, base) = (c.clone(), b.clone());
        async move {
            let paid = client
                .post(format!("{base}{url}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("outcome=pay")
                .send()
                .await;
            matches!(paid, Ok(r) if r.status() == StatusCode::SEE_OTHER)
        }
    })
    .await;
    report("settle (signed pay callback)", latencies, errors, elapsed);

    let (_, paid) = call(
        &client,
        reqwest::Method::GET,
        format!("{base}/api/admin/orders/?status=paid&page_size=1"),
        Some(&staff),
        Value::Null,
    )
    .await?;
    println!("\norders paid: {}", paid["count"]);
    Ok(())
}
