//! Appending to the audit log. Every staff write calls `audit` after its
//! own commit; the reply waits for the flush that covers the entry, so a
//! staff write is never acknowledged without its audit entry on disk.

use super::{Shop, ShopError};
use crate::auth::Identity;
use crate::domain::audit::{AuditEntry, Target};
use crate::domain::time::now_unix;
use serde_json::Value;

impl Shop {
    pub async fn audit(
        &self,
        actor: &Identity,
        action: &str,
        target: Target,
        detail: Value,
    ) -> Result<(), ShopError> {
        let entry = self.store.append_audit(AuditEntry {
            id: 0,
            at: now_unix(),
            actor: actor.user.id,
            actor_username: actor.user.username.clone(),
            action: action.to_owned(),
            target_type: target.kind().to_owned(),
            target_id: Some(target.id()),
            detail: detail.to_string(),
        })?;
        tracing::info!(audit_id = entry.id, actor = %actor.user.id, action, target = target.kind(), target_id = target.id(), "staff write");
        self.store.durable().await?;
        Ok(())
    }
}
