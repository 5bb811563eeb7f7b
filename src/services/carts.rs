//! Cart operations for users (one cart each) and anonymous shoppers (a cart
//! reached by a random token, merged into the user's cart at login).

use super::{Shop, ShopError};
use crate::actors::cart::{ChangeCart, DrainCart, GetCart};
use crate::actors::hub::{Event, Publish};
use crate::actors::registry::ask;
use crate::domain::cart::{Cart, CartChange, CartError, CartLine};
use crate::domain::money::format_minor;
use crate::domain::{CartId, ProductId, UserId};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// Which cart a request is about.
#[derive(Debug, Clone)]
pub struct CartRef {
    pub id: CartId,
    /// The anonymous cart's token (to send back to the client); None for users.
    pub token: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CartItemView {
    pub product_id: u64,
    pub name: String,
    pub slug: String,
    pub image: Option<String>,
    /// Current price (decimal string).
    pub unit_price: String,
    pub quantity: i64,
    pub line_total: String,
    /// Units on hand now.
    pub stock: i64,
    /// Whether this quantity can be bought now (product active, enough stock).
    pub available: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CartView {
    pub id: u64,
    /// For anonymous carts: send it back as `X-Cart-Token` (or the `cart_token` cookie).
    pub cart_token: Option<String>,
    /// Rises with every change.
    pub version: u64,
    pub currency: String,
    pub items: Vec<CartItemView>,
    pub item_count: i64,
    pub total: String,
}

pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn new_token() -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Refuses a quantity no add can take, before an anonymous cart is created
/// for a request that cannot succeed.
pub fn check_add_quantity(quantity: i64) -> Result<(), ShopError> {
    if quantity < 1 {
        return Err(CartError::QuantityTooSmall.into());
    }
    if quantity > crate::domain::cart::MAX_LINE_QUANTITY {
        return Err(CartError::QuantityTooLarge.into());
    }
    Ok(())
}

impl Shop {
    /// The cart of a user, or of an anonymous token. With `create`, a user
    /// without a cart gets one and an anonymous shopper without a (known)
    /// token gets a new cart and token; without it, `None` means "no cart yet".
    pub fn resolve_cart(
        &self,
        user: Option<UserId>,
        token: Option<&str>,
        create: bool,
    ) -> Result<Option<CartRef>, ShopError> {
        if let Some(user) = user {
            // Reading a cart never creates one: a GET must not write (it
            // would fail while the disk is full, and reads must not).
            let id = if create {
                Some(self.store.ensure_user_cart(user)?)
            } else {
                self.store.user_cart_id(user)?
            };
            return Ok(id.map(|id| CartRef { id, token: None }));
        }
        if let Some(token) = token.filter(|t| !t.is_empty() && t.len() <= 128) {
            if let Some(id) = self.store.cart_id_by_token(&token_hash(token))? {
                return Ok(Some(CartRef {
                    id,
                    token: Some(token.to_owned()),
                }));
            }
        }
        if !create {
            return Ok(None);
        }
        // Unknown tokens are not adopted: tokens are always ours and random.
        let token = new_token();
        let id = self.store.create_anonymous_cart(&token_hash(&token))?;
        Ok(Some(CartRef {
            id,
            token: Some(token),
        }))
    }

    pub async fn cart(&self, cart: &CartRef) -> Result<CartView, ShopError> {
        let (_, current) = ask(&self.carts, cart.id.0, GetCart).await?;
        Ok(self.cart_view(&current, cart.token.clone()))
    }

    /// The view of a shopper who has no cart yet (id 0, version 0).
    pub fn empty_cart_view(&self) -> CartView {
        CartView {
            id: 0,
            cart_token: None,
            version: 0,
            currency: self.catalog.currency().code().to_owned(),
            items: Vec::new(),
            item_count: 0,
            total: format_minor(0, self.catalog.currency()),
        }
    }

    pub async fn add_to_cart(
        &self,
        cart: &CartRef,
        product_id: ProductId,
        quantity: i64,
    ) -> Result<CartView, ShopError> {
        let available = self.sellable_stock(product_id)?;
        self.change_cart(
            cart,
            CartChange::Add {
                product_id,
                quantity,
                available,
            },
        )
        .await
    }

    pub async fn set_cart_quantity(
        &self,
        cart: &CartRef,
        product_id: ProductId,
        quantity: i64,
    ) -> Result<CartView, ShopError> {
        let available = if quantity == 0 {
            0
        } else {
            self.sellable_stock(product_id)?
        };
        self.change_cart(
            cart,
            CartChange::Set {
                product_id,
                quantity,
                available,
            },
        )
        .await
    }

    pub async fn remove_from_cart(
        &self,
        cart: &CartRef,
        product_id: ProductId,
    ) -> Result<CartView, ShopError> {
        self.change_cart(cart, CartChange::Remove { product_id })
            .await
    }

    pub async fn clear_cart(&self, cart: &CartRef) -> Result<CartView, ShopError> {
        self.change_cart(cart, CartChange::Clear).await
    }

    /// At login: the anonymous cart's lines are added to the user's cart
    /// (capped by stock) and the anonymous cart is deleted.
    pub async fn merge_anonymous_cart(
        &self,
        user: UserId,
        token: &str,
    ) -> Result<Option<CartView>, ShopError> {
        let Some(anonymous) = self.store.cart_id_by_token(&token_hash(token))? else {
            return Ok(None);
        };
        let (_, drained) = ask(
            &self.carts,
            anonymous.0,
            DrainCart {
                token_hash: token_hash(token),
            },
        )
        .await?;
        let lines: Vec<CartLine> = drained?;
        let target = CartRef {
            id: self.store.ensure_user_cart(user)?,
            token: None,
        };
        if lines.is_empty() {
            self.store.durable().await?;
            return Ok(Some(self.cart(&target).await?));
        }
        let snapshot = self.catalog.index().snapshot();
        let lines = lines
            .into_iter()
            .map(|line| {
                let available = snapshot
                    .product(line.product_id)
                    .filter(|doc| doc.product.is_active)
                    .map_or(0, |doc| doc.on_hand());
                (line, available)
            })
            .collect();
        self.change_cart(&target, CartChange::Merge { lines })
            .await
            .map(Some)
    }

    async fn change_cart(&self, cart: &CartRef, change: CartChange) -> Result<CartView, ShopError> {
        let (_, updated) = ask(&self.carts, cart.id.0, ChangeCart(change)).await?;
        let updated = updated?;
        self.store.durable().await?;
        let view = self.cart_view(&updated, cart.token.clone());
        self.publish_cart(&view);
        Ok(view)
    }

    pub fn publish_cart(&self, view: &CartView) {
        let mut payload = serde_json::to_value(view).unwrap_or_default();
        // Other devices of the cart must not learn an anonymous token from a push.
        payload["cart_token"] = serde_json::Value::Null;
        self.hub.do_send(Publish(Event::CartUpdated {
            cart_id: CartId(view.id),
            payload,
        }));
    }

    /// Stock a shopper may put in a cart now, or why the product is not for sale.
    fn sellable_stock(&self, product_id: ProductId) -> Result<i64, ShopError> {
        let snapshot = self.catalog.index().snapshot();
        match snapshot.product(product_id) {
            Some(doc) if doc.product.is_active => Ok(doc.on_hand()),
            Some(_) => Err(CartError::ProductUnavailable.into()),
            None => Err(ShopError::NotFound("product")),
        }
    }

    pub fn cart_view(&self, cart: &Cart, token: Option<String>) -> CartView {
        let currency = self.catalog.currency();
        let snapshot = self.catalog.index().snapshot();
        let mut total: i64 = 0;
        let mut count: i64 = 0;
        let items = cart
            .lines
            .iter()
            .map(|line| {
                let doc = snapshot.product(line.product_id);
                let price = doc.map_or(0, |d| d.product.price.minor);
                let stock = doc.map_or(0, |d| d.on_hand());
                let active = doc.is_some_and(|d| d.product.is_active);
                let line_total = price.saturating_mul(line.quantity);
                total = total.saturating_add(line_total);
                count += line.quantity;
                CartItemView {
                    product_id: line.product_id.0,
                    name: doc.map_or_else(|| "(no longer sold)".into(), |d| d.product.name.clone()),
                    slug: doc.map(|d| d.product.slug.clone()).unwrap_or_default(),
                    image: doc.and_then(|d| d.product.image.clone()),
                    unit_price: format_minor(price, currency),
                    quantity: line.quantity,
                    line_total: format_minor(line_total, currency),
                    stock,
                    available: active && line.quantity <= stock,
                }
            })
            .collect();
        CartView {
            id: cart.id.0,
            cart_token: token,
            version: cart.version,
            currency: currency.code().to_owned(),
            items,
            item_count: count,
            total: format_minor(total, currency),
        }
    }
}
