//! The event bus on tokio.
//!
//! An event goes through these stages, each in its own file:
//!
//! 1. `publish.rs`: the envelope, the loop guard, the JSON where bytes are needed;
//!    then, by the bus's configuration, one of the next three.
//! 2. In memory: `routing.rs` picks each matching subscription's lane by partition
//!    key, and the event is queued there.
//! 3. With a store: the event is appended (the outbox), and each subscription's
//!    `store_feed.rs` reads the store from its checkpoint into its lanes; on a
//!    store shared by several processes, `store_group.rs` makes each subscription
//!    a consumer group, with a pump per shard this process leases.
//! 4. With a transport: the event goes to the broker (with a store too, the store's
//!    `relay.rs` forwards it, in position order), and each subscription's
//!    `transport_feed.rs`, a member of its consumer group, receives the
//!    events of the shards it owns into its lanes.
//! 5. `subscription.rs`: each lane hands its deliveries to the handler, with
//!    retries, dead letters (`redelivery.rs` for operators), ordered dead
//!    letters (`parking.rs`), then settles them where they came from (an inbox
//!    claim, a checkpoint, an acknowledgement).
//!
//! Around them: `subscribe.rs`, `wait.rs` (`wait_for`),
//! `shutdown.rs`, and `builder.rs` for the configuration.

mod builder;
mod context;
mod dead_letter;
mod delivery;
mod error;
mod forget;
mod handler;
mod metrics;
mod parking;
mod pattern;
mod publish;
pub(crate) mod published;
mod redelivery;
mod relay;
mod retry;
mod routing;
mod shared;
mod shutdown;
mod stats;
mod store_feed;
mod store_group;
mod subscribe;
mod subscription;
#[cfg(feature = "opentelemetry")]
mod trace;
mod transport_feed;
mod wait;

pub use builder::{EventBusBuilder, SubscriptionOptions};
pub use context::PublishContext;
pub use dead_letter::DeadLetter;
pub use error::{
    ErrorKind, HandlerError, PublishError, RedeliverError, ReplayError, SubscribeError, WaitError,
};
pub use metrics::MetricsSnapshot;
pub use pattern::matches_pattern;
pub use retry::RetryPolicy;
pub use stats::{FeedKind, LatencyHistogram, SubscriptionInfo, TypeStats};
pub use store_group::StoreGroups;

use builder::Config;
pub(crate) use published::Event;
use routing::{Route, Routing};
use shared::Shared;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use store_feed::{Backing, Durable};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use transport_feed::Remote;
use wait::Recent;

/// An in-process event bus: typed publish and subscribe on tokio.
///
/// Every subscription (a name) gets every event it matches, in order per partition key,
/// through bounded queues: `publish` waits for room, [`try_publish`](Self::try_publish)
/// says when there is none, and nothing is ever dropped silently. A failing handler is
/// retried with backoff; a delivery that fails for good goes to the dead letters, from
/// which it can be redelivered. A panicking handler counts as a failure.
///
/// ```
/// use event_core::{DomainEvent, EventBus};
/// use schemars::JsonSchema;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
/// struct OrderPaid { #[event(partition_key)] order_id: String }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let bus = EventBus::builder().build();
/// bus.subscribe_event::<OrderPaid, _, _>("billing", |env| async move {
///     println!("issue an invoice for {}", env.payload.order_id);
///     Ok(())
/// })?;
/// let env = bus.publish(OrderPaid { order_id: "o-1".into() }).await?;
/// assert_eq!(env.event_type, "order.paid");
/// bus.shutdown().await; // drains what is in flight
/// assert_eq!(bus.metrics().delivered, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    shared: Arc<Shared>,
    routes: RwLock<Vec<Arc<Route>>>,
    /// What a publish reads: every subscription with its lanes, replaced whole when one is
    /// added, and emptied at shutdown.
    routing: RwLock<Arc<Routing>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// No more events from outside handlers; handlers may still publish while draining.
    closed: AtomicBool,
    /// Draining is over: the queues are closed, nothing is accepted.
    draining_done: AtomicBool,
    recent: Arc<Mutex<Recent>>,
    /// The `wait_for` listener was started (a bus with a transport).
    listening: AtomicBool,
    /// When the bus was built: how far back the `wait_for` listener reads.
    built_at: std::time::SystemTime,
    /// Every published event, in order, when recording (the test harness).
    recorded: Option<Mutex<Vec<Event>>>,
    /// The store, on a durable bus.
    backing: Option<Arc<Backing>>,
    /// Each subscription's place in the store, on a durable bus.
    durables: RwLock<Vec<Arc<Durable>>>,
    /// The broker, on a bus with a transport.
    remote: Option<Arc<Remote>>,
    /// The outbox relay was started (a bus with a store and a transport).
    relay_started: AtomicBool,
    /// Tells the feeds to stop.
    stop: watch::Sender<bool>,
    /// What runs beside the lanes until `stop`: the store pumps or transport members that
    /// feed them, the outbox relay, the `wait_for` listener.
    feeds: Mutex<Vec<JoinHandle<()>>>,
}

impl EventBus {
    /// A builder with the defaults: in memory, queues of 1024, one lane, 5 attempts.
    pub fn builder() -> EventBusBuilder {
        EventBusBuilder::default()
    }

    /// The broker's state, on a bus with a transport (`Ok(None)` without one): per topic
    /// and shard its length, first and last entry; per consumer group its members, pending
    /// entries and lag.
    ///
    /// # Errors
    ///
    /// [`TransportError`](crate::transport::TransportError) when the broker cannot be
    /// reached.
    pub async fn transport_info(
        &self,
    ) -> Result<Option<crate::transport::TransportInfo>, crate::transport::TransportError> {
        match &self.inner.remote {
            Some(remote) => remote.transport.info().await.map(Some),
            None => Ok(None),
        }
    }

    /// Trims the broker's streams by `retention` (by length or age), never past an entry
    /// that a consumer group has not acknowledged unless `retention.force` says so; `Ok(None)`
    /// without a transport. Run it from a timer, or an operator's command.
    ///
    /// # Errors
    ///
    /// [`TransportError`](crate::transport::TransportError) when the broker cannot be
    /// reached.
    pub async fn trim(
        &self,
        retention: &crate::transport::Retention,
    ) -> Result<Option<crate::transport::TrimReport>, crate::transport::TransportError> {
        match &self.inner.remote {
            Some(remote) => remote.transport.trim(retention).await.map(Some),
            None => Ok(None),
        }
    }

    /// Starts the outbox relay, once, on a bus with a store and a transport.
    fn ensure_relay(&self) {
        let (Some(backing), Some(remote)) = (&self.inner.backing, &self.inner.remote) else {
            return;
        };
        if self.inner.relay_started.swap(true, Relaxed) {
            return;
        }
        self.spawn_feed(relay::relay(
            Arc::clone(backing),
            Arc::clone(remote),
            self.inner.config.relay_lease,
            Arc::clone(&self.inner.shared),
            self.inner.stop.subscribe(),
        ));
    }

    /// Spawns a task that runs until `stop`, awaited at shutdown.
    fn spawn_feed(&self, feed: impl std::future::Future<Output = ()> + Send + 'static) {
        let task = tokio::spawn(feed);
        self.inner
            .feeds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
    }

    /// The store behind a durable bus (the outbox, with a transport too); `None` in memory.
    /// What operators' tools read the timeline and checkpoints from.
    pub fn store(&self) -> Option<Arc<dyn crate::store::Store>> {
        self.inner
            .backing
            .as_ref()
            .map(|backing| Arc::clone(&backing.store))
    }

    /// Whether [`shutdown`](Self::shutdown) was called: the bus takes no more events.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Relaxed)
    }

    /// Whether the bus has a transport (a broker between processes).
    pub fn has_transport(&self) -> bool {
        self.inner.remote.is_some()
    }

    /// The counters now.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.shared.metrics.snapshot()
    }

    /// Every subscription's route, as they are now.
    fn routes(&self) -> Vec<Arc<Route>> {
        self.inner
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every subscription's place in the store, on a durable bus.
    fn durable_routes(&self) -> Vec<Arc<Durable>> {
        self.inner
            .durables
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let routes = self
            .inner
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let names: Vec<&str> = routes.iter().map(|r| r.name.as_str()).collect();
        f.debug_struct("EventBus")
            .field("subscriptions", &names)
            .field("closed", &self.inner.closed.load(Relaxed))
            .finish_non_exhaustive()
    }
}
