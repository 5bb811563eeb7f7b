//! Authentication: password hashing, JWTs, login throttling and the accounts
//! service that ties them to the store. Handlers call `Accounts`; nothing
//! else mints or checks tokens.

pub mod accounts;
pub mod error;
pub mod login_limiter;
pub mod passwords;
pub mod secret;
pub mod tokens;

pub use accounts::{Accounts, Identity, TokenPair};
pub use error::AuthError;
