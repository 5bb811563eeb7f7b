//! Wishlists: a user's saved products, shown with their current price and
//! availability, and moved to the cart through the same path as any
//! add-to-cart (so stock and activity rules are the cart's own).

use super::carts::{CartRef, CartView};
use super::{Shop, ShopError};
use crate::domain::cart::CartError;
use crate::domain::money::format_minor;
use crate::domain::time::{now_unix, rfc3339};
use crate::domain::{ProductId, UserId};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WishlistItemView {
    pub product_id: u64,
    pub name: String,
    pub slug: String,
    pub image: Option<String>,
    /// Current price (decimal string).
    pub price: String,
    pub currency: String,
    /// Units on hand now.
    pub stock: i64,
    /// For sale (active) and in stock now.
    pub available: bool,
    pub is_active: bool,
    /// RFC 3339.
    pub added_at: String,
}

impl Shop {
    fn wishlist_item(&self, product_id: ProductId, added_at: i64) -> Option<WishlistItemView> {
        let snapshot = self.catalog.index().snapshot();
        let doc = snapshot.product(product_id)?;
        let p = &doc.product;
        let stock = doc.on_hand();
        Some(WishlistItemView {
            product_id: p.id.0,
            name: p.name.clone(),
            slug: p.slug.clone(),
            image: p.image.clone(),
            price: format_minor(p.price.minor, p.price.currency),
            currency: p.price.currency.code().to_owned(),
            stock,
            available: p.is_active && stock > 0,
            is_active: p.is_active,
            added_at: rfc3339(added_at),
        })
    }

    /// The user's wishlist, oldest addition first; products deleted from
    /// the catalog since are left out.
    pub fn wishlist(&self, user: UserId) -> Result<Vec<WishlistItemView>, ShopError> {
        let mut items: Vec<(i64, WishlistItemView)> = self
            .store
            .wishlist(user)?
            .into_iter()
            .filter_map(|(product, added)| Some((added, self.wishlist_item(product, added)?)))
            .collect();
        items.sort_by_key(|(added, item)| (*added, item.product_id));
        Ok(items.into_iter().map(|(_, item)| item).collect())
    }

    /// Adds an active product; adding it again changes nothing. Returns
    /// whether it was new, and the item.
    pub async fn wishlist_add(
        &self,
        user: UserId,
        product: ProductId,
    ) -> Result<(bool, WishlistItemView), ShopError> {
        let snapshot = self.catalog.index().snapshot();
        match snapshot.product(product) {
            Some(doc) if doc.product.is_active => {}
            _ => return Err(ShopError::NotFound("product")),
        }
        let now = now_unix();
        let added = self.store.wishlist_add(user, product, now)?;
        self.store.durable().await?;
        let since = self
            .store
            .wishlist(user)?
            .into_iter()
            .find(|(p, _)| *p == product)
            .map_or(now, |(_, at)| at);
        let item = self
            .wishlist_item(product, since)
            .ok_or(ShopError::NotFound("product"))?;
        Ok((added, item))
    }

    pub async fn wishlist_remove(&self, user: UserId, product: ProductId) -> Result<(), ShopError> {
        if !self.store.wishlist_remove(user, product)? {
            return Err(ShopError::NotFound("wishlist item"));
        }
        self.store.durable().await?;
        Ok(())
    }

    /// Puts one unit in the user's cart through the ordinary add-to-cart
    /// path, then takes the product off the wishlist. If the cart refuses
    /// (out of stock, inactive) the wishlist is left as it was.
    pub async fn wishlist_move_to_cart(
        &self,
        user: UserId,
        product: ProductId,
    ) -> Result<CartView, ShopError> {
        if !self.store.wishlist_contains(user, product)? {
            return Err(ShopError::NotFound("wishlist item"));
        }
        let cart = CartRef {
            id: self.store.ensure_user_cart(user)?,
            token: None,
        };
        let view = self
            .add_to_cart(&cart, product, 1)
            .await
            .map_err(|e| match e {
                ShopError::Cart(CartError::ProductUnavailable) => ShopError::Conflict {
                    code: "product_unavailable",
                    message: "this product is no longer for sale",
                },
                other => other,
            })?;
        self.store.wishlist_remove(user, product)?;
        self.store.durable().await?;
        Ok(view)
    }
}
