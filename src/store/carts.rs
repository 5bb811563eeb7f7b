//! Carts: `carts_by_id` holds each cart (written only by its CartActor);
//! `carts_by_user` and `carts_by_token` find a cart from its owner. A user
//! has at most one cart: it is created in a transaction that checks first.

use super::{decode, encode, from_tx, Store, StoreError};
use crate::domain::cart::{Cart, CartOwner};
use crate::domain::time::now_unix;
use crate::domain::{CartId, UserId};
use sled::Transactional;

impl Store {
    pub fn cart(&self, id: CartId) -> Result<Option<Cart>, StoreError> {
        self.trees
            .carts_by_id
            .get(id.to_key())?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Writes a cart; callers await `durable()` before acknowledging. A
    /// cart that starts (goes from empty to holding something) goes through
    /// `start_cart` instead, which also counts it in the day's analytics.
    pub fn save_cart(&self, cart: &Cart) -> Result<(), StoreError> {
        self.trees
            .carts_by_id
            .insert(cart.id.to_key(), encode(cart)?)?;
        Ok(())
    }

    /// Writes a cart that starts, with one more "cart started" in the day's
    /// analytics (the conversion rate), in one transaction. It goes through
    /// the checkout committer because checkouts move the same analytics
    /// bucket: one shared transaction instead of both queueing for sled's
    /// lock on a request thread. Not yet durable: callers await `durable()`.
    /// The caller, the cart's only writer, knows what the cart held before.
    pub async fn start_cart(&self, cart: Cart) -> Result<(), StoreError> {
        self.checkouts.start_cart(cart).await
    }

    pub fn user_cart_id(&self, user: UserId) -> Result<Option<CartId>, StoreError> {
        Ok(self
            .trees
            .carts_by_user
            .get(user.to_key())?
            .and_then(|v| CartId::from_key(&v)))
    }

    /// The user's cart id, creating an empty cart the first time.
    pub fn ensure_user_cart(&self, user: UserId) -> Result<CartId, StoreError> {
        if let Some(id) = self.user_cart_id(user)? {
            return Ok(id);
        }
        let fresh = Cart::new(CartId(self.next_id()?), CartOwner::User(user), now_unix());
        let bytes = encode(&fresh)?;
        let t = &self.trees;
        from_tx(
            (&t.carts_by_user, &t.carts_by_id).transaction(|(by_user, carts)| {
                if let Some(existing) = by_user.get(user.to_key())? {
                    // Another request created it first; use that one.
                    return Ok(CartId::from_key(&existing).unwrap_or(fresh.id));
                }
                by_user.insert(&user.to_key(), &fresh.id.to_key())?;
                carts.insert(&fresh.id.to_key(), bytes.as_slice())?;
                Ok(fresh.id)
            }),
        )
    }

    pub fn cart_id_by_token(&self, token_hash: &[u8]) -> Result<Option<CartId>, StoreError> {
        Ok(self
            .trees
            .carts_by_token
            .get(token_hash)?
            .and_then(|v| CartId::from_key(&v)))
    }

    pub fn create_anonymous_cart(&self, token_hash: &[u8]) -> Result<CartId, StoreError> {
        let cart = Cart::new(CartId(self.next_id()?), CartOwner::Anonymous, now_unix());
        let bytes = encode(&cart)?;
        let t = &self.trees;
        from_tx(
            (&t.carts_by_token, &t.carts_by_id).transaction(|(by_token, carts)| {
                by_token.insert(token_hash, &cart.id.to_key())?;
                carts.insert(&cart.id.to_key(), bytes.as_slice())?;
                Ok(())
            }),
        )?;
        Ok(cart.id)
    }

    /// Removes an anonymous cart and its token (after a merge at login).
    pub fn delete_anonymous_cart(&self, id: CartId, token_hash: &[u8]) -> Result<(), StoreError> {
        let t = &self.trees;
        from_tx(
            (&t.carts_by_token, &t.carts_by_id).transaction(|(by_token, carts)| {
                by_token.remove(token_hash)?;
                carts.remove(&id.to_key())?;
                Ok(())
            }),
        )
    }
}
