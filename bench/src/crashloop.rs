//! The crash loop: rounds of a checkout storm (orders with Idempotency-Keys,
//! cancels and registrations in flight) ended by SIGKILL at a random moment,
//! then a restart on the same data dir and a check of every invariant:
//!
//! - the server starts cleanly after every kill;
//! - no acknowledged account, order or cancel is lost, and orders come back
//!   with the items and total they were acknowledged with;
//! - per product, stock received == on hand + units in non-cancelled orders;
//! - an Idempotency-Key maps to at most one order: replaying every key sent
//!   (answered or not) returns the acknowledged order, and every order of
//!   the round is reached by exactly one key;
//! - no order is paid twice (when the server offers payments).
//!
//! Only the public HTTP API is used, as staff where a view of all orders
//! or accounts is needed.

use crate::client::{shopper_body, Api};
use crate::server::{self, Binaries, Server};
use anyhow::{bail, ensure, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SHOPPERS: usize = 12;
const REGISTRARS: usize = 2;
const PRODUCTS_PER_ROUND: usize = 4;
const STOCK_PER_PRODUCT: i64 = 60;
const PASSWORD: &str = "crash loop password";
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// What the server acknowledged with a 2xx, over the whole run.
#[derive(Default)]
struct Acked {
    /// order id -> the order view of the 201.
    orders: HashMap<u64, Value>,
    cancelled: HashSet<u64>,
    paid: HashSet<u64>,
    accounts: HashSet<String>,
}

/// What one round sent, answered or not.
#[derive(Default)]
struct RoundLog {
    /// Idempotency-Key -> shopper index, for every checkout sent.
    keys: BTreeMap<String, usize>,
    /// Idempotency-Key -> order id, for checkouts answered 201.
    acked_keys: HashMap<String, u64>,
    /// Orders a payment was started for -> shopper index.
    paid_by: HashMap<u64, usize>,
    checkouts_sent: usize,
    cancels_sent: usize,
    payments_sent: usize,
}

struct Run {
    bins: Binaries,
    dir: tempfile::TempDir,
    acked: Arc<Mutex<Acked>>,
    /// product id -> units received (the stock it was created with; the
    /// storm never restocks).
    received: BTreeMap<u64, i64>,
    /// product id -> round that sold it.
    round_of: HashMap<u64, usize>,
    /// Highest order id checked so far: orders above it belong to the round
    /// being checked.
    floor_id: u64,
    totals: Totals,
}

#[derive(Default, Debug)]
struct Totals {
    acked_orders: usize,
    acked_cancels: usize,
    acked_payments: usize,
    acked_accounts: usize,
    unanswered_checkouts: usize,
    replayed_keys: usize,
    orders_created_by_replay: usize,
    payment_checks: usize,
}

fn lock(acked: &Mutex<Acked>) -> std::sync::MutexGuard<'_, Acked> {
    acked.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `rounds` kill -9 rounds on one data dir; `log` gets one line per
/// round. Returns a summary, or the first invariant found broken.
pub async fn run(
    bins: &Binaries,
    rounds: usize,
    seed: u64,
    log: impl Fn(String),
) -> anyhow::Result<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir()?;
    server::create_staff(bins, dir.path())?;
    let mut run = Run {
        bins: bins.clone(),
        dir,
        acked: Arc::new(Mutex::new(Acked::default())),
        received: BTreeMap::new(),
        round_of: HashMap::new(),
        floor_id: 0,
        totals: Totals::default(),
    };
    let mut previous: Option<(usize, RoundLog, Vec<u64>, i64)> = None;
    for round in 0..rounds {
        let began = Instant::now();
        let mut server = run
            .start()
            .await
            .with_context(|| format!("round {round}: start"))?;
        let api = Api::new(&server.base, 64, Duration::from_secs(20))?;
        let staff = api
            .login(server::STAFF_USERNAME, server::STAFF_PASSWORD)
            .await?;
        if round == 0 {
            register_shoppers(&api, &run.acked).await?;
        }
        let tokens = login_shoppers(&api).await?;
        if let Some((r, round_log, products, since)) = previous.take() {
            run.check_round(&api, &staff, &tokens, r, round_log, &products, since)
                .await
                .with_context(|| format!("invariant broken after the kill of round {r}"))?;
        }
        let payments = offers_test_payments(&api).await;
        let products = run.new_products(&api, &staff, round).await?;
        for token in &tokens {
            api.ok(Method::DELETE, "/api/cart/", Some(token), None)
                .await?;
        }
        let since = unix_now() - 2;
        let kill_after = Duration::from_millis(rng.gen_range(50..1_500));
        let round_log = storm(
            &mut server,
            &api,
            &tokens,
            &products,
            round,
            kill_after,
            payments,
            run.acked.clone(),
        )
        .await;
        run.totals.unanswered_checkouts +=
            round_log.keys.len() - round_log.acked_keys.len().min(round_log.keys.len());
        log(format!(
            "round {round}: killed after {} ms; {} checkouts sent ({} acknowledged), {} cancels, {} payments sent; {:.1} s",
            kill_after.as_millis(),
            round_log.checkouts_sent,
            round_log.acked_keys.len(),
            round_log.cancels_sent,
            round_log.payments_sent,
            began.elapsed().as_secs_f64()
        ));
        previous = Some((round, round_log, products, since));
    }
    let server = run.start().await.context("final start")?;
    let api = Api::new(&server.base, 64, Duration::from_secs(60))?;
    let staff = api
        .login(server::STAFF_USERNAME, server::STAFF_PASSWORD)
        .await?;
    let tokens = login_shoppers(&api).await?;
    if let Some((r, round_log, products, since)) = previous.take() {
        run.check_round(&api, &staff, &tokens, r, round_log, &products, since)
            .await
            .with_context(|| format!("invariant broken after the kill of round {r}"))?;
    }
    run.check_everything(&api, &staff).await?;
    drop(server);
    let t = &run.totals;
    Ok(format!(
        "{} acknowledged orders, {} cancels, {} payments and {} accounts all survived; \
         {} checkouts unanswered at a kill; {} keys replayed ({} created their order only on replay); \
         stock exact on {} products; {} paid orders checked for a second payment",
        t.acked_orders,
        t.acked_cancels,
        t.acked_payments,
        t.acked_accounts,
        t.unanswered_checkouts,
        t.replayed_keys,
        t.orders_created_by_replay,
        run.received.len(),
        t.payment_checks
    ))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn shopper_name(n: usize) -> String {
    format!("crashshopper{n}")
}

async fn register_shoppers(api: &Api, acked: &Mutex<Acked>) -> anyhow::Result<()> {
    for n in 0..SHOPPERS {
        let name = shopper_name(n);
        api.ok(
            Method::POST,
            "/api/auth/register/",
            None,
            Some(&shopper_body(&name, PASSWORD)),
        )
        .await?;
        lock(acked).accounts.insert(name);
    }
    Ok(())
}

async fn login_shoppers(api: &Api) -> anyhow::Result<Vec<String>> {
    let logins = (0..SHOPPERS).map(|n| {
        let api = api.clone();
        async move { api.login(&shopper_name(n), PASSWORD).await }
    });
    futures_util::future::try_join_all(logins).await
}

async fn offers_test_payments(api: &Api) -> bool {
    match api.get("/api/payment/providers/", None).await {
        Ok((StatusCode::OK, body)) => body.to_string().contains("\"test\""),
        _ => false,
    }
}

impl Run {
    async fn start(&self) -> anyhow::Result<Server> {
        let mut server = server::start_storefront(
            &self.bins,
            self.dir.path(),
            &[("STOREFRONT_TEST_PAYMENTS", "true")],
            START_TIMEOUT,
        )?;
        let api = Api::new(&server.base, 4, Duration::from_secs(10))?;
        let (status, _) = api.get("/healthz", None).await?;
        ensure!(status.is_success(), "healthz answered {status} after start");
        ensure!(server.still_running(), "the server exited after start");
        let stderr = server.stderr_so_far();
        ensure!(
            !stderr.contains("panicked"),
            "the server panicked at start:\n{stderr}"
        );
        Ok(server)
    }

    async fn new_products(
        &mut self,
        api: &Api,
        staff: &str,
        round: usize,
    ) -> anyhow::Result<Vec<u64>> {
        let category = api
            .ok(
                Method::POST,
                "/api/categories/",
                Some(staff),
                Some(&json!({"name": format!("Crash round {round}")})),
            )
            .await?["id"]
            .as_u64()
            .context("category id")?;
        let mut ids = Vec::new();
        for n in 0..PRODUCTS_PER_ROUND {
            let id = api
                .ok(
                    Method::POST,
                    "/api/products/",
                    Some(staff),
                    Some(&json!({
                        "name": format!("Round {round} item {n}"),
                        "price": format!("{}.50", 3 + n),
                        "category": category,
                        "stock": STOCK_PER_PRODUCT,
                    })),
                )
                .await?["id"]
                .as_u64()
                .context("product id")?;
            self.received.insert(id, STOCK_PER_PRODUCT);
            self.round_of.insert(id, round);
            ids.push(id);
        }
        Ok(ids)
    }

    /// Checks what round `round` acknowledged against the restarted server.
    #[allow(clippy::too_many_arguments)]
    async fn check_round(
        &mut self,
        api: &Api,
        staff: &str,
        tokens: &[String],
        round: usize,
        log: RoundLog,
        products: &[u64],
        since: i64,
    ) -> anyhow::Result<()> {
        self.check_accounts(api, staff).await?;
        // Every key sent, answered or not, replays to at most one order.
        let mut key_to_order: HashMap<String, u64> = HashMap::new();
        for (key, shopper) in &log.keys {
            let (status, body) = api
                .send(
                    Method::POST,
                    "/api/checkout/",
                    Some(&tokens[*shopper]),
                    Some(&json!({})),
                    &[("Idempotency-Key", key.as_str())],
                )
                .await?;
            self.totals.replayed_keys += 1;
            let acked = log.acked_keys.get(key);
            if status.is_success() {
                let id = body["id"].as_u64().context("replayed order id")?;
                if let Some(acked) = acked {
                    ensure!(
                        *acked == id,
                        "key {key} was acknowledged as order {acked} but replays as {id}"
                    );
                }
                key_to_order.insert(key.clone(), id);
            } else {
                ensure!(
                    acked.is_none(),
                    "key {key} was acknowledged as order {:?} but replays as {status} {body}",
                    acked
                );
            }
        }
        let from = time_param(since);
        let orders = api
            .all_pages(&format!("/api/admin/orders/?from={from}"), Some(staff))
            .await?;
        let mine: HashMap<u64, &Value> = orders
            .iter()
            .filter_map(|o| o["id"].as_u64().map(|id| (id, o)))
            .filter(|(id, _)| *id > self.floor_id)
            .collect();
        let mut reached: HashMap<u64, &str> = HashMap::new();
        for (key, id) in &key_to_order {
            if let Some(other) = reached.insert(*id, key) {
                bail!("order {id} is reached by two keys: {other} and {key}");
            }
            ensure!(
                mine.contains_key(id),
                "key {key} replays order {id}, which the staff list lacks"
            );
            if !log.acked_keys.contains_key(key) {
                self.totals.orders_created_by_replay += 1;
            }
        }
        for id in mine.keys() {
            ensure!(
                reached.contains_key(id),
                "order {id} of round {round} is reached by no Idempotency-Key: \
                 a key made two orders, or an order came from nowhere"
            );
        }
        self.check_orders(&orders)?;
        self.check_stock(api, products, &orders).await?;
        for (order, shopper) in &log.paid_by {
            let payments = api
                .ok(
                    Method::GET,
                    &format!("/api/orders/{order}/payments/"),
                    Some(&tokens[*shopper]),
                    None,
                )
                .await?;
            let succeeded = payments
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["status"] == "succeeded" || p["status"] == "refunded")
                .count();
            ensure!(
                succeeded <= 1,
                "order {order} was paid {succeeded} times: {payments}"
            );
            self.totals.payment_checks += 1;
        }
        self.floor_id = self.floor_id.max(mine.keys().copied().max().unwrap_or(0));
        Ok(())
    }

    async fn check_accounts(&mut self, api: &Api, staff: &str) -> anyhow::Result<()> {
        let users = api
            .all_pages("/api/admin/users/?search=crash", Some(staff))
            .await?;
        let present: HashSet<&str> = users
            .iter()
            .filter_map(|u| u["username"].as_str())
            .collect();
        let acked = lock(&self.acked);
        for name in &acked.accounts {
            ensure!(
                present.contains(name.as_str()),
                "acknowledged account {name} lost"
            );
        }
        self.totals.acked_accounts = acked.accounts.len();
        Ok(())
    }

    /// Acknowledged orders in `orders` are intact; acknowledged cancels and
    /// payments hold; no order is paid twice.
    fn check_orders(&mut self, orders: &[Value]) -> anyhow::Result<()> {
        let acked = lock(&self.acked);
        for order in orders {
            let Some(id) = order["id"].as_u64() else {
                continue;
            };
            if let Some(was) = acked.orders.get(&id) {
                ensure!(
                    order["items"] == was["items"] && order["total_price"] == was["total_price"],
                    "order {id} changed: acknowledged {was}, stored {order}"
                );
            }
            if acked.cancelled.contains(&id) {
                ensure!(
                    order["status"] == "cancelled",
                    "acknowledged cancel of order {id} lost: {}",
                    order["status"]
                );
            }
            if acked.paid.contains(&id) {
                ensure!(
                    order["payment_status"] == "paid" || order["payment_status"] == "refunded",
                    "acknowledged payment of order {id} lost: {}",
                    order["payment_status"]
                );
            }
        }
        Ok(())
    }

    async fn check_stock(
        &self,
        api: &Api,
        products: &[u64],
        orders: &[Value],
    ) -> anyhow::Result<()> {
        let mut sold: HashMap<u64, i64> = HashMap::new();
        for order in orders.iter().filter(|o| o["status"] != "cancelled") {
            for item in order["items"].as_array().into_iter().flatten() {
                if let (Some(p), Some(q)) = (item["product_id"].as_u64(), item["quantity"].as_i64())
                {
                    *sold.entry(p).or_default() += q;
                }
            }
        }
        for product in products {
            let detail = api
                .ok(
                    Method::GET,
                    &format!("/api/products/{product}/"),
                    None,
                    None,
                )
                .await?;
            let on_hand = detail["stock"].as_i64().context("stock")?;
            let received = self.received[product];
            let sold = sold.get(product).copied().unwrap_or(0);
            ensure!(on_hand >= 0, "product {product}: {on_hand} on hand");
            ensure!(
                received == on_hand + sold,
                "product {product}: received {received} != on hand {on_hand} + sold {sold}"
            );
        }
        Ok(())
    }

    /// The end of the run: every order ever acknowledged, every product.
    async fn check_everything(&mut self, api: &Api, staff: &str) -> anyhow::Result<()> {
        let orders = api.all_pages("/api/admin/orders/", Some(staff)).await?;
        let stored: HashSet<u64> = orders.iter().filter_map(|o| o["id"].as_u64()).collect();
        {
            let acked = lock(&self.acked);
            for id in acked.orders.keys() {
                ensure!(stored.contains(id), "acknowledged order {id} lost");
            }
            self.totals.acked_orders = acked.orders.len();
            self.totals.acked_cancels = acked.cancelled.len();
            self.totals.acked_payments = acked.paid.len();
        }
        self.check_orders(&orders)?;
        let products: Vec<u64> = self.received.keys().copied().collect();
        self.check_stock(api, &products, &orders).await?;
        self.check_accounts(api, staff).await
    }
}

fn time_param(unix: i64) -> String {
    let secs = unix.rem_euclid(86_400);
    let days = unix.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Shoppers loop add -> checkout (with a key) -> sometimes pay, sometimes
/// cancel, while registrars create accounts; SIGKILL lands after
/// `kill_after`. Every task stops at its first transport error.
#[allow(clippy::too_many_arguments)]
async fn storm(
    server: &mut Server,
    api: &Api,
    tokens: &[String],
    products: &[u64],
    round: usize,
    kill_after: Duration,
    payments: bool,
    acked: Arc<Mutex<Acked>>,
) -> RoundLog {
    let log = Arc::new(Mutex::new(RoundLog::default()));
    let mut tasks = Vec::new();
    for (n, token) in tokens.iter().enumerate() {
        let (api, token, products, acked, log) = (
            api.clone(),
            token.clone(),
            products.to_vec(),
            acked.clone(),
            log.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _ = shopper(&api, &token, n, &products, round, payments, &acked, &log).await;
        }));
    }
    for r in 0..REGISTRARS {
        let (api, acked) = (api.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for k in 0.. {
                let name = format!("crash{round}x{r}x{k}");
                match api
                    .post("/api/auth/register/", None, &shopper_body(&name, PASSWORD))
                    .await
                {
                    Ok((StatusCode::CREATED, _)) => {
                        lock(&acked).accounts.insert(name);
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        }));
    }
    tokio::time::sleep(kill_after).await;
    server.kill_9();
    for task in tasks {
        let _ = task.await;
    }
    Arc::try_unwrap(log)
        .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
        .unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
async fn shopper(
    api: &Api,
    token: &str,
    n: usize,
    products: &[u64],
    round: usize,
    payments: bool,
    acked: &Mutex<Acked>,
    log: &Mutex<RoundLog>,
) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64((round * 1_000 + n) as u64);
    for i in 0.. {
        let product = products[rng.gen_range(0..products.len())];
        let add = json!({"product_id": product, "quantity": rng.gen_range(1..=2)});
        let (status, _) = api.post("/api/cart/add/", Some(token), &add).await?;
        if !status.is_success() {
            // Sold out: drop the line so later checkouts are not stuck on it.
            api.send(Method::DELETE, "/api/cart/", Some(token), None, &[])
                .await?;
            continue;
        }
        let key = format!("r{round}s{n}c{i}");
        {
            let mut log = lock_log(log);
            log.keys.insert(key.clone(), n);
            log.checkouts_sent += 1;
        }
        let (status, order) = api
            .send(
                Method::POST,
                "/api/checkout/",
                Some(token),
                Some(&json!({})),
                &[("Idempotency-Key", key.as_str())],
            )
            .await?;
        if status != StatusCode::CREATED {
            api.send(Method::DELETE, "/api/cart/", Some(token), None, &[])
                .await?;
            continue;
        }
        let id = order["id"].as_u64().context("order id")?;
        lock(acked).orders.insert(id, order);
        lock_log(log).acked_keys.insert(key, id);
        match rng.gen_range(0..4) {
            0 => {
                lock_log(log).cancels_sent += 1;
                let (status, _) = api
                    .send(
                        Method::POST,
                        &format!("/api/orders/{id}/cancel/"),
                        Some(token),
                        None,
                        &[],
                    )
                    .await?;
                if status.is_success() {
                    lock(acked).cancelled.insert(id);
                }
            }
            1 | 2 if payments => {
                {
                    let mut log = lock_log(log);
                    log.payments_sent += 1;
                    log.paid_by.insert(id, n);
                }
                if pay(api, token, id, 0).await? {
                    lock(acked).paid.insert(id);
                }
                // A second attempt on the same order must never pay it again.
                if rng.gen_bool(0.3) {
                    pay(api, token, id, 1).await?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn lock_log(log: &Mutex<RoundLog>) -> std::sync::MutexGuard<'_, RoundLog> {
    log.lock().unwrap_or_else(|p| p.into_inner())
}

/// Pays an order with the test provider: start the payment, then press
/// Pay on its pay page. True when the page answered, i.e. the payment was
/// acknowledged as settled.
async fn pay(api: &Api, token: &str, order: u64, attempt: u32) -> anyhow::Result<bool> {
    let key = format!("pay{order}a{attempt}");
    let (status, started) = api
        .send(
            Method::POST,
            "/api/payment/",
            Some(token),
            Some(&json!({"order_id": order, "provider": "test"})),
            &[("Idempotency-Key", key.as_str())],
        )
        .await?;
    if !status.is_success() {
        return Ok(false);
    }
    let Some(url) = started["next_action"]["url"].as_str() else {
        bail!("payment of order {order} started without a pay page: {started}");
    };
    let response = api
        .client
        .post(api.url(url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("outcome=pay")
        .send()
        .await?;
    Ok(response.status().is_success() || response.status().is_redirection())
}
