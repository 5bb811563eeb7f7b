//! Services: the operations shoppers and staff perform, shared by the REST
//! handlers and the WebSocket sessions so both behave identically. Each one
//! talks to the actor that owns the state, waits for the durable flush, and
//! then publishes the committed change to the event hub ("live updates come
//! from the place that commits").

pub mod analytics;
pub mod audit;
pub mod carts;
pub mod checkout;
pub mod inventory;
pub mod orders;
pub mod payments;
pub mod reviews;
pub mod wishlists;

use crate::actors::cart::{CartFailure, CheckoutError};
use crate::actors::inventory::InventoryError;
use crate::actors::{CartActor, EventHub, InventoryActor, Registry};
use crate::catalog::Catalog;
use crate::domain::cart::CartError;
use crate::domain::order::TransitionError;
use crate::domain::FieldErrors;
use crate::payments::Providers;
use crate::store::{Store, StoreError};
use actix::prelude::*;

/// Handles on everything the services need; cheap to clone.
#[derive(Clone)]
pub struct Shop {
    pub store: Store,
    pub catalog: Catalog,
    pub hub: Addr<EventHub>,
    pub carts: Addr<Registry<CartActor>>,
    pub inventory: Addr<Registry<InventoryActor>>,
    /// The enabled payment providers.
    pub payments: Providers,
}

/// Errors of the service layer; the API maps each to one status.
#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    #[error("some fields are invalid")]
    Invalid(FieldErrors),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Cart(#[from] CartError),
    #[error(transparent)]
    Checkout(CheckoutError),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Forbidden(&'static str),
    /// A rule about existing records refuses the change (HTTP 409 with `code`).
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: &'static str,
    },
    #[error("{0}")]
    LoginRequired(&'static str),
    #[error("a worker is restarting; try again")]
    Unavailable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<MailboxError> for ShopError {
    fn from(_: MailboxError) -> Self {
        ShopError::Unavailable
    }
}

impl From<CartFailure> for ShopError {
    fn from(e: CartFailure) -> Self {
        match e {
            CartFailure::Rule(rule) => ShopError::Cart(rule),
            CartFailure::Store(store) => ShopError::Store(store),
        }
    }
}

impl From<CheckoutError> for ShopError {
    fn from(e: CheckoutError) -> Self {
        match e {
            CheckoutError::Store(store) => ShopError::Store(store),
            CheckoutError::WorkerUnavailable => ShopError::Unavailable,
            other => ShopError::Checkout(other),
        }
    }
}

impl From<InventoryError> for ShopError {
    fn from(e: InventoryError) -> Self {
        match e {
            InventoryError::UnknownProduct => ShopError::NotFound("product"),
            InventoryError::Refused(message) => ShopError::Refused(message),
            InventoryError::Store(store) => ShopError::Store(store),
        }
    }
}
