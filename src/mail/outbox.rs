//! The durable outbox: `outbox_by_id`, mail id (u64 big-endian, from
//! `Store::next_id`) -> `OutboxEntry`.
//!
//! An entry is written together with whatever caused it (checkout writes it in
//! the order's transaction), and removed only by the sender after a delivery
//! succeeded; failures only update `attempts`, `last_error` and
//! `next_attempt_at_ms`. So a committed message is never lost: at worst a
//! crash between delivery and removal sends it twice.

use super::{now_ms, MailMessage};
use crate::domain::time::now_unix;
use crate::store::{decode, encode, Store, StoreError};
use serde::{Deserialize, Serialize};
use sled::transaction::{TransactionalTree, UnabortableTransactionError};

/// One message awaiting delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub message: MailMessage,
    /// Failed deliveries so far.
    pub attempts: u32,
    /// Unix milliseconds before which the sender leaves the entry alone.
    pub next_attempt_at_ms: i64,
    /// Unix seconds when it was queued (also the message's Date header, so a
    /// re-sent copy is byte-for-byte the same message).
    pub created_at: i64,
    /// Why the last attempt failed (never holds credentials).
    pub last_error: Option<String>,
}

/// What `due_mail` found.
#[derive(Default)]
pub(crate) struct DueMail {
    pub entries: Vec<(u64, OutboxEntry)>,
    /// Unix ms of the earliest entry seen that is not due yet.
    pub next_due: Option<i64>,
    /// The limit was reached with entries left unread.
    pub more: bool,
}

fn outbox_id(key: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt("outbox key is not 8 bytes".into()))
}

/// The key of a mail id in `outbox_by_id`.
pub fn outbox_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// An outbox entry encoded ahead of a transaction, so the transaction closure
/// (which sled may run several times) only inserts bytes and cannot fail on
/// encoding.
#[derive(Debug, Clone)]
pub struct PreparedMail {
    id: u64,
    bytes: Vec<u8>,
}

impl PreparedMail {
    /// A new entry, due at once. `id` comes from `Store::next_id`; `now` is
    /// Unix seconds.
    pub fn new(id: u64, message: &MailMessage, now: i64) -> Result<Self, StoreError> {
        let entry = OutboxEntry {
            message: message.clone(),
            attempts: 0,
            next_attempt_at_ms: now.saturating_mul(1000),
            created_at: now,
            last_error: None,
        };
        Ok(Self {
            id,
            bytes: encode(&entry)?,
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }
}

/// Queues a prepared message inside the caller's sled transaction on
/// `outbox_by_id` (for example checkout's order + stock + outbox transaction).
/// The message is safe once the caller's `store.durable()` returns; call
/// `Mailer::wake` then to send it without waiting for the next poll.
pub fn enqueue_in_tx(
    outbox: &TransactionalTree,
    mail: &PreparedMail,
) -> Result<(), UnabortableTransactionError> {
    outbox.insert(&outbox_key(mail.id), mail.bytes.as_slice())?;
    Ok(())
}

impl Store {
    /// Queues a message on its own and returns its id. Like every write it is
    /// durable only after `durable()`; `Mailer::enqueue` does both and wakes
    /// the sender.
    pub fn enqueue_mail(&self, message: &MailMessage) -> Result<u64, StoreError> {
        let id = self.next_id()?;
        let mail = PreparedMail::new(id, message, now_unix())?;
        self.trees.outbox_by_id.insert(outbox_key(id), mail.bytes)?;
        Ok(id)
    }

    /// One queued message, if it has not been delivered yet.
    pub fn outbox_entry(&self, id: u64) -> Result<Option<OutboxEntry>, StoreError> {
        self.trees
            .outbox_by_id
            .get(outbox_key(id))?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Every queued message, oldest id first.
    pub fn outbox(&self) -> Result<Vec<(u64, OutboxEntry)>, StoreError> {
        let mut entries = Vec::new();
        for item in self.trees.outbox_by_id.iter() {
            let (key, value) = item?;
            entries.push((outbox_id(&key)?, decode(&value)?));
        }
        Ok(entries)
    }

    /// Up to `limit` messages due at `now_ms`, oldest id first, skipping
    /// those `skip` names (left undecoded). A backlog (a checkout storm the
    /// sender fell behind) is read a slice at a time, not whole per pass.
    pub(crate) fn due_mail(
        &self,
        now_ms: i64,
        limit: usize,
        skip: impl Fn(u64) -> bool,
    ) -> Result<DueMail, StoreError> {
        let mut due = DueMail::default();
        for item in self.trees.outbox_by_id.iter() {
            let (key, value) = item?;
            let id = outbox_id(&key)?;
            if skip(id) {
                continue;
            }
            if due.entries.len() == limit {
                due.more = true;
                break;
            }
            let entry: OutboxEntry = decode(&value)?;
            if is_due(&entry, now_ms) {
                due.entries.push((id, entry));
            } else {
                let at = entry.next_attempt_at_ms;
                due.next_due = Some(due.next_due.map_or(at, |d: i64| d.min(at)));
            }
        }
        Ok(due)
    }

    /// Records a failed attempt and when to try again. The entry stays.
    pub(crate) fn record_mail_failure(
        &self,
        id: u64,
        entry: &OutboxEntry,
    ) -> Result<(), StoreError> {
        self.trees
            .outbox_by_id
            .insert(outbox_key(id), encode(entry)?)?;
        Ok(())
    }

    /// Removes delivered messages. Not flushed on purpose: if a crash undoes
    /// the removal, the messages are sent again, which the invariant allows.
    pub(crate) fn remove_delivered_mail(&self, ids: &[u64]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for id in ids {
            batch.remove(&outbox_key(*id));
        }
        self.trees.outbox_by_id.apply_batch(batch)?;
        Ok(())
    }
}

/// The delay before attempt `attempts + 1`: `base * 2^(attempts-1)`, capped
/// at `max`.
pub(crate) fn backoff(
    attempts: u32,
    base: std::time::Duration,
    max: std::time::Duration,
) -> std::time::Duration {
    let exponent = attempts.saturating_sub(1).min(31);
    base.checked_mul(1u32 << exponent).unwrap_or(max).min(max)
}

/// Keeps stored errors short; SMTP servers can answer with long texts.
pub(crate) fn truncate_error(error: &str) -> String {
    const MAX_CHARS: usize = 500;
    error.chars().take(MAX_CHARS).collect()
}

/// Whether the sender may try the entry at `now_ms_value` (Unix ms).
pub(crate) fn is_due(entry: &OutboxEntry, now_ms_value: i64) -> bool {
    entry.next_attempt_at_ms <= now_ms_value
}

/// Unix milliseconds `after` from now.
pub(crate) fn retry_at(after: std::time::Duration) -> i64 {
    let delay = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
    now_ms().saturating_add(delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_cap() {
        let base = Duration::from_secs(5);
        let max = Duration::from_secs(3600);
        let delays: Vec<u64> = (1..=12).map(|a| backoff(a, base, max).as_secs()).collect();
        assert_eq!(
            delays,
            [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
        );
        assert_eq!(backoff(u32::MAX, base, max), max);
    }

    #[test]
    fn prepared_mail_is_due_at_once_and_round_trips() {
        let message = MailMessage {
            to: "a@example.com".into(),
            subject: "s".into(),
            text_body: "b".into(),
        };
        let mail = PreparedMail::new(7, &message, 1_700_000_000).unwrap();
        let entry: OutboxEntry = decode(&mail.bytes).unwrap();
        assert_eq!(entry.message, message);
        assert_eq!(entry.attempts, 0);
        assert!(is_due(&entry, 1_700_000_000_000));
        assert!(!is_due(&entry, 1_699_999_999_999));
    }
}
