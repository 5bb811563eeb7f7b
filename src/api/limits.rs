//! Rate limits on the expensive routes: registration, login, checkout,
//! search, uploads and starting a payment. Each group has its own budget per
//! client address and, for a caller with a valid token, per user, so neither
//! rotating accounts nor rotating addresses escapes it. Over budget the
//! answer is 429 in the one error shape with `Retry-After`.
//!
//! Counters are fixed windows in memory: a restart forgives, which is fine
//! for a throttle, and memory stays bounded by sweeping expired windows.

use super::error::ApiError;
use super::extract::{bearer_token, client_address, Authenticated};
use super::AppState;
use crate::config::{Rate, RateLimits};
use actix_web::dev::ServiceRequest;
use actix_web::http::Method;
use actix_web::web;
use actix_web::HttpMessage;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The groups of routes that share one budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    Register,
    Login,
    Checkout,
    Search,
    Upload,
    Payment,
}

impl Group {
    /// The group of a request, from its method, (normalized) path and query.
    pub fn of(method: &Method, path: &str, query: &str) -> Option<Self> {
        let path = path.trim_end_matches('/');
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        match (method, segments.as_slice()) {
            (&Method::POST, ["api", "auth", "register"]) => Some(Group::Register),
            (&Method::POST, ["api", "auth", "login"]) => Some(Group::Login),
            (&Method::POST, ["api", "checkout"]) => Some(Group::Checkout),
            (&Method::POST, ["api", "payment"]) => Some(Group::Payment),
            (&Method::POST, ["api", "products", _, "image"])
            | (&Method::POST, ["api", "brands", _, "logo"]) => Some(Group::Upload),
            (&Method::GET, ["api", "products"]) if has_search(query) => Some(Group::Search),
            _ => None,
        }
    }

    fn rate(self, limits: &RateLimits) -> Option<Rate> {
        match self {
            Group::Register => limits.register,
            Group::Login => limits.login,
            Group::Checkout => limits.checkout,
            Group::Search => limits.search,
            Group::Upload => limits.upload,
            Group::Payment => limits.payment,
        }
    }
}

fn has_search(query: &str) -> bool {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .any(|(key, value)| key == "search" && !value.trim().is_empty())
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Caller {
    Address(String),
    User(u64),
}

struct Window {
    started: Instant,
    count: u32,
}

/// Windows kept before expired ones are swept, bounding memory under attack.
const SWEEP_ABOVE: usize = 50_000;

pub struct RateLimiter {
    limits: RateLimits,
    windows: Mutex<HashMap<(Group, Caller), Window>>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Whether requests of `group` are counted at all.
    fn limits(&self, group: Group) -> bool {
        group.rate(&self.limits).is_some()
    }

    /// Counts one request of `group` from `address` (and `user`);
    /// `Err(retry_after)` when either budget is spent. A refused request
    /// does not count, so a client that waits `retry_after` gets through.
    fn admit(&self, group: Group, address: &str, user: Option<u64>) -> Result<(), Duration> {
        let Some(rate) = group.rate(&self.limits) else {
            return Ok(());
        };
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|(g, _), w| {
                g.rate(&self.limits)
                    .is_some_and(|r| now.duration_since(w.started) < r.window)
            });
        }
        let mut callers = vec![Caller::Address(address.to_owned())];
        callers.extend(user.map(Caller::User));
        let mut wait = Duration::ZERO;
        for caller in &callers {
            if let Some(w) = windows.get(&(group, caller.clone())) {
                let age = now.duration_since(w.started);
                if age < rate.window && w.count >= rate.requests {
                    wait = wait.max(rate.window - age);
                }
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for caller in callers {
            let w = windows.entry((group, caller)).or_insert(Window {
                started: now,
                count: 0,
            });
            if now.duration_since(w.started) >= rate.window {
                *w = Window {
                    started: now,
                    count: 0,
                };
            }
            w.count += 1;
        }
        Ok(())
    }
}

/// Checks a request against its group's budget before it reaches a handler.
pub fn check(req: &ServiceRequest) -> Result<(), ApiError> {
    let Some(group) = Group::of(req.method(), req.path(), req.query_string()) else {
        return Ok(());
    };
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Ok(());
    };
    if !state.limiter.limits(group) {
        return Ok(());
    }
    let address = client_address(req.request(), state.settings.trust_proxy);
    // Only a valid token names a user; an invalid one is refused by the
    // handler. A valid one is kept for the handler's extractor, so the
    // request is not authenticated twice.
    let identity =
        bearer_token(req.request()).and_then(|token| state.accounts.authenticate(token).ok());
    let user = identity.as_ref().map(|identity| identity.user.id.0);
    if let Some(identity) = identity {
        req.extensions_mut().insert(Authenticated(identity));
    }
    state
        .limiter
        .admit(group, &address, user)
        .map_err(|wait| ApiError::TooManyRequests {
            message: "too many requests of this kind; try again later".into(),
            // Rounded up: retrying a moment too early would be refused again.
            retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_fall_into_the_expected_groups() {
        let cases = [
            (
                Method::POST,
                "/api/auth/register",
                "",
                Some(Group::Register),
            ),
            (Method::POST, "/api/auth/login", "", Some(Group::Login)),
            (Method::POST, "/api/checkout", "", Some(Group::Checkout)),
            (Method::POST, "/api/payment", "", Some(Group::Payment)),
            (
                Method::POST,
                "/api/products/7/image",
                "",
                Some(Group::Upload),
            ),
            (
                Method::POST,
                "/api/brands/acme/logo",
                "",
                Some(Group::Upload),
            ),
            (
                Method::GET,
                "/api/products",
                "search=lamp",
                Some(Group::Search),
            ),
            (Method::GET, "/api/products", "page=2&search=", None),
            (Method::GET, "/api/products", "category=3", None),
            (Method::GET, "/api/products/7", "search=x", None),
            (Method::POST, "/api/auth/refresh", "", None),
            (Method::GET, "/api/checkout", "", None),
        ];
        for (method, path, query, expected) in cases {
            assert_eq!(
                Group::of(&method, path, query),
                expected,
                "{method} {path}?{query}"
            );
        }
    }

    #[test]
    fn each_caller_gets_its_budget_and_a_wait_after_it() {
        let limiter = RateLimiter::new(RateLimits {
            checkout: Some(Rate::per(2, 60)),
            ..RateLimits::unlimited()
        });
        assert!(limiter.admit(Group::Checkout, "10.0.0.1", Some(1)).is_ok());
        assert!(limiter.admit(Group::Checkout, "10.0.0.1", Some(1)).is_ok());
        let wait = limiter
            .admit(Group::Checkout, "10.0.0.1", Some(1))
            .unwrap_err();
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(58));
        // The same user from elsewhere is still over its own budget.
        assert!(limiter.admit(Group::Checkout, "10.0.0.2", Some(1)).is_err());
        // Another user behind the first address is over the address budget.
        assert!(limiter.admit(Group::Checkout, "10.0.0.1", Some(2)).is_err());
        assert!(limiter.admit(Group::Checkout, "10.0.0.3", Some(2)).is_ok());
        // Unlimited groups never refuse.
        for _ in 0..100 {
            assert!(limiter.admit(Group::Search, "10.0.0.1", None).is_ok());
        }
    }
}
