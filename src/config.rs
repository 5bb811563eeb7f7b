//! Settings: from command-line flags, then STOREFRONT_* environment
//! variables, then safe defaults (clap resolves that order). Tests build a
//! `Settings` directly with short durations instead of sleeping.

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
    /// Order-confirmation delivery (see `mail`).
    pub mail: MailSettings,
}

/// How the outbox sender delivers mail. Without `smtp_url` every message is
/// written as an .eml file under `<data_dir>/mail/sent/`.
#[derive(Clone)]
pub struct MailSettings {
    /// `smtp://host:port`, `smtps://user:pass@host`, `smtp://host?tls=required`.
    /// It may hold a password, so it comes only from STOREFRONT_SMTP_URL and is
    /// never printed (see the Debug impl).
    pub smtp_url: Option<String>,
    /// The From address of every message.
    pub from: String,
    /// Delay before the first retry of a failed delivery; doubles per attempt.
    pub retry_base: Duration,
    /// Longest delay between two attempts.
    pub retry_max: Duration,
    /// How often the sender looks for due messages when nobody wakes it.
    pub poll_interval: Duration,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "<set>"))
            .field("from", &self.from)
            .field("retry_base", &self.retry_base)
            .field("retry_max", &self.retry_max)
            .field("poll_interval", &self.poll_interval)
            .finish()
    }
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
            mail: MailSettings {
                smtp_url: None,
                from: "shop@localhost".into(),
                retry_base: Duration::from_secs(5),
                retry_max: Duration::from_secs(3600),
                poll_interval: Duration::from_secs(10),
            },
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
    /// From address of order confirmations.
    #[arg(long, env = "STOREFRONT_MAIL_FROM", default_value = "shop@localhost")]
    pub mail_from: String,
    /// Seconds before the first retry of a failed mail (doubles per attempt).
    #[arg(long, env = "STOREFRONT_MAIL_RETRY_BASE", default_value_t = 5)]
    pub mail_retry_base: u64,
    /// Longest wait in seconds between two attempts to deliver a mail.
    #[arg(long, env = "STOREFRONT_MAIL_RETRY_MAX", default_value_t = 3600)]
    pub mail_retry_max: u64,
    /// Seconds between two looks at the mail outbox.
    #[arg(long, env = "STOREFRONT_MAIL_POLL_INTERVAL", default_value_t = 10)]
    pub mail_poll_interval: u64,
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
        settings.mail = MailSettings {
            // Not a flag: the URL may carry the SMTP password, which must not show in `ps`.
            smtp_url: std::env::var("STOREFRONT_SMTP_URL")
                .ok()
                .filter(|s| !s.is_empty()),
            from: self.mail_from,
            retry_base: Duration::from_secs(self.mail_retry_base.max(1)),
            retry_max: Duration::from_secs(self.mail_retry_max.max(self.mail_retry_base).max(1)),
            poll_interval: Duration::from_secs(self.mail_poll_interval.max(1)),
        };
        settings
    }
}
