//! Storefront: a real-time e-commerce server. One process serves the REST
//! API and the WebSocket; sled in one data directory holds everything
//! durable. See DESIGN.md in the project's shared notes for the invariants.

pub mod actors;
pub mod api;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod demo;
pub mod domain;
pub mod mail;
pub mod payments;
pub mod services;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod ws;
