//! The audit log: who did what to which record, and when, for every write
//! made by staff. Entries are only ever appended.

use super::ids::UserId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: u64,
    pub at: i64,
    pub actor: UserId,
    /// The actor's username when they acted (it may change later).
    pub actor_username: String,
    /// `<resource>.<verb>`, e.g. `product.update`, `user.flags`, `stock.adjust`.
    pub action: String,
    /// The kind of record: product, category, brand, order, user, stock, review.
    pub target_type: String,
    pub target_id: Option<u64>,
    /// What changed, as JSON text (stored as text because bincode cannot
    /// read self-describing values back).
    pub detail: String,
}

/// Filters of the audit listing; every given one must match.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<UserId>,
    /// Exact action, or a resource prefix such as `product`.
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<u64>,
    /// Unix seconds, inclusive.
    pub from: Option<i64>,
    /// Unix seconds, exclusive.
    pub to: Option<i64>,
}

impl AuditFilter {
    pub fn matches(&self, e: &AuditEntry) -> bool {
        self.actor.is_none_or(|a| e.actor == a)
            && self.action.as_deref().is_none_or(|a| {
                e.action == a
                    || e.action
                        .strip_prefix(a)
                        .is_some_and(|rest| rest.starts_with('.'))
            })
            && self
                .target_type
                .as_deref()
                .is_none_or(|t| e.target_type == t)
            && self.target_id.is_none_or(|t| e.target_id == Some(t))
            && self.from.is_none_or(|f| e.at >= f)
            && self.to.is_none_or(|t| e.at < t)
    }
}

/// The record a staff write touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Product(u64),
    Category(u64),
    Brand(u64),
    Order(u64),
    User(u64),
    Review(u64),
}

impl Target {
    pub fn kind(self) -> &'static str {
        match self {
            Target::Product(_) => "product",
            Target::Category(_) => "category",
            Target::Brand(_) => "brand",
            Target::Order(_) => "order",
            Target::User(_) => "user",
            Target::Review(_) => "review",
        }
    }

    pub fn id(self) -> u64 {
        match self {
            Target::Product(id)
            | Target::Category(id)
            | Target::Brand(id)
            | Target::Order(id)
            | Target::User(id)
            | Target::Review(id) => id,
        }
    }
}
