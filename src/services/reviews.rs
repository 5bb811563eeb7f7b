//! Reviews: one per user per product. Writes change the product's rating
//! figures in the same transaction (see `store::reviews`), then refresh the
//! product in the search index so `ordering=-rating` and the product's
//! `rating_average` show the change as soon as the write is acknowledged.

use super::{Shop, ShopError};
use crate::auth::Identity;
use crate::domain::review::Review;
use crate::domain::time::{now_unix, rfc3339};
use crate::domain::{ProductId, ReviewId};
use crate::store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReviewView {
    pub id: u64,
    pub product_id: u64,
    pub user: u64,
    pub username: String,
    /// 1 to 5.
    pub rating: u8,
    /// Plain text as the author wrote it; never HTML.
    pub comment: String,
    /// The author had a paid, shipped or delivered order with this product.
    pub verified_purchase: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl ReviewView {
    pub fn new(r: &Review) -> Self {
        Self {
            id: r.id.0,
            product_id: r.product_id.0,
            user: r.user_id.0,
            username: r.username.clone(),
            rating: r.rating,
            comment: r.comment.clone(),
            verified_purchase: r.verified_purchase,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

/// How a product's reviews are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewOrder {
    Newest,
    HighestRated,
}

impl Shop {
    /// The product if the caller may see it (shoppers: active products only).
    fn visible_product(&self, product: ProductId, is_staff: bool) -> Result<(), ShopError> {
        match self.catalog.index().snapshot().product(product) {
            Some(doc) if doc.product.is_active || is_staff => Ok(()),
            _ => Err(ShopError::NotFound("product")),
        }
    }

    pub fn product_reviews(
        &self,
        product: ProductId,
        is_staff: bool,
        order: ReviewOrder,
    ) -> Result<Vec<Review>, ShopError> {
        self.visible_product(product, is_staff)?;
        let mut reviews = self.store.reviews_of_product(product)?;
        match order {
            ReviewOrder::Newest => reviews.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id))),
            ReviewOrder::HighestRated => {
                reviews.sort_by_key(|r| std::cmp::Reverse((r.rating, r.created_at, r.id)))
            }
        }
        Ok(reviews)
    }

    pub async fn create_review(
        &self,
        caller: &Identity,
        product: ProductId,
        rating: u8,
        comment: String,
    ) -> Result<Review, ShopError> {
        self.visible_product(product, false)?;
        let now = now_unix();
        let review = Review {
            id: ReviewId(self.store.next_id()?),
            product_id: product,
            user_id: caller.user.id,
            username: caller.user.username.clone(),
            rating,
            comment,
            verified_purchase: self.store.has_bought(caller.user.id, product)?,
            created_at: now,
            updated_at: now,
        };
        self.store.create_review(&review).map_err(|e| match e {
            StoreError::Duplicate(_) => ShopError::Conflict {
                code: "already_reviewed",
                message: "you have already reviewed this product; edit your review instead",
            },
            StoreError::Missing(_) => ShopError::NotFound("product"),
            other => other.into(),
        })?;
        self.finish_review_write(product).await?;
        Ok(review)
    }

    /// Only the author edits a review. Staff are refused (they see every
    /// review); other shoppers are told it does not exist (invariant 6).
    pub async fn update_review(
        &self,
        caller: &Identity,
        id: ReviewId,
        rating: Option<u8>,
        comment: Option<String>,
    ) -> Result<Review, ShopError> {
        let existing = self
            .store
            .review(id)?
            .ok_or(ShopError::NotFound("review"))?;
        if existing.user_id != caller.user.id {
            if !caller.user.is_staff {
                return Err(ShopError::NotFound("review"));
            }
            return Err(ShopError::Forbidden("only its author can edit a review"));
        }
        let verified = self.store.has_bought(caller.user.id, existing.product_id)?;
        let now = now_unix();
        let updated = self
            .store
            .update_review(id, |r| {
                if let Some(rating) = rating {
                    r.rating = rating;
                }
                if let Some(comment) = &comment {
                    r.comment = comment.clone();
                }
                r.verified_purchase = verified;
                r.updated_at = now;
            })
            .map_err(|e| match e {
                StoreError::NotFound => ShopError::NotFound("review"),
                StoreError::Missing(_) => ShopError::NotFound("product"),
                other => other.into(),
            })?;
        self.finish_review_write(updated.product_id).await?;
        Ok(updated)
    }

    /// The author or staff delete a review; to anyone else it does not
    /// exist (invariant 6).
    pub async fn delete_review(
        &self,
        caller: &Identity,
        id: ReviewId,
    ) -> Result<Review, ShopError> {
        let existing = self
            .store
            .review(id)?
            .ok_or(ShopError::NotFound("review"))?;
        if existing.user_id != caller.user.id && !caller.user.is_staff {
            return Err(ShopError::NotFound("review"));
        }
        let deleted = self.store.delete_review(id).map_err(|e| match e {
            StoreError::NotFound => ShopError::NotFound("review"),
            other => other.into(),
        })?;
        self.finish_review_write(deleted.product_id).await?;
        Ok(deleted)
    }

    async fn finish_review_write(&self, product: ProductId) -> Result<(), ShopError> {
        self.catalog
            .index()
            .refresh_products(&self.store, &[product])?;
        self.store.durable().await?;
        Ok(())
    }
}
