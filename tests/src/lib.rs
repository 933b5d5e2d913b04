//! Workspace-level integration tests: see `tests/*.rs` and the trybuild cases in `ui/`.
//!
//! The library holds what several tests (and benchmarks) share: [`postgres_server`] starts a
//! throwaway PostgreSQL server, [`redis_server`] a throwaway Redis server, [`nats_server`] a
//! throwaway NATS server with JetStream, [`handled`]
//! records what the members of a consumer group handled, and [`eventually`] waits for a
//! condition with a limit.

pub mod handled;
pub mod nats_server;
pub mod postgres_server;
pub mod redis_server;
mod server;

use std::time::{Duration, Instant};

/// Polls `check` every 20 ms until it holds.
///
/// # Panics
///
/// After `limit`, saying `what` did not happen.
pub async fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The README's Rust examples, run as doctests so the quick start keeps compiling.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// `event-core`'s README, as crates.io shows it: its example runs as a doctest.
#[doc = include_str!("../../event-core/README.md")]
#[cfg(doctest)]
pub struct EventCoreReadmeDoctests;

/// `event-derive`'s README, as crates.io shows it: its example runs as a doctest.
#[doc = include_str!("../../event-derive/README.md")]
#[cfg(doctest)]
pub struct EventDeriveReadmeDoctests;

/// `event-catalog`'s README, as crates.io shows it: its examples run as doctests.
#[doc = include_str!("../../event-catalog/README.md")]
#[cfg(doctest)]
pub struct EventCatalogReadmeDoctests;

/// `event-admin`'s README, as crates.io shows it: its examples run as doctests.
#[doc = include_str!("../../event-admin/README.md")]
#[cfg(doctest)]
pub struct EventAdminReadmeDoctests;
