//! Where the events travel: the one thing that differs between the in-memory run and the
//! run over Redis. Handlers, gateway and checks do not know which one they are on.

use event_core::EventBus;
use event_core::transport::{RedisTransport, TransportError};
use std::time::Duration;

/// Shards per topic on Redis: at most this many members of a group work at once.
pub const SHARDS: u32 = 8;

/// How long a worker's shard leases last without renewal: how soon a killed worker's
/// shards pass to the others.
pub const LEASE: Duration = Duration::from_secs(1);

/// The bus's backing.
#[derive(Debug, Clone)]
pub enum Backend {
    /// One process, every role in it.
    InMemory,
    /// Redis Streams, a stream per shard of each context's topic (`user`, `file`, ...).
    Redis {
        /// `redis://127.0.0.1:{port}`.
        url: String,
        /// The key prefix of this run.
        prefix: String,
    },
}

impl Backend {
    /// A bus on this backing, for `consumer`: its member name in every consumer group.
    ///
    /// # Errors
    ///
    /// [`TransportError`] when the Redis server cannot be reached.
    pub async fn bus(&self, consumer: &str) -> Result<EventBus, TransportError> {
        let builder = EventBus::builder().consumer_name(consumer);
        Ok(match self {
            Backend::InMemory => builder.build(),
            Backend::Redis { url, prefix } => builder
                .transport(
                    RedisTransport::builder(url)
                        .prefix(prefix)
                        .shards(SHARDS)
                        .lease(LEASE)
                        .topics_by_context()
                        .connect()
                        .await?,
                )
                .build(),
        })
    }
}
