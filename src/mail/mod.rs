//! Order-confirmation mail: rendering, the durable outbox and the background
//! sender.
//!
//! Checkout writes the rendered message into the `outbox_by_id` tree in the
//! same sled transaction as the order (`enqueue_in_tx`), waits for the group
//! commit and wakes the sender (`Mailer::wake`). The sender delivers due
//! entries over SMTP (`STOREFRONT_SMTP_URL`) or, without SMTP, as .eml files
//! under `<data_dir>/mail/sent/`, and retries failures with exponential
//! backoff.
//!
//! Invariant: a message is deleted only after delivery succeeded; a crash may
//! send twice, never zero times. A re-sent message keeps its Message-ID (and
//! its file name), so receivers can recognise the duplicate.

mod deliver;
mod outbox;
mod render;
mod sender;

pub use outbox::{enqueue_in_tx, OutboxEntry, PreparedMail};
pub use render::{render_order_confirmation, ConfirmationLine, OrderConfirmation};
pub use sender::{MailSender, Mailer};

use crate::store::StoreError;
use serde::{Deserialize, Serialize};

/// A plain-text message waiting in (or leaving) the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailMessage {
    /// One address, `user@example.com` or `Name <user@example.com>`.
    pub to: String,
    pub subject: String,
    pub text_body: String,
}

/// Errors of the mail layer. Configuration errors stop the server at start;
/// delivery errors are recorded on the outbox entry and retried.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("mail configuration: {0}")]
    Config(String),
    #[error("invalid address {address:?}: {reason}")]
    Address { address: String, reason: String },
    #[error("building the message failed: {0}")]
    Build(String),
    #[error("SMTP delivery to {host} failed: {reason}")]
    Smtp { host: String, reason: String },
    #[error("writing the .eml file failed: {0}")]
    File(#[from] std::io::Error),
}

/// Unix time in milliseconds; retries are scheduled with sub-second
/// precision so short test durations behave like long production ones.
pub(crate) fn now_ms() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}
