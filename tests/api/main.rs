//! Integration tests: every test starts the real server on a free port with
//! its own temporary data directory and talks HTTP to it.

mod accounts;
mod admin;
mod cart;
mod catalog;
mod checkout;
mod crashloop;
mod disk_full;
mod errors;
mod helpers;
mod import;
mod limits;
mod mail;
mod orders;
mod payments;
mod payments_providers;
mod reviews;
mod security;
mod store;
mod tokens;
mod web;
mod wishlist;
mod ws;
