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
    /// The back office flags a product as low on stock below this many units on hand.
    pub low_stock_threshold: i64,
    /// Payment providers; none is configured unless credentials are given.
    pub payments: PaymentSettings,
    /// A pending order still unpaid this long after checkout is cancelled
    /// and its stock returned.
    pub unpaid_order_ttl: Duration,
    /// How often the sweeper looks for such orders.
    pub unpaid_order_sweep: Duration,
    /// Order-confirmation delivery (see `mail`).
    pub mail: MailSettings,
    /// Requests queued for a password hash beyond `password_hash_concurrency`;
    /// more than this are answered 503 at once instead of piling up.
    pub password_hash_queue: usize,
    /// Request rates allowed on the expensive routes (see `api::limits`).
    pub rate_limits: RateLimits,
    /// How long a client may take to send the request head before it gets
    /// 408 and the connection closes (slow clients must not hold connections).
    pub header_timeout: Duration,
    /// How long an idle keep-alive connection stays open.
    pub keep_alive: Duration,
    /// How often a store that failed to write is checked for space again.
    pub storage_check_interval: Duration,
    /// Bytes that must be writable in the data directory before a store that
    /// failed to write (full disk) is reopened and writes resume.
    pub storage_reserve: u64,
}

/// Requests allowed per window on one group of routes, counted separately
/// per client address and per logged-in user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub requests: u32,
    pub window: Duration,
}

impl Rate {
    pub const fn per(requests: u32, seconds: u64) -> Self {
        Self {
            requests,
            window: Duration::from_secs(seconds),
        }
    }
}

/// The rate of each group of expensive routes; `None` means unlimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// POST /api/auth/register: each one costs a password hash and an account.
    pub register: Option<Rate>,
    /// POST /api/auth/login (failed logins are also throttled per account).
    pub login: Option<Rate>,
    /// POST /api/checkout: reserves stock and writes an order.
    pub checkout: Option<Rate>,
    /// Product searches (GET /api/products with `search`).
    pub search: Option<Rate>,
    /// Image and logo uploads.
    pub upload: Option<Rate>,
    /// Starting a payment with a provider.
    pub payment: Option<Rate>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            register: Some(Rate::per(20, 3600)),
            login: Some(Rate::per(60, 60)),
            checkout: Some(Rate::per(30, 60)),
            search: Some(Rate::per(300, 60)),
            upload: Some(Rate::per(60, 60)),
            payment: Some(Rate::per(30, 60)),
        }
    }
}

impl RateLimits {
    /// No limits at all (benchmarks, tests about something else).
    pub fn unlimited() -> Self {
        Self {
            register: None,
            login: None,
            checkout: None,
            search: None,
            upload: None,
            payment: None,
        }
    }

    /// Applies `group=N/SECONDS` items separated by commas on top of the
    /// defaults, e.g. `register=5/3600,search=off`; `off` alone lifts every limit.
    pub fn parse(spec: &str) -> Result<Self, String> {
        if spec.trim() == "off" {
            return Ok(Self::unlimited());
        }
        let mut limits = Self::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (group, rate) = item
                .split_once('=')
                .ok_or_else(|| format!("'{item}': expected group=N/SECONDS or group=off"))?;
            let rate = match rate.trim() {
                "off" => None,
                rate => {
                    let (n, secs) = rate
                        .split_once('/')
                        .ok_or_else(|| format!("'{item}': expected N/SECONDS"))?;
                    let n: u32 = n
                        .trim()
                        .parse()
                        .map_err(|_| format!("'{item}': bad count"))?;
                    let secs: u64 = secs
                        .trim()
                        .parse()
                        .map_err(|_| format!("'{item}': bad seconds"))?;
                    if n == 0 || secs == 0 {
                        return Err(format!("'{item}': count and seconds must be above 0"));
                    }
                    Some(Rate::per(n, secs))
                }
            };
            let slot = match group.trim() {
                "register" => &mut limits.register,
                "login" => &mut limits.login,
                "checkout" => &mut limits.checkout,
                "search" => &mut limits.search,
                "upload" => &mut limits.upload,
                "payment" => &mut limits.payment,
                other => return Err(format!("unknown rate-limit group '{other}'")),
            };
            *slot = rate;
        }
        Ok(limits)
    }
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
            currency: Currency::USD,
            actor_idle_timeout: Duration::from_secs(300),
            actor_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            low_stock_threshold: 5,
            payments: PaymentSettings::default(),
            unpaid_order_ttl: DEFAULT_UNPAID_ORDER_TTL,
            unpaid_order_sweep: sweep_interval(DEFAULT_UNPAID_ORDER_TTL),
            mail: MailSettings {
                smtp_url: None,
                from: "shop@localhost".into(),
                retry_base: Duration::from_secs(5),
                retry_max: Duration::from_secs(3600),
                poll_interval: Duration::from_secs(10),
            },
            password_hash_queue: 64,
            rate_limits: RateLimits::default(),
            header_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(30),
            storage_check_interval: Duration::from_secs(1),
            storage_reserve: 16 * 1024 * 1024,
        }
    }
}

pub const DEFAULT_UNPAID_ORDER_TTL: Duration = Duration::from_secs(30 * 60);

/// Sweeps often enough that an order outlives its TTL by at most a minute
/// (or half the TTL, when that is shorter).
pub fn sweep_interval(ttl: Duration) -> Duration {
    (ttl / 2)
        .min(Duration::from_secs(60))
        .max(Duration::from_millis(100))
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
    /// Products with fewer units on hand than this are flagged low on stock in the back office.
    #[arg(long, env = "STOREFRONT_LOW_STOCK_THRESHOLD", default_value_t = 5)]
    pub low_stock_threshold: i64,
    /// The shop currency, an ISO 4217 code (prices are stored in its minor units).
    #[arg(long, env = "STOREFRONT_CURRENCY", default_value = "USD", value_parser = Currency::parse)]
    pub currency: Currency,
    /// Seconds a pending order may stay unpaid before it is cancelled and
    /// its stock returned.
    #[arg(long, env = "STOREFRONT_UNPAID_ORDER_TTL", default_value_t = 30 * 60)]
    pub unpaid_order_ttl: u64,
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
    /// Requests allowed to wait for a password hash; beyond that, 503 at once.
    #[arg(long, env = "STOREFRONT_PASSWORD_HASH_QUEUE", default_value_t = 64)]
    pub password_hash_queue: usize,
    /// Rate limits per client address and per user, over the defaults:
    /// `register=20/3600,login=60/60,checkout=30/60,search=300/60,upload=60/60,payment=30/60`;
    /// `group=off` lifts one.
    #[arg(long, env = "STOREFRONT_RATE_LIMITS", default_value = "", value_parser = RateLimits::parse)]
    pub rate_limits: RateLimits,
    /// Milliseconds a client may take to send its request head.
    #[arg(long, env = "STOREFRONT_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// Seconds an idle keep-alive connection stays open.
    #[arg(long, env = "STOREFRONT_KEEP_ALIVE_SECS", default_value_t = 30)]
    pub keep_alive_secs: u64,
    /// Milliseconds between two checks of a store that failed to write.
    #[arg(long, env = "STOREFRONT_STORAGE_CHECK_MS", default_value_t = 1000)]
    pub storage_check_ms: u64,
    /// Free bytes the data directory needs before writes resume after a full disk.
    #[arg(long, env = "STOREFRONT_STORAGE_RESERVE_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub storage_reserve_bytes: u64,
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
        settings.low_stock_threshold = self.low_stock_threshold.max(0);
        settings.actor_idle_timeout = Duration::from_secs(self.actor_idle_secs.max(1));
        settings.payments = PaymentSettings::from_env(|key| std::env::var(key).ok(), self.demo);
        settings.unpaid_order_ttl = Duration::from_secs(self.unpaid_order_ttl.max(1));
        settings.unpaid_order_sweep = sweep_interval(settings.unpaid_order_ttl);
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
        settings.password_hash_queue = self.password_hash_queue;
        settings.rate_limits = self.rate_limits;
        settings.header_timeout = Duration::from_millis(self.header_timeout_ms.max(100));
        settings.keep_alive = Duration::from_secs(self.keep_alive_secs);
        settings.storage_check_interval = Duration::from_millis(self.storage_check_ms.max(10));
        settings.storage_reserve = self.storage_reserve_bytes;
        settings
    }
}

/// Payment providers. A provider is offered only when its credentials are
/// configured; secrets come from the environment, never from flags (they
/// would show in `ps`) or the repository.
#[derive(Clone, Default)]
pub struct PaymentSettings {
    pub stripe: Option<StripeSettings>,
    pub paypal: Option<PayPalSettings>,
    pub razorpay: Option<RazorpaySettings>,
    /// The built-in `test` provider (no money moves): on with `--demo` or
    /// STOREFRONT_TEST_PAYMENTS=true.
    pub test_provider: bool,
    /// Timeout of every request to a provider.
    pub timeout: Duration,
}

#[derive(Clone)]
pub struct StripeSettings {
    pub secret_key: String,
    /// The endpoint secret (`whsec_...`) that signs webhooks.
    pub webhook_secret: String,
    pub api_base: String,
}

#[derive(Clone)]
pub struct PayPalSettings {
    pub client_id: String,
    pub client_secret: String,
    /// Id of the webhook registered with PayPal; without it webhooks are refused.
    pub webhook_id: Option<String>,
    pub api_base: String,
}

#[derive(Clone)]
pub struct RazorpaySettings {
    pub key_id: String,
    pub key_secret: String,
    /// Without it webhooks are refused; the client-side verify still works.
    pub webhook_secret: Option<String>,
    pub api_base: String,
}

pub const DEFAULT_PAYMENT_TIMEOUT: Duration = Duration::from_secs(15);
pub const DEFAULT_STRIPE_API_BASE: &str = "https://api.stripe.com";
pub const DEFAULT_PAYPAL_API_BASE: &str = "https://api-m.sandbox.paypal.com";
pub const DEFAULT_RAZORPAY_API_BASE: &str = "https://api.razorpay.com";

impl PaymentSettings {
    /// Reads the STOREFRONT_* payment variables through `var` (the process
    /// environment in production, a map in tests). A provider whose required
    /// secrets are missing stays off, with a warning when only some are set.
    pub fn from_env(var: impl Fn(&str) -> Option<String>, demo: bool) -> Self {
        let get = |key: &str| {
            var(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let base = |key: &str, default: &str| {
            get(key)
                .unwrap_or_else(|| default.to_owned())
                .trim_end_matches('/')
                .to_owned()
        };
        let stripe = match (
            get("STOREFRONT_STRIPE_SECRET_KEY"),
            get("STOREFRONT_STRIPE_WEBHOOK_SECRET"),
        ) {
            (Some(secret_key), Some(webhook_secret)) => Some(StripeSettings {
                secret_key,
                webhook_secret,
                api_base: base("STOREFRONT_STRIPE_API_BASE", DEFAULT_STRIPE_API_BASE),
            }),
            (None, None) => None,
            _ => {
                // Without the webhook secret no Stripe payment could ever be verified.
                tracing::warn!("Stripe needs both STOREFRONT_STRIPE_SECRET_KEY and STOREFRONT_STRIPE_WEBHOOK_SECRET; Stripe is off");
                None
            }
        };
        let paypal = match (
            get("STOREFRONT_PAYPAL_CLIENT_ID"),
            get("STOREFRONT_PAYPAL_CLIENT_SECRET"),
        ) {
            (Some(client_id), Some(client_secret)) => Some(PayPalSettings {
                client_id,
                client_secret,
                webhook_id: get("STOREFRONT_PAYPAL_WEBHOOK_ID"),
                api_base: base("STOREFRONT_PAYPAL_API_BASE", DEFAULT_PAYPAL_API_BASE),
            }),
            (None, None) => None,
            _ => {
                tracing::warn!("PayPal needs both STOREFRONT_PAYPAL_CLIENT_ID and STOREFRONT_PAYPAL_CLIENT_SECRET; PayPal is off");
                None
            }
        };
        let razorpay = match (
            get("STOREFRONT_RAZORPAY_KEY_ID"),
            get("STOREFRONT_RAZORPAY_KEY_SECRET"),
        ) {
            (Some(key_id), Some(key_secret)) => Some(RazorpaySettings {
                key_id,
                key_secret,
                webhook_secret: get("STOREFRONT_RAZORPAY_WEBHOOK_SECRET"),
                api_base: base("STOREFRONT_RAZORPAY_API_BASE", DEFAULT_RAZORPAY_API_BASE),
            }),
            (None, None) => None,
            _ => {
                tracing::warn!("Razorpay needs both STOREFRONT_RAZORPAY_KEY_ID and STOREFRONT_RAZORPAY_KEY_SECRET; Razorpay is off");
                None
            }
        };
        let test_provider = match get("STOREFRONT_TEST_PAYMENTS") {
            Some(flag) => matches!(
                flag.to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            ),
            None => demo,
        };
        let timeout = get("STOREFRONT_PAYMENT_TIMEOUT")
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|&s| s > 0)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_PAYMENT_TIMEOUT);
        Self {
            stripe,
            paypal,
            razorpay,
            test_provider,
            timeout,
        }
    }
}

/// Secrets stay out of logs: Debug shows which providers are on, not their keys.
impl std::fmt::Debug for PaymentSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentSettings")
            .field("stripe", &self.stripe.as_ref().map(|s| &s.api_base))
            .field("paypal", &self.paypal.as_ref().map(|s| &s.api_base))
            .field("razorpay", &self.razorpay.as_ref().map(|s| &s.api_base))
            .field("test_provider", &self.test_provider)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[cfg(test)]
mod payment_settings_tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)], demo: bool) -> PaymentSettings {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PaymentSettings::from_env(|k| map.get(k).cloned(), demo)
    }

    #[test]
    fn no_provider_is_configured_by_default() {
        let s = settings(&[], false);
        assert!(s.stripe.is_none() && s.paypal.is_none() && s.razorpay.is_none());
        assert!(!s.test_provider);
        assert_eq!(s.timeout, DEFAULT_PAYMENT_TIMEOUT);
    }

    #[test]
    fn a_provider_needs_all_of_its_required_secrets() {
        let s = settings(&[("STOREFRONT_STRIPE_SECRET_KEY", "sk_test_1")], false);
        assert!(s.stripe.is_none(), "no webhook secret means no Stripe");
        let s = settings(
            &[
                ("STOREFRONT_STRIPE_SECRET_KEY", "sk_test_1"),
                ("STOREFRONT_STRIPE_WEBHOOK_SECRET", "whsec_1"),
                ("STOREFRONT_RAZORPAY_KEY_ID", "rzp_test_1"),
                ("STOREFRONT_RAZORPAY_KEY_SECRET", "secret"),
                ("STOREFRONT_PAYPAL_API_BASE", "http://127.0.0.1:9/"),
            ],
            false,
        );
        let stripe = s.stripe.expect("stripe on");
        assert_eq!(stripe.api_base, DEFAULT_STRIPE_API_BASE);
        assert!(s.razorpay.expect("razorpay on").webhook_secret.is_none());
        assert!(s.paypal.is_none());
    }

    #[test]
    fn the_test_provider_follows_demo_unless_set_explicitly() {
        assert!(settings(&[], true).test_provider);
        assert!(!settings(&[("STOREFRONT_TEST_PAYMENTS", "false")], true).test_provider);
        assert!(settings(&[("STOREFRONT_TEST_PAYMENTS", "true")], false).test_provider);
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let s = settings(
            &[
                ("STOREFRONT_STRIPE_SECRET_KEY", "sk_live_verysecret"),
                ("STOREFRONT_STRIPE_WEBHOOK_SECRET", "whsec_verysecret"),
            ],
            false,
        );
        let shown = format!("{s:?}");
        assert!(!shown.contains("verysecret"), "{shown}");
    }
}
