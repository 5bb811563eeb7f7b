//! Orders and their state machine. An order freezes what was bought:
//! product name and price_at_purchase are copied into each item, so later
//! catalog edits never change an existing order or its total (invariant 4).
//!
//! Status: pending -> paid -> shipped -> delivered; pending|paid -> cancelled.
//! payment_status: unpaid -> paid | failed | refunded.

use super::ids::{OrderId, ProductId, UserId};
use super::money::Currency;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderStatus {
    Pending,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Pending,
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the state machine allows `self -> next` at all.
    pub fn can_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Pending, Paid)
                | (Paid, Shipped)
                | (Shipped, Delivered)
                | (Pending, Cancelled)
                | (Paid, Cancelled)
        )
    }

    /// Orders whose items count as sold (their stock is not on hand).
    pub fn holds_stock(self) -> bool {
        self != OrderStatus::Cancelled
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentStatus {
    Unpaid,
    Paid,
    Failed,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Unpaid => "unpaid",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Refunded => "refunded",
        }
    }
}

/// Where the order goes; copied from the request or the profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingAddress {
    pub name: String,
    pub address: String,
    pub city: String,
    pub postal_code: String,
    pub country: String,
    pub phone: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    pub product_id: ProductId,
    pub product_name: String,
    pub quantity: i64,
    /// Minor units, frozen at checkout.
    pub price_at_purchase: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub user_id: UserId,
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    pub items: Vec<OrderItem>,
    /// Minor units: sum of quantity * price_at_purchase.
    pub total: i64,
    pub currency: Currency,
    pub shipping_address: ShippingAddress,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Order {
    /// Units of each product this order took from stock.
    pub fn units(&self) -> impl Iterator<Item = (ProductId, i64)> + '_ {
        self.items.iter().map(|i| (i.product_id, i.quantity))
    }
}

/// Who asks for a status change: owners may only cancel a pending order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    Owner,
    Staff,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("an order that is {from} cannot become {to}")]
    Illegal {
        from: &'static str,
        to: &'static str,
    },
    #[error("only a pending order can be cancelled by its owner; contact the shop")]
    OwnerMayOnlyCancelPending,
    #[error("an order becomes paid only through a verified payment")]
    PaidOnlyByPayment,
}

/// Checks a requested status change.
pub fn check_transition(
    from: OrderStatus,
    to: OrderStatus,
    requester: Requester,
) -> Result<(), TransitionError> {
    if to == OrderStatus::Paid {
        return Err(TransitionError::PaidOnlyByPayment);
    }
    if requester == Requester::Owner
        && !(from == OrderStatus::Pending && to == OrderStatus::Cancelled)
    {
        return Err(TransitionError::OwnerMayOnlyCancelPending);
    }
    if !from.can_become(to) {
        return Err(TransitionError::Illegal {
            from: from.as_str(),
            to: to.as_str(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    #[test]
    fn the_state_machine_allows_only_the_documented_moves() {
        let allowed = [
            (Pending, Paid),
            (Paid, Shipped),
            (Shipped, Delivered),
            (Pending, Cancelled),
            (Paid, Cancelled),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn owners_only_cancel_pending_and_nobody_sets_paid_by_hand() {
        assert!(check_transition(Pending, Cancelled, Requester::Owner).is_ok());
        assert!(check_transition(Paid, Cancelled, Requester::Owner).is_err());
        assert!(check_transition(Paid, Cancelled, Requester::Staff).is_ok());
        assert!(check_transition(Pending, Paid, Requester::Staff).is_err());
        assert!(check_transition(Cancelled, Cancelled, Requester::Staff).is_err());
        assert!(check_transition(Delivered, Shipped, Requester::Staff).is_err());
    }
}
