//! Limits that keep one client from costing the shop more than its share:
//! a token bucket per socket for requests, and a cap on the sockets one user
//! holds open at once. (The 64 KiB frame cap is set on the codec.)

use crate::domain::UserId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Requests per socket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
}

impl TokenBucket {
    pub fn new(rate_per_sec: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate_per_sec.max(1)),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            refilled: Instant::now(),
        }
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// Open authenticated sockets per user. A lock is fine here: it guards a
/// counter for a few instructions per connect and disconnect, not stock or
/// carts, and the count must be exact across worker threads.
#[derive(Clone, Debug)]
pub struct UserSockets {
    max: usize,
    open: Arc<Mutex<HashMap<UserId, usize>>>,
}

/// One counted socket; dropping it frees the place.
#[derive(Debug)]
pub struct SocketPermit {
    user: UserId,
    open: Arc<Mutex<HashMap<UserId, usize>>>,
}

impl UserSockets {
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            open: Arc::default(),
        }
    }

    /// A place for one more socket of `user`, unless they hold the maximum.
    pub fn admit(&self, user: UserId) -> Option<SocketPermit> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(user).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(SocketPermit {
            user,
            open: self.open.clone(),
        })
    }
}

impl Drop for SocketPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, 3);
        for _ in 0..3 {
            assert!(bucket.take(start).is_ok());
        }
        let wait = bucket.take(start).expect_err("burst used up");
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert!(bucket.take(start + Duration::from_millis(100)).is_ok());
        assert!(bucket.take(start + Duration::from_millis(100)).is_err());
        // A long pause saves up no more than the burst.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(bucket.take(later).is_ok());
        }
        assert!(bucket.take(later).is_err());
    }

    #[test]
    fn a_user_holds_at_most_max_sockets_and_closing_one_frees_a_place() {
        let sockets = UserSockets::new(2);
        let (ada, bob) = (UserId(1), UserId(2));
        let first = sockets.admit(ada).expect("first");
        let _second = sockets.admit(ada).expect("second");
        assert!(sockets.admit(ada).is_none(), "third refused");
        assert!(sockets.admit(bob).is_some(), "others unaffected");
        drop(first);
        assert!(sockets.admit(ada).is_some(), "a place again");
    }
}
