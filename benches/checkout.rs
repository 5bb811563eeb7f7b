//! Checkout throughput over loopback (figures are printed, not asserted).
//! Starts the release `storefront` binary on a fresh data dir, creates a
//! staff account, 1,000 products and 64 shoppers through the real API, then
//! 64 concurrent keep-alive shoppers loop add-to-cart + checkout for a fixed
//! time in two scenarios: (a) each checkout on a random product of 1,000,
//! (b) every checkout on one hot product with 100,000 units. Every 201 was
//! acknowledged only after the group-commit flush.
//!
//! Run: `cargo bench --bench checkout` (CHECKOUT_BENCH_SECS, default 10).

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SHOPPERS: usize = 64;
const PRODUCTS: usize = 1_000;
const PASSWORD: &str = "bench password 1";

struct Server {
    child: std::process::Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(dir: &std::path::Path) -> anyhow::Result<Server> {
    let bin = env!("CARGO_BIN_EXE_storefront");
    let status = Command::new(bin)
        .args([
            "create-admin",
            "--username",
            "boss",
            "--email",
            "boss@example.com",
            "--data-dir",
        ])
        .arg(dir)
        .env("STOREFRONT_ADMIN_PASSWORD", PASSWORD)
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "create-admin failed");
    let mut child = Command::new(bin)
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .env("STOREFRONT_LOGIN_FAILURES_PER_ADDRESS", "100000")
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(port) = line.split("listening on http://127.0.0.1:").nth(1) {
            let base = format!("http://127.0.0.1:{}", port.trim());
            std::thread::spawn(move || for _ in lines {});
            return Ok(Server { child, base });
        }
    }
    anyhow::bail!("server did not start")
}

async fn json(
    client: &Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<(StatusCode, Value)> {
    let mut request = client.request(method, url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    let value = response.json().await.unwrap_or(Value::Null);
    Ok((status, value))
}

async fn login(client: &Client, base: &str, username: &str) -> anyhow::Result<String> {
    let (_, tokens) = json(
        client,
        reqwest::Method::POST,
        format!("{base}/api/auth/login/"),
        None,
        json!({"username": username, "password": PASSWORD}),
    )
    .await?;
    Ok(tokens["access"].as_str().unwrap_or_default().to_owned())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

async fn metric(client: &Client, base: &str, name: &str) -> f64 {
    let text = client.get(format!("{base}/metrics")).send().await.ok();
    let Some(text) = text else { return 0.0 };
    let text = text.text().await.unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn scenario(
    client: &Client,
    base: &str,
    name: &str,
    tokens: &[String],
    products: Arc<Vec<u64>>,
    seconds: u64,
) -> anyhow::Result<()> {
    let flushes_before = metric(client, base, "store_group_commit_flushes_total").await;
    let waiters_before = metric(client, base, "store_group_commit_waiters_total").await;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (n, token) in tokens.iter().cloned().enumerate() {
        let (client, base, products) = (client.clone(), base.to_owned(), products.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut pick = n as u64 * 7919 + 1;
            while Instant::now() < deadline {
                pick = pick
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let product = products[(pick >> 33) as usize % products.len()];
                let added = json(
                    &client,
                    reqwest::Method::POST,
                    format!("{base}/api/cart/add/"),
                    Some(&token),
                    json!({"product_id": product, "quantity": 1}),
                )
                .await;
                if !matches!(added, Ok((StatusCode::OK, _))) {
                    errors += 1;
                    continue;
                }
                let began = Instant::now();
                let placed = json(
                    &client,
                    reqwest::Method::POST,
                    format!("{base}/api/checkout/"),
                    Some(&token),
                    json!({}),
                )
                .await;
                match placed {
                    Ok((StatusCode::CREATED, _)) => latencies.push(began.elapsed()),
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let flushes = metric(client, base, "store_group_commit_flushes_total").await - flushes_before;
    let waiters = metric(client, base, "store_group_commit_waiters_total").await - waiters_before;
    println!(
        "| {name} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {errors} | {:.1} |",
        latencies.len() as f64 / elapsed,
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        percentile(&latencies, 0.999).as_secs_f64() * 1e3,
        if flushes > 0.0 {
            waiters / flushes
        } else {
            0.0
        },
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("CHECKOUT_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir()?;
    let server = start_server(dir.path())?;
    let base = server.base.clone();
    let client = Client::builder()
        .pool_max_idle_per_host(SHOPPERS * 2)
        .build()?;
    let staff = login(&client, &base, "boss").await?;
    let (_, category) = json(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/categories/"),
        Some(&staff),
        json!({"name": "Bench"}),
    )
    .await?;
    let category = category["id"].as_u64().unwrap_or_default();
    let mut spread = Vec::with_capacity(PRODUCTS);
    for n in 0..PRODUCTS {
        let (_, product) = json(&client, reqwest::Method::POST, format!("{base}/api/products/"), Some(&staff),
            json!({"name": format!("Bench product {n}"), "price": "9.99", "category": category, "stock": 100_000})).await?;
        spread.push(product["id"].as_u64().unwrap_or_default());
    }
    let (_, hot) = json(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/products/"),
        Some(&staff),
        json!({"name": "Hot product", "price": "19.99", "category": category, "stock": 100_000}),
    )
    .await?;
    let hot = hot["id"].as_u64().unwrap_or_default();
    let mut tokens = Vec::new();
    for n in 0..SHOPPERS {
        let username = format!("shopper{n}");
        json(&client, reqwest::Method::POST, format!("{base}/api/auth/register/"), None,
            json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD,
                   "address": "1 Bench Road", "city": "Loadville", "country": "US"})).await?;
        tokens.push(login(&client, &base, &username).await?);
    }
    println!("{SHOPPERS} shoppers, {seconds} s per scenario, release server on loopback, 2-core machine\n");
    println!("| scenario | checkouts/s | p50 | p99 | p99.9 | errors | commits per flush |");
    println!("|---|---|---|---|---|---|---|");
    scenario(
        &client,
        &base,
        "(a) spread over 1,000 products",
        &tokens,
        Arc::new(spread),
        seconds,
    )
    .await?;
    scenario(
        &client,
        &base,
        "(b) one hot product, 100,000 units",
        &tokens,
        Arc::new(vec![hot]),
        seconds,
    )
    .await?;
    Ok(())
}
