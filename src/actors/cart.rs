//! One `CartActor` per cart: the single writer of that cart (DESIGN.md
//! invariant 2). Every change is applied to a copy, checked, written to
//! sled, and only then becomes the actor's state, so a refused or failed
//! change leaves the cart exactly as it was.
//!
//! Checkout runs inside the cart's actor as an atomic response: while it
//! reserves stock in the InventoryActors and commits the order, no other
//! change to this cart is processed, so the order holds exactly the lines
//! that were reserved, and emptying the cart is part of the same sled
//! transaction as the order.

use super::inventory::{Commit, InventoryActor, Release, ReservationId, Reserve};
use super::registry::{ask, Registry, Shutdown};
use crate::domain::cart::{Cart, CartChange, CartError, CartLine, CartOwner};
use crate::domain::catalog::Product;
use crate::domain::money::{format_minor, Currency};
use crate::domain::order::{Order, OrderItem, OrderStatus, PaymentStatus, ShippingAddress};
use crate::domain::time::now_unix;
use crate::domain::{CartId, OrderId, ProductId, UserId};
use crate::mail::{render_order_confirmation, ConfirmationLine, OrderConfirmation, PreparedMail};
use crate::store::orders::{CheckoutCommit, CheckoutWrite};
use crate::store::{Store, StoreError};
use actix::prelude::*;
use futures_util::future::join_all;
use std::collections::HashMap;

/// The cart as it is now.
#[derive(Message, Clone)]
#[rtype(result = "Cart")]
pub struct GetCart;

/// Applies a change; the reply is the new cart or why it was refused.
#[derive(Message, Clone)]
#[rtype(result = "Result<Cart, CartFailure>")]
pub struct ChangeCart(pub CartChange);

/// Empties and deletes an anonymous cart, returning its lines (merge at login).
#[derive(Message, Clone)]
#[rtype(result = "Result<Vec<CartLine>, StoreError>")]
pub struct DrainCart {
    pub token_hash: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum CartFailure {
    #[error(transparent)]
    Rule(#[from] CartError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Turns this cart, as the actor holds it when the message arrives, into
/// an order. The actor reads the lines' products itself, so no other
/// change to the cart can come between what is priced and what is sold.
#[derive(Message, Clone)]
#[rtype(result = "Result<Placed, CheckoutError>")]
pub struct PlaceOrder {
    /// The id the order gets if it is placed (allocated by the caller, so
    /// it can tell afterwards whether an attempt placed it).
    pub order_id: OrderId,
    pub user_id: UserId,
    /// (username, email) for the confirmation mail.
    pub customer: (String, String),
    pub shipping: ShippingAddress,
    pub currency: Currency,
    /// (Idempotency-Key, SHA-256 of the request body).
    pub idempotency: Option<(String, [u8; 32])>,
}

pub struct Placed {
    pub order: Order,
    pub cart: Cart,
    /// The InventoryActors told to commit this order's units. A message
    /// sent to them now is handled after that commit, so awaiting one
    /// means the catalog shows the new stock (see `Shop::checkout`).
    pub committed_in: Vec<Addr<InventoryActor>>,
}

/// One product that could not be had in the quantity asked.
#[derive(Debug, Clone)]
pub struct ShortLine {
    pub product_id: ProductId,
    pub name: String,
    pub requested: i64,
    pub available: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("the cart is empty")]
    EmptyCart,
    #[error("some products are no longer for sale")]
    Unavailable(Vec<(ProductId, String)>),
    #[error("not enough stock")]
    Short(Vec<ShortLine>),
    #[error("this Idempotency-Key was already used")]
    Replayed {
        order_id: OrderId,
        same_request: bool,
    },
    #[error("stock service restarting")]
    WorkerUnavailable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Reserved = Vec<(ProductId, Addr<InventoryActor>, ReservationId)>;

pub struct CartActor {
    cart: Cart,
    store: Store,
    inventory: Addr<Registry<InventoryActor>>,
}

impl CartActor {
    pub fn new(id: CartId, store: Store, inventory: Addr<Registry<InventoryActor>>) -> Self {
        let cart = match store.cart(id) {
            Ok(Some(cart)) => cart,
            Ok(None) => Cart::new(id, CartOwner::Anonymous, now_unix()),
            Err(e) => {
                tracing::error!(cart_id = %id, error = %e, "cart unreadable; starting empty");
                Cart::new(id, CartOwner::Anonymous, now_unix())
            }
        };
        Self {
            cart,
            store,
            inventory,
        }
    }

    /// The stored products of the cart's lines (deleted ones are absent).
    fn products_of_lines(&self) -> Result<HashMap<ProductId, Product>, StoreError> {
        let mut products = HashMap::with_capacity(self.cart.lines.len());
        for line in &self.cart.lines {
            if let Some(product) = self.store.product(line.product_id)? {
                products.insert(line.product_id, product);
            }
        }
        Ok(products)
    }

    /// The order and everything its transaction writes, priced from the
    /// products read when the checkout began. On failure the reservations
    /// are released.
    fn prepare_checkout(
        &self,
        plan: PlaceOrder,
        products: &HashMap<ProductId, Product>,
        reserved: &Reserved,
    ) -> Result<CheckoutWrite, CheckoutError> {
        let now = now_unix();
        let mut items = Vec::with_capacity(self.cart.lines.len());
        let mut total: i64 = 0;
        for line in &self.cart.lines {
            let Some(product) = products.get(&line.product_id) else {
                release_all(reserved);
                return Err(CheckoutError::Unavailable(vec![(
                    line.product_id,
                    String::new(),
                )]));
            };
            let line_total = product.price.minor.saturating_mul(line.quantity);
            total = total.saturating_add(line_total);
            items.push(OrderItem {
                product_id: line.product_id,
                product_name: product.name.clone(),
                quantity: line.quantity,
                price_at_purchase: product.price.minor,
            });
        }
        let order = Order {
            id: plan.order_id,
            user_id: plan.user_id,
            status: OrderStatus::Pending,
            payment_status: PaymentStatus::Unpaid,
            items,
            total,
            currency: plan.currency,
            shipping_address: plan.shipping,
            created_at: now,
            updated_at: now,
        };
        let confirmation = match confirmation_mail(&self.store, &order, &plan.customer) {
            Ok(mail) => mail,
            Err(e) => {
                release_all(reserved);
                return Err(CheckoutError::Store(e));
            }
        };
        let mut emptied = self.cart.clone();
        if emptied.apply(CartChange::Clear, now).is_err() {
            release_all(reserved);
            return Err(CheckoutError::EmptyCart);
        }
        Ok(CheckoutWrite {
            order,
            emptied_cart: emptied,
            idempotency: plan.idempotency,
            confirmation: Some(confirmation),
        })
    }

    /// Acts on what the checkout transaction did: commits the reservations
    /// of a placed order and empties the cart, or releases them.
    fn settle_checkout(
        &mut self,
        outcome: Result<(CheckoutWrite, CheckoutCommit), StoreError>,
        products: &HashMap<ProductId, Product>,
        reserved: Reserved,
    ) -> Result<Placed, CheckoutError> {
        match outcome {
            Ok((write, CheckoutCommit::Placed { stock_seqs })) => {
                for (product_id, addr, id) in &reserved {
                    let seq = stock_seqs
                        .iter()
                        .find(|(p, _)| p == product_id)
                        .map_or(0, |(_, seq)| *seq);
                    addr.do_send(Commit {
                        reservation: *id,
                        quantity: self.cart.quantity_of(*product_id),
                        seq,
                    });
                }
                self.cart = write.emptied_cart.clone();
                Ok(Placed {
                    order: write.order,
                    cart: write.emptied_cart,
                    committed_in: reserved.into_iter().map(|(_, addr, _)| addr).collect(),
                })
            }
            Ok((
                _,
                CheckoutCommit::Replayed {
                    order_id,
                    same_request,
                },
            )) => {
                release_all(&reserved);
                Err(CheckoutError::Replayed {
                    order_id,
                    same_request,
                })
            }
            Ok((
                _,
                CheckoutCommit::Short {
                    product_id,
                    available,
                },
            )) => {
                release_all(&reserved);
                let name = products
                    .get(&product_id)
                    .map(|p| p.name.clone())
                    .unwrap_or_default();
                Err(CheckoutError::Short(vec![ShortLine {
                    product_id,
                    name,
                    requested: self.cart.quantity_of(product_id),
                    available,
                }]))
            }
            Err(e) => {
                release_all(&reserved);
                Err(CheckoutError::Store(e))
            }
        }
    }
}

fn release_all(reserved: &Reserved) {
    for (_, addr, id) in reserved {
        addr.do_send(Release(*id));
    }
}

/// The order-confirmation mail, encoded for the outbox.
fn confirmation_mail(
    store: &Store,
    order: &Order,
    (username, email): &(String, String),
) -> Result<PreparedMail, StoreError> {
    let currency = order.currency;
    let address = &order.shipping_address;
    let message = render_order_confirmation(&OrderConfirmation {
        order_id: order.id.0,
        customer_username: username.clone(),
        customer_email: email.clone(),
        lines: order
            .items
            .iter()
            .map(|item| ConfirmationLine {
                product_name: item.product_name.clone(),
                quantity: u32::try_from(item.quantity).unwrap_or(u32::MAX),
                unit_price: format_minor(item.price_at_purchase, currency),
                line_total: format_minor(
                    item.price_at_purchase.saturating_mul(item.quantity),
                    currency,
                ),
            })
            .collect(),
        total: format_minor(order.total, currency),
        currency: currency.code().to_owned(),
        shipping_address: [
            &address.name,
            &address.address,
            &address.city,
            &address.postal_code,
            &address.country,
        ]
        .into_iter()
        .filter(|line| !line.trim().is_empty())
        .cloned()
        .collect(),
        created_at: order.created_at,
    });
    PreparedMail::new(store.next_id()?, &message, order.created_at)
}

/// Reserves every line at once; all or nothing.
async fn reserve_all(
    registry: Addr<Registry<InventoryActor>>,
    lines: Vec<CartLine>,
    names: HashMap<ProductId, String>,
) -> Result<Reserved, CheckoutError> {
    let attempts = join_all(lines.iter().map(|line| {
        let registry = registry.clone();
        async move {
            ask(
                &registry,
                line.product_id.0,
                Reserve {
                    quantity: line.quantity,
                },
            )
            .await
        }
    }))
    .await;
    let mut reserved = Vec::new();
    let mut short = Vec::new();
    let mut worker_down = false;
    for (line, attempt) in lines.iter().zip(attempts) {
        match attempt {
            Ok((addr, Ok(id))) => reserved.push((line.product_id, addr, id)),
            Ok((_, Err(shortage))) => short.push(ShortLine {
                product_id: line.product_id,
                name: names.get(&line.product_id).cloned().unwrap_or_default(),
                requested: line.quantity,
                available: shortage.available,
            }),
            Err(_) => worker_down = true,
        }
    }
    if worker_down || !short.is_empty() {
        for (_, addr, id) in &reserved {
            addr.do_send(Release(*id));
        }
        return Err(if worker_down {
            CheckoutError::WorkerUnavailable
        } else {
            CheckoutError::Short(short)
        });
    }
    Ok(reserved)
}

impl Actor for CartActor {
    type Context = Context<Self>;
}

impl Handler<GetCart> for CartActor {
    type Result = MessageResult<GetCart>;
    fn handle(&mut self, _: GetCart, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.cart.clone())
    }
}

impl Handler<ChangeCart> for CartActor {
    type Result = AtomicResponse<Self, Result<Cart, CartFailure>>;

    fn handle(&mut self, msg: ChangeCart, _: &mut Context<Self>) -> Self::Result {
        // Lines merged in at login come from an anonymous cart that was
        // already counted as started when it got its first line.
        let may_start = !matches!(msg.0, CartChange::Merge { .. });
        let mut next = self.cart.clone();
        if let Err(e) = next.apply(msg.0, now_unix()) {
            return AtomicResponse::new(Box::pin(fut::ready(Err(e.into()))));
        }
        let starts = may_start && self.cart.lines.is_empty() && !next.lines.is_empty();
        if !starts {
            let saved = self.store.save_cart(&next).map(|()| {
                self.cart = next.clone();
                next
            });
            return AtomicResponse::new(Box::pin(fut::ready(saved.map_err(CartFailure::from))));
        }
        // A starting cart is counted in the day's analytics, a write the
        // checkout committer batches (atomic: no other change to this cart
        // runs before it is done).
        let store = self.store.clone();
        let saving = next.clone();
        AtomicResponse::new(Box::pin(
            async move { store.start_cart(saving).await }
                .into_actor(self)
                .map(move |saved, actor, _| {
                    saved?;
                    actor.cart = next.clone();
                    Ok(next)
                }),
        ))
    }
}

impl Handler<DrainCart> for CartActor {
    type Result = Result<Vec<CartLine>, StoreError>;

    fn handle(&mut self, msg: DrainCart, ctx: &mut Context<Self>) -> Self::Result {
        self.store
            .delete_anonymous_cart(self.cart.id, &msg.token_hash)?;
        let lines = std::mem::take(&mut self.cart.lines);
        // The cart is gone: a later lookup starts fresh.
        ctx.stop();
        Ok(lines)
    }
}

impl Handler<PlaceOrder> for CartActor {
    type Result = AtomicResponse<Self, Result<Placed, CheckoutError>>;

    fn handle(&mut self, plan: PlaceOrder, _: &mut Context<Self>) -> Self::Result {
        let lines = self.cart.lines.clone();
        let products = match self.products_of_lines() {
            Ok(products) => products,
            Err(e) => return AtomicResponse::new(Box::pin(fut::ready(Err(e.into())))),
        };
        let unavailable: Vec<(ProductId, String)> = lines
            .iter()
            .filter_map(|l| match products.get(&l.product_id) {
                Some(p) if p.is_active => None,
                Some(p) => Some((l.product_id, p.name.clone())),
                None => Some((l.product_id, String::new())),
            })
            .collect();
        let early = if lines.is_empty() {
            Some(CheckoutError::EmptyCart)
        } else if !unavailable.is_empty() {
            Some(CheckoutError::Unavailable(unavailable))
        } else {
            None
        };
        if let Some(error) = early {
            return AtomicResponse::new(Box::pin(fut::ready(Err(error))));
        }
        let names = products
            .iter()
            .map(|(id, p)| (*id, p.name.clone()))
            .collect();
        let reserving = reserve_all(self.inventory.clone(), lines, names);
        // The cart stays locked (atomic response) from reserving through
        // the transaction, so the order holds exactly the reserved lines.
        AtomicResponse::new(Box::pin(reserving.into_actor(self).then(
            move |reserved, actor, _| {
                let prepared = reserved.and_then(|reserved| {
                    Ok((
                        actor.prepare_checkout(plan, &products, &reserved)?,
                        reserved,
                    ))
                });
                let store = actor.store.clone();
                async move {
                    let (write, reserved) = prepared?;
                    Ok::<_, CheckoutError>((store.place_checkout(write).await, reserved))
                }
                .into_actor(actor)
                .map(move |placed, actor, _| {
                    let (outcome, reserved) = placed?;
                    actor.settle_checkout(outcome, &products, reserved)
                })
            },
        )))
    }
}

impl Handler<Shutdown> for CartActor {
    type Result = bool;
    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) -> bool {
        // Every change is already in sled; nothing is lost by stopping.
        ctx.stop();
        true
    }
}
