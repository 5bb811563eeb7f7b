//! The benchmark scenarios. Each drives the real server over loopback with
//! closed-loop workers (one keep-alive connection each) and returns a row.

use crate::client::Api;
use crate::seed;
use crate::server::{self, Binaries, Server};
use crate::stats::{self, drive, timed, Outcome, Row, Samples};
use anyhow::Context;
use futures_util::stream::{self, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::json;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sizes and durations of a run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Concurrent keep-alive connections of the throughput scenarios.
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub products: usize,
    pub users: usize,
    /// Requests in flight while registering and logging in: argon2 runs a
    /// few hashes at a time on the server, more only queue.
    pub hash_concurrency: usize,
    pub flash_units: i64,
    pub flash_concurrency: usize,
    pub ws_sessions: usize,
    pub ws_changes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            connections: 64,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(10),
            products: 100_000,
            users: 10_000,
            hash_concurrency: 8,
            flash_units: 1_000,
            flash_concurrency: 1_000,
            ws_sessions: 10_000,
            ws_changes: 1_000,
        }
    }
}

/// A running, seeded shop.
pub struct Shop {
    pub server: Server,
    pub api: Api,
    pub staff: String,
    pub products: Arc<Vec<u64>>,
    /// Access tokens of shoppers `0..`, filled by `login`.
    pub tokens: Arc<Vec<String>>,
    pub users: usize,
    pub rows: Vec<Row>,
    /// The data dir, removed with the shop.
    dir: tempfile::TempDir,
}

impl Shop {
    /// Starts the server on a fresh data dir and seeds `products` products
    /// and `users` shoppers through its API.
    pub async fn start(
        bins: &Binaries,
        opts: &Options,
        products: usize,
        users: usize,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        server::create_staff(bins, dir.path())?;
        let server = server::start_storefront(bins, dir.path(), &[], Duration::from_secs(60))?;
        let api = Api::new(
            &server.base,
            opts.connections.max(opts.flash_concurrency) * 2,
            Duration::from_secs(120),
        )?;
        let staff = api
            .login(server::STAFF_USERNAME, server::STAFF_PASSWORD)
            .await?;
        let mut rows = Vec::new();
        let mut ids = Vec::new();
        if products > 0 {
            eprintln!("seeding {products} products through the import route...");
            let (seeded, row) = seed::products(&api, &staff, products).await?;
            ids = seeded;
            rows.push(row);
        }
        if users > 0 {
            eprintln!("registering {users} shoppers...");
            let (_, row) = seed::register(&api, users, opts.hash_concurrency).await?;
            rows.push(row);
        }
        Ok(Self {
            server,
            api,
            staff,
            products: Arc::new(ids),
            tokens: Arc::new(Vec::new()),
            users,
            rows,
            dir,
        })
    }

    /// Logs every shopper in (the login scenario); tokens are kept.
    pub async fn login(&mut self, opts: &Options) -> anyhow::Result<Row> {
        eprintln!("logging {} shoppers in...", self.users);
        let (tokens, row) = seed::login(&self.api, self.users, opts.hash_concurrency).await?;
        self.tokens = Arc::new(tokens);
        let mut row = row;
        row.scenario = format!("login ({} shoppers, argon2 verify)", self.users);
        row.notes = format!("{} requests in flight", opts.hash_concurrency);
        Ok(row)
    }

    /// Stops the server with SIGKILL and starts a new process on the same
    /// data dir (a new port; tokens stay valid). A scenario that reads the
    /// server's memory starts from this, so the argon2 buffers and the
    /// allocator's high-water mark of seeding do not hide what it measures.
    pub fn restart(&mut self, bins: &Binaries, opts: &Options) -> anyhow::Result<()> {
        self.server.kill_9();
        self.server =
            server::start_storefront(bins, self.dir.path(), &[], Duration::from_secs(60))?;
        self.api = Api::new(
            &self.server.base,
            opts.connections.max(opts.flash_concurrency) * 2,
            Duration::from_secs(120),
        )?;
        Ok(())
    }

    /// Empties the carts of shoppers `0..count`.
    pub async fn clear_carts(&self, count: usize) -> anyhow::Result<()> {
        let results: Vec<anyhow::Result<()>> = stream::iter(self.tokens.iter().take(count))
            .map(|token| {
                let api = self.api.clone();
                async move {
                    api.ok(Method::DELETE, "/api/cart/", Some(token), None)
                        .await
                        .map(|_| ())
                }
            })
            .buffer_unordered(64)
            .collect()
            .await;
        results.into_iter().collect()
    }
}

async fn get_raw(api: &Api, path: &str) -> Outcome {
    let began = Instant::now();
    let response = api
        .client
        .get(api.url(path))
        .send()
        .await
        .map_err(|e| format!("{e:#}"))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| format!("{e:#}"))?;
    if status.is_success() {
        Ok(began.elapsed())
    } else {
        Err(format!("{status} {}", String::from_utf8_lossy(&body)))
    }
}

/// Runs a throughput scenario and notes the CPU time per request of the
/// server and of this load generator (both share the machine's cores) over
/// the measured part: other load on the machine disturbs these less than
/// requests/s. The warm-up is left out by reading the times when it ends.
async fn with_server_cpu(
    server: &Server,
    warmup: Duration,
    scenario: impl Future<Output = Row>,
) -> Row {
    let times = || {
        let client = server::cpu_seconds(std::process::id())?;
        Some((server.cpu_seconds()?, client))
    };
    let at_start = async {
        tokio::time::sleep(warmup).await;
        times()
    };
    let (mut row, start) = tokio::join!(scenario, at_start);
    if let (Some(start), Some(end)) = (start, times()) {
        if row.requests > 0 {
            let per_request = |a: f64, b: f64| (b - a) * 1e6 / row.requests as f64;
            let note = format!(
                "CPU per request: server {:.0} µs, load generator {:.0} µs",
                per_request(start.0, end.0),
                per_request(start.1, end.1)
            );
            row.notes = if row.notes.is_empty() {
                note
            } else {
                format!("{}; {note}", row.notes)
            };
        }
    }
    row
}

fn rng_for(worker: usize, iteration: u64) -> StdRng {
    StdRng::seed_from_u64((worker as u64) << 40 ^ iteration)
}

/// GET / of the bare actix-web example: the ceiling of this machine.
pub async fn bare_baseline(bins: &Binaries, opts: &Options) -> anyhow::Result<Option<Row>> {
    let Some(bare) = server::start_bare_actix(bins)? else {
        eprintln!("examples/bare_actix not built: no baseline");
        return Ok(None);
    };
    let api = Api::new(&bare.base, opts.connections * 2, Duration::from_secs(30))?;
    let run = drive(
        "bare actix-web handler (baseline)",
        opts.connections,
        opts.warmup,
        opts.duration,
        move |_, _| {
            let api = api.clone();
            async move { get_raw(&api, "/").await }
        },
    );
    let row = with_server_cpu(&bare, opts.warmup, run).await;
    drop(bare);
    Ok(Some(row))
}

pub async fn product_detail(shop: &Shop, opts: &Options) -> Row {
    let (api, products) = (shop.api.clone(), shop.products.clone());
    let name = format!(
        "product detail (GET /api/products/{{id}}/ of {})",
        products.len()
    );
    let run = drive(
        &name,
        opts.connections,
        opts.warmup,
        opts.duration,
        move |w, i| {
            let (api, products) = (api.clone(), products.clone());
            async move {
                let id = products[rng_for(w, i).gen_range(0..products.len())];
                get_raw(&api, &format!("/api/products/{id}/")).await
            }
        },
    );
    with_server_cpu(&shop.server, opts.warmup, run).await
}

pub async fn listing(shop: &Shop, opts: &Options) -> Row {
    let api = shop.api.clone();
    let run = drive(
        "listing (category filter or all, 4 orderings, pages 1-20)",
        opts.connections,
        opts.warmup,
        opts.duration,
        move |w, i| {
            let api = api.clone();
            async move {
                let mut rng = rng_for(w, i);
                let ordering = ["price", "-price", "name", "-created_at"][rng.gen_range(0..4)];
                let page = rng.gen_range(1..=20);
                let path = if rng.gen_bool(0.5) {
                    let category =
                        seed::CATEGORIES[rng.gen_range(0..seed::CATEGORIES.len())].to_lowercase();
                    format!("/api/products/?category={category}&ordering={ordering}&page={page}")
                } else {
                    format!("/api/products/?ordering={ordering}&page={page}")
                };
                get_raw(&api, &path).await
            }
        },
    );
    with_server_cpu(&shop.server, opts.warmup, run).await
}

pub async fn search(shop: &Shop, opts: &Options) -> Row {
    let api = shop.api.clone();
    let run = drive(
        "search (one or two words over 100k products)",
        opts.connections,
        opts.warmup,
        opts.duration,
        move |w, i| {
            let api = api.clone();
            async move {
                let mut rng = rng_for(w, i);
                let noun = seed::NOUNS[rng.gen_range(0..seed::NOUNS.len())];
                let q = match rng.gen_range(0..3) {
                    0 => noun.to_owned(),
                    1 => format!(
                        "{}+{noun}",
                        seed::COLOURS[rng.gen_range(0..seed::COLOURS.len())]
                    ),
                    _ => format!(
                        "{}+{noun}",
                        seed::ADJECTIVES[rng.gen_range(0..seed::ADJECTIVES.len())]
                    ),
                };
                get_raw(&api, &format!("/api/products/?search={q}")).await
            }
        },
    );
    with_server_cpu(&shop.server, opts.warmup, run).await
}

/// Each worker is one shopper adding products from its own window of 150
/// (a cart holds at most 200 lines).
pub async fn add_to_cart(shop: &Shop, opts: &Options) -> anyhow::Result<Row> {
    shop.clear_carts(opts.connections).await?;
    let (api, products, tokens) = (shop.api.clone(), shop.products.clone(), shop.tokens.clone());
    let row = drive(
        "add to cart (durable cart write)",
        opts.connections.min(tokens.len()),
        opts.warmup,
        opts.duration,
        move |w, i| {
            let (api, products, tokens) = (api.clone(), products.clone(), tokens.clone());
            async move {
                let pick = rng_for(w, i).gen_range(0..150);
                let product = products[(w * 150 + pick) % products.len()];
                let body = json!({"product_id": product, "quantity": 1});
                timed(api.post("/api/cart/add/", Some(&tokens[w]), &body)).await
            }
        },
    )
    .await;
    shop.clear_carts(opts.connections).await?;
    Ok(row)
}

/// Each iteration adds one random product of the first 1,000 and checks
/// out; only the checkout is timed. Every 201 came after its flush.
pub async fn checkout(shop: &Shop, opts: &Options) -> anyhow::Result<Row> {
    shop.clear_carts(opts.connections).await?;
    let spread = 1_000.min(shop.products.len());
    let (api, products, tokens) = (shop.api.clone(), shop.products.clone(), shop.tokens.clone());
    let mut row = drive(
        &format!("checkout spread over {spread} products"),
        opts.connections.min(tokens.len()),
        opts.warmup,
        opts.duration,
        move |w, i| {
            let (api, products, tokens) = (api.clone(), products.clone(), tokens.clone());
            async move {
                let product = products[rng_for(w, i).gen_range(0..spread)];
                let token = tokens[w].as_str();
                let body = json!({"product_id": product, "quantity": 1});
                match api.post("/api/cart/add/", Some(token), &body).await {
                    Ok((status, _)) if status.is_success() => {}
                    Ok((status, body)) => return Err(format!("add: {status} {body}")),
                    Err(e) => return Err(format!("add: {e:#}")),
                }
                timed(api.post("/api/checkout/", Some(token), &json!({}))).await
            }
        },
    )
    .await;
    row.notes = "add-to-cart before each checkout is not timed".into();
    shop.clear_carts(opts.connections).await?;
    Ok(row)
}

/// Every shopper puts the one hot product in the cart, then all check out
/// at once. Exactly `flash_units` may win; every loser must get a 409.
pub async fn flash_sale(shop: &Shop, opts: &Options) -> anyhow::Result<Row> {
    let buyers = shop.tokens.len();
    let hot = seed::product(
        &shop.api,
        &shop.staff,
        "Flash sale console",
        opts.flash_units,
    )
    .await?;
    let added: Vec<Result<(), String>> = stream::iter(shop.tokens.iter())
        .map(|token| {
            let api = shop.api.clone();
            async move {
                let body = json!({"product_id": hot, "quantity": 1});
                match api.post("/api/cart/add/", Some(token), &body).await {
                    Ok((status, _)) if status.is_success() => Ok(()),
                    Ok((status, body)) => Err(format!("add: {status} {body}")),
                    Err(e) => Err(format!("add: {e:#}")),
                }
            }
        })
        .buffer_unordered(opts.connections)
        .collect()
        .await;
    if let Some(Err(e)) = added.iter().find(|r| r.is_err()) {
        anyhow::bail!("flash sale: putting the product in the carts failed: {e}");
    }

    let started = Instant::now();
    let answers: Vec<(u16, Duration, Duration, String)> = stream::iter(shop.tokens.iter())
        .map(|token| {
            let api = shop.api.clone();
            async move {
                let began = Instant::now();
                let answer = api.post("/api/checkout/", Some(token), &json!({})).await;
                let (status, text) = match answer {
                    Ok((status, body)) => (status.as_u16(), body["error"]["code"].to_string()),
                    Err(e) => (0, format!("{e:#}")),
                };
                (status, began.elapsed(), started.elapsed(), text)
            }
        })
        .buffer_unordered(opts.flash_concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut samples = Samples::default();
    let (mut sold, mut losers, mut last_loser, mut last_winner) =
        (0, 0, Duration::ZERO, Duration::ZERO);
    for (status, latency, at, text) in answers {
        match status {
            201 => {
                sold += 1;
                last_winner = last_winner.max(at);
                samples.ok(latency);
            }
            409 => {
                losers += 1;
                last_loser = last_loser.max(at);
                samples.ok(latency);
            }
            _ => samples.error(|| format!("{status} {text}")),
        }
    }
    let (_, detail) = shop.api.get(&format!("/api/products/{hot}/"), None).await?;
    let left = detail["stock"].as_i64().context("hot product stock")?;
    let mut row = samples.row(
        &format!(
            "flash sale: {buyers} buyers, 1 product with {} units",
            opts.flash_units
        ),
        elapsed,
    );
    let exact = sold == opts.flash_units && left == 0;
    row.notes = format!(
        "sold {sold} of {} ({}), stock left {left}; {losers} losers all answered 409 by {:.2} s (last winner {:.2} s); {} connections",
        opts.flash_units,
        if exact { "exact" } else { "MISMATCH" },
        last_loser.as_secs_f64(),
        last_winner.as_secs_f64(),
        opts.flash_concurrency,
    );
    Ok(row)
}

/// Fills in each read row's ratio to the baseline.
pub fn apply_ratios(rows: &mut [Row], baseline: Option<&Row>, read_scenarios: &[String]) {
    let Some(baseline) = baseline else { return };
    for row in rows.iter_mut() {
        if read_scenarios.contains(&row.scenario) && baseline.requests_per_s > 0.0 {
            row.ratio_to_bare = Some(row.requests_per_s / baseline.requests_per_s);
        }
    }
}

pub use stats::table;

/// Idle WebSocket sessions, on a freshly restarted server; skipped on a
/// server without `/api/ws/`.
pub async fn websocket(
    shop: &mut Shop,
    bins: &Binaries,
    opts: &Options,
) -> anyhow::Result<Vec<Row>> {
    let (status, _) = shop.api.get("/api/ws/", None).await?;
    if status == reqwest::StatusCode::NOT_FOUND {
        eprintln!("this server has no /api/ws/: WebSocket scenario skipped");
        return Ok(Vec::new());
    }
    shop.restart(bins, opts)?;
    crate::ws::run(shop, opts).await
}
