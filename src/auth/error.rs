//! Errors of the authentication layer.

use crate::domain::FieldErrors;
use crate::store::StoreError;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// Wrong password or unknown account: one message for both.
    #[error("invalid username/email or password")]
    BadCredentials,
    #[error("this account is disabled")]
    Inactive,
    #[error("too many failed login attempts")]
    Throttled { retry_after: Duration },
    #[error("{0}")]
    BadToken(&'static str),
    #[error("authentication required")]
    Missing,
    #[error("{0} is already taken")]
    Taken(&'static str),
    #[error("password hashing failed")]
    Hashing,
    /// Every hashing slot is taken and the queue for them is full.
    #[error("too many password checks at once")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}
