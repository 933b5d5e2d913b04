//! Publishing: the envelope, the loop guard, the JSON where bytes are needed, then the
//! store, the transport or the subscriptions' lanes.

use super::context;
use super::delivery::Delivery;
use super::published;
use super::routing::{self, Routing, Targets};
use super::{Event, EventBus, PublishContext, PublishError};
use crate::envelope::{Envelope, RawEnvelope};
use crate::event::DomainEvent;
use std::borrow::Cow;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, PoisonError};
use tokio::sync::mpsc;
use tracing::Instrument;

impl EventBus {
    /// Publishes an event: wraps it in an envelope, and enqueues it for every matching
    /// subscription, waiting while a queue is full. Returns the envelope.
    ///
    /// Each typed subscription gets its own clone of the event, not its JSON; the JSON is
    /// encoded once, and only when something needs it (a store, a pattern subscription, a
    /// dead letter).
    ///
    /// Inside a handler, the new event carries the handled event's correlation id, its id
    /// as causation id, and a causation depth one more than its own (the loop guard,
    /// [`EventBusBuilder::max_causation_depth`](super::EventBusBuilder::max_causation_depth)).
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
        if self.inner.backing.is_some() || self.inner.remote.is_some() {
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

    /// Prepares an event for the transactional outbox, without publishing it: wraps it as
    /// [`publish`](Self::publish) would (the ambient context of
    /// [`PublishContext::scope`], a handler's correlation and causation, the loop guard),
    /// and returns its envelope and the JSON that leaves the process (PII fields sealed,
    /// with field encryption on). Append the JSON inside your own transaction
    /// (`SqliteStore::append_in`, `append_in_sqlx`, `PostgresStore::append_in`...), commit,
    /// then [`wake`](Self::wake) the bus: its subscriptions handle the event from the store.
    ///
    /// ```
    /// use event_core::{DomainEvent, EventBus, PublishContext};
    /// use schemars::JsonSchema;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
    /// struct OrderPlaced {
    ///     #[event(partition_key)]
    ///     order_id: String,
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), event_core::PublishError> {
    /// let bus = EventBus::builder().build();
    /// let (placed, json) = PublishContext::new()
    ///     .correlation_id("req-1")
    ///     .scope(bus.prepare(OrderPlaced { order_id: "o-1".into() }))
    ///     .await?;
    /// assert_eq!(json.id, placed.id);
    /// assert_eq!(json.correlation_id.as_deref(), Some("req-1"));
    /// assert_eq!(json.partition_key(), Some("o-1"));
    /// // SqliteStore::append_in(&tx, &[json])?; tx.commit()?; bus.wake();
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`publish`](Self::publish), but for [`PublishError::Store`] and
    /// [`PublishError::Closed`]: nothing is stored or sent here.
    pub async fn prepare<E: DomainEvent>(
        &self,
        event: E,
    ) -> Result<(Envelope<E>, RawEnvelope), PublishError> {
        self.prepare_with(PublishContext::new(), event).await
    }

    /// [`prepare`](Self::prepare) with correlation id, trace id, tenant, actor or source.
    ///
    /// # Errors
    ///
    /// As [`prepare`](Self::prepare).
    pub async fn prepare_with<E: DomainEvent>(
        &self,
        context: PublishContext,
        event: E,
    ) -> Result<(Envelope<E>, RawEnvelope), PublishError> {
        let (envelope, event) = self.wrap(context, event)?;
        let raw = self.encoded(&event)?;
        let raw = self.sealed(raw).await?.into_owned();
        Ok((envelope, raw))
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

    /// Appends to the store (durable bus), sends to the broker (a transport), or enqueues
    /// for every matching subscription.
    async fn dispatch(&self, event: Event) -> Result<(), PublishError> {
        if let Some(backing) = &self.inner.backing {
            self.check_open()?;
            let raw = self.encoded(&event)?;
            let raw = self.sealed(raw).await?;
            backing
                .store
                .append(vec![raw.into_owned()])
                .await
                .map_err(PublishError::Store)?;
            backing.appended.notify_waiters();
            self.ensure_relay();
        } else if let Some(remote) = &self.inner.remote {
            self.check_open()?;
            let raw = self.encoded(&event)?;
            let raw = self.sealed(raw).await?;
            remote
                .transport
                .publish(std::slice::from_ref(&*raw))
                .await
                .map_err(PublishError::Transport)?;
        } else {
            return self.enqueue(event).await;
        }
        self.announce(&event);
        Ok(())
    }

    /// The event's JSON as it leaves the process: its PII fields sealed, with field
    /// encryption on.
    async fn sealed<'e>(&self, raw: &'e RawEnvelope) -> Result<Cow<'e, RawEnvelope>, PublishError> {
        let Some(encryption) = &self.inner.shared.encryption else {
            return Ok(Cow::Borrowed(raw));
        };
        match encryption.seal(raw).await {
            Ok(Some(sealed)) => Ok(Cow::Owned(sealed)),
            Ok(None) => Ok(Cow::Borrowed(raw)),
            Err(error) => Err(PublishError::Protect(error)),
        }
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
        #[cfg(feature = "opentelemetry")]
        let explicit_trace = context.trace_id.is_some();
        context.apply(&mut envelope);
        #[cfg(feature = "opentelemetry")]
        super::trace::stamp(&mut envelope.trace_id, explicit_trace);
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
            let lane = routing::pick(lanes, header).ok_or(PublishError::Closed)?;
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
        // Only events with a correlation id are waited for: no lock for the others.
        if event.header().correlation_id.is_some() {
            self.inner
                .recent
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remember(event, self.inner.config.recent);
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
}
