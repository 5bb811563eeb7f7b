//! Throttles failed logins per account and per client address, so password
//! guessing is slow whichever of the two an attacker varies. Only failures
//! count; a success clears the account's counter.

use crate::config::LoginLimits;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Window {
    started: Instant,
    failures: u32,
}

/// Counters live in memory: a restart forgives, which is acceptable for a
/// throttle (the hash cost still bounds guessing speed).
pub struct LoginLimiter {
    limits: LoginLimits,
    windows: Mutex<HashMap<String, Window>>,
}

/// Windows kept before expired ones are swept, bounding memory under attack.
const SWEEP_ABOVE: usize = 10_000;

impl LoginLimiter {
    pub fn new(limits: LoginLimits) -> Self {
        Self {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn keys(account: &str, address: &str) -> [(String, u32); 2] {
        [
            (format!("account:{}", account.trim().to_lowercase()), 0),
            (format!("address:{address}"), 1),
        ]
    }

    /// `Err(retry_after)` when either counter is at its limit.
    pub fn check(&self, account: &str, address: &str) -> Result<(), Duration> {
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let mut wait = Duration::ZERO;
        for (key, which) in Self::keys(account, address) {
            let limit = if which == 0 {
                self.limits.per_account
            } else {
                self.limits.per_address
            };
            if let Some(w) = windows.get(&key) {
                let age = now.duration_since(w.started);
                if age < self.limits.window && w.failures >= limit {
                    wait = wait.max(self.limits.window - age);
                }
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait.max(Duration::from_secs(1)))
        }
    }

    pub fn record_failure(&self, account: &str, address: &str) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if windows.len() > SWEEP_ABOVE {
            let window = self.limits.window;
            windows.retain(|_, w| now.duration_since(w.started) < window);
        }
        for (key, _) in Self::keys(account, address) {
            let w = windows.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if now.duration_since(w.started) >= self.limits.window {
                *w = Window {
                    started: now,
                    failures: 0,
                };
            }
            w.failures += 1;
        }
    }

    pub fn record_success(&self, account: &str) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        windows.remove(&format!("account:{}", account.trim().to_lowercase()));
    }
}
