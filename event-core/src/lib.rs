//! Typed domain events for Rust: name, version and JSON Schema derived from a plain struct,
//! and a registry of every event in the binary.
//!
//! ```standalone_crate
//! use event_core::DomainEvent;
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! /// A customer placed an order.
//! #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
//! #[event(name = "order.created", version = 1, source = "orders-service", aggregate = "order")]
//! pub struct OrderCreated {
//!     #[event(partition_key)]
//!     pub order_id: String,
//!     #[event(pii)]
//!     pub customer_email: String,
//!     pub total_cents: u64,
//! }
//!
//! let registry = event_core::registry()?;
//! let created = registry.get("order.created", 1).unwrap();
//! assert_eq!(created.description(), Some("A customer placed an order."));
//! assert_eq!(created.pii(), ["customer_email"]);
//! # Ok::<(), event_core::RegistryError>(())
//! ```
//!
//! # Concepts
//!
//! - An **event** is a struct with named fields deriving `Clone`, `Serialize`,
//!   `Deserialize`, `JsonSchema` and [`DomainEvent`](derive@DomainEvent). Its name (`order.created`) and
//!   version are part of the contract with every consumer; the derive checks them at compile
//!   time.
//! - Its [`EventDescriptor`] records where it is defined, its catalog metadata (source,
//!   aggregate, partition key, PII fields, deprecation) and its JSON Schema.
//! - The [`registry()`] lists every event linked into the binary, sorted by (name, version).
//! - An [`Envelope`] wraps an event with its id (UUID v7), type, version, time, source,
//!   correlation, causation and trace ids and metadata. Its canonical JSON and its
//!   CloudEvents 1.0 form go both ways; a [`RawEnvelope`] keeps the payload as raw JSON.
//! - A consumer's typed subscription is an enum deriving [`EventUnion`](derive@EventUnion),
//!   decoded by `type` and `version` and matched exhaustively.
//! - The [`EventBus`] delivers events in process: bounded queues with backpressure, order
//!   per partition key, retries with backoff, dead letters, `wait_for` by correlation id.
//!   An event stored at an older version reaches readers of a newer one upcast, through
//!   the `previous` chain, or through [`raw_upcaster!`]s for versions whose type is gone.
//!   In one process a typed handler gets its own clone of the event: no JSON on the way; the
//!   JSON is encoded once, and only where bytes are needed. A loop guard
//!   ([`EventBusBuilder::max_causation_depth`]) stops a handler that re-publishes what it
//!   consumes; [`SubscriptionOptions::ordered_dead_letters`] holds a key's later events
//!   behind its dead letter.
//! - Given a [`store`] ([`EventBusBuilder::store`]), the bus is durable: `publish` returns
//!   once the event is committed, each subscription resumes from its checkpoint after a
//!   restart or a crash, an inbox claim per subscription and event keeps a redelivered
//!   event from being handled twice, and dead letters are stored. SQLite is the embedded
//!   default; PostgreSQL serves several processes.
//! - Given a [`transport`] ([`EventBusBuilder::transport`]: Redis Streams or NATS
//!   JetStream), the bus spans processes and machines: a subscription name is a consumer
//!   group whose members share the events, in order per key, over shards held under leases
//!   with fencing tokens. With a store as well, the store is the outbox and a relay forwards
//!   to the broker. Without a broker, [`EventBusBuilder::consumer_groups`] gives the same
//!   groups to processes sharing one store.
//! - [`privacy`]: fields marked `#[event(pii)]` are redacted wherever the toolkit prints a
//!   payload; with [`EventBusBuilder::encrypt_fields`] they are sealed with a key per data
//!   subject before they reach a store or a broker, and [`EventBus::forget_subject`]
//!   destroys those keys (crypto-shredding).
//! - [`testing::HandlerTest`] tests a handler given/when/then, without sleeps, and fails a
//!   test whose events would change on the wire (a JSON round trip of each).
//!
//! Around this crate: [`event-catalog`](https://docs.rs/event-catalog) generates an event
//! catalog (Markdown, JSON Schema, AsyncAPI) from the registry and gates CI on breaking
//! schema changes; [`event-admin`](https://docs.rs/event-admin) is the admin HTTP API,
//! dashboard, Prometheus metrics and ops CLI. The design and its contract, in full:
//! `docs/design.md` in the [repository](https://example.invalid/typed-events).
//!
//! # The registry and linking
//!
//! Registration happens before `main`, through [`inventory`](https://docs.rs/inventory), not
//! by a call. Two caveats follow, both from how linkers work:
//!
//! - A crate that nothing in the binary references is not linked, so its events are absent
//!   from the registry. Reference it from the binary: `use orders_domain as _;`.
//! - Link-time collection works on Linux, macOS, Windows, iOS, Android, FreeBSD and WebAssembly
//!   (see inventory's list). Elsewhere, call [`register`] for each event before reading the
//!   registry.
//!
//! The order in which the linker collects events is unspecified; the registry sorts them.
//!
//! # Feature flags
//!
//! - `derive` (default): re-exports `#[derive(DomainEvent)]` and `#[derive(EventUnion)]`.
//! - `sqlite`: `store::SqliteStore`, a durable store in one SQLite file (SQLite is compiled
//!   in; no system library needed).
//! - `postgres`: `store::PostgresStore`, a durable store in a PostgreSQL database.
//! - `redis`: `transport::RedisTransport`, Redis Streams as the broker between processes
//!   and machines.
//! - `nats`: `transport::NatsTransport`, NATS JetStream (server 2.10 or later) as that
//!   broker.
//! - `opentelemetry`: W3C trace context through the bus, with OpenTelemetry through
//!   `tracing` (`tracing-opentelemetry`). A publish inside a span with an OpenTelemetry
//!   context, given no trace id of its own, stamps the envelope's `trace_id` with that span's
//!   `traceparent`; the `event.deliver` span of each handler takes an envelope's
//!   `traceparent` as its parent, so publisher, handlers and their follow-up publishes are one
//!   trace, in memory, through a store or over a broker. A trace id that is not a
//!   `traceparent` is passed on untouched. Depends on the OpenTelemetry API only; the
//!   application installs the SDK and the layer.
//! - `http`: [`http::RequestContextLayer`], a tower layer (axum or any tower-based server)
//!   that runs each HTTP request's handler inside a [`PublishContext::scope`] built from its
//!   headers: the events it publishes carry the request's correlation id (`x-correlation-id`,
//!   else `x-request-id`, else a new one, echoed in the response), `traceparent` and tenant.
//!   Depends on `http`, `tower-layer` and `tower-service` only.
//!
//! The in-memory bus, field encryption and the test harness need no feature; the bus runs on
//! the tokio runtime it is built in. The [`store::Store`] and [`transport::Transport`] traits
//! are always there, for stores and brokers of your own.
//!
//! # Dependencies of a user crate
//!
//! A crate defining events needs `event-core`, `serde` (for its derives) and `schemars` (for
//! `JsonSchema`). Generated code reaches everything else through `event-core`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub(crate) mod bus;
mod envelope;
mod event;
#[cfg(feature = "http")]
pub mod http;
pub mod privacy;
mod producer;
mod registry;
pub mod store;
pub mod testing;
pub mod transport;
mod union;
mod upcast;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use bus::{
    DeadLetter, ErrorKind, EventBus, EventBusBuilder, FeedKind, HandlerError, LatencyHistogram,
    MetricsSnapshot, PublishContext, PublishError, RedeliverError, ReplayError, RetryPolicy,
    StoreGroups, SubscribeError, SubscriptionInfo, SubscriptionOptions, TypeStats, WaitError,
    matches_pattern,
};
pub use envelope::{
    ACTOR_ID, CloudEventError, DEPTH, Envelope, Meta, PARTITION_KEY, RawEnvelope, TENANT_ID,
    UNKNOWN_SOURCE, dataschema,
};
pub use event::{DomainEvent, EventDescriptor};
pub use producer::producers_of;
pub use registry::{BrokenChain, DuplicateEvent, Registry, RegistryError, register, registry};
pub use smol_str::SmolStr;
pub use union::{DecodeError, EventUnion, consumers_of};
pub use upcast::{RawUpcaster, UpcastFn, raw_upcasters, register_raw_upcaster};

#[cfg(feature = "derive")]
#[doc = include_str!("derive_domain_event.md")]
pub use event_derive::DomainEvent;
#[cfg(feature = "derive")]
#[doc = include_str!("derive_event_union.md")]
pub use event_derive::EventUnion;
