//! Why the main example stopped.

use event_core::store::StoreError;
use event_core::{PublishError, RegistryError, SubscribeError, WaitError};
use std::io;
use std::path::PathBuf;

/// Why the example could not run to its end.
///
/// A run that completed but lost something (a dead letter, a checkpoint short of the head)
/// is not an error: see [`FlowReport::is_complete`](super::FlowReport::is_complete).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database file exists already: the example starts from an empty store, so that
    /// what it reports is its own flow. Give the path of a new file, or none.
    #[error("{} exists already; give the path of a new file", .0.display())]
    Exists(PathBuf),
    /// The event store failed: opening the file, reading or writing it.
    #[error("the event store failed")]
    Store(#[from] StoreError),
    /// A subscription was refused.
    #[error("cannot subscribe")]
    Subscribe(#[from] SubscribeError),
    /// The script could not publish an event.
    #[error("cannot publish")]
    Publish(#[from] PublishError),
    /// An event the script waits for did not come: a handler failed (see the dead letters)
    /// or is too slow.
    #[error("an awaited event did not come")]
    Wait(#[from] WaitError),
    /// The application's own database work failed (the HTTP API's sqlx pool).
    #[error("the orders database failed")]
    Database(#[from] event_core::store::sqlx::Error),
    /// Two event types share a name and version; fix one of them.
    #[error("the event registry is inconsistent")]
    Registry(#[from] RegistryError),
    /// The output could not be written, or the temporary directory not created.
    #[error("input/output failed")]
    Io(#[from] io::Error),
}
