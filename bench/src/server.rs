//! The storefront binary (and the bare actix-web baseline) as child
//! processes: started on a free port with a data dir of our choosing,
//! killed with SIGKILL for crash tests, measured through /proc.

use anyhow::{bail, Context};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Password of the staff account the harness creates with `create-admin`.
pub const STAFF_PASSWORD: &str = "bench staff password 1";
pub const STAFF_USERNAME: &str = "benchboss";

/// Where the server and baseline binaries are.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub storefront: PathBuf,
    pub bare_actix: Option<PathBuf>,
}

impl Binaries {
    /// The binaries next to this executable (same target profile), built
    /// first with cargo when this runs under `cargo run`, so a benchmark
    /// never measures a stale server.
    pub fn locate(build: bool) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let dir = exe
            .parent()
            .context("the executable has no directory")?
            .to_path_buf();
        if build {
            if let Ok(cargo) = std::env::var("CARGO") {
                let mut cmd = Command::new(cargo);
                cmd.args([
                    "build",
                    "-p",
                    "storefront",
                    "--bin",
                    "storefront",
                    "--example",
                    "bare_actix",
                ]);
                if dir.ends_with("release") {
                    cmd.arg("--release");
                }
                let status = cmd.status().context("running cargo build")?;
                anyhow::ensure!(status.success(), "building the server failed");
            }
        }
        let storefront = dir.join("storefront");
        anyhow::ensure!(
            storefront.exists(),
            "{} not found: build it with `cargo build --release`",
            storefront.display()
        );
        let bare = dir.join("examples").join("bare_actix");
        Ok(Self {
            storefront,
            bare_actix: bare.exists().then_some(bare),
        })
    }
}

/// A running child process serving HTTP on `base`.
pub struct Server {
    child: Child,
    pub base: String,
    pub port: u16,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown hook, no final flush.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Resident memory in KiB (Linux).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    /// CPU time the process used so far, user and system, all threads.
    pub fn cpu_seconds(&self) -> Option<f64> {
        cpu_seconds(self.pid())
    }

    /// What the server wrote on stderr so far (for start-up problems).
    pub fn stderr_so_far(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }

    pub fn still_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// CPU time process `pid` used so far, user and system, all threads
/// (Linux; /proc counts it in USER_HZ, 100 per second).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

/// Runs `storefront create-admin` on a stopped data dir.
pub fn create_staff(bins: &Binaries, data_dir: &Path) -> anyhow::Result<()> {
    let output = Command::new(&bins.storefront)
        .args([
            "create-admin",
            "--username",
            STAFF_USERNAME,
            "--email",
            "benchboss@example.com",
            "--data-dir",
        ])
        .arg(data_dir)
        .env("STOREFRONT_ADMIN_PASSWORD", STAFF_PASSWORD)
        .env("RUST_LOG", "warn")
        .output()?;
    if !output.status.success() {
        bail!(
            "create-admin failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Starts `storefront serve` on a free port and waits for its
/// "listening" line (at most `timeout`).
pub fn start_storefront(
    bins: &Binaries,
    data_dir: &Path,
    extra_env: &[(&str, &str)],
    timeout: Duration,
) -> anyhow::Result<Server> {
    let mut cmd = Command::new(&bins.storefront);
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        // Tokens must outlive a whole benchmark run.
        .env("STOREFRONT_ACCESS_TOKEN_TTL", "7200")
        .env("STOREFRONT_LOGIN_FAILURES_PER_ADDRESS", "1000000")
        // Every simulated shopper comes from one address: measure the
        // server, not its per-address throttles or the login queue bound.
        .env("STOREFRONT_RATE_LIMITS", "off")
        .env("STOREFRONT_PASSWORD_HASH_QUEUE", "1000000");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", bins.storefront.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let stderr = child.stderr.take().context("no stderr")?;
    let (port_tx, port_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(port) = line.split("listening on http://127.0.0.1:").nth(1) {
                let _ = port_tx.send(port.trim().parse::<u16>().ok());
                break;
            }
        }
        for _ in lines {}
    });
    let (err_tx, err_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if err_tx.send(line).is_err() {
                break;
            }
        }
    });
    let port = match port_rx.recv_timeout(timeout) {
        Ok(Some(port)) => port,
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            let log: Vec<String> = err_rx.try_iter().collect();
            bail!(
                "the server did not start within {timeout:?}:\n{}",
                log.join("\n")
            );
        }
    };
    Ok(Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        port,
        stderr: err_rx,
    })
}

/// Starts the bare actix-web example on a free port.
pub fn start_bare_actix(bins: &Binaries) -> anyhow::Result<Option<Server>> {
    let Some(bin) = &bins.bare_actix else {
        return Ok(None);
    };
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut child = Command::new(bin)
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("no stderr")?;
    let (err_tx, err_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text);
        let _ = err_tx.send(text);
    });
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(Some(Server {
                child,
                base: format!("http://127.0.0.1:{port}"),
                port,
                stderr: err_rx,
            }));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    bail!("the bare actix-web baseline did not start")
}
