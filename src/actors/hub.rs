//! The event hub: committed changes go in (`Publish`), and every subscriber
//! of the matching topic gets them (`Deliver`). Publishing is `do_send`, so
//! it never blocks or fails a checkout; a subscriber whose mailbox is closed
//! is dropped, one whose mailbox is full misses the event and is told so
//! (`lagged`), so a slow consumer never slows the shop.

use crate::domain::{CartId, ProductId, UserId};
use actix::prelude::*;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// What a subscriber listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Events of one user: their orders, their wishlist notices.
    User(UserId),
    /// One cart (every tab and device showing it).
    Cart(CartId),
    /// Stock of one product.
    Product(ProductId),
    /// The staff feed: every order.
    Staff,
}

/// A committed change. `payload` is the same JSON view the REST API
/// returns, so REST and live updates never disagree.
#[derive(Debug, Clone)]
pub enum Event {
    CartUpdated {
        cart_id: CartId,
        payload: Value,
    },
    StockChanged {
        product_id: ProductId,
        on_hand: i64,
    },
    /// A product went from sold out to available (wishlist notices).
    BackInStock {
        product_id: ProductId,
        on_hand: i64,
    },
    /// A product on `owner`'s wishlist is back in stock.
    WishlistBackInStock {
        owner: UserId,
        product_id: ProductId,
        on_hand: i64,
    },
    OrderCreated {
        owner: UserId,
        payload: Value,
    },
    OrderUpdated {
        owner: UserId,
        payload: Value,
    },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::CartUpdated { .. } => "cart.updated",
            Event::StockChanged { .. } => "stock.changed",
            Event::BackInStock { .. } => "product.back_in_stock",
            Event::WishlistBackInStock { .. } => "wishlist.back_in_stock",
            Event::OrderCreated { .. } => "order.created",
            Event::OrderUpdated { .. } => "order.updated",
        }
    }

    fn topics(&self) -> Vec<Topic> {
        match self {
            Event::CartUpdated { cart_id, .. } => vec![Topic::Cart(*cart_id)],
            Event::StockChanged { product_id, .. } | Event::BackInStock { product_id, .. } => {
                vec![Topic::Product(*product_id)]
            }
            Event::WishlistBackInStock { owner, .. } => vec![Topic::User(*owner)],
            Event::OrderCreated { owner, .. } | Event::OrderUpdated { owner, .. } => {
                vec![Topic::User(*owner), Topic::Staff]
            }
        }
    }
}

/// An event handed to one subscriber.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Deliver(pub Arc<Event>);

/// Sent to a subscriber that missed events because its mailbox was full.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Lagged;

/// Starts sending a topic's events to `subscriber` (identified by `id`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    pub id: u64,
    pub topic: Topic,
    pub deliver: Recipient<Deliver>,
    pub lagged: Recipient<Lagged>,
}

/// Stops one topic for a subscriber.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    pub id: u64,
    pub topic: Topic,
}

/// Drops every subscription of a subscriber (its session ended).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub id: u64,
}

/// A committed change to fan out.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Publish(pub Event);

struct Subscriber {
    deliver: Recipient<Deliver>,
    lagged: Recipient<Lagged>,
}

#[derive(Default)]
pub struct EventHub {
    topics: HashMap<Topic, HashMap<u64, Subscriber>>,
    published: u64,
}

impl Actor for EventHub {
    type Context = Context<Self>;
}

impl Handler<Subscribe> for EventHub {
    type Result = ();
    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        self.topics.entry(msg.topic).or_default().insert(
            msg.id,
            Subscriber {
                deliver: msg.deliver,
                lagged: msg.lagged,
            },
        );
    }
}

impl Handler<Unsubscribe> for EventHub {
    type Result = ();
    fn handle(&mut self, msg: Unsubscribe, _: &mut Context<Self>) {
        if let Some(subscribers) = self.topics.get_mut(&msg.topic) {
            subscribers.remove(&msg.id);
            if subscribers.is_empty() {
                self.topics.remove(&msg.topic);
            }
        }
    }
}

impl Handler<Disconnect> for EventHub {
    type Result = ();
    fn handle(&mut self, msg: Disconnect, _: &mut Context<Self>) {
        self.topics.retain(|_, subscribers| {
            subscribers.remove(&msg.id);
            !subscribers.is_empty()
        });
    }
}

impl Handler<Publish> for EventHub {
    type Result = ();
    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) {
        self.published += 1;
        let event = Arc::new(msg.0);
        for topic in event.topics() {
            let Some(subscribers) = self.topics.get_mut(&topic) else {
                continue;
            };
            subscribers.retain(|id, subscriber| {
                match subscriber.deliver.try_send(Deliver(event.clone())) {
                    Ok(()) => true,
                    Err(SendError::Full(_)) => {
                        tracing::debug!(subscriber = id, "subscriber lagging; event dropped");
                        subscriber.lagged.do_send(Lagged);
                        true
                    }
                    Err(SendError::Closed(_)) => false,
                }
            });
            if subscribers.is_empty() {
                self.topics.remove(&topic);
            }
        }
    }
}
