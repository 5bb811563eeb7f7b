//! The stock ledger: one entry per stored change of a product's stock,
//! append-only. Replaying a product's entries from the first gives its
//! current level, so `sum(delta_on_hand) == on_hand` and
//! `sum(delta_received) == received` hold at every commit.

use super::ids::{OrderId, UserId};
use serde::{Deserialize, Serialize};

/// Why stock changed. New causes are only ever appended at the end, so
/// stored entries keep decoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StockCause {
    /// The product's initial stock.
    Created,
    /// Units sold by a checkout.
    Checkout(OrderId),
    /// Units returned when an order was cancelled (by its owner, staff, an
    /// expired payment window or a refund).
    OrderCancelled(OrderId),
    /// Goods received.
    Restock,
    /// A staff correction (damage, loss, found units).
    Adjustment,
    /// Units on hand set to a counted figure.
    Count,
}

impl StockCause {
    pub fn kind(&self) -> &'static str {
        match self {
            StockCause::Created => "created",
            StockCause::Checkout(_) => "checkout",
            StockCause::OrderCancelled(_) => "order_cancelled",
            StockCause::Restock => "restock",
            StockCause::Adjustment => "adjustment",
            StockCause::Count => "count",
        }
    }

    pub fn order(&self) -> Option<OrderId> {
        match self {
            StockCause::Checkout(id) | StockCause::OrderCancelled(id) => Some(*id),
            _ => None,
        }
    }
}

/// Who and why, for a change made by a person rather than by an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockChange {
    pub cause: StockCause,
    /// The staff member who made the change, if a person did.
    pub by: Option<UserId>,
    /// Free text given by staff ("3 broken in transit").
    pub reason: Option<String>,
}

impl StockChange {
    pub fn of(cause: StockCause) -> Self {
        Self {
            cause,
            by: None,
            reason: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The stock sequence number this change produced (0 for creation).
    pub seq: u64,
    pub at: i64,
    pub delta_on_hand: i64,
    pub delta_received: i64,
    /// The level after the change.
    pub on_hand: i64,
    pub received: i64,
    pub change: StockChange,
}

/// Longest reason text staff may give.
pub const REASON_MAX: usize = 500;
