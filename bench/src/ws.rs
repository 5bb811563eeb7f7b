//! The WebSocket scenario: many idle authenticated sessions held open
//! (server memory per session from its resident set), then order status
//! changes made by staff over REST while all are connected, timed until the
//! `order.updated` push reaches the owner's socket.

use crate::scenarios::{Options, Shop};
use crate::seed;
use crate::stats::{Row, Samples};
use futures_util::stream::{self, StreamExt};
use futures_util::SinkExt;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

/// (order id, status pushed, when it arrived)
type Push = (u64, String, Instant);

/// Opens one session, authenticates, then reads until `stop`: each
/// `order.updated` goes to `pushes`. Returns the connect + auth time.
async fn session(
    url: String,
    token: String,
    pushes: mpsc::UnboundedSender<Push>,
    ready: mpsc::UnboundedSender<Result<Duration, String>>,
    mut stop: watch::Receiver<bool>,
) {
    let began = Instant::now();
    let (mut socket, _) = match tokio_tungstenite::connect_async(url.as_str()).await {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(format!("connect: {e}")));
            return;
        }
    };
    let auth = json!({"type": "auth", "id": 1, "token": token}).to_string();
    if let Err(e) = socket.send(Message::text(auth)).await {
        let _ = ready.send(Err(format!("auth send: {e}")));
        return;
    }
    let mut authed = false;
    loop {
        let frame = tokio::select! {
            frame = socket.next() => frame,
            _ = stop.changed() => break,
        };
        let Some(Ok(frame)) = frame else {
            if !authed {
                let _ = ready.send(Err("closed before auth".into()));
            }
            return;
        };
        let Ok(text) = frame.to_text() else { continue };
        if text.is_empty() {
            continue;
        }
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        match value["type"].as_str() {
            Some("ok") if !authed && value["id"] == 1 => {
                authed = true;
                let _ = ready.send(Ok(began.elapsed()));
            }
            Some("error") if !authed => {
                let _ = ready.send(Err(format!("auth: {value}")));
                return;
            }
            Some("order.updated") => {
                if let (Some(id), Some(status)) = (
                    value["data"]["id"].as_u64(),
                    value["data"]["status"].as_str(),
                ) {
                    let _ = pushes.send((id, status.to_owned(), Instant::now()));
                }
            }
            _ => {}
        }
    }
    let _ = socket.close(None).await;
}

pub async fn run(shop: &Shop, opts: &Options) -> anyhow::Result<Vec<Row>> {
    let sessions = opts.ws_sessions.min(shop.tokens.len());
    let changes = opts.ws_changes.min(sessions);
    let url = format!("ws://127.0.0.1:{}/api/ws/", shop.server.port);

    // Orders to change later, placed before the sessions open so their
    // creation pushes do not mix with the measurement.
    let product = seed::product(&shop.api, &shop.staff, "Live push item", 1_000_000).await?;
    shop.clear_carts(changes).await?;
    let orders: Vec<anyhow::Result<u64>> = stream::iter(shop.tokens.iter().take(changes))
        .map(|token| {
            let api = shop.api.clone();
            async move {
                let add = json!({"product_id": product, "quantity": 1});
                api.ok(Method::POST, "/api/cart/add/", Some(token), Some(&add))
                    .await?;
                let order = api
                    .ok(
                        Method::POST,
                        "/api/checkout/",
                        Some(token),
                        Some(&json!({})),
                    )
                    .await?;
                order["id"]
                    .as_u64()
                    .ok_or_else(|| anyhow::anyhow!("order without id"))
            }
        })
        .buffer_unordered(opts.connections)
        .collect()
        .await;
    let orders: Vec<u64> = orders.into_iter().collect::<anyhow::Result<_>>()?;

    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = shop.server.rss_kib().unwrap_or(0);
    let (push_tx, mut push_rx) = mpsc::unbounded_channel();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let opened = Instant::now();
    let mut tasks = Vec::with_capacity(sessions);
    let mut connect = Samples::default();
    let mut connected = 0;
    // Open at most 200 handshakes at a time, as a crowd arriving.
    for (n, token) in shop.tokens.iter().take(sessions).enumerate() {
        if n >= 200 + connected + connect.errors as usize {
            match ready_rx.recv().await {
                Some(Ok(latency)) => {
                    connect.ok(latency);
                    connected += 1;
                }
                Some(Err(e)) => connect.error(|| e),
                None => break,
            }
        }
        tasks.push(tokio::spawn(session(
            url.clone(),
            token.clone(),
            push_tx.clone(),
            ready_tx.clone(),
            stop_rx.clone(),
        )));
    }
    while connected + (connect.errors as usize) < tasks.len() {
        match tokio::time::timeout(Duration::from_secs(30), ready_rx.recv()).await {
            Ok(Some(Ok(latency))) => {
                connect.ok(latency);
                connected += 1;
            }
            Ok(Some(Err(e))) => connect.error(|| e),
            _ => break,
        }
    }
    let open_time = opened.elapsed();
    // Let allocations settle and a heartbeat round pass.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let rss_after = shop.server.rss_kib().unwrap_or(0);
    let per_session = if connected > 0 {
        (rss_after.saturating_sub(rss_before)) as f64 / connected as f64
    } else {
        0.0
    };
    let mut idle = connect.row(
        &format!("websocket: open {sessions} sessions (connect + auth)"),
        open_time,
    );
    idle.notes = format!(
        "{connected} idle sessions held; server RSS {:.0} -> {:.0} MiB = {per_session:.1} KiB per session",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
    );

    // Status changes while every session is connected: staff cancel each
    // order over REST; the push is timed from just before the request.
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let started = Instant::now();
    let cancel = json!({"status": "cancelled"});
    let results: Vec<Result<(), String>> = stream::iter(orders.iter().copied())
        .map(|id| {
            let (api, sent, cancel) = (shop.api.clone(), sent.clone(), &cancel);
            async move {
                let lock = || sent.lock().unwrap_or_else(|p| p.into_inner());
                lock().insert(id, Instant::now());
                let outcome = api
                    .send(
                        Method::PATCH,
                        &format!("/api/admin/orders/{id}/"),
                        Some(&shop.staff),
                        Some(cancel),
                        &[],
                    )
                    .await;
                let error = match outcome {
                    Ok((status, _)) if status.is_success() => return Ok(()),
                    Ok((status, body)) => format!("cancel {id}: {status} {body}"),
                    Err(e) => format!("cancel {id}: {e:#}"),
                };
                // No change, so no push to wait for: counted once, here.
                lock().remove(&id);
                Err(error)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut push = Samples::default();
    for e in results.into_iter().filter_map(Result::err) {
        push.error(|| e);
    }
    let mut waiting: HashMap<u64, Instant> = sent.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !waiting.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, push_rx.recv()).await {
            Ok(Some((id, status, at))) if status == "cancelled" => {
                if let Some(t0) = waiting.remove(&id) {
                    push.ok(at.saturating_duration_since(t0));
                }
            }
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    let missing = waiting.len();
    for id in waiting.keys().take(3) {
        push.error(|| format!("no order.updated push for order {id} within 10 s"));
    }
    push.errors += missing.saturating_sub(3.min(missing)) as u64;
    let mut push_row = push.row(
        &format!(
            "websocket push: staff cancels order -> owner's order.updated ({connected} sessions connected)"
        ),
        started.elapsed(),
    );
    push_row.notes = format!(
        "{} staff status changes (PATCH to cancelled), 16 in flight; latency from the request to the push on the owner's socket",
        orders.len()
    );
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    Ok(vec![idle, push_row])
}
