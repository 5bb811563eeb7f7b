//! Errors of the storage layer. The API layer maps them to HTTP: a full disk
//! or a failed flush is a 503 (the write was not acknowledged), a broken
//! record is a 500 that is logged with its cause.

use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("flushing to disk failed: {0}")]
    Flush(Arc<std::io::Error>),
    #[error("a stored record could not be read: {0}")]
    Corrupt(String),
    #[error("the data directory {} is already in use by another storefront process", .0.display())]
    Locked(PathBuf),
    /// A unique value (named by the field) is already taken.
    #[error("{0} is already taken")]
    Duplicate(&'static str),
    #[error("record not found")]
    NotFound,
    /// A referenced record (named by the field) does not exist.
    #[error("the referenced {0} does not exist")]
    Missing(&'static str),
    /// The record (named) is still referenced and cannot be deleted.
    #[error("this {0} is still in use")]
    InUse(&'static str),
    /// A stock change would leave fewer than zero units.
    #[error("{0}")]
    OutOfStock(String),
    /// A compare-and-swap lost a race; the caller may retry or report a conflict.
    #[error("the record changed concurrently")]
    Contended,
    #[error("the store is shutting down")]
    Closed,
}

impl StoreError {
    /// True when the disk is full or the device refuses writes: the shop keeps
    /// serving reads and answers writes with 503 until space returns.
    pub fn is_out_of_space(&self) -> bool {
        let io = match self {
            StoreError::Io(e) => Some(e),
            StoreError::Flush(e) => Some(e.as_ref()),
            StoreError::Sled(sled::Error::Io(e)) => Some(e),
            _ => None,
        };
        io.is_some_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) || e.raw_os_error() == Some(28)
        })
    }

    /// True for failures of the disk or the database rather than of the request.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Sled(_) | StoreError::Io(_) | StoreError::Flush(_) | StoreError::Closed
        )
    }
}
