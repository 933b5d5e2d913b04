//! Subscribing: a name, which events, a handler; the subscription's lanes start at once, and
//! on a durable bus or a transport its feed.

use super::handler::{self, Handler};
use super::parking::Parking;
use super::pattern::Pattern;
use super::routing::{Lane, Matcher, Route, Routing};
use super::stats::SubscriptionStats;
use super::store_feed::{self, Durable};
use super::store_group;
use super::subscription::{self, Worker};
use super::transport_feed;
use super::{EventBus, HandlerError, SubscribeError, SubscriptionOptions};
use crate::envelope::{Envelope, RawEnvelope};
use crate::event::DomainEvent;
use crate::transport::GroupSpec;
use crate::union::EventUnion;
use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, PoisonError, RwLock};
use tokio::task::JoinHandle;

impl EventBus {
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
        self.add(
            name,
            Matcher::of_union::<U>(),
            options,
            handler::Typed::<U, F>::new(handler),
            subscription::start,
        )
    }

    /// Subscribes `name` to the events of the union `U`, handed to `handler` up to `max` at
    /// a time (a `max` of 0 counts as 1): a lane's events in the order they arrived, so one partition key's events stay
    /// in order within a batch and across batches. A batch holds what has arrived by the time
    /// the lane is free, so under light load it is often one event.
    ///
    /// A failing batch is retried as a whole with the subscription's retry policy. When it
    /// fails for good (or an event of it does not decode), its events are handed over again
    /// one at a time, so that only those that fail alone are dead-lettered; a batch handler
    /// must therefore tolerate seeing an event again, as under at-least-once delivery
    /// anyway. A redelivered dead letter, and an event a dead letter holds back, are handed
    /// over alone. What the handler publishes is one causation step deeper than the batch's
    /// deepest event, for the loop guard, but carries no correlation id from it: the events
    /// of a batch need not share one, so pass a [`PublishContext`](crate::PublishContext).
    ///
    /// ```
    /// use event_core::{DomainEvent, EventBus, HandlerError};
    /// use schemars::JsonSchema;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
    /// struct MeterRead { #[event(partition_key)] meter: String, kwh: u32 }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let bus = EventBus::builder().build();
    /// bus.subscribe_batch::<MeterRead, _, _>("meter-totals", 100, |batch| async move {
    ///     let kwh: u32 = batch.iter().map(|read| read.payload.kwh).sum();
    ///     println!("{} reads, {kwh} kWh", batch.len());
    ///     Ok::<_, HandlerError>(())
    /// })?;
    /// bus.publish(MeterRead { meter: "m-1".into(), kwh: 3 }).await?;
    /// bus.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`SubscribeError`] when the name is taken or the bus is shut down.
    pub fn subscribe_batch<U, F, Fut>(
        &self,
        name: &str,
        max: usize,
        handler: F,
    ) -> Result<(), SubscribeError>
    where
        U: EventUnion,
        F: Fn(Vec<Envelope<U>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.subscribe_batch_with(name, max, &SubscriptionOptions::new(), handler)
    }

    /// [`subscribe_batch`](Self::subscribe_batch) with settings of its own.
    ///
    /// # Errors
    ///
    /// [`SubscribeError`] when the name is taken or the bus is shut down.
    pub fn subscribe_batch_with<U, F, Fut>(
        &self,
        name: &str,
        max: usize,
        options: &SubscriptionOptions,
        handler: F,
    ) -> Result<(), SubscribeError>
    where
        U: EventUnion,
        F: Fn(Vec<Envelope<U>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.add(
            name,
            Matcher::of_union::<U>(),
            options,
            handler::Batch::<U, F>::new(handler),
            move |worker, concurrency, capacity| {
                subscription::start_batched(worker, max, concurrency, capacity)
            },
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
            subscription::start,
        )
    }

    /// Adds a subscription whose lanes `start` spawns (with the worker, the lane count and
    /// the queue capacity).
    fn add<H: Handler>(
        &self,
        name: &str,
        matcher: Matcher,
        options: &SubscriptionOptions,
        handler: H,
        start: impl FnOnce(Worker<H>, usize, usize) -> (Vec<Lane>, Vec<JoinHandle<()>>),
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
        let stats = Arc::new(SubscriptionStats::default());
        let worker = Worker {
            name: name.to_owned(),
            handler,
            retry: options.retry.unwrap_or(config.retry),
            shared: Arc::clone(&self.inner.shared),
            durable: durable.clone(),
            transport: self
                .inner
                .remote
                .as_ref()
                .map(|remote| Arc::clone(&remote.transport)),
            parking: parking.clone(),
            calls: std::sync::atomic::AtomicU64::new(0),
            stats: Arc::clone(&stats),
            tenants: options.tenants.clone(),
        };
        let (lanes, tasks) = start(
            worker,
            options.concurrency.unwrap_or(config.concurrency),
            options.queue_capacity.unwrap_or(config.queue_capacity),
        );
        let route = Arc::new(Route {
            name: name.to_owned(),
            matcher,
            lanes: RwLock::new(lanes.clone()),
            parking,
            stats,
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
        self.start_feed(&route, options, durable);
        routes.push(route);
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(tasks);
        Ok(())
    }

    /// Starts what feeds a new subscription's lanes: on a transport, its consumer group's
    /// member (and the outbox relay, with a store too); on a durable bus, its store pump.
    fn start_feed(
        &self,
        route: &Arc<Route>,
        options: &SubscriptionOptions,
        durable: Option<Arc<Durable>>,
    ) {
        if let Some(remote) = &self.inner.remote {
            let types = match &route.matcher {
                Matcher::Names(names) => Some(names.iter().map(|n| (*n).to_owned()).collect()),
                Matcher::Pattern(pattern) => pattern.literal().map(|name| vec![name]),
            };
            let mut spec = GroupSpec::new(&route.name, remote.consumer.clone())
                .start_from(options.start_from)
                .max_payload_bytes(self.inner.shared.max_payload_bytes);
            spec.event_types = types;
            self.spawn_feed(transport_feed::feed(
                Arc::clone(remote),
                spec,
                Arc::clone(route),
                Arc::clone(&self.inner.shared),
                self.inner.stop.subscribe(),
            ));
            self.ensure_relay();
        }
        // With a transport, the store is the outbox and each subscription's inbox; the
        // subscriptions read from the broker.
        if let (Some(backing), None, Some(_)) = (&self.inner.backing, &self.inner.remote, &durable)
            && let Some(groups) = backing.groups
        {
            self.spawn_feed(store_group::run(
                Arc::clone(backing),
                groups,
                backing.consumer.clone(),
                Arc::clone(route),
                Arc::clone(&self.inner.shared),
                self.inner.stop.subscribe(),
            ));
            return;
        }
        if let Some(durable) = durable.filter(|_| self.inner.remote.is_none()) {
            self.inner
                .durables
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Arc::clone(&durable));
            self.spawn_feed(store_feed::pump(
                durable,
                Arc::clone(route),
                Arc::clone(&self.inner.shared),
                self.inner.stop.subscribe(),
            ));
        }
    }
}
