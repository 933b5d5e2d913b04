//! Building a bus (defaults for every subscription, limits, a store) and the settings of one
//! subscription.

use super::retry::RetryPolicy;
use super::routing::Routing;
use super::shared::Shared;
use super::store_feed::Backing;
use super::store_group::StoreGroups;
use super::transport_feed::Remote;
use super::wait::Recent;
use super::{EventBus, Inner};
use crate::privacy::FieldEncryption;
use crate::store::Store;
use crate::transport::{StartFrom, Transport, consumer_name};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone, Copy)]
pub(super) struct Config {
    pub(super) queue_capacity: usize,
    pub(super) concurrency: usize,
    pub(super) retry: RetryPolicy,
    pub(super) recent: usize,
    /// The deepest causation chain a publish may extend (the loop guard).
    pub(super) max_depth: u32,
    /// How long the outbox relay's lease runs without renewal.
    pub(super) relay_lease: Duration,
}

/// Builds an [`EventBus`]: defaults for every subscription, and limits.
#[derive(Debug, Clone)]
pub struct EventBusBuilder {
    config: Config,
    max_payload_bytes: usize,
    record: bool,
    store: Option<Arc<dyn Store>>,
    transport: Option<Arc<dyn Transport>>,
    consumer: Option<String>,
    poll_interval: Duration,
    groups: Option<StoreGroups>,
    encryption: Option<Arc<FieldEncryption>>,
}

impl Default for EventBusBuilder {
    fn default() -> Self {
        EventBusBuilder {
            config: Config {
                queue_capacity: 1024,
                concurrency: 1,
                retry: RetryPolicy::default(),
                recent: 1024,
                max_depth: 64,
                relay_lease: Duration::from_secs(10),
            },
            max_payload_bytes: 1 << 20,
            record: false,
            store: None,
            transport: None,
            consumer: None,
            poll_interval: Duration::from_millis(100),
            groups: None,
            encryption: None,
        }
    }
}

impl EventBusBuilder {
    /// Room per queue, per lane of a subscription (default 1024). `publish` waits when a
    /// queue is full.
    #[must_use]
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.config.queue_capacity = capacity.max(1);
        self
    }

    /// How many partition keys a subscription handles at once (default 1: strictly in
    /// publish order). Events with the same key are always handled one after another.
    #[must_use]
    pub fn concurrency(mut self, lanes: usize) -> Self {
        self.config.concurrency = lanes.max(1);
        self
    }

    /// The retry policy of every subscription that does not set its own.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.config.retry = policy;
        self
    }

    /// The largest payload, in bytes of JSON (default 1 MiB). Where the bus encodes an event
    /// (a durable bus's store, a pattern subscription's JSON), a larger one fails the publish
    /// with [`PublishError::TooLarge`](crate::PublishError::TooLarge); one that arrives as JSON (read from a store, or
    /// [`publish_raw`](EventBus::publish_raw)) is dead-lettered instead of handled. A typed
    /// event handed to typed subscriptions in this process is never encoded, so never
    /// measured.
    #[must_use]
    pub fn max_payload_bytes(mut self, bytes: usize) -> Self {
        self.max_payload_bytes = bytes;
        self
    }

    /// The loop guard: how long a chain of causes may grow (default 64). Every envelope
    /// carries its causation depth in `meta.depth`: 0 for an event published outside a
    /// handler, one more than the handled event's inside one. A publish past the limit fails
    /// with [`PublishError::LoopDetected`](crate::PublishError::LoopDetected), and the delivery whose handler made it is
    /// dead-lettered as an event loop, so a handler that re-publishes what it consumes stops
    /// instead of spinning.
    #[must_use]
    pub fn max_causation_depth(mut self, depth: u32) -> Self {
        self.config.max_depth = depth;
        self
    }

    /// How many recent events with a correlation id `wait_for` can still find when it is
    /// called after they were published (default 1024).
    #[must_use]
    pub fn wait_window(mut self, events: usize) -> Self {
        self.config.recent = events;
        self
    }

    /// Makes the bus durable: `publish` appends to `store` and returns once the event is
    /// committed; each subscription reads the store from its checkpoint, so after a restart
    /// it resumes where it left off; each handled event is claimed in the subscription's
    /// inbox, so an event read again is not handled again; dead letters are stored.
    ///
    /// A subscription name is one consumer: run it in one process at a time. Several
    /// processes may publish to the same store, and each may have subscriptions of its own;
    /// two running the same subscription name would both handle its events, unless the
    /// subscriptions are [consumer groups](Self::consumer_groups).
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use event_core::EventBus;
    /// use event_core::store::SqliteStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let bus = EventBus::builder().store(SqliteStore::open(dir.path().join("events.db"))?).build();
    /// # let _ = bus;
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "sqlite"))]
    /// # fn main() {}
    /// ```
    #[must_use]
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Spreads the bus over several processes and machines through a broker: `publish`
    /// sends each event to it, and every subscription becomes a consumer group there,
    /// whose members (one per process subscribing with that name) share its events, in
    /// order per partition key. Handlers and domain code do not change.
    ///
    /// ```no_run
    /// # #[cfg(feature = "redis")]
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use event_core::EventBus;
    /// use event_core::transport::RedisTransport;
    ///
    /// let bus = EventBus::builder()
    ///     .transport(RedisTransport::connect("redis://127.0.0.1:6379").await?)
    ///     .build();
    /// # let _ = bus;
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "redis"))]
    /// # fn main() {}
    /// ```
    #[must_use]
    pub fn transport(mut self, transport: impl Transport) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// With a store and a transport: how long the outbox relay's lease in the store runs
    /// without renewal (default 10 s, at most a day). One bus among those sharing a store
    /// relays; when it dies, another takes over within this time.
    #[must_use]
    pub fn relay_lease(mut self, lease: Duration) -> Self {
        self.config.relay_lease = lease.min(Duration::from_secs(24 * 3600));
        self
    }

    /// This process's name as a member of its consumer groups, unique within each group
    /// (default: host, process id and a random suffix).
    #[must_use]
    pub fn consumer_name(mut self, name: impl Into<String>) -> Self {
        self.consumer = Some(name.into());
        self
    }

    /// How often a durable bus looks for events appended by other processes, or inside a
    /// caller's own transaction (default 100 ms). Events published through this bus wake
    /// the subscriptions at once.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// On a store shared by several processes, without a broker: makes every subscription a
    /// consumer group, as on a transport. The processes that subscribe with one name share
    /// its events, each handled by one of them, in order per partition key; different names
    /// each get every event. Shards of the events pass between the processes under leases
    /// kept in the store; a dead process's shards pass to the others when its leases run
    /// out, and what it had not settled is handled again (its inbox drops what it had
    /// handled). See [`StoreGroups`] for the shard count and the lease time.
    ///
    /// On PostgreSQL, each process's pumps wake at once when another process appends
    /// (`LISTEN`/`NOTIFY`); polling stays as the fallback. On one SQLite file shared by the
    /// processes of a machine, a process stopped inside a write holds SQLite's writer lock,
    /// and the others' writes wait until it resumes: share PostgreSQL where a paused
    /// process must not stall the rest. Without this setting, a
    /// subscription name is one consumer: two processes running it both handle every event.
    ///
    /// [`shutdown`](EventBus::shutdown) then leaves each group: the process stops reading,
    /// settles what it read, saves each shard's checkpoint and gives its leases up, so the
    /// others take its shards at once; what is stored and unread stays for them.
    /// [`replay`](EventBus::replay) is not available on a consumer group
    /// ([`ReplayError::ConsumerGroup`](crate::ReplayError::ConsumerGroup)), and a dead
    /// letter is best redelivered by the process that owns its key's shard (another process
    /// handles it beside the owner, which holds the key's later events back until it
    /// restarts, with ordered dead letters). With a [transport](Self::transport) too, the
    /// broker's consumer groups are used and this setting does nothing.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use event_core::{EventBus, StoreGroups};
    /// use event_core::store::SqliteStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let bus = EventBus::builder()
    ///     .store(SqliteStore::open(dir.path().join("events.db"))?)
    ///     .consumer_groups(StoreGroups::new().shards(8))
    ///     .build();
    /// # let _ = bus;
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "sqlite"))]
    /// # fn main() {}
    /// ```
    #[must_use]
    pub fn consumer_groups(mut self, groups: StoreGroups) -> Self {
        self.groups = Some(groups);
        self
    }

    /// Encrypts the `#[event(pii)]` fields of every event before it leaves the process (to
    /// the store, the broker, their dead letters), each with its data subject's key, and
    /// opens them for handlers; [`EventBus::forget_subject`] then erases a subject's fields
    /// for good. See [`privacy`](crate::privacy).
    ///
    /// ```
    /// use event_core::EventBus;
    /// use event_core::privacy::{FieldEncryption, MasterKey};
    /// use event_core::store::SqliteStore;
    ///
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("events.db");
    /// # let master_key_base64 = MasterKey::generate().1;
    /// let store = SqliteStore::open(path)?;
    /// let master = MasterKey::from_base64(&master_key_base64)?;
    /// let bus = EventBus::builder()
    ///     .store(store.clone())
    ///     // The store keeps the subjects' keys too, in a table of its own.
    ///     .encrypt_fields(FieldEncryption::new(store, master))
    ///     .build();
    /// # drop(bus);
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "sqlite"))]
    /// # fn main() {}
    /// ```
    #[must_use]
    pub fn encrypt_fields(mut self, fields: FieldEncryption) -> Self {
        self.encryption = Some(Arc::new(fields));
        self
    }

    /// Keeps every published envelope, for [`HandlerTest`](crate::testing::HandlerTest).
    pub(crate) fn record(mut self) -> Self {
        self.record = true;
        self
    }

    /// The bus. Subscriptions run on the current tokio runtime.
    pub fn build(self) -> EventBus {
        let consumer = self.consumer.unwrap_or_else(consumer_name);
        EventBus {
            inner: Arc::new(Inner {
                config: self.config,
                shared: Arc::new(Shared {
                    max_payload_bytes: self.max_payload_bytes,
                    encryption: self.encryption,
                    ..Shared::default()
                }),
                routes: RwLock::new(Vec::new()),
                routing: RwLock::new(Arc::new(Routing::default())),
                tasks: Mutex::new(Vec::new()),
                closed: AtomicBool::new(false),
                draining_done: AtomicBool::new(false),
                recent: Arc::new(Mutex::new(Recent::default())),
                listening: AtomicBool::new(false),
                built_at: std::time::SystemTime::now(),
                recorded: self.record.then(|| Mutex::new(Vec::new())),
                backing: self.store.map(|store| {
                    Arc::new(Backing::new(
                        store,
                        self.poll_interval,
                        self.groups,
                        consumer.clone(),
                    ))
                }),
                durables: RwLock::new(Vec::new()),
                relay_started: AtomicBool::new(false),
                remote: self.transport.map(|transport| {
                    Arc::new(Remote {
                        transport,
                        consumer: consumer.clone(),
                    })
                }),
                stop: watch::channel(false).0,
                feeds: Mutex::new(Vec::new()),
            }),
        }
    }
}

/// Settings of one subscription, over the bus's defaults.
///
/// ```
/// use event_core::{RetryPolicy, SubscriptionOptions};
///
/// let options = SubscriptionOptions::new().concurrency(8).queue_capacity(64).retry(RetryPolicy::never());
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default)]
pub struct SubscriptionOptions {
    pub(super) queue_capacity: Option<usize>,
    pub(super) concurrency: Option<usize>,
    pub(super) retry: Option<RetryPolicy>,
    pub(super) ordered_dead_letters: bool,
    pub(super) start_from: StartFrom,
    pub(super) tenants: Option<Arc<[String]>>,
}

impl SubscriptionOptions {
    /// The bus's defaults.
    pub fn new() -> Self {
        SubscriptionOptions::default()
    }

    /// Room per lane queue.
    #[must_use]
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = Some(capacity);
        self
    }

    /// How many partition keys are handled at once.
    #[must_use]
    pub fn concurrency(mut self, lanes: usize) -> Self {
        self.concurrency = Some(lanes);
        self
    }

    /// The retry policy.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Ordered dead letters: once an event of a partition key is dead-lettered, the later
    /// events of that key are held back behind it, in order, while other keys flow.
    /// [`EventBus::redeliver`] releases the key (the dead letter first, then what it held
    /// back, in order); [`EventBus::discard`] releases what it held back without it.
    /// [`DeadLetter::held_back`](crate::DeadLetter::held_back) says how many events a dead letter holds back. On a durable
    /// bus the held-back events stay unsettled in the store, so they survive a restart (the
    /// checkpoint does not pass them; what comes after is read again and deduplicated by
    /// the inbox). Events without a partition key are not held back.
    #[must_use]
    pub fn ordered_dead_letters(mut self) -> Self {
        self.ordered_dead_letters = true;
        self
    }

    /// On a transport, where a new consumer group starts: [`StartFrom::Now`] (the default)
    /// or [`StartFrom::Beginning`]. A group that exists already goes on where it is.
    #[must_use]
    pub fn start_from(mut self, start_from: StartFrom) -> Self {
        self.start_from = start_from;
        self
    }

    /// Only events of these tenants (`meta.tenant_id`, set by
    /// [`PublishContext::tenant`](crate::PublishContext::tenant)) reach the handler; the
    /// others, and events of no tenant, are passed over (settled without a call, not
    /// counted as delivered).
    ///
    /// ```
    /// use event_core::SubscriptionOptions;
    ///
    /// let acme_only = SubscriptionOptions::new().tenants(["acme"]);
    /// # let _ = acme_only;
    /// ```
    #[must_use]
    pub fn tenants<I, T>(mut self, tenants: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.tenants = Some(tenants.into_iter().map(Into::into).collect());
        self
    }
}
