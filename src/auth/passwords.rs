//! Password hashing with argon2id at OWASP's parameters (m = 19 MiB, t = 2,
//! p = 1). A hash costs ~16 ms of CPU and 19 MiB, so it runs on the blocking
//! pool, never on an actix worker, and a semaphore caps how many run at once.
//! Requests waiting for a slot are bounded too: past the queue limit the
//! answer is "busy" at once, so a flood of logins cannot pile up memory and
//! connections behind the hashes.
//! Unknown accounts are checked against a dummy hash so they take as long as
//! a wrong password.

use super::AuthError;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordVerifier, Version};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;

fn argon() -> Argon2<'static> {
    // Constant parameters that are known valid; failure here is a programming error.
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes on the calling thread; for start-up and CLI use.
pub fn hash_blocking(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    argon()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| AuthError::Hashing)
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            argon()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

pub struct Passwords {
    permits: Arc<Semaphore>,
    /// Requests holding or waiting for a permit.
    admitted: AtomicUsize,
    /// Most requests that may hold or wait for a permit.
    admit_limit: usize,
    dummy_hash: Arc<str>,
}

/// A place among the requests allowed to hash; gives it back when dropped.
struct Admission<'a>(&'a AtomicUsize);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Passwords {
    /// At most `concurrency` hashes run at once and at most `queue` more
    /// requests wait for one.
    pub fn new(concurrency: usize, queue: usize) -> Result<Self, AuthError> {
        let concurrency = concurrency.max(1);
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            admitted: AtomicUsize::new(0),
            admit_limit: concurrency + queue,
            dummy_hash: hash_blocking("storefront timing-equaliser")?.into(),
        })
    }

    fn admit(&self) -> Result<Admission<'_>, AuthError> {
        let before = self.admitted.fetch_add(1, Ordering::AcqRel);
        let admission = Admission(&self.admitted);
        if before >= self.admit_limit {
            return Err(AuthError::Busy);
        }
        Ok(admission)
    }

    pub async fn hash(&self, password: String) -> Result<String, AuthError> {
        let _admission = self.admit()?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| AuthError::Hashing)?;
        actix_web::web::block(move || hash_blocking(&password))
            .await
            .map_err(|_| AuthError::Hashing)?
    }

    /// True when `password` matches `hash`; with no hash (unknown account) it
    /// spends the same time on the dummy hash and answers false.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, AuthError> {
        let _admission = self.admit()?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| AuthError::Hashing)?;
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let matched = actix_web::web::block(move || verify_blocking(&password, &hash))
            .await
            .map_err(|_| AuthError::Hashing)?;
        Ok(known && matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let hash = hash_blocking("correct horse battery").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_blocking("correct horse battery", &hash));
        assert!(!verify_blocking("wrong horse battery", &hash));
        assert!(!verify_blocking("anything", "not a hash"));
    }
}
