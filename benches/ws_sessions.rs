//! Idle live sockets and push latency (figures are printed, not asserted).
//!
//! Seeds a fresh data dir with one staff member and N shoppers, each with a
//! login session (tokens are minted with the server's secret, so no password
//! hash per shopper is needed), starts the release `storefront` binary on it,
//! places one order for each of the first 200 shoppers over REST, then opens N
//! WebSockets and authenticates each as its own shopper. With all of them
//! connected and idle it reports the server's resident memory per socket
//! (VmRSS after minus before, over N), and then has staff cancel the 200
//! orders one at a time, timing each from sending the PATCH to the owner's
//! socket receiving `order.updated`.
//!
//! Run: `ulimit -n 20000 && cargo bench --bench ws_sessions`
//! (WS_BENCH_SESSIONS, default 10000, needs two file descriptors each).

use futures_util::{SinkExt, StreamExt};
use reqwest::Client;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use storefront::auth::tokens::{TokenIssuer, TokenKind};
use storefront::domain::account::{Email, NewUser, Profile, Session, Username};
use storefront::domain::time::now_unix;
use storefront::domain::SessionId;
use storefront::store::Store;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "bench-secret-bench-secret-bench-secret-0123";
const PASSWORD: &str = "bench password 1";
const SAMPLES: usize = 200;
const CONNECTING_AT_ONCE: usize = 200;

struct Server {
    child: std::process::Child,
    base: String,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    Ok((staff, tokens))
}

fn start_server(dir: &std::path::Path) -> anyhow::Result<Server> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_storefront"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .env("STOREFRONT_JWT_SECRET", SECRET)
        .env("STOREFRONT_RATE_LIMITS", "checkout=off")
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(port) = line.split("listening on http://127.0.0.1:").nth(1) {
            let port: u16 = port.trim().parse()?;
            std::thread::spawn(move || for _ in lines {});
            return Ok(Server {
                child,
                base: format!("http://127.0.0.1:{port}"),
                port,
            });
        }
    }
    anyhow::bail!("server did not start")
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn call(
    client: &Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let response = client
        .request(method, url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let value: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{status}: {value}");
    Ok(value)
}

/// Opens and authenticates one socket, then reads it forever (answering
/// pings), reporting each cancelled order it is told about.
async fn open_socket(
    port: u16,
    token: String,
    pushes: mpsc::UnboundedSender<(u64, Instant)>,
) -> anyhow::Result<()> {
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
    });
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
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
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let (staff, tokens) = seed(dir.path(), sessions.max(SAMPLES))?;
    println!(
        "seeded {} shoppers with sessions in {:.1?}",
        tokens.len(),
        started.elapsed()
    );
    let server = start_server(dir.path())?;
    let pid = server.child.id();
    let client = Client::new();
    let base = server.base.clone();

    let category = call(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/categories/"),
        &staff,
        json!({"name": "Bench"}),
    )
    .await?["id"]
        .clone();
    let product = call(
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
        call(
            &client,
            reqwest::Method::POST,
            format!("{base}/api/cart/add/"),
            token,
            json!({"product_id": product, "quantity": 1}),
        )
        .await?;
        let order = call(
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
    let rss_before = rss_kib(pid);
    let (pushes_tx, mut pushes) = mpsc::unbounded_channel();
    let started = Instant::now();
    let opened: Vec<anyhow::Result<()>> =
        futures_util::stream::iter(tokens.iter().take(sessions).cloned())
            .map(|token| open_socket(server.port, token, pushes_tx.clone()))
            .buffer_unordered(CONNECTING_AT_ONCE)
            .collect()
            .await;
    let failed: Vec<_> = opened.iter().filter_map(|r| r.as_ref().err()).collect();
    if let Some(first) = failed.first() {
        anyhow::bail!("{} sockets failed, first: {first}", failed.len());
    }
    println!(
        "{sessions} sockets open and authenticated in {:.1?}",
        started.elapsed()
    );
    // Let allocations settle and a heartbeat round pass.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let rss_after = rss_kib(pid);
    let per_session = (rss_after.saturating_sub(rss_before)) as f64 / sessions as f64;
    println!(
        "server RSS {rss_before} KiB before, {rss_after} KiB with {sessions} idle sockets: {per_session:.1} KiB per socket"
    );

    let mut latencies = Vec::new();
    let mut replies = Vec::new();
    let mut early: HashMap<u64, Instant> = HashMap::new();
    for &order in &orders {
        let sent = Instant::now();
        call(
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
        "status change -> owner's push, {} changes with {sessions} sockets open: p50 {}, p99 {}, max {}",
        latencies.len(),
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
    );
    println!(
        "(the PATCH's own reply, flush included: p50 {}, p99 {})",
        ms(percentile(&replies, 0.50)),
        ms(percentile(&replies, 0.99)),
    );
    Ok(())
}
