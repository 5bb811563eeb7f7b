//! Group commit: one background thread turns many "make my write durable"
//! requests into one sled flush plus one fsync.
//!
//! sled 0.34's own `flush` ends with sync_file_range, which survives a process
//! crash but not a power cut (sled issue 1452), so after it we fsync the log
//! file. Every waiter drained before a flush started is answered by that flush;
//! waiters that arrive during it are answered by the next one, so a caller is
//! never told "durable" by a flush that began before its write.

use super::StoreError;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::oneshot;

type FlushResult = Result<(), Arc<io::Error>>;

/// How much batching the group commit achieved.
#[derive(Default, Debug)]
pub struct CommitStats {
    flushes: AtomicU64,
    commits: AtomicU64,
}

impl CommitStats {
    /// Flushes (each one sled flush + fsync) since start.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// Durability requests answered since start.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
pub struct GroupCommit {
    // Declared first so it drops first: the last handle's sender going away
    // is what ends the flush loop that `_thread` then waits for.
    requests: mpsc::Sender<oneshot::Sender<FlushResult>>,
    stats: Arc<CommitStats>,
    _thread: Arc<JoinOnDrop>,
}

/// A thread joined when its owner drops. The store's own threads (the
/// flush loop, the checkout committer) hold database handles: joining them
/// when the last `Store` goes means the database is closed, and its file
/// lock released, by the time the drop returns, so another process (or a
/// reopen) can take the directory at once.
pub(super) struct JoinOnDrop(Option<std::thread::JoinHandle<()>>);

impl JoinOnDrop {
    pub(super) fn new(thread: std::thread::JoinHandle<()>) -> Self {
        Self(Some(thread))
    }
}

impl Drop for JoinOnDrop {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}

impl GroupCommit {
    pub fn start(db: sled::Db, sled_dir: &Path) -> Result<Self, StoreError> {
        // sled keeps its log in `<dir>/db`; fsyncing it makes the flushed
        // segments and their metadata survive power loss.
        let log = File::open(sled_dir.join("db"))?;
        // The directory entry of a new database must be durable too.
        File::open(sled_dir)?.sync_all()?;
        let (requests, inbox) = mpsc::channel();
        let stats = Arc::new(CommitStats::default());
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("storefront-flush".into())
            .spawn(move || flush_loop(db, log, inbox, thread_stats))?;
        Ok(Self {
            requests,
            stats,
            _thread: Arc::new(JoinOnDrop::new(thread)),
        })
    }

    pub async fn durable(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(tx).map_err(|_| StoreError::Closed)?;
        rx.await
            .map_err(|_| StoreError::Closed)?
            .map_err(StoreError::Flush)
    }

    pub fn durable_blocking(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(tx).map_err(|_| StoreError::Closed)?;
        rx.blocking_recv()
            .map_err(|_| StoreError::Closed)?
            .map_err(StoreError::Flush)
    }

    pub fn stats(&self) -> &CommitStats {
        &self.stats
    }
}

fn flush_loop(
    db: sled::Db,
    log: File,
    inbox: mpsc::Receiver<oneshot::Sender<FlushResult>>,
    stats: Arc<CommitStats>,
) {
    // Ends when every Store handle (and so every sender) is gone.
    while let Ok(first) = inbox.recv() {
        let mut waiters = vec![first];
        waiters.extend(inbox.try_iter());
        let result = flush_and_sync(&db, &log);
        if let Err(e) = &result {
            tracing::error!(error = %e, waiters = waiters.len(), "group commit flush failed");
        }
        stats.flushes.fetch_add(1, Ordering::Relaxed);
        stats
            .commits
            .fetch_add(waiters.len() as u64, Ordering::Relaxed);
        for waiter in waiters {
            // A waiter that gave up (request cancelled) is not an error.
            let _ = waiter.send(result.clone());
        }
    }
}

fn flush_and_sync(db: &sled::Db, log: &File) -> FlushResult {
    db.flush().map_err(|e| {
        Arc::new(match e {
            sled::Error::Io(io) => io,
            other => io::Error::other(other.to_string()),
        })
    })?;
    log.sync_all().map_err(Arc::new)
}
