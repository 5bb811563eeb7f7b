//! Product reviews: one per user per product, a rating of 1 to 5 and an
//! optional comment kept as plain text (the server never renders it as
//! HTML; clients must escape it).

use super::ids::{ProductId, ReviewId, UserId};
use super::validation::bounded_text;
use serde::{Deserialize, Serialize};

pub const COMMENT_MAX: usize = 4_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub id: ReviewId,
    pub product_id: ProductId,
    pub user_id: UserId,
    /// The author's username when they wrote it.
    pub username: String,
    pub rating: u8,
    pub comment: String,
    /// The author had a paid, shipped or delivered order with this product.
    pub verified_purchase: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A rating from a request: a whole number from 1 to 5.
pub fn parse_rating(value: i64) -> Result<u8, String> {
    match u8::try_from(value) {
        Ok(r @ 1..=5) => Ok(r),
        _ => Err("must be a whole number from 1 to 5".into()),
    }
}

pub fn parse_comment(raw: &str) -> Result<String, String> {
    bounded_text(raw, 0, COMMENT_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_are_one_to_five_and_comments_are_bounded() {
        assert_eq!(parse_rating(1), Ok(1));
        assert_eq!(parse_rating(5), Ok(5));
        for bad in [0, 6, -1, 256, i64::MAX] {
            assert!(parse_rating(bad).is_err(), "{bad}");
        }
        assert!(parse_comment(&"x".repeat(COMMENT_MAX)).is_ok());
        assert!(parse_comment(&"x".repeat(COMMENT_MAX + 1)).is_err());
        assert_eq!(
            parse_comment("<b>bold</b>").as_deref(),
            Ok("<b>bold</b>"),
            "stored as given, never rendered"
        );
    }
}
