//! Checkout throughput over loopback (figures are printed, not asserted).
//! Starts the release `storefront` binary on a fresh data dir, creates a
//! staff account, 1,000 products and 64 shoppers through the real API, then
//! 64 concurrent keep-alive shoppers loop add-to-cart + checkout for a fixed
//! time in two scenarios: (a) each checkout on a random product of 1,000,
//! (b) every checkout on one hot product with 100,000 units. Every 201 was
//! acknowledged only after the group-commit flush.
//!
//! Run: `cargo bench --bench checkout` (CHECKOUT_BENCH_SECS, default 10).

mod common;

use common::{call, login, percentile, start_server, Server, PASSWORD, STAFF};
use reqwest::{Client, StatusCode};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SHOPPERS: usize = 64;
const PRODUCTS: usize = 1_000;
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
    server: &Server,
    client: &Client,
    base: &str,
    name: &str,
    tokens: &[String],
    products: Arc<Vec<u64>>,
    seconds: u64,
) -> anyhow::Result<Figures> {
    let threads_before = server.thread_cpu_seconds();
    let flushes_before = metric(client, base, "store_group_commit_flushes_total").await;
    let waiters_before = metric(client, base, "store_group_commit_waiters_total").await;
    let cpu_before = server.cpu_seconds();
    let client_cpu_before = common::process_cpu_seconds("self");
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
                let added = call(
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
                let placed = call(
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
    let cpu = server.cpu_seconds() - cpu_before;
    let client_cpu = common::process_cpu_seconds("self") - client_cpu_before;
    let threads_after = server.thread_cpu_seconds();
    latencies.sort();
    let flushes = metric(client, base, "store_group_commit_flushes_total").await - flushes_before;
    let waiters = metric(client, base, "store_group_commit_waiters_total").await - waiters_before;
    println!(
        "| {name} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {errors} | {:.1} | {:.2} ms |",
        latencies.len() as f64 / elapsed,
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        percentile(&latencies, 0.999).as_secs_f64() * 1e3,
        if flushes > 0.0 {
            waiters / flushes
        } else {
            0.0
        },
        if latencies.is_empty() {
            0.0
        } else {
            cpu * 1e3 / latencies.len() as f64
        },
    );
    let per_checkout = |seconds: f64| seconds * 1e3 / latencies.len().max(1) as f64;
    let mut threads: Vec<(&'static str, f64)> = threads_after
        .iter()
        .map(|(group, after)| {
            let before = threads_before.get(group).copied().unwrap_or(0.0);
            (*group, per_checkout(after - before))
        })
        .collect();
    let live: f64 = threads.iter().map(|(_, ms)| ms).sum();
    threads.push(("threads that ended", (per_checkout(cpu) - live).max(0.0)));
    threads.push(("(load generator, not the server)", per_checkout(client_cpu)));
    Ok(Figures {
        name: name.to_owned(),
        placed: latencies.len(),
        threads,
    })
}

/// What a scenario leaves for the summary tables.
struct Figures {
    name: String,
    placed: usize,
    /// Server CPU ms per checkout, by thread group.
    threads: Vec<(&'static str, f64)>,
}

/// The confirmation files written so far.
fn mail_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("mail").join("sent")).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
            .count()
    })
}

/// How far the confirmations lag behind the orders at the end of a
/// scenario, and how long the sender takes to catch up (at most 120 s).
async fn mail_lag(dir: &Path, orders_so_far: usize) -> (usize, f64) {
    let behind = orders_so_far.saturating_sub(mail_files(dir));
    let started = Instant::now();
    while mail_files(dir) < orders_so_far && started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (behind, started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("CHECKOUT_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir()?;
    let server = start_server(dir.path(), &[])?;
    let base = server.base.clone();
    let client = Client::builder()
        .pool_max_idle_per_host(SHOPPERS * 2)
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
    let mut spread = Vec::with_capacity(PRODUCTS);
    for n in 0..PRODUCTS {
        let (_, product) = call(&client, reqwest::Method::POST, format!("{base}/api/products/"), Some(&staff),
            json!({"name": format!("Bench product {n}"), "price": "9.99", "category": category, "stock": 100_000})).await?;
        spread.push(product["id"].as_u64().unwrap_or_default());
    }
    let (_, hot) = call(
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
        call(&client, reqwest::Method::POST, format!("{base}/api/auth/register/"), None,
            json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD,
                   "address": "1 Bench Road", "city": "Loadville", "country": "US"})).await?;
        tokens.push(login(&client, &base, &username).await?);
    }
    println!("{SHOPPERS} shoppers, {seconds} s per scenario, release server on loopback, 2-core machine\n");
    println!("| scenario | checkouts/s | p50 | p99 | p99.9 | errors | commits per flush | server CPU per checkout (with its add to cart) |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut figures = Vec::new();
    let mut lags = Vec::new();
    let mut orders = 0;
    for (name, products) in [
        ("(a) spread over 1,000 products", spread),
        ("(b) one hot product, 100,000 units", vec![hot]),
    ] {
        let done = scenario(
            &server,
            &client,
            &base,
            name,
            &tokens,
            Arc::new(products),
            seconds,
        )
        .await?;
        orders += done.placed;
        // The next scenario starts once the mail of this one is out.
        lags.push(mail_lag(dir.path(), orders).await);
        figures.push(done);
    }
    println!("\nConfirmation mail (.eml files, written by the background sender):\n");
    println!(
        "| scenario | confirmations not yet written when the storm ended | written all within |"
    );
    println!("|---|---|---|");
    for (done, (behind, drained)) in figures.iter().zip(&lags) {
        println!(
            "| {} | {behind} of {} | {drained:.1} s |",
            done.name, done.placed
        );
    }
    println!("\nServer CPU per checkout (with its add to cart), by thread:\n");
    let groups: Vec<&str> = figures[0].threads.iter().map(|(g, _)| *g).collect();
    println!("| scenario | {} |", groups.join(" | "));
    println!("|---|{}", "---|".repeat(groups.len()));
    for done in &figures {
        let cells: Vec<String> = groups
            .iter()
            .map(|group| {
                let ms = done
                    .threads
                    .iter()
                    .find(|(g, _)| g == group)
                    .map_or(0.0, |(_, ms)| *ms);
                format!("{ms:.3} ms")
            })
            .collect();
        println!("| {} | {} |", done.name, cells.join(" | "));
    }
    Ok(())
}
