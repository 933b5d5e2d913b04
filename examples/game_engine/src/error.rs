//! Why the game engine stopped.

use event_core::store::{StoreError, rusqlite};
use event_core::{PublishError, ReplayError, SubscribeError};
use std::io;

/// Why a phase of the example, or its verification, could not run.
///
/// A verification that ran and found a problem is not an error: see
/// [`Verification`](crate::Verification).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The event store failed: opening the file, reading or writing it.
    #[error("the event store failed")]
    Store(#[from] StoreError),
    /// A query of a handler or of the verification failed on its own connection.
    #[error("a query failed")]
    Query(#[from] rusqlite::Error),
    /// A subscription was refused.
    #[error("cannot subscribe")]
    Subscribe(#[from] SubscribeError),
    /// An event could not be published.
    #[error("cannot publish")]
    Publish(#[from] PublishError),
    /// The replay of a subscription was refused.
    #[error("cannot replay")]
    Replay(#[from] ReplayError),
    /// The output could not be written, or the child process not run.
    #[error("input/output failed")]
    Io(#[from] io::Error),
    /// A blocking task of a handler panicked or was cancelled.
    #[error("a blocking task did not finish")]
    Join(#[from] tokio::task::JoinError),
    /// The child process of phase 1 did not behave as told.
    #[error("phase 1 child process: {0}")]
    Child(String),
    /// Something happened that the story does not allow.
    #[error("unexpected: {0}")]
    Unexpected(String),
}
