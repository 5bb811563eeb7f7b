//! Cart rules: lines, quantities and what a change may do. A cart holds
//! product ids and quantities only; prices are read fresh when it is shown
//! and frozen only when an order is placed.

use super::ids::{CartId, ProductId, UserId};
use serde::{Deserialize, Serialize};

/// Largest quantity of one product in one cart: far above any real basket,
/// low enough that totals can never overflow.
pub const MAX_LINE_QUANTITY: i64 = 999;
/// Most distinct products in one cart.
pub const MAX_LINES: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CartOwner {
    User(UserId),
    /// Reached through a random token; only its SHA-256 is stored.
    Anonymous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub product_id: ProductId,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    pub id: CartId,
    pub owner: CartOwner,
    pub lines: Vec<CartLine>,
    /// Rises with every change, so clients can drop stale snapshots.
    pub version: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Why a cart change was refused; the cart is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CartError {
    #[error("quantity must be at least 1")]
    QuantityTooSmall,
    #[error("at most {MAX_LINE_QUANTITY} of one product fit in a cart")]
    QuantityTooLarge,
    #[error("only {available} left in stock")]
    NotEnoughStock { available: i64 },
    #[error("this product is not in the cart")]
    NotInCart,
    #[error("a cart holds at most {MAX_LINES} different products")]
    TooManyLines,
    #[error("this product is not for sale")]
    ProductUnavailable,
}

/// A change to a cart; `available` is the stock on hand read just before.
#[derive(Debug, Clone)]
pub enum CartChange {
    Add {
        product_id: ProductId,
        quantity: i64,
        available: i64,
    },
    Set {
        product_id: ProductId,
        quantity: i64,
        available: i64,
    },
    Remove {
        product_id: ProductId,
    },
    Clear,
    /// Lines of another cart added to this one, each capped by its stock.
    Merge {
        lines: Vec<(CartLine, i64)>,
    },
}

impl Cart {
    pub fn new(id: CartId, owner: CartOwner, now: i64) -> Self {
        Self {
            id,
            owner,
            lines: Vec::new(),
            version: 0,
            created_at: now,
            updated_at: now,
        }
    }

    pub fn quantity_of(&self, product: ProductId) -> i64 {
        self.lines
            .iter()
            .find(|l| l.product_id == product)
            .map_or(0, |l| l.quantity)
    }

    /// Applies a change, or refuses it leaving the cart as it was.
    pub fn apply(&mut self, change: CartChange, now: i64) -> Result<(), CartError> {
        let mut next = self.lines.clone();
        match change {
            CartChange::Add {
                product_id,
                quantity,
                available,
            } => {
                check_quantity(quantity)?;
                let wanted = self.quantity_of(product_id) + quantity;
                set_line(&mut next, product_id, wanted, available)?;
            }
            CartChange::Set {
                product_id,
                quantity,
                available,
            } => {
                if quantity < 0 {
                    return Err(CartError::QuantityTooSmall);
                }
                if quantity == 0 {
                    next.retain(|l| l.product_id != product_id);
                } else {
                    if self.quantity_of(product_id) == 0 {
                        return Err(CartError::NotInCart);
                    }
                    set_line(&mut next, product_id, quantity, available)?;
                }
            }
            CartChange::Remove { product_id } => {
                if self.quantity_of(product_id) == 0 {
                    return Err(CartError::NotInCart);
                }
                next.retain(|l| l.product_id != product_id);
            }
            CartChange::Clear => next.clear(),
            CartChange::Merge { lines } => {
                for (line, available) in lines {
                    let wanted = (self.quantity_of(line.product_id) + line.quantity)
                        .min(available)
                        .min(MAX_LINE_QUANTITY);
                    if wanted > 0
                        && (next.len() < MAX_LINES || self.quantity_of(line.product_id) > 0)
                    {
                        upsert(&mut next, line.product_id, wanted);
                    }
                }
            }
        }
        self.lines = next;
        self.version += 1;
        self.updated_at = now;
        Ok(())
    }
}

fn check_quantity(quantity: i64) -> Result<(), CartError> {
    if quantity < 1 {
        return Err(CartError::QuantityTooSmall);
    }
    if quantity > MAX_LINE_QUANTITY {
        return Err(CartError::QuantityTooLarge);
    }
    Ok(())
}

fn set_line(
    lines: &mut Vec<CartLine>,
    product_id: ProductId,
    quantity: i64,
    available: i64,
) -> Result<(), CartError> {
    check_quantity(quantity)?;
    if quantity > available {
        return Err(CartError::NotEnoughStock {
            available: available.max(0),
        });
    }
    let is_new = !lines.iter().any(|l| l.product_id == product_id);
    if is_new && lines.len() >= MAX_LINES {
        return Err(CartError::TooManyLines);
    }
    upsert(lines, product_id, quantity);
    Ok(())
}

fn upsert(lines: &mut Vec<CartLine>, product_id: ProductId, quantity: i64) {
    match lines.iter_mut().find(|l| l.product_id == product_id) {
        Some(line) => line.quantity = quantity,
        None => lines.push(CartLine {
            product_id,
            quantity,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cart() -> Cart {
        Cart::new(CartId(1), CartOwner::Anonymous, 0)
    }

    fn add(product: u64, quantity: i64, available: i64) -> CartChange {
        CartChange::Add {
            product_id: ProductId(product),
            quantity,
            available,
        }
    }

    #[test]
    fn refused_changes_leave_the_cart_and_its_version_alone() {
        let mut c = cart();
        c.apply(add(1, 2, 5), 1).unwrap();
        assert_eq!(c.version, 1);
        let cases = [
            (
                add(1, 4, 5),
                CartError::NotEnoughStock { available: 5 },
                "total over stock",
            ),
            (add(1, 0, 5), CartError::QuantityTooSmall, "zero"),
            (add(1, -3, 5), CartError::QuantityTooSmall, "negative"),
            (
                add(2, 1_000_000, 9_999_999),
                CartError::QuantityTooLarge,
                "absurd",
            ),
            (
                CartChange::Remove {
                    product_id: ProductId(9),
                },
                CartError::NotInCart,
                "remove missing",
            ),
        ];
        for (change, error, why) in cases {
            assert_eq!(c.apply(change, 2), Err(error), "{why}");
            assert_eq!(
                c.lines,
                vec![CartLine {
                    product_id: ProductId(1),
                    quantity: 2
                }],
                "{why}"
            );
            assert_eq!(c.version, 1, "{why}");
        }
    }

    #[test]
    fn setting_zero_removes_and_merge_caps_by_stock() {
        let mut c = cart();
        c.apply(add(1, 2, 5), 1).unwrap();
        c.apply(
            CartChange::Set {
                product_id: ProductId(1),
                quantity: 0,
                available: 5,
            },
            2,
        )
        .unwrap();
        assert!(c.lines.is_empty());
        c.apply(add(1, 3, 5), 3).unwrap();
        let merge = CartChange::Merge {
            lines: vec![
                (
                    CartLine {
                        product_id: ProductId(1),
                        quantity: 4,
                    },
                    5,
                ),
                (
                    CartLine {
                        product_id: ProductId(2),
                        quantity: 1,
                    },
                    0,
                ),
            ],
        };
        c.apply(merge, 4).unwrap();
        assert_eq!(
            c.lines,
            vec![CartLine {
                product_id: ProductId(1),
                quantity: 5
            }],
            "capped at stock, sold-out line dropped"
        );
    }
}
