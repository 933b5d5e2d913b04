//! Why a transport operation failed.

use std::error::Error;
use std::sync::Arc;

/// The underlying cause of a transport error, shared (an `Arc`) so the error is `Clone`.
pub(crate) type Source = Arc<dyn Error + Send + Sync + 'static>;

/// Why a transport operation failed. Every variant names the broker (its address, without
/// credentials).
///
/// ```
/// use event_core::transport::TransportError;
///
/// let error = TransportError::ShardCount {
///     broker: "redis://127.0.0.1:6379".into(),
///     topic: "main".into(),
///     configured: 4,
///     recorded: 8,
/// };
/// assert_eq!(
///     error.to_string(),
///     "redis://127.0.0.1:6379: topic `main` has 8 shards on the broker, this process is \
///      configured with 4: use the broker's count (a new count needs a new prefix)",
/// );
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The broker could not be reached, or the connection was lost midway. Retry later; the
    /// bus's members reconnect with backoff on their own.
    #[error("{broker}: broker unavailable: {source}")]
    Unavailable {
        /// The broker.
        broker: String,
        /// What the client said.
        #[source]
        source: Source,
    },
    /// The broker answered with an error (a wrong type at a key, a command it does not know).
    #[error("{broker}: the broker refused `{command}`: {message}")]
    Refused {
        /// The broker.
        broker: String,
        /// The command refused.
        command: String,
        /// What the broker said.
        message: String,
    },
    /// The shard's lease passed to another member since this one received the entry: the
    /// write was refused, and the member must drop what it holds of the shard.
    #[error(
        "{broker}: shard {shard} of topic `{topic}` belongs to another member now (fencing token {token} is stale)"
    )]
    Fenced {
        /// The broker.
        broker: String,
        /// The topic.
        topic: String,
        /// The shard.
        shard: u32,
        /// The stale token.
        token: u64,
    },
    /// The broker records another shard count for the topic than this process is configured
    /// with: refusing to start, since the two would place keys on different shards.
    #[error(
        "{broker}: topic `{topic}` has {recorded} shards on the broker, this process is configured with {configured}: use the broker's count (a new count needs a new prefix)"
    )]
    ShardCount {
        /// The broker.
        broker: String,
        /// The topic.
        topic: String,
        /// This process's count.
        configured: u32,
        /// The broker's count.
        recorded: u32,
    },
    /// A value read from the broker is not what the toolkit wrote there.
    #[error("{broker}: unexpected data at `{key}`: {reason}")]
    Corrupt {
        /// The broker.
        broker: String,
        /// The key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl TransportError {
    /// Whether the broker could not be reached: worth retrying after a while.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, TransportError::Unavailable { .. })
    }
}
