//! `audit_by_id`: entry id (u64 BE, from the database id generator, so
//! newer entries sort later) -> AuditEntry. Append-only: nothing here
//! updates or removes an entry.

use super::{decode, encode, Store, StoreError};
use crate::domain::audit::{AuditEntry, AuditFilter};

impl Store {
    /// Appends an entry (its id and `at` are set here). Not yet durable.
    pub fn append_audit(&self, mut entry: AuditEntry) -> Result<AuditEntry, StoreError> {
        entry.id = self.next_id()?;
        self.trees
            .audit_by_id
            .insert(entry.id.to_be_bytes(), encode(&entry)?)?;
        Ok(entry)
    }

    /// A page of matching entries, newest first, and how many match.
    pub fn audit_page(
        &self,
        filter: &AuditFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(usize, Vec<AuditEntry>), StoreError> {
        let mut count = 0;
        let mut page = Vec::new();
        for item in self.trees.audit_by_id.iter().rev() {
            let (_, bytes) = item?;
            let entry: AuditEntry = decode(&bytes)?;
            if !filter.matches(&entry) {
                continue;
            }
            if count >= offset && page.len() < limit {
                page.push(entry);
            }
            count += 1;
        }
        Ok((count, page))
    }
}
