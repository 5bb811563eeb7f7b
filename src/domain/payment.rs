//! A payment attempt for an order and the rules for its status.
//!
//! Invariant kept here (DESIGN.md 7): a status only moves forward. A verified
//! success is never undone by a late or replayed failure, a refund needs a
//! success first, and applying the same outcome twice changes nothing, so
//! webhooks may arrive more than once and in any order.

use super::{OrderId, PaymentId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Created at the provider; the shopper has not acted yet.
    Created,
    /// The shopper acted; the provider has not settled it (e.g. PayPal capture pending).
    Pending,
    Succeeded,
    Failed,
    Refunded,
}

/// What applying an outcome to a status does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Move to this status.
    To(PaymentStatus),
    /// Already there (a replay or a duplicate): nothing to write.
    Unchanged,
    /// Not allowed from the current status (e.g. failed after succeeded);
    /// ignored, not an error, because providers deliver out of order.
    Ignored,
}

impl PaymentStatus {
    /// The transition from `self` when the provider reports `next`.
    pub fn transition(self, next: PaymentStatus) -> Transition {
        use PaymentStatus::*;
        if self == next {
            return Transition::Unchanged;
        }
        match (self, next) {
            (Created, Pending | Succeeded | Failed) => Transition::To(next),
            (Pending, Succeeded | Failed) => Transition::To(next),
            // A Stripe PaymentIntent may fail and then succeed on a retry by the shopper.
            (Failed, Succeeded | Pending) => Transition::To(next),
            (Succeeded, Refunded) => Transition::To(next),
            _ => Transition::Ignored,
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, PaymentStatus::Succeeded | PaymentStatus::Refunded)
    }
}

/// One attempt to pay an order. No card data is ever held: only the
/// provider's ids needed to verify the outcome and to refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: PaymentId,
    pub order_id: OrderId,
    pub amount_minor: i64,
    /// ISO 4217 upper case, as in `Currency::code`.
    pub currency: String,
    /// `stripe`, `paypal`, `razorpay` or `test`.
    pub provider: String,
    /// The provider's id of this attempt: Stripe PaymentIntent, PayPal order,
    /// Razorpay order (the one the payment signature is checked against),
    /// or the test provider's transaction.
    pub transaction_id: String,
    /// The provider's id a refund is made against when it differs from
    /// `transaction_id`: PayPal capture id, Razorpay payment id.
    pub settlement_id: Option<String>,
    pub status: PaymentStatus,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Payment {
    /// The id to pass to `Provider::refund`.
    pub fn refund_reference(&self) -> &str {
        self.settlement_id
            .as_deref()
            .unwrap_or(&self.transaction_id)
    }
}

#[cfg(test)]
mod tests {
    use super::PaymentStatus::*;
    use super::*;

    #[test]
    fn statuses_only_move_forward() {
        let cases = [
            (Created, Succeeded, Transition::To(Succeeded), "pay"),
            (Created, Failed, Transition::To(Failed), "decline"),
            (
                Pending,
                Succeeded,
                Transition::To(Succeeded),
                "capture settles",
            ),
            (
                Failed,
                Succeeded,
                Transition::To(Succeeded),
                "retry after decline",
            ),
            (
                Succeeded,
                Succeeded,
                Transition::Unchanged,
                "replayed success",
            ),
            (
                Succeeded,
                Failed,
                Transition::Ignored,
                "late failure never un-pays",
            ),
            (Succeeded, Pending, Transition::Ignored, "late pending"),
            (Succeeded, Refunded, Transition::To(Refunded), "refund"),
            (
                Created,
                Refunded,
                Transition::Ignored,
                "refund before success",
            ),
            (
                Refunded,
                Succeeded,
                Transition::Ignored,
                "success after refund",
            ),
            (Refunded, Refunded, Transition::Unchanged, "replayed refund"),
        ];
        for (from, to, expected, why) in cases {
            assert_eq!(from.transition(to), expected, "{why}");
        }
    }
}
