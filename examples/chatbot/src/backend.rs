//! Where the events travel: the one thing that differs between the in-memory run and the
//! runs over Redis or NATS. Handlers, the story and its checks do not know which one they
//! are on: only the bus's builder changes.

use event_core::EventBus;
use event_core::transport::{NatsTransport, RedisTransport, TransportError};
use std::fmt;

/// Shards per topic on the broker. One: the JSON log then reads every event in the order
/// the broker took them, as the in-memory log does; and every consumer group here has a
/// single member, so more shards would let no more work run at once.
pub const SHARDS: u32 = 1;

/// The bus's backing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// One process, every subscription in it.
    InMemory,
    /// Redis Streams, shared by the processes of the run.
    Redis {
        /// `redis://127.0.0.1:{port}`.
        url: String,
        /// The key prefix of this run.
        prefix: String,
    },
    /// NATS JetStream, shared by the processes of the run.
    Nats {
        /// `nats://127.0.0.1:{port}`.
        url: String,
        /// The prefix of this run's streams, consumers and buckets.
        prefix: String,
    },
}

impl Backend {
    /// A bus on this backing; `consumer` is this process's member name in every consumer
    /// group.
    ///
    /// # Errors
    ///
    /// [`TransportError`] when the broker cannot be reached.
    pub async fn bus(&self, consumer: &str) -> Result<EventBus, TransportError> {
        let builder = EventBus::builder().consumer_name(consumer);
        Ok(match self {
            Backend::InMemory => builder.build(),
            Backend::Redis { url, prefix } => builder
                .transport(
                    RedisTransport::builder(url)
                        .prefix(prefix)
                        .shards(SHARDS)
                        .connect()
                        .await?,
                )
                .build(),
            Backend::Nats { url, prefix } => builder
                .transport(
                    NatsTransport::builder(url)
                        .prefix(prefix)
                        .shards(SHARDS)
                        .connect()
                        .await?,
                )
                .build(),
        })
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::InMemory => f.write_str("memory"),
            Backend::Redis { url, prefix } => write!(f, "Redis Streams at {url}, prefix {prefix}"),
            Backend::Nats { url, prefix } => write!(f, "NATS JetStream at {url}, prefix {prefix}"),
        }
    }
}
