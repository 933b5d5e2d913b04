//! The event system of a software-as-a-service platform ("The Collective Strategist": a
//! TypeScript system on Redis Streams, reproduced from its design doc) on this toolkit.
//!
//! Events are grouped in streams by context, workers share consumer groups, the gateway
//! asks and waits for answers by correlation id, a file-processing saga waits for each
//! step, a broken upload ends in the dead letters, and a worker killed midway hands its
//! shards to the others. `cargo run -p saas` runs it over Redis in several processes;
//! `cargo run -p saas -- --in-memory` runs the same handlers in one process.
//!
//! - [`events`]: the nine events of the catalog.
//! - [`roles`]: the workers' handlers, one consumer group per role.
//! - [`gateway`]: sign-ups and the upload sagas.
//! - [`backend`]: the one place where in memory and Redis differ.
//! - [`in_memory`]: the flow in one process.
//! - [`redis_server`], [`children`], [`observer`]: what the multi-process orchestrator
//!   (`main.rs`) needs: a throwaway Redis, child processes, the shard owners.
//! - [`dead_letters`]: the end-of-run check of the dead letters.

#![warn(missing_docs)]

pub mod backend;
pub mod children;
pub mod dead_letters;
pub mod error;
pub mod events;
pub mod gateway;
pub mod in_memory;
pub mod log;
pub mod observer;
pub mod redis_server;
pub mod roles;
pub mod scenario;

pub use error::Error;
