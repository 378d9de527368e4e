//! End-to-end tests: real `warren` processes on loopback, driven by real WebSocket clients.
// A test binary links every dependency of the package and exports nothing: these lints are for the
// library crates.
#![allow(
    unused_crate_dependencies,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used
)]

mod client;
mod cluster;
mod cluster_matchmaking;
mod common;
mod deploy;
mod games;
mod healing;
mod library;
mod lifecycle;
mod limits;
mod loadtest;
mod matchmaking;
mod migration;
mod observability;
mod playground;
mod protocol_errors;
mod proxies;
mod rolling;
mod scale_in;
mod sessions;
mod stranded;
#[cfg(feature = "test-hooks")]
mod supervision;
