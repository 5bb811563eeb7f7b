//! Settings: from command-line flags, then STOREFRONT_* environment
//! variables, then safe defaults (clap resolves that order). Tests build a
//! `Settings` directly with short durations instead of sleeping.

use crate::domain::money::Currency;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub addr: String,
    pub data_dir: PathBuf,
    pub demo: bool,
    /// HMAC secret for JWTs; when absent one is created in the data dir.
    pub jwt_secret: Option<String>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub login_limits: LoginLimits,
    /// How many argon2 hashes may run at once (each takes ~19 MiB and ~16 ms).
    pub password_hash_concurrency: usize,
    /// Largest JSON body accepted, in bytes.
    pub json_limit: usize,
    /// HTTP worker threads; `None` is one per core.
    pub workers: Option<usize>,
    /// Trust X-Forwarded-For for the client address (only behind your own proxy).
    pub trust_proxy: bool,
    /// The shop's one currency; every price is in it.
    pub currency: Currency,
    /// Cart and inventory actors idle this long are stopped (their state is in sled).
    pub actor_idle_timeout: Duration,
    /// Arbiter threads the cart and inventory actors are spread over.
    pub actor_threads: usize,
}

/// Failed-login throttling: at most `per_account` failures for one account and
/// `per_address` failures from one client address within `window`.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    pub per_account: u32,
    pub per_address: u32,
    pub window: Duration,
}

impl Settings {
    /// Defaults suitable for a test: loopback, any free port, given data dir.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            addr: "127.0.0.1:0".into(),
            data_dir: data_dir.into(),
            demo: false,
            jwt_secret: None,
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            login_limits: LoginLimits {
                per_account: 5,
                per_address: 30,
                window: Duration::from_secs(15 * 60),
            },
            password_hash_concurrency: 4,
            json_limit: 256 * 1024,
            workers: None,
            trust_proxy: false,
            currency: Currency::USD,
            actor_idle_timeout: Duration::from_secs(300),
            actor_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// Flags of `storefront serve`; each can also come from its environment variable.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "STOREFRONT_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Directory for the database, secrets, media and the mail outbox.
    #[arg(long, env = "STOREFRONT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Seed a demo shop on first start and print how to log in.
    #[arg(long, env = "STOREFRONT_DEMO")]
    pub demo: bool,
    /// Access token lifetime in seconds.
    #[arg(long, env = "STOREFRONT_ACCESS_TOKEN_TTL", default_value_t = 900)]
    pub access_token_ttl: u64,
    /// Refresh token lifetime in seconds.
    #[arg(long, env = "STOREFRONT_REFRESH_TOKEN_TTL", default_value_t = 30 * 24 * 3600)]
    pub refresh_token_ttl: u64,
    /// Failed logins allowed per account within the window.
    #[arg(
        long,
        env = "STOREFRONT_LOGIN_FAILURES_PER_ACCOUNT",
        default_value_t = 5
    )]
    pub login_failures_per_account: u32,
    /// Failed logins allowed per client address within the window.
    #[arg(
        long,
        env = "STOREFRONT_LOGIN_FAILURES_PER_ADDRESS",
        default_value_t = 30
    )]
    pub login_failures_per_address: u32,
    /// Failed-login window in seconds.
    #[arg(long, env = "STOREFRONT_LOGIN_WINDOW", default_value_t = 900)]
    pub login_window: u64,
    /// Concurrent password hashes allowed.
    #[arg(
        long,
        env = "STOREFRONT_PASSWORD_HASH_CONCURRENCY",
        default_value_t = 4
    )]
    pub password_hash_concurrency: usize,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "STOREFRONT_WORKERS")]
    pub workers: Option<usize>,
    /// Take the client address from X-Forwarded-For (only behind a trusted proxy).
    #[arg(long, env = "STOREFRONT_TRUST_PROXY")]
    pub trust_proxy: bool,
    /// Seconds after which an idle cart or inventory actor is stopped.
    #[arg(long, env = "STOREFRONT_ACTOR_IDLE_SECS", default_value_t = 300)]
    pub actor_idle_secs: u64,
    /// The shop currency, an ISO 4217 code (prices are stored in its minor units).
    #[arg(long, env = "STOREFRONT_CURRENCY", default_value = "USD", value_parser = Currency::parse)]
    pub currency: Currency,
}

impl ServeArgs {
    pub fn into_settings(self) -> Settings {
        let mut settings = Settings::for_data_dir(self.data_dir);
        settings.addr = self.addr;
        settings.demo = self.demo;
        // Read here rather than as a flag so the secret never shows in `ps`.
        settings.jwt_secret = std::env::var("STOREFRONT_JWT_SECRET")
            .ok()
            .filter(|s| !s.is_empty());
        settings.access_token_ttl = Duration::from_secs(self.access_token_ttl.max(1));
        settings.refresh_token_ttl = Duration::from_secs(self.refresh_token_ttl.max(1));
        settings.login_limits = LoginLimits {
            per_account: self.login_failures_per_account.max(1),
            per_address: self.login_failures_per_address.max(1),
            window: Duration::from_secs(self.login_window.max(1)),
        };
        settings.password_hash_concurrency = self.password_hash_concurrency.max(1);
        settings.workers = self.workers.filter(|&w| w > 0);
        settings.trust_proxy = self.trust_proxy;
        settings.currency = self.currency;
        settings.actor_idle_timeout = Duration::from_secs(self.actor_idle_secs.max(1));
        settings
    }
}
