//! One subscription: its lanes, and the delivery loop with retries and dead letters.

use super::context::{HANDLED, Handled};
use super::dead_letter::{DeadLetter, redact_event_error};
use super::delivery::Delivery;
use super::delivery::LetterAction;
use super::error::{HandlerError, panicked};
use super::handler::{BatchHandler, Handler};
use super::parking::{Admit, Parking};
use super::published::{self, Event};
use super::retry::RetryPolicy;
use super::routing::Lane;
use super::shared::Shared;
use super::stats::SubscriptionStats;
use super::store_feed::Durable;
use super::transport_feed;
use crate::transport::Transport;
use futures_util::FutureExt;
use smol_str::SmolStr;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

/// The handling side of a subscription, held by its lanes.
pub(crate) struct Worker<H> {
    pub(crate) name: String,
    pub(crate) handler: H,
    pub(crate) retry: RetryPolicy,
    pub(crate) shared: Arc<Shared>,
    /// The store and this subscription's progress through it, on a durable bus.
    pub(crate) durable: Option<Arc<Durable>>,
    /// The broker, on a bus with a transport: where deliveries are settled.
    pub(crate) transport: Option<Arc<dyn Transport>>,
    /// The keys held back by dead letters, with ordered dead letters.
    pub(crate) parking: Option<Arc<Parking>>,
    /// Handler calls so far, for sampling their latency.
    pub(crate) calls: AtomicU64,
    /// Its counters per event type, read by `EventBus::subscriptions`.
    pub(crate) stats: Arc<SubscriptionStats>,
    /// The only tenants whose events it handles, if limited.
    pub(crate) tenants: Option<Arc<[String]>>,
}

/// Handler latency is measured on one call in this many, per subscription.
const LATENCY_SAMPLE: u64 = 8;

/// Starts `concurrency` lanes with queues of `capacity` each.
pub(crate) fn start<H: Handler>(
    worker: Worker<H>,
    concurrency: usize,
    capacity: usize,
) -> (Vec<Lane>, Vec<JoinHandle<()>>) {
    spawn_lanes(worker, concurrency, capacity, |worker, mut rx| async move {
        while let Some(delivery) = rx.recv().await {
            worker.deliver(delivery).await;
        }
    })
}

/// [`start`] for a batch subscription: each lane hands its handler what its queue holds,
/// up to `max` events at a time.
pub(crate) fn start_batched<H: BatchHandler>(
    worker: Worker<H>,
    max: usize,
    concurrency: usize,
    capacity: usize,
) -> (Vec<Lane>, Vec<JoinHandle<()>>) {
    let max = max.max(1);
    spawn_lanes(
        worker,
        concurrency,
        capacity,
        move |worker, mut rx| async move {
            let mut batch = Vec::with_capacity(max);
            while rx.recv_many(&mut batch, max).await > 0 {
                worker.deliver_batch(std::mem::take(&mut batch)).await;
            }
        },
    )
}

fn spawn_lanes<H, F, Fut>(
    worker: Worker<H>,
    concurrency: usize,
    capacity: usize,
    lane: F,
) -> (Vec<Lane>, Vec<JoinHandle<()>>)
where
    H: Handler,
    F: Fn(Arc<Worker<H>>, mpsc::Receiver<Delivery>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let worker = Arc::new(worker);
    (0..concurrency.max(1))
        .map(|_| {
            let (tx, rx) = mpsc::channel::<Delivery>(capacity.max(1));
            (tx, tokio::spawn(lane(Arc::clone(&worker), rx)))
        })
        .unzip()
}

impl<H: Handler> Worker<H> {
    /// Runs the handler until it succeeds, fails permanently or runs out of attempts, and
    /// records the outcome.
    async fn deliver(&self, delivery: Delivery) {
        let envelope = delivery.event.header();
        let span = tracing::info_span!(
            "event.deliver",
            subscription = %self.name,
            event.r#type = %envelope.event_type,
            event.id = %envelope.id,
            correlation_id = envelope.correlation_id.as_deref().unwrap_or(""),
        );
        #[cfg(feature = "opentelemetry")]
        super::trace::adopt(&span, envelope.trace_id.as_deref());
        let key = match &self.parking {
            Some(_) => envelope.partition_key().map(SmolStr::from),
            None => None,
        };
        self.stats.running.fetch_add(1, Relaxed);
        async {
            match (&self.parking, key) {
                (Some(parking), Some(key)) => self.deliver_ordered(parking, &key, delivery).await,
                _ => {
                    self.settle(&delivery).await;
                }
            }
        }
        .instrument(span)
        .await;
        self.stats.running.fetch_sub(1, Relaxed);
        self.shared.finished();
    }

    /// Handles a delivery, or dead-letters it, and settles it where it came from; true when
    /// it was dead-lettered.
    async fn settle(&self, delivery: &Delivery) -> bool {
        // A delivery whose shard this process no longer owns is dropped unhandled: its new
        // owner handles it, in order.
        if !delivery.current().await {
            self.shared.metrics.fenced.fetch_add(1, Relaxed);
            tracing::warn!(
                subscription = %self.name,
                event.id = %delivery.event.header().id,
                "shard lease lost: not handled here, its owner handles it"
            );
            return false;
        }
        if let Some(transport) = &self.transport {
            return self.settle_remote(&**transport, delivery).await;
        }
        let Some(durable) = &self.durable else {
            return match self.handle(&delivery.event).await {
                Ok(()) => false,
                Err(letter) => {
                    self.shared.dead_letter(letter);
                    true
                }
            };
        };
        if durable.handled_before(delivery).await {
            self.shared.metrics.deduplicated.fetch_add(1, Relaxed);
            delivery.place(durable).finish(delivery, true).await;
            return false;
        }
        let (dead, settled) = match self.handle(&delivery.event).await {
            Ok(()) => {
                durable.claim(delivery).await;
                (false, true)
            }
            // A shard lost while its handler ran: its new owner handles the event again,
            // and keeps the dead letter if it fails there too.
            Err(_) if delivery.lease().is_some_and(|shard| !shard.holds()) => {
                self.shared.metrics.fenced.fetch_add(1, Relaxed);
                return false;
            }
            Err(letter) => (true, durable.keep(&self.shared, letter).await),
        };
        delivery.place(durable).finish(delivery, settled).await;
        dead
    }

    /// [`settle`](Self::settle) on a bus with a transport: a handled delivery is
    /// acknowledged; a failed one becomes a dead letter on the broker, written and
    /// acknowledged in one step.
    async fn settle_remote(&self, transport: &dyn Transport, delivery: &Delivery) -> bool {
        // With a store too, its inbox drops what the relay forwarded twice.
        let handled_before = match &self.durable {
            Some(durable) => durable.handled_before(delivery).await,
            None => false,
        };
        let dead = if handled_before {
            self.shared.metrics.deduplicated.fetch_add(1, Relaxed);
            if let Some(receipt) = &delivery.receipt {
                receipt.ack_later(&self.shared);
            }
            false
        } else {
            self.handle_remote(transport, delivery).await
        };
        if let Some(old) = &delivery.redelivers_remote
            && let Err(error) = transport.remove_dead_letter(old).await
        {
            tracing::warn!(%error, "redelivered dead letter stays on the broker");
        }
        dead
    }

    /// Handles a delivery from the broker, then acknowledges it or dead-letters it there;
    /// true when it was dead-lettered.
    async fn handle_remote(&self, transport: &dyn Transport, delivery: &Delivery) -> bool {
        match self.handle(&delivery.event).await {
            Ok(()) => {
                if let Some(durable) = &self.durable {
                    durable.claim(delivery).await;
                }
                if let Some(receipt) = &delivery.receipt {
                    receipt.ack_later(&self.shared);
                }
                false
            }
            Err(letter) => {
                transport_feed::keep(transport, &self.shared, letter, delivery.receipt.as_deref())
                    .await;
                true
            }
        }
    }

    /// A delivery with ordered dead letters: parked behind its key's dead letter, or
    /// handled; a dead letter redelivered or discarded lets what it held back follow.
    async fn deliver_ordered(&self, parking: &Parking, key: &str, delivery: Delivery) {
        let (admit, delivery) = parking.admit(key, delivery);
        let Some(delivery) = delivery else {
            return;
        };
        match admit {
            Admit::Held => {
                // The dead letter's own event delivered again (read again from the store
                // after a restart, or published again): it is kept as a dead letter already.
                tracing::debug!(
                    subscription = %self.name,
                    event.id = %delivery.event.header().id,
                    "already a dead letter holding its key back; not handled again"
                );
                if let (Some(durable), Some(position)) = (&self.durable, delivery.position) {
                    delivery.place(durable).settle_position(position);
                }
                return;
            }
            Admit::Handle => {
                let id = delivery.event.header().id;
                if self.settle(&delivery).await {
                    parking.block(key, id);
                    return;
                }
                if delivery.letter != LetterAction::Redeliver {
                    return;
                }
            }
            Admit::Release => {}
        }
        // The dead letter is settled: what it held back follows, in order.
        while let Some(next) = parking.next(key) {
            self.shared.metrics.in_flight.fetch_add(1, Relaxed);
            let id = next.event.header().id;
            let failed = self.settle(&next).await;
            self.shared.finished();
            if failed {
                parking.block(key, id);
                return;
            }
        }
    }

    /// Handles one event: `Err` holds the dead letter when it failed for good.
    async fn handle(&self, event: &Event) -> Result<(), DeadLetter> {
        if !self.takes_tenant_of(event) {
            return Ok(());
        }
        // The limit guards what arrives as bytes; an event typed in this process has none.
        if event.payload().is_none()
            && let Ok(raw) = event.raw()
        {
            let size = raw.payload.get().len();
            if size > self.shared.max_payload_bytes {
                let error = format!(
                    "payload of {size} bytes exceeds the limit of {} bytes",
                    self.shared.max_payload_bytes
                );
                return Err(self.dead_letter(event, error, 0));
            }
        }
        let counters = self.stats.of(&event.header().event_type);
        // With field encryption, the event as the handler sees it, once opened: what an
        // error quoting its fields is redacted against.
        let mut opened: Option<Event> = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Timed for one call in `LATENCY_SAMPLE` (the first included): two clock reads
            // per call cost as much as the rest of the bookkeeping.
            let timed = self
                .calls
                .fetch_add(1, Relaxed)
                .is_multiple_of(LATENCY_SAMPLE);
            let started = timed.then(Instant::now);
            let (result, looped) = self.attempt(event, &mut opened).await;
            if let Some(started) = started {
                let elapsed = started.elapsed();
                self.shared.metrics.record_latency(elapsed);
                counters.latency.record(elapsed);
            }
            let shown = opened.as_ref().unwrap_or(event);
            // The dead letter redacts its error against the event it keeps; an opened
            // event's fields (field encryption) are redacted here first.
            let for_letter = |text: String| match &opened {
                Some(opened) => redact_event_error(opened, &text),
                None => text,
            };
            if let Some(refused) = looped {
                // Whatever the handler made of the refusal, retrying would loop again.
                return Err(self.dead_letter(event, for_letter(refused), attempt));
            }
            let error = match result {
                Ok(()) => {
                    self.shared.metrics.delivered.fetch_add(1, Relaxed);
                    counters.delivered.fetch_add(1, Relaxed);
                    return Ok(());
                }
                Err(error) => error,
            };
            if error.is_permanent() || attempt >= self.retry.attempts() {
                // A payload that never decoded never reached the handler.
                let attempts = if error.kind_is_decode() { 0 } else { attempt };
                return Err(self.dead_letter(event, for_letter(error.to_string()), attempts));
            }
            tracing::debug!(
                attempt,
                error = %redact_event_error(shown, &error.to_string()),
                "handler failed, retrying"
            );
            self.shared.metrics.retried.fetch_add(1, Relaxed);
            counters.retried.fetch_add(1, Relaxed);
            tokio::time::sleep(self.retry.delay(attempt)).await;
        }
    }

    /// Whether the subscription handles the event's tenant: always, unless limited to
    /// tenants.
    fn takes_tenant_of(&self, event: &Event) -> bool {
        let Some(tenants) = &self.tenants else {
            return true;
        };
        event
            .header()
            .meta
            .tenant_id()
            .is_some_and(|tenant| tenants.iter().any(|t| t == tenant))
    }

    /// One call of the handler, with panics caught and counted as retryable failures; with
    /// it, the loop guard's refusal of a publish the handler made, if any.
    /// With field encryption, the event is opened first (once: `opened` keeps it for the
    /// next attempts).
    async fn attempt(
        &self,
        event: &Event,
        opened: &mut Option<Event>,
    ) -> (Result<(), HandlerError>, Option<String>) {
        if opened.is_none() {
            match self.opened(event).await {
                Ok(open) => *opened = open,
                Err(error) => return (Err(error), None),
            }
        }
        let event = opened.as_ref().unwrap_or(event);
        let handled = Handled::new(event, !H::BATCH);
        call_scoped(handled, || self.handler.call(event)).await
    }

    /// The event with its sealed fields opened, with field encryption on; `None` when the
    /// handler takes it as it is. A key store that fails is retried like a handler; a field
    /// that does not open fails for good.
    async fn opened(&self, event: &Event) -> Result<Option<Event>, HandlerError> {
        let encryption = self.shared.encryption.as_deref();
        published::opened(encryption, &**event)
            .await
            .map_err(|error| {
                if error.is_transient() {
                    HandlerError::retryable(error)
                } else {
                    HandlerError::permanent(error)
                }
            })
    }

    fn dead_letter(&self, event: &Event, last_error: String, attempts: u32) -> DeadLetter {
        // The letter's error has the event's PII values redacted: log that one.
        let letter = DeadLetter::new(self.name.clone(), event, last_error, attempts);
        let envelope = event.header();
        tracing::warn!(
            subscription = %self.name,
            event.id = %envelope.id,
            event.r#type = %envelope.event_type,
            attempts,
            error = %letter.last_error,
            "event dead-lettered"
        );
        self.shared.metrics.dead_lettered.fetch_add(1, Relaxed);
        self.stats
            .of(&envelope.event_type)
            .dead_lettered
            .fetch_add(1, Relaxed);
        letter
    }
}

impl<H: BatchHandler> Worker<H> {
    /// Handles what a lane took from its queue: the runs of plain deliveries as batches,
    /// anything else (a redelivery, a discard, a key held back, an event seen before, a
    /// shard lost, an oversize payload) alone as [`deliver`](Self::deliver) does, in the
    /// order they came.
    async fn deliver_batch(&self, deliveries: Vec<Delivery>) {
        let mut run = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            if self.batchable(&delivery).await {
                run.push(delivery);
            } else {
                self.deliver_run(std::mem::take(&mut run)).await;
                self.deliver(delivery).await;
            }
        }
        self.deliver_run(run).await;
    }

    /// Whether a delivery can go in a batch: an ordinary one that needs no check of its own.
    async fn batchable(&self, delivery: &Delivery) -> bool {
        if delivery.letter != LetterAction::None
            || delivery.redelivers.is_some()
            || delivery.redelivers_remote.is_some()
        {
            return false;
        }
        if delivery.event.payload().is_none()
            && let Ok(raw) = delivery.event.raw()
            && raw.payload.get().len() > self.shared.max_payload_bytes
        {
            return false;
        }
        if let Some(parking) = &self.parking
            && let Some(key) = delivery.event.header().partition_key()
            && parking.is_blocked(key)
        {
            return false;
        }
        if !delivery.current().await {
            return false;
        }
        match &self.durable {
            Some(durable) => !durable.handled_before(delivery).await,
            None => true,
        }
    }

    /// Handles a run of batchable deliveries in one handler call, retried as a whole; a
    /// run that fails for good is handed over again one event at a time, so that only the
    /// events that fail alone are dead-lettered.
    async fn deliver_run(&self, run: Vec<Delivery>) {
        match run.len() {
            0 => return,
            1 => {
                for delivery in run {
                    self.deliver(delivery).await;
                }
                return;
            }
            _ => {}
        }
        let events: Vec<Event> = run.iter().map(|d| Arc::clone(&d.event)).collect();
        let span = tracing::info_span!(
            "event.deliver_batch",
            subscription = %self.name,
            events = events.len(),
        );
        // A batch joins the trace of its first event.
        #[cfg(feature = "opentelemetry")]
        super::trace::adopt(&span, events[0].header().trace_id.as_deref());
        let running = run.len() as u64;
        self.stats.running.fetch_add(running, Relaxed);
        let handled = self.handle_many(&events).instrument(span).await;
        self.stats.running.fetch_sub(running, Relaxed);
        if let Err(error) = handled {
            tracing::debug!(
                subscription = %self.name,
                events = events.len(),
                %error,
                "batch failed for good; handing its events over one at a time"
            );
            for delivery in run {
                self.deliver(delivery).await;
            }
            return;
        }
        for delivery in &run {
            // Another tenant's event was passed over, not delivered.
            if self.takes_tenant_of(&delivery.event) {
                self.shared.metrics.delivered.fetch_add(1, Relaxed);
                self.stats
                    .of(&delivery.event.header().event_type)
                    .delivered
                    .fetch_add(1, Relaxed);
            }
            if let Some(durable) = &self.durable {
                durable.claim(delivery).await;
            }
            match (&self.transport, &self.durable) {
                (Some(_), _) => {
                    if let Some(receipt) = &delivery.receipt {
                        receipt.ack_later(&self.shared);
                    }
                }
                (None, Some(durable)) => delivery.place(durable).finish(delivery, true).await,
                (None, None) => {}
            }
            self.shared.finished();
        }
    }

    /// Calls the handler on a batch until it succeeds or fails for good; retries back off
    /// as for one event.
    async fn handle_many(&self, events: &[Event]) -> Result<(), String> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let (result, looped) = self.attempt_many(events).await;
            let elapsed = started.elapsed();
            self.shared.metrics.record_latency(elapsed);
            // A batch's latency counts under its first event's type.
            if let Some(first) = events.first() {
                self.stats
                    .of(&first.header().event_type)
                    .latency
                    .record(elapsed);
            }
            if let Some(refused) = looped {
                return Err(refused);
            }
            let error = match result {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            let permanent = error.is_permanent();
            // Shown only in logs: each event is handled alone after a failed batch, where
            // its own error is redacted against its opened fields.
            let error = events.iter().fold(error.to_string(), |text, event| {
                redact_event_error(event, &text)
            });
            if attempt >= self.retry.attempts() || permanent {
                return Err(error);
            }
            tracing::debug!(attempt, %error, "batch handler failed, retrying");
            self.shared.metrics.retried.fetch_add(1, Relaxed);
            for event in events {
                self.stats
                    .of(&event.header().event_type)
                    .retried
                    .fetch_add(1, Relaxed);
            }
            tokio::time::sleep(self.retry.delay(attempt)).await;
        }
    }

    /// One call of the batch handler, as [`attempt`](Self::attempt) for one event.
    async fn attempt_many(&self, events: &[Event]) -> (Result<(), HandlerError>, Option<String>) {
        // What the handler publishes is one deeper than the batch's deepest event.
        let Some(deepest) = events.iter().max_by_key(|e| e.header().meta.depth()) else {
            return (Ok(()), None);
        };
        let mut opened = Vec::with_capacity(events.len());
        for event in events.iter().filter(|event| self.takes_tenant_of(event)) {
            match self.opened(event).await {
                Ok(open) => opened.push(open.unwrap_or_else(|| Event::clone(event))),
                Err(error) => return (Err(error), None),
            }
        }
        if opened.is_empty() {
            return (Ok(()), None);
        }
        call_scoped(Handled::new(deepest, false), || {
            self.handler.call_many(&opened)
        })
        .await
    }
}

/// Calls a handler in the handler scope `handled`, with panics caught and counted as
/// retryable failures; with its result, the loop guard's refusal of a publish it made, if
/// any.
async fn call_scoped<Fut>(
    handled: Handled,
    call: impl FnOnce() -> Fut,
) -> (Result<(), HandlerError>, Option<String>)
where
    Fut: Future<Output = Result<(), HandlerError>>,
{
    let future = match std::panic::catch_unwind(AssertUnwindSafe(call)) {
        Ok(future) => future,
        Err(panic) => return (Err(panicked(&*panic)), None),
    };
    let scoped = HANDLED.scope(handled, async {
        let result = AssertUnwindSafe(future).catch_unwind().await;
        (result, HANDLED.with(Handled::take_loop))
    });
    match scoped.await {
        (Ok(result), looped) => (result, looped),
        (Err(panic), looped) => (Err(panicked(&*panic)), looped),
    }
}
