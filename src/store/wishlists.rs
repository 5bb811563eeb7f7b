//! Wishlists. `wishlist_by_user`: UserId ++ ProductId -> added at (i64 BE);
//! `wishlist_by_product`: ProductId ++ UserId -> (), written in the same
//! transaction, so the owners of a product that comes back in stock are
//! found without a scan.

use super::{from_tx, Store, StoreError};
use crate::domain::{ProductId, UserId};
use sled::Transactional;

fn pair(a: [u8; 8], b: [u8; 8]) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&a);
    key[8..].copy_from_slice(&b);
    key
}

impl Store {
    /// Adds a product; false when it was already there (nothing changes).
    pub fn wishlist_add(
        &self,
        user: UserId,
        product: ProductId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let t = &self.trees;
        let by_user_key = pair(user.to_key(), product.to_key());
        let by_product_key = pair(product.to_key(), user.to_key());
        from_tx((&t.wishlist_by_user, &t.wishlist_by_product).transaction(
            |(by_user, by_product)| {
                if by_user.get(by_user_key)?.is_some() {
                    return Ok(false);
                }
                by_user.insert(&by_user_key, &now.to_be_bytes())?;
                by_product.insert(&by_product_key, &[])?;
                Ok(true)
            },
        ))
    }

    /// Removes a product; false when it was not there.
    pub fn wishlist_remove(&self, user: UserId, product: ProductId) -> Result<bool, StoreError> {
        let t = &self.trees;
        let by_user_key = pair(user.to_key(), product.to_key());
        let by_product_key = pair(product.to_key(), user.to_key());
        from_tx((&t.wishlist_by_user, &t.wishlist_by_product).transaction(
            |(by_user, by_product)| {
                let was = by_user.remove(&by_user_key)?.is_some();
                by_product.remove(&by_product_key)?;
                Ok(was)
            },
        ))
    }

    /// A user's wishlist: (product, added at), in product id order.
    pub fn wishlist(&self, user: UserId) -> Result<Vec<(ProductId, i64)>, StoreError> {
        let mut items = Vec::new();
        for entry in self.trees.wishlist_by_user.scan_prefix(user.to_key()) {
            let (key, value) = entry?;
            let product = ProductId::from_key(&key[8..])
                .ok_or_else(|| StoreError::Corrupt("bad wishlist key".into()))?;
            let added = value
                .as_ref()
                .try_into()
                .map(i64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt("bad wishlist entry".into()))?;
            items.push((product, added));
        }
        Ok(items)
    }

    pub fn wishlist_contains(&self, user: UserId, product: ProductId) -> Result<bool, StoreError> {
        Ok(self
            .trees
            .wishlist_by_user
            .contains_key(pair(user.to_key(), product.to_key()))?)
    }

    /// Everyone with this product on their wishlist.
    pub fn wishlisted_by(&self, product: ProductId) -> Result<Vec<UserId>, StoreError> {
        self.trees
            .wishlist_by_product
            .scan_prefix(product.to_key())
            .map(|entry| {
                let (key, _) = entry?;
                UserId::from_key(&key[8..])
                    .ok_or_else(|| StoreError::Corrupt("bad wishlist key".into()))
            })
            .collect()
    }
}
