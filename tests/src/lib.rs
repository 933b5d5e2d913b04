//! Workspace-level integration tests: see `tests/*.rs` and the trybuild cases in `ui/`.
//!
//! The library holds what several tests (and benchmarks) share: [`postgres_server`] starts a
//! throwaway PostgreSQL server, [`redis_server`] a throwaway Redis server, and [`handled`]
//! records what the members of a consumer group handled.

pub mod handled;
pub mod postgres_server;
pub mod redis_server;

/// The README's Rust examples, run as doctests so the quick start keeps compiling.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
