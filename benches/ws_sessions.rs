//! Idle live sockets and push latency (figures are printed, not asserted).
//!
//! Seeds a fresh data dir with one staff member and N shoppers, each with a
//! login session (tokens are minted with the server's secret, so no password
//! hash per shopper is needed), starts the release `storefront` binary on it
//! as a child process, places one order for each of the first 200 shoppers
//! over REST, then opens N WebSockets and authenticates each as its own
//! shopper. With all of them connected and idle it reports the server's
//! resident memory per session: the child's VmRSS after minus before, over
//! the sessions held, so the bench's own client sockets are not counted.
//! Then staff cancel the 200 orders one at a time, each timed from sending
//! the PATCH to the owner's socket receiving `order.updated`.
//!
//! Run: `ulimit -n 20000 && cargo bench --bench ws_sessions`
//! (WS_BENCH_SESSIONS, default 10000; each socket holds one file descriptor
//! in the bench and one in the server, and both inherit the limit).

mod common;

use common::{call, load_average, percentile, serve, PASSWORD};
use futures_util::{SinkExt, StreamExt};
use reqwest::Client;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use storefront::auth::tokens::{TokenIssuer, TokenKind};
use storefront::domain::account::{Email, NewUser, Profile, Session, Username};
use storefront::domain::time::now_unix;
use storefront::domain::SessionId;
use storefront::store::Store;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "bench-secret-bench-secret-bench-secret-0123";
const SAMPLES: usize = 200;
const CONNECTING_AT_ONCE: usize = 200;

/// Access tokens of the staff member and of each shopper.
fn seed(dir: &std::path::Path, shoppers: usize) -> anyhow::Result<(String, Vec<String>)> {
    let store = Store::open(dir)?;
    let hash = storefront::auth::passwords::hash_blocking(PASSWORD)?;
    let issuer = TokenIssuer::new(
        SECRET.as_bytes(),
        Duration::from_secs(4 * 3600),
        Duration::from_secs(24 * 3600),
    );
    let token = |n: usize, is_staff: bool| -> anyhow::Result<String> {
        let name = if is_staff {
            "boss".to_owned()
        } else {
            format!("shopper{n}")
        };
        let user = store.create_user(NewUser {
            username: Username::parse(&name).map_err(anyhow::Error::msg)?,
            email: Email::parse(&format!("{name}@example.com")).map_err(anyhow::Error::msg)?,
            password_hash: hash.clone(),
            is_staff,
            profile: Profile::default(),
        })?;
        let session = SessionId(n as u64 + 1);
        store.create_session(&Session {
            id: session,
            user_id: user.id,
            refresh_hash: Vec::new(),
            auth_epoch: user.auth_epoch,
            created_at: now_unix(),
            expires_at: now_unix() + 24 * 3600,
        })?;
        Ok(issuer.mint(TokenKind::Access, user.id, session)?.token)
    };
    let staff = token(shoppers, true)?;
    let tokens = (0..shoppers)
        .map(|n| token(n, false))
        .collect::<anyhow::Result<Vec<_>>>()?;
    store.durable_blocking()?;
    drop(store);
    wait_until_released(&dir.join("db").join("db"))?;
    Ok((staff, tokens))
}

/// sled lets go of its files only when the store's flush thread, which
/// outlives the last handle for a moment, has ended; the server would find
/// them locked before that.
fn wait_until_released(sled_file: &std::path::Path) -> anyhow::Result<()> {
    let file = std::fs::File::open(sled_file)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file.unlock()?),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => anyhow::bail!("{} stays locked: {e}", sled_file.display()),
        }
    }
}

/// A successful call's body; anything else stops the bench.
async fn ok(
    client: &Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let (status, value) = call(client, method, url, Some(token), body).await?;
    anyhow::ensure!(status.is_success(), "{status}: {value}");
    Ok(value)
}

/// Opens and authenticates one socket and returns how long that took; a
/// task then reads it (so pings are answered) until the server closes it,
/// reporting each `order.updated` it is told about.
async fn open_socket(
    port: u16,
    token: String,
    pushes: mpsc::UnboundedSender<(u64, Instant)>,
    open: Arc<AtomicUsize>,
) -> anyhow::Result<Duration> {
    let began = Instant::now();
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/ws/")).await?;
    socket.next().await; // hello
    socket
        .send(Message::Text(
            json!({"type": "auth", "id": 1, "token": token}).to_string(),
        ))
        .await?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text)?;
                if frame["type"] == "ok" && frame["id"] == 1 {
                    break;
                }
                anyhow::ensure!(frame["type"] != "error", "auth refused: {frame}");
            }
            Some(Ok(_)) => continue,
            other => anyhow::bail!("socket closed during auth: {other:?}"),
        }
    }
    let took = began.elapsed();
    open.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(text) = message {
                let arrived = Instant::now();
                if let Ok(frame) = serde_json::from_str::<Value>(&text) {
                    if frame["type"] == "order.updated" {
                        if let Some(id) = frame["data"]["id"].as_u64() {
                            let _ = pushes.send((id, arrived));
                        }
                    }
                }
            }
        }
        open.fetch_sub(1, Ordering::Relaxed);
    });
    Ok(took)
}

/// The soft limit on open files: each socket costs the bench one and the
/// server one, and both inherit it.
fn open_files_limit() -> Option<usize> {
    std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sessions: usize = std::env::var("WS_BENCH_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    if let Some(limit) = open_files_limit().filter(|&l| l < sessions + 1_000) {
        anyhow::bail!(
            "{sessions} sockets need more than {limit} open files: run `ulimit -n 20000` first"
        );
    }
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    // The store's flush waits block; keep them off the runtime's threads.
    let path = dir.path().to_owned();
    let (staff, tokens) =
        tokio::task::spawn_blocking(move || seed(&path, sessions.max(SAMPLES))).await??;
    println!(
        "seeded {} shoppers with sessions in {:.1?}",
        tokens.len(),
        started.elapsed()
    );
    let server = serve(dir.path(), &[("STOREFRONT_JWT_SECRET", SECRET)])?;
    let client = Client::new();
    let base = server.base.clone();

    let category = ok(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/categories/"),
        &staff,
        json!({"name": "Bench"}),
    )
    .await?["id"]
        .clone();
    let product = ok(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/products/"),
        &staff,
        json!({"name": "Bench mug", "price": "9.99", "category": category, "stock": 1_000_000}),
    )
    .await?["id"]
        .clone();
    let mut orders = Vec::new();
    for token in &tokens[..SAMPLES] {
        ok(
            &client,
            reqwest::Method::POST,
            format!("{base}/api/cart/add/"),
            token,
            json!({"product_id": product, "quantity": 1}),
        )
        .await?;
        let order = ok(
            &client,
            reqwest::Method::POST,
            format!("{base}/api/checkout/"),
            token,
            json!({"shipping_address": {"name": "Bench Shopper", "address": "1 Loop Road",
                "city": "Localhost", "postal_code": "12345", "country": "US"}}),
        )
        .await?;
        orders.push(order["id"].as_u64().expect("order id"));
    }
    println!("placed {SAMPLES} orders");

    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = server.rss_kib();
    let (pushes_tx, mut pushes) = mpsc::unbounded_channel();
    let open = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let opened: Vec<anyhow::Result<Duration>> =
        futures_util::stream::iter(tokens.iter().take(sessions).cloned())
            .map(|token| open_socket(server.port, token, pushes_tx.clone(), open.clone()))
            .buffer_unordered(CONNECTING_AT_ONCE)
            .collect()
            .await;
    let all_open = started.elapsed();
    let mut connects = Vec::with_capacity(sessions);
    let mut failed = Vec::new();
    for result in opened {
        match result {
            Ok(took) => connects.push(took),
            Err(e) => failed.push(e),
        }
    }
    if let Some(first) = failed.first() {
        anyhow::bail!("{} sockets failed, first: {first}", failed.len());
    }
    connects.sort();
    println!(
        "{sessions} sockets opened and authenticated in {all_open:.1?}, {CONNECTING_AT_ONCE} at a time; \
         per socket (connect + upgrade + auth): p50 {}, p99 {}, max {} (load {})",
        ms(percentile(&connects, 0.50)),
        ms(percentile(&connects, 0.99)),
        ms(*connects.last().unwrap_or(&Duration::ZERO)),
        load_average(),
    );
    // Let allocations settle and a heartbeat round pass.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let rss_after = server.rss_kib();
    let held = open.load(Ordering::Relaxed);
    let per_session = rss_after.saturating_sub(rss_before) as f64 * 1024.0 / held.max(1) as f64;
    println!(
        "sessions held: {held}; server RSS {rss_before} KiB before, {rss_after} KiB with them idle: \
         {per_session:.0} bytes ({:.1} KiB) per session (load {})",
        per_session / 1024.0,
        load_average(),
    );

    let mut latencies = Vec::new();
    let mut replies = Vec::new();
    let mut early: HashMap<u64, Instant> = HashMap::new();
    for &order in &orders {
        let sent = Instant::now();
        ok(
            &client,
            reqwest::Method::PATCH,
            format!("{base}/api/admin/orders/{order}/"),
            &staff,
            json!({"status": "cancelled"}),
        )
        .await?;
        replies.push(sent.elapsed());
        let arrived = loop {
            if let Some(at) = early.remove(&order) {
                break at;
            }
            match tokio::time::timeout(Duration::from_secs(5), pushes.recv()).await {
                Ok(Some((id, at))) if id == order => break at,
                Ok(Some((id, at))) => {
                    early.insert(id, at);
                }
                _ => anyhow::bail!("no push for order {order} within 5 s"),
            }
        };
        latencies.push(arrived.duration_since(sent));
    }
    latencies.sort();
    replies.sort();
    println!(
        "status change -> owner's push, {} changes with {held} sessions open: p50 {}, p99 {}, max {} (load {})",
        latencies.len(),
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
        load_average(),
    );
    println!(
        "(the PATCH's own reply, flush included: p50 {}, p99 {})",
        ms(percentile(&replies, 0.50)),
        ms(percentile(&replies, 0.99)),
    );
    println!(
        "sessions still open after the changes: {} of {sessions} (load {})",
        open.load(Ordering::Relaxed),
        load_average(),
    );
    Ok(())
}
