//! Seeds a shop through the running server: products in CSV chunks through
//! the staff import route, shoppers through registration (argon2-bound, so
//! with bounded concurrency), logins the same way.

use crate::client::{shopper_body, Api};
use crate::stats::{Row, Samples};
use anyhow::Context;
use futures_util::stream::{self, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use std::fmt::Write;
use std::time::{Duration, Instant};

pub const SHOPPER_PASSWORD: &str = "bench shopper password";

pub const ADJECTIVES: &[&str] = &[
    "classic", "deluxe", "compact", "rustic", "modern", "vintage", "heavy", "light", "eco",
    "nordic", "premium", "mini", "giant", "smart", "soft", "sturdy",
];
pub const COLOURS: &[&str] = &[
    "red", "blue", "green", "black", "white", "amber", "teal", "olive", "crimson", "ivory",
];
pub const NOUNS: &[&str] = &[
    "mug", "kettle", "teapot", "lamp", "chair", "spade", "hose", "knife", "blanket", "backpack",
    "candle", "clock", "bowl", "pan", "rake", "train", "kite", "scarf", "vase", "shelf",
];
pub const CATEGORIES: &[&str] = &[
    "Kitchen", "Garden", "Living", "Outdoor", "Toys", "Office", "Bath", "Lighting", "Travel",
    "Decor", "Tools", "Textiles",
];
const BRANDS: usize = 40;

/// (shopper index, latency and what the request gave, or why it failed)
type Answer<T> = (usize, Result<(Duration, T), String>);

/// Stock of every seeded product: enough that no scenario runs out.
pub const SEED_STOCK: i64 = 100_000;

/// Builds `count` product rows starting at `first` (deterministic).
fn csv_chunk(first: usize, count: usize, rng: &mut StdRng) -> String {
    let mut csv = String::with_capacity(count * 120);
    csv.push_str("name,description,price,category,brand,stock\n");
    for n in first..first + count {
        let adjective = ADJECTIVES[rng.gen_range(0..ADJECTIVES.len())];
        let colour = COLOURS[rng.gen_range(0..COLOURS.len())];
        let noun = NOUNS[rng.gen_range(0..NOUNS.len())];
        let material = ADJECTIVES[rng.gen_range(0..ADJECTIVES.len())];
        let category = CATEGORIES[n % CATEGORIES.len()];
        let brand = rng.gen_range(0..BRANDS);
        let cents: u32 = rng.gen_range(100..50_000);
        let _ = writeln!(
            csv,
            "{adjective} {colour} {noun} {n},A {material} {noun} in {colour} for everyday use,{}.{:02},{category},Brand {brand},{SEED_STOCK}",
            cents / 100,
            cents % 100
        );
    }
    csv
}

/// Imports `count` products in chunks; returns their ids and the row.
pub async fn products(api: &Api, staff: &str, count: usize) -> anyhow::Result<(Vec<u64>, Row)> {
    const CHUNK: usize = 10_000;
    let mut rng = StdRng::seed_from_u64(42);
    let mut ids = Vec::with_capacity(count);
    let mut samples = Samples::default();
    let started = Instant::now();
    let mut first = 0;
    while first < count {
        let n = CHUNK.min(count - first);
        let csv = csv_chunk(first, n, &mut rng);
        let began = Instant::now();
        let response = api
            .client
            .post(api.url("/api/admin/products/import/"))
            .bearer_auth(staff)
            .header("content-type", "text/csv")
            .body(csv)
            .timeout(Duration::from_secs(300))
            .send()
            .await?;
        let status = response.status();
        let report: serde_json::Value = response.json().await.unwrap_or_default();
        anyhow::ensure!(status.is_success(), "import: {status} {report}");
        let rejected = report["rejected"].as_array().map_or(0, Vec::len);
        anyhow::ensure!(rejected == 0, "import rejected rows: {report}");
        let chunk_ids = report["product_ids"]
            .as_array()
            .context("import report without product_ids")?;
        ids.extend(chunk_ids.iter().filter_map(|v| v.as_u64()));
        samples.ok(began.elapsed());
        first += n;
    }
    let mut row = samples.row(
        "seed: import products (10k-row CSV per request)",
        started.elapsed(),
    );
    row.notes = format!(
        "{} products in {:.1} s = {:.0} products/s",
        ids.len(),
        started.elapsed().as_secs_f64(),
        ids.len() as f64 / started.elapsed().as_secs_f64()
    );
    Ok((ids, row))
}

pub fn username(n: usize) -> String {
    format!("shopper{n:05}")
}

/// Registers shoppers `0..count` with `concurrency` requests in flight.
pub async fn register(
    api: &Api,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<(Vec<u64>, Row)> {
    let started = Instant::now();
    let results: Vec<Answer<u64>> = stream::iter(0..count)
        .map(|n| {
            let api = api.clone();
            async move {
                let began = Instant::now();
                let name = username(n);
                let outcome = api
                    .post(
                        "/api/auth/register/",
                        None,
                        &shopper_body(&name, SHOPPER_PASSWORD),
                    )
                    .await;
                let outcome = match outcome {
                    Ok((status, body)) if status.is_success() => body["id"]
                        .as_u64()
                        .map(|id| (began.elapsed(), id))
                        .ok_or_else(|| format!("no id in {body}")),
                    Ok((status, body)) => Err(format!("{name}: {status} {body}")),
                    Err(e) => Err(format!("{name}: {e:#}")),
                };
                (n, outcome)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut ids = vec![0; count];
    let mut samples = Samples::default();
    for (n, outcome) in results {
        match outcome {
            Ok((latency, id)) => {
                ids[n] = id;
                samples.ok(latency);
            }
            Err(e) => samples.error(|| e),
        }
    }
    let row = samples.row("register (argon2 hash)", started.elapsed());
    anyhow::ensure!(
        row.errors == 0,
        "registration failed: {:?}",
        row.error_samples
    );
    Ok((ids, row))
}

/// Logs shoppers `0..count` in with `concurrency` requests in flight;
/// returns their access tokens and the login row.
pub async fn login(
    api: &Api,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<(Vec<String>, Row)> {
    let started = Instant::now();
    let results: Vec<Answer<String>> = stream::iter(0..count)
        .map(|n| {
            let api = api.clone();
            async move {
                let began = Instant::now();
                let outcome = api
                    .login(&username(n), SHOPPER_PASSWORD)
                    .await
                    .map(|token| (began.elapsed(), token))
                    .map_err(|e| format!("{e:#}"));
                (n, outcome)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut tokens = vec![String::new(); count];
    let mut samples = Samples::default();
    for (n, outcome) in results {
        match outcome {
            Ok((latency, token)) => {
                tokens[n] = token;
                samples.ok(latency);
            }
            Err(e) => samples.error(|| e),
        }
    }
    let row = samples.row("login (argon2 verify)", started.elapsed());
    anyhow::ensure!(row.errors == 0, "logins failed: {:?}", row.error_samples);
    Ok((tokens, row))
}

/// Creates one product through the staff API and returns its id.
pub async fn product(api: &Api, staff: &str, name: &str, stock: i64) -> anyhow::Result<u64> {
    let category = api
        .ok(
            Method::POST,
            "/api/categories/",
            Some(staff),
            Some(&serde_json::json!({"name": format!("{name} category")})),
        )
        .await?["id"]
        .as_u64()
        .context("category id")?;
    api.ok(
        Method::POST,
        "/api/products/",
        Some(staff),
        Some(&serde_json::json!({"name": name, "price": "49.00", "category": category, "stock": stock})),
    )
    .await?["id"]
        .as_u64()
        .context("product id")
}
