//! What the loopback benches share: the release `storefront` binary started
//! on a data dir the bench owns, JSON calls over one keep-alive client, and
//! how a figure is read off the samples. Each bench measures its own thing;
//! nothing here is timed.

// Each bench compiles this module on its own and uses a part of it.
#![allow(dead_code)]

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Password of every account the benches create.
pub const PASSWORD: &str = "bench password 1";
/// The staff account `start_server` creates.
pub const STAFF: &str = "boss";

/// The server process; killed when dropped so a failed bench leaves nothing
/// running.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub port: u16,
}

impl Server {
    /// The server's resident memory in KiB, from /proc (Linux).
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// CPU seconds (user + system, all threads) the server has used. Per
    /// request, it is a figure that other load on the machine barely
    /// moves, unlike requests per second.
    pub fn cpu_seconds(&self) -> f64 {
        process_cpu_seconds(&self.child.id().to_string())
    }

    pub fn thread_cpu_seconds(&self) -> std::collections::BTreeMap<&'static str, f64> {
        thread_group_cpu_seconds(&self.child.id().to_string())
    }
}

/// CPU seconds (user + system, all threads) process `pid` (or "self") has
/// used, from /proc (Linux).
pub fn process_cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat_cpu_seconds(&stat).map_or(0.0, |(_, seconds)| seconds)
}

/// The command name and CPU seconds (user + system) of a /proc stat line.
fn stat_cpu_seconds(stat: &str) -> Option<(&str, f64)> {
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(').map_or("", |(_, name)| name);
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line, in clock ticks.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |n: usize| {
        fields
            .get(n)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // USER_HZ is 100 on every Linux architecture this runs on.
    Some((name, (ticks(11) + ticks(12)) / 100.0))
}

/// CPU seconds per thread group of process `pid`, from
/// /proc/<pid>/task/*/stat: the request workers, sled's IO threads, the
/// store's own threads (checkout committer, group commit flush), the mail
/// thread, tokio's blocking pool, and the rest. Threads that ended are not
/// in /proc any more: compare the sum with `process_cpu_seconds`.
pub fn thread_group_cpu_seconds(pid: &str) -> std::collections::BTreeMap<&'static str, f64> {
    let mut groups = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return groups;
    };
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let Some((name, seconds)) = stat_cpu_seconds(&stat) else {
            continue;
        };
        let group = if name.starts_with("actix") {
            "http workers and actors"
        } else if name.starts_with("sled-io") {
            "sled io threads"
        } else if name.starts_with("storefront-chec") {
            "checkout committer"
        } else if name.starts_with("storefront-flus") {
            "group commit flush"
        } else if name.starts_with("storefront-mail") {
            "mail files"
        } else if name.starts_with("tokio") {
            "blocking pool"
        } else {
            "other"
        };
        *groups.entry(group).or_insert(0.0) += seconds;
    }
    groups
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates the staff account `STAFF` in `dir`, then serves it.
pub fn start_server(dir: &Path, env: &[(&str, &str)]) -> anyhow::Result<Server> {
    let status = Command::new(env!("CARGO_BIN_EXE_storefront"))
        .args([
            "create-admin",
            "--username",
            STAFF,
            "--email",
            "boss@example.com",
            "--data-dir",
        ])
        .arg(dir)
        .env("STOREFRONT_ADMIN_PASSWORD", PASSWORD)
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "create-admin failed");
    serve(dir, env)
}

/// Serves `dir` on a free loopback port with `env` set, once the server
/// says where it listens.
pub fn serve(dir: &Path, env: &[(&str, &str)]) -> anyhow::Result<Server> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_storefront"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        // Every simulated shopper comes from one address: measure the
        // server, not its per-address throttles.
        .env("STOREFRONT_LOGIN_FAILURES_PER_ADDRESS", "100000")
        .env("STOREFRONT_RATE_LIMITS", "off")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(port) = line.split("listening on http://127.0.0.1:").nth(1) {
            let port: u16 = port.trim().parse()?;
            // A full pipe would stall the server's logging.
            std::thread::spawn(move || for _ in lines {});
            return Ok(Server {
                child,
                base: format!("http://127.0.0.1:{port}"),
                port,
            });
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    anyhow::bail!("server did not start")
}

/// One JSON request; the body of an error status comes back too, so the
/// caller decides what counts as failure.
pub async fn call(
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

/// The access token of `username` (password `PASSWORD`).
pub async fn login(client: &Client, base: &str, username: &str) -> anyhow::Result<String> {
    let (_, tokens) = call(
        client,
        reqwest::Method::POST,
        format!("{base}/api/auth/login/"),
        None,
        json!({"username": username, "password": PASSWORD}),
    )
    .await?;
    Ok(tokens["access"].as_str().unwrap_or_default().to_owned())
}

/// The sample at fraction `p` of a sorted list (nearest rank, rounded down).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

/// The 1-minute load average, to print beside figures taken on a shared
/// machine.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}
