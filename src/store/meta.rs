//! Small named flags and values in the `meta` tree.

use super::{Store, StoreError};

impl Store {
    pub fn meta_flag(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.trees.meta.contains_key(name)?)
    }

    pub fn set_meta_flag(&self, name: &str) -> Result<(), StoreError> {
        self.trees.meta.insert(name, &[1u8])?;
        Ok(())
    }
}
