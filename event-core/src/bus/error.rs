//! Errors of the bus: publishing, waiting, handling, redelivering.

use std::fmt;

/// Why `publish` failed. The event was not delivered to any subscription.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The payload did not serialize to JSON (a map with non-string keys, a failing
    /// `Serialize` impl). Fix the event type.
    #[error("event payload does not serialize: {0}")]
    Serialize(#[source] serde_json::Error),
    /// `try_publish` found a subscription's queue full. Nothing was enqueued anywhere;
    /// retry later, or use `publish`, which waits for room.
    #[error("queue of subscription `{subscription}` is full")]
    Full {
        /// The subscription whose queue is full.
        subscription: String,
    },
    /// The bus was shut down. Nothing more is accepted.
    #[error("the event bus is shut down")]
    Closed,
    /// The store did not take the event: nothing was appended. The store's error says why
    /// (a read-only database, a full disk, a lost connection).
    #[error("the event store did not take the event: {0}")]
    Store(#[source] crate::store::StoreError),
    /// `try_publish` on a durable bus or one on a transport, whose `publish` waits for the
    /// store's commit or the broker's acknowledgement: use `publish`.
    #[error(
        "try_publish needs an in-memory bus; a durable bus or a transport waits for the store or the broker: use publish"
    )]
    Durable,
    /// The broker did not take the event (down, unreachable, or refusing it): it was not
    /// published. The error says why; publish again once the broker is back.
    #[error("the broker did not take the event: {0}")]
    Transport(#[source] crate::transport::TransportError),
    /// The publish would extend a chain of causes past the loop guard's limit
    /// ([`EventBusBuilder::max_causation_depth`](crate::EventBusBuilder::max_causation_depth)):
    /// most likely a handler re-publishing what it consumes. The delivery whose handler
    /// published is dead-lettered as an event loop.
    #[error(
        "event loop: publishing `{event_type}` at causation depth {depth} exceeds the limit of {limit}"
    )]
    LoopDetected {
        /// The event refused.
        event_type: &'static str,
        /// Its causation depth.
        depth: u32,
        /// The limit.
        limit: u32,
    },
    /// The payload's JSON is larger than
    /// [`EventBusBuilder::max_payload_bytes`](crate::EventBusBuilder::max_payload_bytes)
    /// allows, where the bus had to encode it (a store, a pattern subscription).
    #[error("payload of `{event_type}` is {bytes} bytes of JSON, over the limit of {limit} bytes")]
    TooLarge {
        /// The event refused.
        event_type: String,
        /// The size of its payload's JSON.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// Field encryption could not seal the event's PII fields (no subject, or the key store
    /// failed): nothing was published.
    #[error("the event's personal fields could not be sealed: {0}")]
    Protect(#[source] crate::privacy::ProtectError),
}

/// Why `wait_for` returned without an event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// No matching event arrived in time.
    #[error("no `{event_type}` with correlation id `{correlation_id}` within {timeout:?}")]
    Timeout {
        /// The event type awaited.
        event_type: &'static str,
        /// The correlation id awaited.
        correlation_id: String,
        /// How long it waited.
        timeout: std::time::Duration,
    },
    /// The matching event arrived but its payload did not decode.
    #[error(transparent)]
    Decode(#[from] crate::DecodeError),
    /// The matching event arrived but its sealed fields could not be opened.
    #[error(transparent)]
    Protect(#[from] crate::privacy::ProtectError),
    /// The bus was shut down while waiting.
    #[error("the event bus is shut down")]
    Closed,
}

/// Why `redeliver` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedeliverError {
    /// The dead letter is not (or no longer) in the list: already redelivered, or from
    /// another bus.
    #[error("dead letter {0} is not in the list")]
    NotFound(uuid::Uuid),
    /// Its subscription no longer exists.
    #[error("subscription `{0}` does not exist")]
    NoSubscription(String),
    /// The store's dead letters could not be read.
    #[error("the event store failed: {0}")]
    Store(#[source] crate::store::StoreError),
    /// The broker's dead letters could not be read or changed.
    #[error("the broker failed: {0}")]
    Transport(#[source] crate::transport::TransportError),
    /// The bus was shut down.
    #[error("the event bus is shut down")]
    Closed,
}

/// Why `replay` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The bus has no store to replay from.
    #[error("replay needs a durable bus (`EventBus::builder().store(...)`)")]
    InMemory,
    /// No subscription has this name.
    #[error("subscription `{0}` does not exist")]
    NoSubscription(String),
    /// The subscription is a consumer group on a shared store, whose shards other
    /// processes may own: replay is not available there yet.
    #[error(
        "subscription `{0}` is a consumer group on a shared store: replay is not available \
         for consumer groups (reset its shard checkpoints `{0}#<shard>/<shards>` with every \
         member stopped)"
    )]
    ConsumerGroup(String),
    /// The store failed.
    #[error("the event store failed: {0}")]
    Store(#[source] crate::store::StoreError),
}

/// Whether a failed delivery is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A passing failure (a timeout, an unavailable dependency): retried with backoff.
    Retryable,
    /// Retrying cannot help (the order does not exist, the payload is invalid): straight to
    /// the dead letters.
    Permanent,
}

/// The error a handler returns.
///
/// `?` on any `std::error::Error` converts it into a retryable error, as with
/// `anyhow::Error`; say [`HandlerError::permanent`] when retrying cannot help.
///
/// ```
/// use event_core::HandlerError;
///
/// fn check(stock: u32) -> Result<(), HandlerError> {
///     if stock == 0 {
///         return Err(HandlerError::permanent("sku is discontinued"));
///     }
///     let _: u32 = "12".parse()?; // a std error: retryable
///     Ok(())
/// }
/// assert!(check(0).unwrap_err().is_permanent());
/// ```
pub struct HandlerError {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    /// The payload never decoded, so no handler ran.
    undecodable: bool,
}

impl HandlerError {
    /// A failure worth retrying, with backoff.
    pub fn retryable(message: impl fmt::Display) -> Self {
        HandlerError {
            kind: ErrorKind::Retryable,
            message: message.to_string(),
            source: None,
            undecodable: false,
        }
    }

    /// A failure retrying cannot fix: the delivery goes straight to the dead letters.
    pub fn permanent(message: impl fmt::Display) -> Self {
        HandlerError {
            kind: ErrorKind::Permanent,
            message: message.to_string(),
            source: None,
            undecodable: false,
        }
    }

    /// The payload did not decode for this subscription: permanent, and no handler ran.
    pub(crate) fn undecodable(error: crate::DecodeError) -> Self {
        HandlerError {
            kind: ErrorKind::Permanent,
            message: error.to_string(),
            source: Some(Box::new(error)),
            undecodable: true,
        }
    }

    pub(crate) fn kind_is_decode(&self) -> bool {
        self.undecodable
    }

    /// Whether it is retryable or permanent.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        self.kind == ErrorKind::Permanent
    }

    /// The underlying error, when made from one with `?`.
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

/// Any error, as a retryable failure (`?` in a handler). A `serde_json::Error` is kept as a
/// [`RedactedJsonError`](crate::privacy::RedactedJsonError): its messages quote the values
/// it choked on, which may be personal.
impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(error: E) -> Self {
        let error: Box<dyn std::error::Error + Send + Sync> = Box::new(error);
        let error = match error.downcast::<serde_json::Error>() {
            Ok(json) => Box::new(crate::privacy::RedactedJsonError::from(*json)),
            Err(other) => other,
        };
        HandlerError {
            kind: ErrorKind::Retryable,
            message: error.to_string(),
            source: Some(error),
            undecodable: false,
        }
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        let mut source = self.source.as_deref().and_then(std::error::Error::source);
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

/// Why a subscription could not be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// Another subscription has this name. Names identify dead letters and checkpoints,
    /// so each is used once.
    #[error("a subscription named `{0}` exists already")]
    NameTaken(String),
    /// The bus was shut down.
    #[error("the event bus is shut down")]
    Closed,
}

/// A panic as a retryable handler error, with its message when it has one.
pub(crate) fn panicked(panic: &(dyn std::any::Any + Send)) -> HandlerError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string payload".to_owned());
    HandlerError::retryable(format!("handler panicked: {message}"))
}
