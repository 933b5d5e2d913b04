//! The in-process event bus on tokio.

mod builder;
mod context;
mod dead_letter;
mod durable;
mod error;
mod handler;
mod metrics;
mod parking;
mod pattern;
pub(crate) mod published;
mod redelivery;
mod retry;
mod subscription;

pub use builder::{EventBusBuilder, SubscriptionOptions};
pub use context::PublishContext;
pub use dead_letter::DeadLetter;
pub use error::{
    ErrorKind, HandlerError, PublishError, RedeliverError, ReplayError, SubscribeError, WaitError,
};
pub use metrics::MetricsSnapshot;
pub use retry::RetryPolicy;

use crate::envelope::{Envelope, RawEnvelope};
use crate::event::DomainEvent;
use crate::store::Position;
use crate::union::EventUnion;
use builder::Config;
use durable::{Backing, Durable};
use futures_util::FutureExt;
use handler::Handler;
use parking::Parking;
use pattern::Pattern;
pub(crate) use published::Event;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use subscription::{Delivery, Lane, Matcher, Route, Shared, Worker};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

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
    recent: Mutex<Recent>,
    /// Every published event, in order, when recording (the test harness).
    recorded: Option<Mutex<Vec<Event>>>,
    /// The store, on a durable bus.
    backing: Option<Arc<Backing>>,
    /// Tells the pumps of a durable bus to stop.
    stop: watch::Sender<bool>,
    pumps: Mutex<Vec<JoinHandle<()>>>,
}

/// Recently published events with a correlation id, and who waits for one.
#[derive(Default)]
struct Recent {
    events: VecDeque<Event>,
    waiters: Vec<Waiter>,
}

struct Waiter {
    event_type: &'static str,
    correlation_id: String,
    reply: oneshot::Sender<Event>,
}

impl EventBus {
    /// A builder with the defaults: in memory, queues of 1024, one lane, 5 attempts.
    pub fn builder() -> EventBusBuilder {
        EventBusBuilder::default()
    }

    /// Subscribes `name` to the events of the union `U`, handled by `handler`.
    ///
    /// # Errors
    ///
    /// [`SubscribeError`] when the name is taken or the bus is shut down.
    pub fn subscribe<U, F, Fut>(&self, name: &str, handler: F) -> Result<(), SubscribeError>
    where
        U: EventUnion,
        F: Fn(Envelope<U>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.subscribe_with(name, &SubscriptionOptions::new(), handler)
    }

    /// [`subscribe`](Self::subscribe) with settings of its own.
    ///
    /// # Errors
    ///
    /// [`SubscribeError`] when the name is taken or the bus is shut down.
    pub fn subscribe_with<U, F, Fut>(
        &self,
        name: &str,
        options: &SubscriptionOptions,
        handler: F,
    ) -> Result<(), SubscribeError>
    where
        U: EventUnion,
        F: Fn(Envelope<U>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let mut names: Vec<&'static str> = U::EVENTS.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        self.add(
            name,
            Matcher::Names(names),
            options,
            handler::Typed::<U, F>::new(handler),
        )
    }

    /// Subscribes `name` to one event type: a union of one.
    ///
    /// # Errors
    ///
    /// [`SubscribeError`] when the name is taken or the bus is shut down.
    pub fn subscribe_event<E, F, Fut>(&self, name: &str, handler: F) -> Result<(), SubscribeError>
    where
        E: DomainEvent,
        F: Fn(Envelope<E>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.subscribe::<E, F, Fut>(name, handler)
    }

    /// Subscribes `name` to every event whose type matches a dotted glob: `order.*`,
    /// `*.created`, or `*` for all. The handler gets the payload undecoded.
    ///
    /// # Errors
    ///
    /// [`SubscribeError`] when the name is taken or the bus is shut down.
    pub fn subscribe_pattern<F, Fut>(
        &self,
        name: &str,
        pattern: &str,
        handler: F,
    ) -> Result<(), SubscribeError>
    where
        F: Fn(RawEnvelope) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.subscribe_pattern_with(name, pattern, &SubscriptionOptions::new(), handler)
    }

    /// [`subscribe_pattern`](Self::subscribe_pattern) with settings of its own.
    ///
    /// # Errors
    ///
    /// [`SubscribeError`] when the name is taken or the bus is shut down.
    pub fn subscribe_pattern_with<F, Fut>(
        &self,
        name: &str,
        pattern: &str,
        options: &SubscriptionOptions,
        handler: F,
    ) -> Result<(), SubscribeError>
    where
        F: Fn(RawEnvelope) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.add(
            name,
            Matcher::Pattern(Pattern::new(pattern)),
            options,
            handler::Raw(handler),
        )
    }

    fn add<H: Handler>(
        &self,
        name: &str,
        matcher: Matcher,
        options: &SubscriptionOptions,
        handler: H,
    ) -> Result<(), SubscribeError> {
        if self.inner.closed.load(Relaxed) {
            return Err(SubscribeError::Closed);
        }
        let mut routes = self
            .inner
            .routes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if routes.iter().any(|r| r.name == name) {
            return Err(SubscribeError::NameTaken(name.to_owned()));
        }
        let config = &self.inner.config;
        let durable = self
            .inner
            .backing
            .as_ref()
            .map(|backing| Arc::new(Durable::new(Arc::clone(backing), name.to_owned())));
        let parking = options
            .ordered_dead_letters
            .then(|| Arc::new(Parking::default()));
        let worker = Worker {
            name: name.to_owned(),
            handler,
            retry: options.retry.unwrap_or(config.retry),
            shared: Arc::clone(&self.inner.shared),
            durable: durable.clone(),
            parking: parking.clone(),
            calls: std::sync::atomic::AtomicU64::new(0),
        };
        let (lanes, tasks) = subscription::start(
            worker,
            options.concurrency.unwrap_or(config.concurrency),
            options.queue_capacity.unwrap_or(config.queue_capacity),
        );
        let route = Arc::new(Route {
            name: name.to_owned(),
            matcher,
            lanes: RwLock::new(lanes.clone()),
            durable: durable.clone(),
            parking,
        });
        {
            let mut routing = self
                .inner
                .routing
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let mut next = Routing::clone(&routing);
            next.routes
                .push((Arc::clone(&route), lanes.into_boxed_slice()));
            *routing = Arc::new(next);
        }
        if let Some(durable) = durable {
            let pump = tokio::spawn(durable::pump(
                durable,
                Arc::clone(&route),
                Arc::clone(&self.inner.shared),
                self.inner.stop.subscribe(),
            ));
            self.inner
                .pumps
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(pump);
        }
        routes.push(route);
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(tasks);
        Ok(())
    }

    /// Publishes an event: wraps it in an envelope, and enqueues it for every matching
    /// subscription, waiting while a queue is full. Returns the envelope.
    ///
    /// Each typed subscription gets its own clone of the event, not its JSON; the JSON is
    /// encoded once, and only when something needs it (a store, a pattern subscription, a
    /// dead letter).
    ///
    /// Inside a handler, the new event carries the handled event's correlation id, its id
    /// as causation id, and a causation depth one more than its own (the loop guard,
    /// [`EventBusBuilder::max_causation_depth`]).
    ///
    /// A handler that publishes into its own subscription waits, like any publisher, while
    /// that queue is full, and its lane cannot drain while it waits: give such a subscription
    /// room (`queue_capacity`) or publish there with [`try_publish`](Self::try_publish).
    ///
    /// # Errors
    ///
    /// [`PublishError::Serialize`] when the payload does not serialize and the bus needs its
    /// JSON; [`PublishError::TooLarge`] when that JSON is over the limit;
    /// [`PublishError::LoopDetected`] past the causation depth limit;
    /// [`PublishError::Store`] when the store fails; [`PublishError::Closed`] after
    /// `shutdown`. Whatever the error, nothing was enqueued or stored.
    pub async fn publish<E: DomainEvent>(&self, event: E) -> Result<Envelope<E>, PublishError> {
        self.publish_with(PublishContext::new(), event).await
    }

    /// [`publish`](Self::publish) with correlation id, trace id, tenant, actor or source.
    ///
    /// # Errors
    ///
    /// As [`publish`](Self::publish).
    pub async fn publish_with<E: DomainEvent>(
        &self,
        context: PublishContext,
        event: E,
    ) -> Result<Envelope<E>, PublishError> {
        let (envelope, event) = self.wrap(context, event)?;
        let span = tracing::info_span!(
            "event.publish",
            event.r#type = E::NAME,
            event.id = %envelope.id,
            correlation_id = envelope.correlation_id.as_deref().unwrap_or(""),
        );
        self.dispatch(event).instrument(span).await?;
        Ok(envelope)
    }

    /// Publishes without waiting: fails with [`PublishError::Full`] if any matching queue is
    /// full, and then enqueues nothing anywhere.
    ///
    /// # Errors
    ///
    /// [`PublishError::Full`], [`PublishError::Durable`] on a durable bus, and the errors of
    /// [`publish`](Self::publish).
    pub fn try_publish<E: DomainEvent>(&self, event: E) -> Result<Envelope<E>, PublishError> {
        if self.inner.backing.is_some() {
            return Err(PublishError::Durable);
        }
        let (envelope, event) = self.wrap(PublishContext::new(), event)?;
        let routing = self.routing();
        let targets = self.targets(&routing, &event)?;
        let mut permits = Vec::with_capacity(targets.lanes().len());
        for (route, lane) in targets.lanes() {
            match lane.try_reserve() {
                Ok(permit) => permits.push(permit),
                Err(mpsc::error::TrySendError::Full(())) => {
                    return Err(PublishError::Full {
                        subscription: route.name.clone(),
                    });
                }
                Err(mpsc::error::TrySendError::Closed(())) => return Err(PublishError::Closed),
            }
        }
        self.commit(permits, &event);
        Ok(envelope)
    }

    /// Publishes an envelope that arrived from elsewhere (a store, a broker), as is.
    ///
    /// # Errors
    ///
    /// [`PublishError::Closed`] after `shutdown`; [`PublishError::Store`] when the store
    /// fails.
    pub async fn publish_raw(&self, envelope: RawEnvelope) -> Result<(), PublishError> {
        self.dispatch(published::raw(envelope)).await
    }

    /// Appends to the store (durable bus) or enqueues for every matching subscription.
    async fn dispatch(&self, event: Event) -> Result<(), PublishError> {
        let Some(backing) = &self.inner.backing else {
            return self.enqueue(event).await;
        };
        self.check_open()?;
        let raw = self.encoded(&event)?;
        backing
            .store
            .append(vec![(**raw).clone()])
            .await
            .map_err(PublishError::Store)?;
        backing.appended.notify_waiters();
        self.announce(&event);
        Ok(())
    }

    /// The event's JSON, for a publish that needs it: within the payload limit.
    fn encoded<'e>(&self, event: &'e Event) -> Result<&'e Arc<RawEnvelope>, PublishError> {
        let header = event.header();
        let raw = event.raw().map_err(|error| {
            PublishError::Serialize(serde::ser::Error::custom(format_args!(
                "`{}`: {error}",
                header.event_type
            )))
        })?;
        let bytes = raw.payload.get().len();
        let limit = self.inner.shared.max_payload_bytes;
        if bytes > limit {
            return Err(PublishError::TooLarge {
                event_type: header.event_type.to_string(),
                bytes,
                limit,
            });
        }
        Ok(raw)
    }

    /// The envelope of a new event, and the event as the bus passes it on; refused past the
    /// causation depth limit.
    fn wrap<E: DomainEvent>(
        &self,
        context: PublishContext,
        event: E,
    ) -> Result<(Envelope<E>, Event), PublishError> {
        // Whether the bus is open is checked where the event goes: `targets`, or the store.
        let mut envelope = Envelope::new(event);
        context.apply(&mut envelope);
        let depth = envelope.meta.depth();
        let limit = self.inner.config.max_depth;
        if depth > limit {
            let error = PublishError::LoopDetected {
                event_type: E::NAME,
                depth,
                limit,
            };
            let _ = context::HANDLED.try_with(|scope| scope.refuse_loop(error.to_string()));
            tracing::error!(
                event.r#type = E::NAME,
                depth,
                limit,
                "event loop: publish refused"
            );
            return Err(error);
        }
        // A durable bus stores the JSON, and its subscriptions read it back: no typed copy.
        let event = if self.inner.backing.is_some() {
            published::raw(envelope.to_raw().map_err(PublishError::Serialize)?)
        } else {
            published::typed(&envelope)
        };
        Ok((envelope, event))
    }

    /// The lane of each matching subscription; the event's JSON encoded first if one of them
    /// takes JSON.
    fn targets<'r>(
        &self,
        routing: &'r Routing,
        event: &Event,
    ) -> Result<Targets<'r>, PublishError> {
        self.check_open()?;
        let header = event.header();
        let mut targets = Targets::None;
        let mut encode = false;
        for (route, lanes) in &routing.routes {
            if !route.matcher.matches(&header.event_type) {
                continue;
            }
            encode |= route.matcher.takes_json();
            let lane = subscription::pick(lanes, header).ok_or(PublishError::Closed)?;
            let target = (&**route, lane);
            targets = match targets {
                Targets::None => Targets::One(target),
                Targets::One(first) => Targets::Many(vec![first, target]),
                Targets::Many(mut lanes) => {
                    lanes.push(target);
                    Targets::Many(lanes)
                }
            };
        }
        if encode {
            self.encoded(event)?;
        }
        Ok(targets)
    }

    /// What a publish reads now: every subscription with its lanes.
    fn routing(&self) -> Arc<Routing> {
        Arc::clone(
            &self
                .inner
                .routing
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    async fn enqueue(&self, event: Event) -> Result<(), PublishError> {
        let routing = self.routing();
        let targets = self.targets(&routing, &event)?;
        if let [(_, lane)] = targets.lanes() {
            // One subscription, the common case: no list of permits.
            let permit = lane.reserve().await.map_err(|_| PublishError::Closed)?;
            self.inner.shared.metrics.in_flight.fetch_add(1, Relaxed);
            permit.send(Delivery::in_memory(Arc::clone(&event)));
            self.announce(&event);
            return Ok(());
        }
        let mut permits = Vec::with_capacity(targets.lanes().len());
        for (_, lane) in targets.lanes() {
            permits.push(lane.reserve().await.map_err(|_| PublishError::Closed)?);
        }
        self.commit(permits, &event);
        Ok(())
    }

    /// Sends on every reserved permit.
    fn commit(&self, permits: Vec<mpsc::Permit<'_, Delivery>>, event: &Event) {
        let metrics = &self.inner.shared.metrics;
        metrics.in_flight.fetch_add(permits.len() as u64, Relaxed);
        for permit in permits {
            permit.send(Delivery::in_memory(Arc::clone(event)));
        }
        self.announce(event);
    }

    /// Counts a published event, records it, and answers `wait_for`.
    fn announce(&self, event: &Event) {
        self.inner.shared.metrics.published.fetch_add(1, Relaxed);
        if let Some(recorded) = &self.inner.recorded {
            recorded
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Arc::clone(event));
        }
        let header = event.header();
        if let Some(correlation_id) = &header.correlation_id {
            let mut recent = self
                .inner
                .recent
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let waiters = std::mem::take(&mut recent.waiters);
            for waiter in waiters {
                if waiter.event_type == header.event_type
                    && waiter.correlation_id == *correlation_id
                {
                    let _ = waiter.reply.send(Arc::clone(event));
                } else if !waiter.reply.is_closed() {
                    recent.waiters.push(waiter);
                }
            }
            if self.inner.config.recent > 0 {
                if recent.events.len() == self.inner.config.recent {
                    recent.events.pop_front();
                }
                recent.events.push_back(Arc::clone(event));
            }
        }
    }

    /// Waits for an event of type `E` with this correlation id, published before the call
    /// (among the last `wait_window` such events) or within `timeout` after it.
    ///
    /// # Errors
    ///
    /// [`WaitError::Timeout`] when none came; [`WaitError::Decode`] when one came whose
    /// payload is not an `E`; [`WaitError::Closed`] when the bus shut down meanwhile.
    pub async fn wait_for<E: DomainEvent>(
        &self,
        correlation_id: &str,
        timeout: Duration,
    ) -> Result<Envelope<E>, WaitError> {
        let reply = {
            let mut recent = self
                .inner
                .recent
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let found = recent.events.iter().rev().find(|event| {
                let header = event.header();
                header.event_type == E::NAME
                    && header.correlation_id.as_deref() == Some(correlation_id)
            });
            if let Some(event) = found {
                return Ok(published::decode::<E>(&**event)?);
            }
            if self.inner.closed.load(Relaxed) {
                return Err(WaitError::Closed);
            }
            let (tx, rx) = oneshot::channel();
            recent.waiters.push(Waiter {
                event_type: E::NAME,
                correlation_id: correlation_id.to_owned(),
                reply: tx,
            });
            rx
        };
        match tokio::time::timeout(timeout, reply).await {
            Ok(Ok(event)) => Ok(published::decode::<E>(&*event)?),
            Ok(Err(_)) => Err(WaitError::Closed),
            Err(_) => Err(WaitError::Timeout {
                event_type: E::NAME,
                correlation_id: correlation_id.to_owned(),
                timeout,
            }),
        }
    }

    /// After `shutdown` began, only handlers finishing their work may publish, until the
    /// queues close.
    fn check_open(&self) -> Result<(), PublishError> {
        let in_handler = context::HANDLED.try_with(|_| ()).is_ok();
        if self.inner.draining_done.load(Relaxed)
            || (self.inner.closed.load(Relaxed) && !in_handler)
        {
            return Err(PublishError::Closed);
        }
        Ok(())
    }

    /// Everything published since recording began (test harness only).
    pub(crate) fn recorded(&self) -> Vec<Event> {
        self.inner.recorded.as_ref().map_or_else(Vec::new, |r| {
            r.lock().unwrap_or_else(PoisonError::into_inner).clone()
        })
    }

    /// Runs `handler` on `envelope` as a subscription would: in the handler scope, so
    /// what it publishes carries correlation and causation; panics caught.
    pub(crate) async fn run_handler<Fut>(
        &self,
        event: &Event,
        handler: Fut,
    ) -> Result<(), HandlerError>
    where
        Fut: Future<Output = Result<(), HandlerError>>,
    {
        let scope = context::Handled::of(event);
        match std::panic::AssertUnwindSafe(context::HANDLED.scope(scope, handler))
            .catch_unwind()
            .await
        {
            Ok(result) => result,
            Err(panic) => Err(subscription::panicked(&*panic)),
        }
    }

    /// The counters now.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.shared.metrics.snapshot()
    }

    /// Stops accepting events, lets every subscription finish what is queued (retries
    /// included), and returns when all are done.
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Relaxed);
        // Handlers still running may publish follow-up events: wait until nothing is in
        // flight before closing the queues.
        match &self.inner.backing {
            None => self.inner.shared.wait_idle().await,
            Some(backing) => self.drain_store(backing).await,
        }
        self.inner.draining_done.store(true, Relaxed);
        self.inner.stop.send_replace(true);
        let pumps = std::mem::take(
            &mut *self
                .inner
                .pumps
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for pump in pumps {
            let _ = pump.await;
        }
        // The lanes close once no sender is left: the routing's and each route's own.
        *self
            .inner
            .routing
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(Routing::default());
        for route in self.routes() {
            route
                .lanes
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
        }
        let tasks = std::mem::take(
            &mut *self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for task in tasks {
            // A lane task only ends by draining its queue; a panic is caught per handler.
            let _ = task.await;
        }
        for durable in self.durable_routes() {
            durable.save_checkpoint().await;
        }
        for route in self.routes() {
            let held = route.parking.as_ref().map_or(0, |p| p.parked_count());
            if held > 0 {
                let kept = if route.durable.is_some() {
                    "they stay in the store and are held back again at the next start"
                } else {
                    "an in-memory bus ends with them, as with its dead letters"
                };
                tracing::warn!(subscription = %route.name, held, "shut down with events held back behind dead letters: {kept}");
            }
        }
        let mut recent = self
            .inner
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        recent.waiters.clear();
    }

    /// Waits until every subscription has read the store to its end and handled what it
    /// read, including what handlers published meanwhile.
    async fn drain_store(&self, backing: &Backing) {
        loop {
            let head = match backing.store.head().await {
                Ok(head) => head,
                Err(error) => {
                    tracing::error!(%error, "store not readable at shutdown; not draining it");
                    return self.inner.shared.wait_idle().await;
                }
            };
            loop {
                let behind: Vec<Arc<Durable>> = self
                    .durable_routes()
                    .into_iter()
                    .filter(|durable| !durable.caught_up(head))
                    .collect();
                if behind.is_empty() {
                    break;
                }
                // A subscription that cannot read the store (a lost database, a damaged
                // row) would keep shutdown waiting for ever: what it has not read stays
                // stored, for its next start.
                if behind.iter().all(|durable| durable.stalled()) {
                    for durable in &behind {
                        tracing::error!(
                            subscription = %durable.name,
                            "cannot read the store; shutting down without draining it: \
                             its unread events stay stored"
                        );
                    }
                    break;
                }
                backing.appended.notify_waiters();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            self.inner.shared.wait_idle().await;
            let stalled = self
                .durable_routes()
                .iter()
                .any(|durable| durable.stalled());
            if stalled || matches!(backing.store.head().await, Ok(now) if now == head) {
                return;
            }
        }
    }

    /// Every subscription's route, as they are now.
    fn routes(&self) -> Vec<Arc<Route>> {
        self.inner
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn durable_routes(&self) -> Vec<Arc<Durable>> {
        self.routes()
            .iter()
            .filter_map(|route| route.durable.clone())
            .collect()
    }

    /// Tells the subscriptions of a durable bus to read the store now, rather than at their
    /// next poll: call it after committing events appended in your own transaction
    /// (`SqliteStore::append_in`, `PostgresStore::append_in`). Does nothing on
    /// an in-memory bus.
    pub fn wake(&self) {
        if let Some(backing) = &self.inner.backing {
            backing.appended.notify_waiters();
        }
    }

    /// Handles a subscription's events again, from the first after `after` (0: from the
    /// beginning), including those it already handled. Durable bus only.
    ///
    /// # Errors
    ///
    /// [`ReplayError`] when the bus has no store, the subscription does not exist, or the
    /// store fails.
    pub async fn replay(&self, subscription: &str, after: Position) -> Result<(), ReplayError> {
        let backing = self.inner.backing.as_ref().ok_or(ReplayError::InMemory)?;
        let durable = self
            .inner
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|route| route.name == subscription)
            .and_then(|route| route.durable.clone())
            .ok_or_else(|| ReplayError::NoSubscription(subscription.to_owned()))?;
        let head = backing.store.head().await.map_err(ReplayError::Store)?;
        backing
            .store
            .reset_checkpoint(subscription, after)
            .await
            .map_err(ReplayError::Store)?;
        durable.rewind(after, head);
        backing.appended.notify_waiters();
        Ok(())
    }
}

/// Every subscription with its lanes, as a publish reads them.
#[derive(Clone, Default)]
struct Routing {
    routes: Vec<(Arc<Route>, Box<[Lane]>)>,
}

/// The lane of each subscription an event goes to: a list only when there are several.
enum Targets<'r> {
    None,
    One((&'r Route, &'r Lane)),
    Many(Vec<(&'r Route, &'r Lane)>),
}

impl<'r> Targets<'r> {
    fn lanes(&self) -> &[(&'r Route, &'r Lane)] {
        match self {
            Targets::None => &[],
            Targets::One(lane) => std::slice::from_ref(lane),
            Targets::Many(lanes) => lanes,
        }
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
