//! Stock of one product, kept in its own tree (`stock_by_product`) apart from
//! the product record, so stock changes never rewrite the catalog entry.
//!
//! Invariant (DESIGN.md 1): `on_hand >= 0`, and `received == on_hand + units
//! sold in non-cancelled orders`; `received` only grows when goods arrive.

use serde::{Deserialize, Serialize};

/// Units of one product: what is on the shelf and what ever arrived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLevel {
    /// Units that can still be sold.
    pub on_hand: i64,
    /// Total units ever received (initial stock plus restocks).
    pub received: i64,
    /// How many changes this level has seen. Every stored change raises it,
    /// so an InventoryActor can tell whether a change it is told about is
    /// already part of the level it loaded (seq <= loaded) or not.
    pub seq: u64,
}

impl StockLevel {
    /// The level a product starts with: everything received is on hand.
    pub fn initial(units: i64) -> Self {
        Self {
            on_hand: units,
            received: units,
            seq: 0,
        }
    }

    /// The level after a change, or why it is refused.
    pub fn apply(self, delta_on_hand: i64, delta_received: i64) -> Result<Self, String> {
        let on_hand = self
            .on_hand
            .checked_add(delta_on_hand)
            .ok_or("stock change overflows")?;
        let received = self
            .received
            .checked_add(delta_received)
            .ok_or("stock change overflows")?;
        if on_hand < 0 {
            return Err(format!(
                "only {} units on hand, cannot remove {}",
                self.on_hand, -delta_on_hand
            ));
        }
        if received < 0 {
            return Err("received units cannot go below zero".into());
        }
        Ok(Self {
            on_hand,
            received,
            seq: self.seq + 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_never_goes_below_zero() {
        let level = StockLevel::initial(3);
        assert_eq!(
            level.apply(-3, 0).unwrap(),
            StockLevel {
                on_hand: 0,
                received: 3,
                seq: 1
            }
        );
        assert!(level.apply(-4, 0).is_err());
        assert!(level.apply(0, -4).is_err());
        assert_eq!(
            level.apply(5, 5).unwrap(),
            StockLevel {
                seq: 1,
                ..StockLevel::initial(8)
            }
        );
    }
}
