//! What stops a run.

use event_core::transport::TransportError;
use event_core::{SubscribeError, WaitError};

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The broker could not be reached.
    #[error("the broker: {0}")]
    Transport(#[from] TransportError),
    /// A role could not subscribe.
    #[error(transparent)]
    Subscribe(#[from] SubscribeError),
    /// Something awaited did not come.
    #[error(transparent)]
    Wait(#[from] WaitError),
    /// A process could not be started or watched.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The demo went wrong; the message says how.
    #[error("{0}")]
    Failed(String),
}
