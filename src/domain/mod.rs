//! Plain types and rules with no I/O: ids, validated values and the errors
//! they produce. Everything that crosses the HTTP boundary is parsed into
//! these types before it reaches the store, so the store never sees bad data.

pub mod account;
pub mod audit;
pub mod cart;
pub mod catalog;
pub mod ids;
pub mod inventory;
pub mod ledger;
pub mod money;
pub mod order;
pub mod payment;
pub mod review;
pub mod time;
pub mod validation;

pub use ids::*;
pub use validation::FieldErrors;
