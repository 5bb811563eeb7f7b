//! One `InventoryActor` per product: the single owner of that product's
//! stock (DESIGN.md invariants 1 and 2). Its mailbox serializes every
//! change, so no lock guards stock.
//!
//! Checkout reserves units here first (all or nothing across products);
//! reservations are in memory and make the actor's "available" exact:
//! available = on_hand - reserved. The checkout's sled transaction then
//! writes the decrement, and `Commit` turns the reservation into the sale.
//! Restocks and adjustments are written by the actor itself; cancellations
//! write their returns in the order's transaction and tell the actor.
//!
//! The actor's figure is kept exact by deltas, never by re-reading: every
//! stored change carries the stock sequence number it produced, and the
//! actor applies a change only if that number is above the one it loaded
//! at start (older changes are already in what it loaded). So messages may
//! arrive in any order, or after a restart, and nothing is counted twice.
//! Reservations lost with a restarted actor were never committed, and the
//! checkout transaction re-checks stock anyway.

use super::hub::{Event, EventHub, Publish};
use super::registry::Shutdown;
use crate::catalog::index::CatalogIndex;
use crate::domain::inventory::StockLevel;
use crate::domain::ledger::StockChange;
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

/// The checkout transaction wrote the decrement (with stock sequence
/// number `seq`): the reservation is a sale.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Commit {
    pub reservation: ReservationId,
    pub quantity: i64,
    pub seq: u64,
}

/// Changes stock: restock (`delta_received` > 0) or a correction. Refused
/// when it would leave fewer units than are on hand and reserved.
#[derive(Message, Clone)]
#[rtype(result = "Result<StockLevel, InventoryError>")]
pub struct Adjust {
    pub delta_on_hand: i64,
    pub delta_received: i64,
    /// Why, and who: written to the stock ledger with the change.
    pub change: StockChange,
}

/// Sets units on hand to a figure staff counted; `received` moves by the
/// same amount so received == on_hand + sold keeps holding.
#[derive(Message, Clone)]
#[rtype(result = "Result<StockLevel, InventoryError>")]
pub struct SetOnHand(pub i64, pub StockChange);

/// A cancelled order put `quantity` units back in the transaction that
/// produced stock sequence number `seq`.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Returned {
    pub quantity: i64,
    pub seq: u64,
}

/// Current stock and units reserved.
#[derive(Message, Clone, Copy)]
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
    /// Sequence number of the stored level this actor started from.
    loaded_seq: u64,
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
            loaded_seq: level.map_or(0, |l| l.seq),
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
                self.tell_wishlists(after);
            }
        }
    }

    /// Applies a stored change unless the loaded level already holds it.
    fn apply_stored(&mut self, delta_on_hand: i64, delta_received: i64, seq: u64) {
        if seq <= self.loaded_seq {
            return;
        }
        if let Some(level) = self.level {
            self.set_level(Some(StockLevel {
                on_hand: level.on_hand + delta_on_hand,
                received: level.received + delta_received,
                seq: level.seq.max(seq),
            }));
        }
    }

    /// Each user with this product on their wishlist gets an event on
    /// their own topic, so their sessions can tell them it is back.
    fn tell_wishlists(&self, on_hand: i64) {
        let owners = match self.store.wishlisted_by(self.product) {
            Ok(owners) => owners,
            Err(e) => {
                tracing::warn!(product_id = %self.product, error = %e, "wishlist owners unreadable; no back-in-stock notices");
                return;
            }
        };
        for owner in owners {
            self.hub.do_send(Publish(Event::WishlistBackInStock {
                owner,
                product_id: self.product,
                on_hand,
            }));
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
        // The reservation may have expired; the sale is applied all the same.
        self.reservations.remove(&msg.reservation);
        self.apply_stored(-msg.quantity, 0, msg.seq);
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
            .apply_stock_delta(
                self.product,
                msg.delta_on_hand,
                msg.delta_received,
                &msg.change,
            )
            .map_err(|e| match e {
                StoreError::OutOfStock(m) => InventoryError::Refused(m),
                StoreError::NotFound => InventoryError::UnknownProduct,
                other => InventoryError::Store(other),
            })?;
        self.apply_stored(msg.delta_on_hand, msg.delta_received, next.seq);
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
                change: msg.1,
            },
            ctx,
        )
    }
}

impl Handler<Returned> for InventoryActor {
    type Result = ();
    fn handle(&mut self, msg: Returned, _: &mut Context<Self>) {
        self.last_active = Instant::now();
        self.apply_stored(msg.quantity, 0, msg.seq);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::hub::{Deliver, Lagged, Subscribe, Topic, Unsubscribe};
    use crate::catalog::generate::{self, Seq};
    use crate::domain::ledger::StockCause;
    use crate::domain::money::Currency;
    use crate::domain::UserId;

    /// One product with 10 units, its actor, and the store behind it.
    fn setup(dir: &std::path::Path) -> (Store, ProductId, Arc<CatalogIndex>, Addr<EventHub>) {
        let store = Store::open(dir).unwrap();
        let skeleton = generate::create_skeleton(&store).unwrap();
        let mut new = generate::product(1, &mut Seq::new(1), &skeleton, Currency::USD);
        new.stock = 10;
        let (product, _) = store.create_product(new).unwrap();
        let index = Arc::new(CatalogIndex::build(&store).unwrap());
        (store, product.id, index, EventHub::default().start())
    }

    async fn on_hand(actor: &Addr<InventoryActor>) -> i64 {
        actor.send(Level).await.unwrap().unwrap().0.on_hand
    }

    #[actix::test]
    async fn changes_told_out_of_order_or_to_a_restarted_actor_count_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, product, index, hub) = setup(dir.path());
        let start =
            || InventoryActor::new(product, store.clone(), index.clone(), hub.clone()).start();
        let actor = start();
        let reservation = actor.send(Reserve { quantity: 2 }).await.unwrap().unwrap();
        // The checkout transaction takes 2 units (seq 1), then a cancelled
        // order returns 3 (seq 2); the actor hears of the return first.
        let sale = store
            .apply_stock_delta(product, -2, 0, &StockChange::of(StockCause::Adjustment))
            .unwrap();
        let back = store
            .apply_stock_delta(product, 3, 0, &StockChange::of(StockCause::Adjustment))
            .unwrap();
        actor.do_send(Returned {
            quantity: 3,
            seq: back.seq,
        });
        actor.do_send(Commit {
            reservation,
            quantity: 2,
            seq: sale.seq,
        });
        assert_eq!(on_hand(&actor).await, 11);
        assert_eq!(store.stock_level(product).unwrap().unwrap().on_hand, 11);

        // A restarted actor loads 11; late news of those changes is ignored.
        let restarted = start();
        restarted.do_send(Returned {
            quantity: 3,
            seq: back.seq,
        });
        restarted.do_send(Commit {
            reservation,
            quantity: 2,
            seq: sale.seq,
        });
        assert_eq!(on_hand(&restarted).await, 11);
        assert_eq!(
            restarted
                .send(Reserve { quantity: 11 })
                .await
                .unwrap()
                .map(|_| ())
                .ok(),
            Some(())
        );
    }

    /// Records what the hub delivers to it.
    #[derive(Default)]
    struct Inbox(Vec<Arc<Event>>);

    impl Actor for Inbox {
        type Context = Context<Self>;
    }

    impl Handler<Deliver> for Inbox {
        type Result = ();
        fn handle(&mut self, msg: Deliver, _: &mut Context<Self>) {
            self.0.push(msg.0);
        }
    }

    impl Handler<Lagged> for Inbox {
        type Result = ();
        fn handle(&mut self, _: Lagged, _: &mut Context<Self>) {}
    }

    #[derive(Message)]
    #[rtype(result = "Vec<Arc<Event>>")]
    struct Take;

    impl Handler<Take> for Inbox {
        type Result = MessageResult<Take>;
        fn handle(&mut self, _: Take, _: &mut Context<Self>) -> Self::Result {
            MessageResult(std::mem::take(&mut self.0))
        }
    }

    async fn subscribe(hub: &Addr<EventHub>, id: u64, user: UserId) -> Addr<Inbox> {
        let inbox = Inbox::default().start();
        hub.send(Subscribe {
            id,
            topic: Topic::User(user),
            deliver: inbox.clone().recipient(),
            lagged: inbox.clone().recipient(),
        })
        .await
        .unwrap();
        inbox
    }

    #[actix::test]
    async fn a_wishlisted_product_back_in_stock_is_announced_to_each_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let (store, product, index, hub) = setup(dir.path());
        let (fan, bystander) = (UserId(501), UserId(502));
        store.wishlist_add(fan, product, 0).unwrap();
        let fan_inbox = subscribe(&hub, 1, fan).await;
        let bystander_inbox = subscribe(&hub, 2, bystander).await;
        let actor = InventoryActor::new(product, store.clone(), index, hub.clone()).start();
        let count = StockChange::of(StockCause::Count);
        actor
            .send(SetOnHand(0, count.clone()))
            .await
            .unwrap()
            .unwrap();
        actor
            .send(Adjust {
                delta_on_hand: 4,
                delta_received: 4,
                change: StockChange::of(StockCause::Restock),
            })
            .await
            .unwrap()
            .unwrap();
        // A later change that keeps it in stock is not news.
        actor.send(SetOnHand(6, count)).await.unwrap().unwrap();
        // The hub handles messages in order: once this is answered, it has
        // handed every earlier event to the inboxes.
        hub.send(Unsubscribe {
            id: 99,
            topic: Topic::Staff,
        })
        .await
        .unwrap();
        let events = fan_inbox.send(Take).await.unwrap();
        let notices: Vec<_> = events
            .iter()
            .filter_map(|e| match e.as_ref() {
                Event::WishlistBackInStock {
                    owner,
                    product_id,
                    on_hand,
                } => Some((*owner, *product_id, *on_hand)),
                _ => None,
            })
            .collect();
        assert_eq!(notices, vec![(fan, product, 4)]);
        assert!(bystander_inbox.send(Take).await.unwrap().is_empty());
        // The ledger holds every one of those changes and adds up to the level.
        let level = store.stock_level(product).unwrap().unwrap();
        assert_eq!(
            store.ledger_sums(product).unwrap(),
            (level.on_hand, level.received)
        );
        assert_eq!(store.ledger_page(product, 0, 100).unwrap().0, 4);
    }
}
