//! Checkout: cart -> order. The user's CartActor reserves every line in the
//! InventoryActors (all or nothing), writes order, items, stock decrements
//! and the emptied cart in one sled transaction, and the reply waits for the
//! group-commit flush. Only then are the events published.

use super::orders::OrderView;
use super::{Shop, ShopError};
use crate::actors::cart::{CheckoutError, PlaceOrder, Placed};
use crate::actors::hub::{Event, Publish};
use crate::actors::inventory::Level;
use crate::actors::registry::{Lookup, DELIVERY_ATTEMPTS};
use crate::auth::Identity;
use crate::domain::account::User;
use crate::domain::order::{Order, ShippingAddress};
use crate::domain::validation::bounded_text;
use crate::domain::{CartId, FieldErrors, OrderId};
use crate::store::StoreError;
use actix::MailboxError;

/// A shipping address as a client sends it; missing fields come from the profile.
#[derive(Debug, Default, Clone)]
pub struct AddressInput {
    pub name: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub phone: Option<String>,
}

/// How a checkout request ended.
pub enum CheckoutOutcome {
    Placed(Order),
    /// The same Idempotency-Key and body were seen before: that order.
    Replayed(Order),
}

impl Shop {
    pub async fn checkout(
        &self,
        caller: &Identity,
        address: Option<AddressInput>,
        idempotency: Option<(String, [u8; 32])>,
    ) -> Result<CheckoutOutcome, ShopError> {
        let user = &caller.user;
        if let Some((key, hash)) = &idempotency {
            if let Some(replay) = self.replay(user.id, key, hash)? {
                return Ok(replay);
            }
        }
        let shipping = self.shipping_address(caller, address.unwrap_or_default())?;
        let cart_id = self.store.ensure_user_cart(user.id)?;
        let placed = match self.place(cart_id, user, &shipping, &idempotency).await? {
            Ok(placed) => placed,
            Err(CheckoutError::EmptyCart) => {
                // A concurrent request with the same key may have just won.
                if let Some((key, hash)) = &idempotency {
                    if let Some(replay) = self.replay(user.id, key, hash)? {
                        return Ok(replay);
                    }
                }
                return Err(ShopError::Checkout(CheckoutError::EmptyCart));
            }
            Err(CheckoutError::Replayed {
                order_id,
                same_request: true,
            }) => {
                let order = self.store.order(order_id)?.ok_or(StoreError::NotFound)?;
                return Ok(CheckoutOutcome::Replayed(order));
            }
            Err(other) => return Err(other.into()),
        };
        // Answer only once the order is on disk and every product's
        // InventoryActor has applied the sale, so a client that reads the
        // product after our 201 sees the stock this order took.
        let settled =
            futures_util::future::join_all(placed.committed_in.iter().map(|addr| addr.send(Level)));
        let (durable, _) = futures_util::future::join(self.store.durable(), settled).await;
        durable?;
        self.hub.do_send(Publish(Event::OrderCreated {
            owner: placed.order.user_id,
            payload: serde_json::to_value(OrderView::new(&placed.order)).unwrap_or_default(),
        }));
        let view = self.cart_view(&placed.cart, None);
        self.publish_cart(&view);
        Ok(CheckoutOutcome::Placed(placed.order))
    }

    /// Turns the cart, as its actor holds it when the order arrives, into
    /// an order.
    async fn place(
        &self,
        cart_id: CartId,
        user: &User,
        shipping: &ShippingAddress,
        idempotency: &Option<(String, [u8; 32])>,
    ) -> Result<Result<Placed, CheckoutError>, ShopError> {
        let plan = PlaceOrder {
            order_id: OrderId(self.store.next_id()?),
            user_id: user.id,
            customer: (user.username.clone(), user.email.clone()),
            shipping: shipping.clone(),
            currency: self.catalog.currency(),
            idempotency: idempotency.clone(),
        };
        // Run to completion even if the client disconnects: reservations
        // must be committed or released, never abandoned mid-way.
        let (carts, store, order_id) = (self.carts.clone(), self.store.clone(), plan.order_id);
        actix_web::rt::spawn(async move {
            for attempt in 1.. {
                let actor = carts.send(Lookup::new(cart_id.0)).await?;
                match actor.send(plan.clone()).await {
                    Err(MailboxError::Closed) if attempt < DELIVERY_ATTEMPTS => {
                        // The actor stopped before it answered, almost
                        // always (idle) before the order reached it. If no
                        // order has this attempt's id, nothing was placed
                        // and a fresh actor takes the order; if one has, it
                        // was placed and only the answer is lost: 503, and
                        // the order is in the shopper's list.
                        if store.order(order_id).ok().flatten().is_some() {
                            return Err(MailboxError::Closed);
                        }
                    }
                    other => return other,
                }
            }
            Err(MailboxError::Closed)
        })
        .await
        .map_err(|_| ShopError::Unavailable)?
        .map_err(ShopError::from)
    }

    fn replay(
        &self,
        user: crate::domain::UserId,
        key: &str,
        hash: &[u8; 32],
    ) -> Result<Option<CheckoutOutcome>, ShopError> {
        let Some((seen_hash, order_id)) = self.store.checkout_by_key(user, key)? else {
            return Ok(None);
        };
        if seen_hash != *hash {
            return Err(ShopError::Checkout(CheckoutError::Replayed {
                order_id,
                same_request: false,
            }));
        }
        let order = self.store.order(order_id)?.ok_or(StoreError::NotFound)?;
        Ok(Some(CheckoutOutcome::Replayed(order)))
    }

    fn shipping_address(
        &self,
        caller: &Identity,
        input: AddressInput,
    ) -> Result<ShippingAddress, ShopError> {
        let profile = self.store.profile(caller.user.id)?;
        let pick =
            |given: Option<String>, fallback: &str| given.unwrap_or_else(|| fallback.to_owned());
        let mut errors = FieldErrors::new();
        let mut field = |name: &str, value: String, min: usize, max: usize| {
            errors
                .check(
                    name,
                    bounded_text(&value, min, max).map_err(|m| {
                        if min > 0 && value.trim().is_empty() {
                            "is required: give it here or in your profile".to_string()
                        } else {
                            m
                        }
                    }),
                )
                .unwrap_or_default()
        };
        let address = ShippingAddress {
            name: field(
                "shipping_address.name",
                pick(input.name, &caller.user.username),
                1,
                200,
            ),
            address: field(
                "shipping_address.address",
                pick(input.address, &profile.address),
                1,
                300,
            ),
            city: field(
                "shipping_address.city",
                pick(input.city, &profile.city),
                1,
                100,
            ),
            postal_code: field(
                "shipping_address.postal_code",
                pick(input.postal_code, &profile.postal_code),
                0,
                20,
            ),
            country: field(
                "shipping_address.country",
                pick(input.country, &profile.country),
                1,
                100,
            ),
            phone: field(
                "shipping_address.phone",
                pick(input.phone, &profile.phone),
                0,
                30,
            ),
        };
        errors.into_result().map_err(ShopError::Invalid)?;
        Ok(address)
    }
}
