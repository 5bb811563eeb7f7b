//! Reviews. Key layout:
//! - `reviews_by_id`: ReviewId -> Review
//! - `reviews_by_product`: ProductId ++ ReviewId -> () (newest last)
//! - `reviews_by_product_user`: ProductId ++ UserId -> ReviewId (one per user)
//!
//! Invariant: the product's `rating_sum` and `rating_count` are changed in
//! the same transaction as the review they count, so they always equal the
//! sum and number of its stored reviews.

use super::{abort, decode, encode, from_tx, Store, StoreError};
use crate::domain::catalog::Product;
use crate::domain::order::OrderStatus;
use crate::domain::review::Review;
use crate::domain::{ProductId, ReviewId, UserId};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

fn pair(a: [u8; 8], b: [u8; 8]) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&a);
    key[8..].copy_from_slice(&b);
    key
}

/// Adds `delta_sum` to the product's rating sum and `delta_count` to its count.
fn move_rating(
    products: &TransactionalTree,
    product: ProductId,
    delta_sum: i64,
    delta_count: i64,
) -> Result<(), ConflictableTransactionError<StoreError>> {
    let Some(bytes) = products.get(product.to_key())? else {
        return abort(StoreError::Missing("product"));
    };
    let mut p: Product = decode(&bytes).or_else(abort)?;
    let sum = i64::try_from(p.rating_sum).unwrap_or(i64::MAX) + delta_sum;
    let count = i64::from(p.rating_count) + delta_count;
    p.rating_sum =
        u64::try_from(sum).or_else(|_| abort(StoreError::Corrupt("rating sum".into())))?;
    p.rating_count =
        u32::try_from(count).or_else(|_| abort(StoreError::Corrupt("rating count".into())))?;
    products.insert(&product.to_key(), encode(&p).or_else(abort)?)?;
    Ok(())
}

impl Store {
    /// Stores a new review and counts its rating; `Duplicate("review")` when
    /// the user already reviewed the product, `Missing("product")` when it is gone.
    pub fn create_review(&self, review: &Review) -> Result<(), StoreError> {
        let t = &self.trees;
        let bytes = encode(review)?;
        let once_key = pair(review.product_id.to_key(), review.user_id.to_key());
        from_tx(
            (
                &t.reviews_by_id,
                &t.reviews_by_product,
                &t.reviews_by_product_user,
                &t.products_by_id,
            )
                .transaction(|(by_id, by_product, once, products)| {
                    if once.get(once_key)?.is_some() {
                        return abort(StoreError::Duplicate("review"));
                    }
                    move_rating(products, review.product_id, i64::from(review.rating), 1)?;
                    by_id.insert(&review.id.to_key(), bytes.as_slice())?;
                    by_product
                        .insert(&pair(review.product_id.to_key(), review.id.to_key()), &[])?;
                    once.insert(&once_key, &review.id.to_key())?;
                    Ok(())
                }),
        )
    }

    pub fn review(&self, id: ReviewId) -> Result<Option<Review>, StoreError> {
        self.trees
            .reviews_by_id
            .get(id.to_key())?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Replaces a review through `change` and moves the product's rating by
    /// the difference. Returns the review after the change.
    pub fn update_review(
        &self,
        id: ReviewId,
        change: impl Fn(&mut Review),
    ) -> Result<Review, StoreError> {
        let t = &self.trees;
        from_tx(
            (&t.reviews_by_id, &t.products_by_id).transaction(|(by_id, products)| {
                let Some(bytes) = by_id.get(id.to_key())? else {
                    return abort(StoreError::NotFound);
                };
                let before: Review = decode(&bytes).or_else(abort)?;
                let mut after = before.clone();
                change(&mut after);
                after.id = before.id;
                after.product_id = before.product_id;
                after.user_id = before.user_id;
                let delta = i64::from(after.rating) - i64::from(before.rating);
                if delta != 0 {
                    move_rating(products, before.product_id, delta, 0)?;
                }
                by_id.insert(&id.to_key(), encode(&after).or_else(abort)?)?;
                Ok(after)
            }),
        )
    }

    /// Removes a review and takes its rating out of the product's figures.
    pub fn delete_review(&self, id: ReviewId) -> Result<Review, StoreError> {
        let t = &self.trees;
        from_tx(
            (
                &t.reviews_by_id,
                &t.reviews_by_product,
                &t.reviews_by_product_user,
                &t.products_by_id,
            )
                .transaction(|(by_id, by_product, once, products)| {
                    let Some(bytes) = by_id.remove(&id.to_key())? else {
                        return abort(StoreError::NotFound);
                    };
                    let review: Review = decode(&bytes).or_else(abort)?;
                    by_product.remove(&pair(review.product_id.to_key(), id.to_key()))?;
                    once.remove(&pair(review.product_id.to_key(), review.user_id.to_key()))?;
                    // The product may have been deleted since; nothing to count then.
                    if products.get(review.product_id.to_key())?.is_some() {
                        move_rating(products, review.product_id, -i64::from(review.rating), -1)?;
                    }
                    Ok(review)
                }),
        )
    }

    /// Every review of a product, oldest first.
    pub fn reviews_of_product(&self, product: ProductId) -> Result<Vec<Review>, StoreError> {
        let mut reviews = Vec::new();
        for entry in self.trees.reviews_by_product.scan_prefix(product.to_key()) {
            let (key, _) = entry?;
            let id = ReviewId::from_key(&key[8..])
                .ok_or_else(|| StoreError::Corrupt("bad review index key".into()))?;
            if let Some(review) = self.review(id)? {
                reviews.push(review);
            }
        }
        Ok(reviews)
    }

    /// True when the user has a paid, shipped or delivered order holding the product.
    pub fn has_bought(&self, user: UserId, product: ProductId) -> Result<bool, StoreError> {
        let (_, orders) = self.orders_of_user(user, 0, usize::MAX)?;
        for order in orders {
            let settled = matches!(
                order.status,
                OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Delivered
            );
            if settled && order.items.iter().any(|i| i.product_id == product) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
