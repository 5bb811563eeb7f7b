//! The background sender: one task that delivers due outbox entries, in
//! batches, and sleeps until the next is due, the poll interval passes, someone
//! calls `Mailer::wake`, or the server stops.
//!
//! Before it sends anything it waits for a group-commit flush that started
//! after it read the outbox, so it never mails about an order that a crash
//! could still undo. An entry is removed only after its delivery succeeded; a
//! failure bumps `attempts`, keeps the error and schedules the next try with
//! exponential backoff, and the entry is never dropped for failing.
//!
//! Files written without SMTP are made durable in groups: their entries
//! wait in `unsynced` (and are skipped by later passes) until one sync
//! covers them, which happens when no wake is pending or `SYNC_EVERY` has
//! passed, so a checkout storm pays one sync per interval, not one per mail.

use super::deliver::Deliverer;
use super::outbox::{backoff, retry_at, truncate_error, OutboxEntry};
use super::{now_ms, MailError, MailMessage};
use crate::config::MailSettings;
use crate::store::Store;
use actix_web::rt::task::JoinHandle;
use futures_util::FutureExt;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// A cheap, cloneable handle for code that queues mail.
#[derive(Clone)]
pub struct Mailer {
    store: Store,
    wake: Arc<Notify>,
}

impl Mailer {
    /// Asks the sender for a delivery pass now instead of at the next poll.
    /// Call it after the `durable()` that covers an enqueued message.
    pub fn wake(&self) {
        // notify_one keeps a permit when the sender is busy, so a wake during
        // a pass still causes another pass.
        self.wake.notify_one();
    }

    /// Queues a message durably, wakes the sender and returns the mail id.
    pub async fn enqueue(&self, message: &MailMessage) -> Result<u64, MailError> {
        let id = self.store.enqueue_mail(message)?;
        self.store.durable().await?;
        self.wake();
        Ok(id)
    }
}

/// Messages handed to the transport at once; bounds the memory of a pass
/// and how much a failed batch has to retry.
const MAX_BATCH: usize = 256;

/// Most entries one pass reads, so a backlog costs a slice per pass.
const PASS_LIMIT: usize = 4 * MAX_BATCH;

/// Passes start at most this often while wakes keep coming: each pass
/// reads the outbox and waits for a flush, whatever it carries.
const MIN_PASS_GAP: Duration = Duration::from_millis(25);

/// The longest a written .eml file waits for the sync that lets its outbox
/// entry go, while new mail keeps arriving.
const SYNC_EVERY: Duration = Duration::from_millis(200);

/// The running sender, owned by the application; `stop` ends it.
pub struct MailSender {
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MailSender {
    /// Checks the mail settings and spawns the sender on the current actix
    /// system. Must be called from inside that system (as `Application::build` is).
    pub fn start(
        store: Store,
        settings: &MailSettings,
        data_dir: &Path,
    ) -> Result<(Mailer, MailSender), MailError> {
        let deliverer = Deliverer::from_settings(settings, data_dir)?;
        let wake = Arc::new(Notify::new());
        let (shutdown, stopped) = watch::channel(false);
        let worker = Worker {
            store: store.clone(),
            deliverer,
            wake: wake.clone(),
            stopped,
            unsynced: HashMap::new(),
            unsynced_since: None,
            retry_base: settings.retry_base,
            retry_max: settings.retry_max.max(settings.retry_base),
            poll_interval: settings.poll_interval,
        };
        let task = actix_web::rt::spawn(worker.run());
        Ok((Mailer { store, wake }, MailSender { shutdown, task }))
    }

    /// Stops the sender and waits for it. A delivery in flight is abandoned;
    /// its entry stays queued and is sent again after the next start.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the mail sender ended abnormally");
        }
    }
}

struct Worker {
    store: Store,
    deliverer: Deliverer,
    wake: Arc<Notify>,
    stopped: watch::Receiver<bool>,
    /// Delivered as files, not yet synced: id -> attempts so far.
    unsynced: HashMap<u64, u32>,
    unsynced_since: Option<Instant>,
    retry_base: Duration,
    retry_max: Duration,
    poll_interval: Duration,
}

/// How a pass ended.
enum Pass {
    /// Unix ms of the earliest entry still waiting, if any.
    Done(Option<i64>),
    Stopping,
}

impl Worker {
    async fn run(mut self) {
        tracing::debug!("mail sender started");
        loop {
            let started = Instant::now();
            let next_due = match self.pass().await {
                Ok(Pass::Done(next_due)) => next_due,
                Ok(Pass::Stopping) => break,
                Err(e) => {
                    // The store is failing; try again at the next poll.
                    tracing::error!(error = %e, "mail outbox pass failed");
                    None
                }
            };
            if !self.unsynced.is_empty() {
                // A pending wake means more mail is due at once: keep
                // writing, and sync when the storm pauses or the interval
                // is up.
                let woken = self.wake.notified().now_or_never().is_some();
                let overdue = self
                    .unsynced_since
                    .is_some_and(|since| since.elapsed() >= SYNC_EVERY);
                if !woken || overdue {
                    self.sync_delivered().await;
                }
                if woken {
                    if self.gather(started).await {
                        break;
                    }
                    continue;
                }
            }
            let mut sleep_for = self.poll_interval;
            if let Some(due) = next_due {
                let until_due = u64::try_from(due.saturating_sub(now_ms())).unwrap_or(0);
                sleep_for = sleep_for.min(Duration::from_millis(until_due));
            }
            tokio::select! {
                _ = stop_requested(&mut self.stopped) => break,
                _ = self.wake.notified() => {
                    if self.gather(started).await {
                        break;
                    }
                }
                _ = actix_web::rt::time::sleep(sleep_for) => {}
            }
        }
        // Whatever is written gets its sync now rather than a second
        // delivery after the next start.
        self.sync_delivered().await;
        tracing::debug!("mail sender stopped");
    }

    /// Waits out what is left of `MIN_PASS_GAP` since the last pass
    /// `started`, so a stream of wakes (a checkout storm) is served by
    /// passes that each carry a batch, not by a pass per message. True when
    /// a stop came meanwhile.
    async fn gather(&mut self, started: Instant) -> bool {
        let rest = MIN_PASS_GAP.saturating_sub(started.elapsed());
        if rest.is_zero() {
            return false;
        }
        tokio::select! {
            _ = stop_requested(&mut self.stopped) => true,
            _ = actix_web::rt::time::sleep(rest) => false,
        }
    }

    /// Syncs the files delivered since the last sync and lets their
    /// entries go. On failure they stay queued and are written again.
    async fn sync_delivered(&mut self) {
        if self.unsynced.is_empty() {
            return;
        }
        let delivered = std::mem::take(&mut self.unsynced);
        self.unsynced_since = None;
        let ids: Vec<u64> = delivered.keys().copied().collect();
        let synced = match self.deliverer.sync(ids.clone()).await {
            Ok(()) => self
                .store
                .remove_delivered_mail(&ids)
                .map_err(MailError::from),
            Err(e) => Err(e),
        };
        match synced {
            Ok(()) => {
                for (id, attempts) in delivered {
                    tracing::info!(mail_id = id, attempts = attempts + 1, "mail delivered");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, mails = ids.len(), "syncing delivered mail failed; it will be written again")
            }
        }
    }

    /// Delivers every entry that is due now.
    async fn pass(&mut self) -> Result<Pass, MailError> {
        let now = now_ms();
        let read = self
            .store
            .due_mail(now, PASS_LIMIT, |id| self.unsynced.contains_key(&id))?;
        let due = read.entries;
        // More is waiting beyond the slice read: the next pass is due now.
        let mut next_due = if read.more { Some(now) } else { read.next_due };
        if due.is_empty() {
            return Ok(Pass::Done(next_due));
        }
        // This flush starts after the read above, so every entry read (and
        // the order written in its transaction) is on disk before any mail
        // about it leaves.
        self.store.durable().await?;
        for batch in due.chunks(MAX_BATCH) {
            let outcomes = tokio::select! {
                _ = stop_requested(&mut self.stopped) => return Ok(Pass::Stopping),
                outcomes = self.deliverer.deliver_all(batch) => outcomes,
            };
            let mut delivered = Vec::with_capacity(batch.len());
            for ((id, entry), outcome) in batch.iter().zip(outcomes) {
                match outcome {
                    Ok(()) if self.deliverer.needs_sync() => {
                        self.unsynced.insert(*id, entry.attempts);
                        self.unsynced_since.get_or_insert_with(Instant::now);
                    }
                    Ok(()) => {
                        delivered.push(*id);
                        tracing::info!(
                            mail_id = id,
                            attempts = entry.attempts + 1,
                            "mail delivered"
                        );
                    }
                    Err(error) => {
                        let retry = self.record_failure(*id, entry.clone(), &error)?;
                        next_due = Some(next_due.map_or(retry, |d| d.min(retry)));
                    }
                }
            }
            if !delivered.is_empty() {
                self.store.remove_delivered_mail(&delivered)?;
            }
        }
        Ok(Pass::Done(next_due))
    }

    /// Keeps the entry with one more attempt, the error and the next try time.
    fn record_failure(
        &self,
        id: u64,
        mut entry: OutboxEntry,
        error: &MailError,
    ) -> Result<i64, MailError> {
        entry.attempts = entry.attempts.saturating_add(1);
        let delay = backoff(entry.attempts, self.retry_base, self.retry_max);
        entry.next_attempt_at_ms = retry_at(delay);
        entry.last_error = Some(truncate_error(&error.to_string()));
        self.store.record_mail_failure(id, &entry)?;
        tracing::warn!(
            mail_id = id,
            attempts = entry.attempts,
            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            error = %error,
            "mail delivery failed; will retry"
        );
        Ok(entry.next_attempt_at_ms)
    }
}

/// Resolves once a stop was requested or the application dropped its sender.
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}
