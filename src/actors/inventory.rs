//! One `InventoryActor` per product: the single owner of that product's
//! stock (DESIGN.md invariants 1 and 2). Its mailbox serializes every
//! change, so no lock guards stock.
//!
//! Checkout reserves units here first (all or nothing across products);
//! reservations are in memory and make the actor's "available" exact:
//! available = on_hand - reserved. The checkout's sled transaction then
//! writes the decrement, and `Commit` turns the reservation into the sale.
//! Restocks and adjustments are written by the actor itself. A restarted
//! actor reloads on_hand from sled; reservations lost with it were never
//! committed, and the checkout transaction re-checks stock anyway.

use super::hub::{Event, EventHub, Publish};
use super::registry::Shutdown;
use crate::catalog::index::CatalogIndex;
use crate::domain::inventory::StockLevel;
use crate::domain::ProductId;
use crate::store::{Store, StoreError};
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A reservation that was neither committed nor released this long after it
/// was made belongs to a checkout that died; it is dropped.
const RESERVATION_TTL: Duration = Duration::from_secs(60);

static NEXT_RESERVATION: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReservationId(u64);

/// Holds `quantity` units for a checkout.
#[derive(Message, Clone)]
#[rtype(result = "Result<ReservationId, Shortage>")]
pub struct Reserve {
    pub quantity: i64,
}

/// Not enough units: `available` is what could be reserved now.
#[derive(Debug, Clone, Copy)]
pub struct Shortage {
    pub available: i64,
}

/// Gives reserved units back (the checkout failed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Release(pub ReservationId);

/// The checkout transaction wrote the decrement: the reservation is a sale.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Commit(pub ReservationId);

/// Changes stock: restock (`delta_received` > 0) or a correction. Refused
/// when it would leave fewer units than are on hand and reserved.
#[derive(Message, Clone)]
#[rtype(result = "Result<StockLevel, InventoryError>")]
pub struct Adjust {
    pub delta_on_hand: i64,
    pub delta_received: i64,
}

/// Sets units on hand to a figure staff counted; `received` moves by the
/// same amount so received == on_hand + sold keeps holding.
#[derive(Message, Clone)]
#[rtype(result = "Result<StockLevel, InventoryError>")]
pub struct SetOnHand(pub i64);

/// Stock changed in sled by a transaction this actor did not run (an order
/// cancelled): reload it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Refresh;

/// Current stock and units reserved.
#[derive(Message)]
#[rtype(result = "Result<(StockLevel, i64), InventoryError>")]
pub struct Level;

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("unknown product")]
    UnknownProduct,
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct InventoryActor {
    product: ProductId,
    /// None when the product has no stock record (unknown product).
    level: Option<StockLevel>,
    reservations: HashMap<ReservationId, (i64, Instant)>,
    store: Store,
    index: Arc<CatalogIndex>,
    hub: Addr<EventHub>,
    last_active: Instant,
}

impl InventoryActor {
    pub fn new(
        product: ProductId,
        store: Store,
        index: Arc<CatalogIndex>,
        hub: Addr<EventHub>,
    ) -> Self {
        let level = store.stock_level(product).unwrap_or_else(|e| {
            tracing::error!(product_id = %product, error = %e, "stock unreadable; selling nothing until it is");
            None
        });
        Self {
            product,
            level,
            reservations: HashMap::new(),
            store,
            index,
            hub,
            last_active: Instant::now(),
        }
    }

    fn reserved(&self) -> i64 {
        self.reservations.values().map(|(q, _)| q).sum()
    }

    fn available(&self) -> i64 {
        self.level.map_or(0, |l| l.on_hand) - self.reserved()
    }

    fn set_level(&mut self, next: Option<StockLevel>) {
        let before = self.level.map_or(0, |l| l.on_hand);
        self.level = next;
        let after = next.map_or(0, |l| l.on_hand);
        if before != after {
            self.index.publish_stock(self.product, after);
            self.hub.do_send(Publish(Event::StockChanged {
                product_id: self.product,
                on_hand: after,
            }));
            if before <= 0 && after > 0 {
                self.hub.do_send(Publish(Event::BackInStock {
                    product_id: self.product,
                    on_hand: after,
                }));
            }
        }
    }

    fn reload(&mut self) {
        match self.store.stock_level(self.product) {
            Ok(level) => self.set_level(level),
            Err(e) => {
                tracing::error!(product_id = %self.product, error = %e, "stock reload failed")
            }
        }
    }

    fn expire_reservations(&mut self) {
        let before = self.reservations.len();
        self.reservations
            .retain(|_, (_, made)| made.elapsed() < RESERVATION_TTL);
        if self.reservations.len() != before {
            tracing::warn!(product_id = %self.product, dropped = before - self.reservations.len(), "expired stale reservations");
        }
    }
}

impl Actor for InventoryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(RESERVATION_TTL / 4, |actor, _| actor.expire_reservations());
    }
}

impl Handler<Reserve> for InventoryActor {
    type Result = Result<ReservationId, Shortage>;

    fn handle(&mut self, msg: Reserve, _: &mut Context<Self>) -> Self::Result {
        self.last_active = Instant::now();
        let available = self.available();
        if msg.quantity <= 0 || msg.quantity > available {
            return Err(Shortage {
                available: available.max(0),
            });
        }
        let id = ReservationId(NEXT_RESERVATION.fetch_add(1, Ordering::Relaxed));
        self.reservations.insert(id, (msg.quantity, Instant::now()));
        Ok(id)
    }
}

impl Handler<Release> for InventoryActor {
    type Result = ();
    fn handle(&mut self, msg: Release, _: &mut Context<Self>) {
        self.last_active = Instant::now();
        self.reservations.remove(&msg.0);
    }
}

impl Handler<Commit> for InventoryActor {
    type Result = ();
    fn handle(&mut self, msg: Commit, _: &mut Context<Self>) {
        self.last_active = Instant::now();
        match (self.reservations.remove(&msg.0), self.level) {
            (Some((quantity, _)), Some(level)) => {
                // Exactly the decrement the checkout transaction wrote.
                self.set_level(Some(StockLevel {
                    on_hand: level.on_hand - quantity,
                    ..level
                }));
            }
            // The reservation expired or this actor restarted since: the
            // stored level is the truth.
            _ => self.reload(),
        }
    }
}

impl Handler<Adjust> for InventoryActor {
    type Result = Result<StockLevel, InventoryError>;

    fn handle(&mut self, msg: Adjust, _: &mut Context<Self>) -> Self::Result {
        self.last_active = Instant::now();
        let Some(level) = self.level else {
            return Err(InventoryError::UnknownProduct);
        };
        let reserved = self.reserved();
        if level.on_hand + msg.delta_on_hand < reserved {
            return Err(InventoryError::Refused(format!(
                "{} units are held by checkouts in progress; on hand cannot go below that",
                reserved
            )));
        }
        let next = self
            .store
            .apply_stock_delta(self.product, msg.delta_on_hand, msg.delta_received)
            .map_err(|e| match e {
                StoreError::OutOfStock(m) => InventoryError::Refused(m),
                StoreError::NotFound => InventoryError::UnknownProduct,
                other => InventoryError::Store(other),
            })?;
        self.set_level(Some(next));
        Ok(next)
    }
}

impl Handler<SetOnHand> for InventoryActor {
    type Result = Result<StockLevel, InventoryError>;

    fn handle(&mut self, msg: SetOnHand, ctx: &mut Context<Self>) -> Self::Result {
        let Some(level) = self.level else {
            return Err(InventoryError::UnknownProduct);
        };
        // Computed inside the actor, so no checkout can slip in between
        // reading the level and writing the change.
        let delta = msg.0 - level.on_hand;
        self.handle(
            Adjust {
                delta_on_hand: delta,
                delta_received: delta,
            },
            ctx,
        )
    }
}

impl Handler<Refresh> for InventoryActor {
    type Result = ();
    fn handle(&mut self, _: Refresh, _: &mut Context<Self>) {
        self.last_active = Instant::now();
        self.reload();
    }
}

impl Handler<Level> for InventoryActor {
    type Result = Result<(StockLevel, i64), InventoryError>;
    fn handle(&mut self, _: Level, _: &mut Context<Self>) -> Self::Result {
        self.level
            .map(|l| (l, self.reserved()))
            .ok_or(InventoryError::UnknownProduct)
    }
}

impl Handler<Shutdown> for InventoryActor {
    type Result = bool;
    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) -> bool {
        // Reservations live only here: never stop while holding one.
        if !self.reservations.is_empty() {
            return false;
        }
        ctx.stop();
        true
    }
}
