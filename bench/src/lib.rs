//! Load benchmarks and crash loops against the real storefront server:
//! everything goes over loopback HTTP (and WebSocket) to the release
//! binary, started as a child process on a fresh data dir. Figures are
//! printed, never asserted; the crash loop's invariants are.

pub mod client;
pub mod crashloop;
pub mod scenarios;
pub mod seed;
pub mod server;
pub mod stats;
pub mod ws;
