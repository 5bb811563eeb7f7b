//! Actors own the state that changes under contention (DESIGN.md invariant
//! 2): one `CartActor` per cart and one `InventoryActor` per product, each
//! the single writer of its cart or its product's stock, so no Mutex or
//! RwLock guards either. A `Registry` starts them on first use, spreads them
//! over a few arbiter threads by key, stops idle ones and replaces one that
//! died. The `EventHub` fans committed changes out to live subscribers.

pub mod cart;
pub mod hub;
pub mod inventory;
pub mod registry;

pub use cart::CartActor;
pub use hub::EventHub;
pub use inventory::InventoryActor;
pub use registry::Registry;

/// Asks a registry-managed actor. A dead or stopping actor answers with a
/// mailbox error, which callers report as 503 rather than wait forever.
#[derive(Debug, thiserror::Error)]
#[error("the {0} worker is restarting; try again")]
pub struct ActorUnavailable(pub &'static str);
