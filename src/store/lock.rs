//! One process per data directory. Two servers writing the same sled files
//! would corrupt them, so the second one must stop at once with a message
//! naming the directory, instead of waiting on sled's own lock.

use super::StoreError;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

pub struct DirLock {
    // The OS releases the lock when this handle closes, including on kill -9.
    _file: File,
}

impl DirLock {
    pub fn acquire(data_dir: &Path) -> Result<Self, StoreError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(data_dir.join("storefront.lock"))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(StoreError::Locked(data_dir.to_path_buf())),
            Err(TryLockError::Error(e)) => Err(StoreError::Io(e)),
        }
    }
}
