//! One subscription: its lanes, and the delivery loop with retries and dead letters.

use super::context::{HANDLED, Handled};
use super::dead_letter::DeadLetter;
use super::durable::Durable;
use super::error::HandlerError;
use super::handler::Handler;
use super::metrics::Metrics;
use super::parking::{Admit, LetterAction, Parking};
use super::pattern::Pattern;
use super::published::Event;
use super::retry::RetryPolicy;
use crate::envelope::Envelope;
use futures_util::FutureExt;
use smol_str::SmolStr;
use std::hash::{Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

/// What a lane's queue carries.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) event: Event,
    /// Where the event sits in the store, on a durable bus: its subscription's checkpoint
    /// passes it once it is handled or dead-lettered.
    pub(crate) position: Option<u64>,
    /// Handled even if the subscription already handled it (a replay).
    pub(crate) replay: bool,
    /// The stored dead letter this delivery retries, removed once it is settled.
    pub(crate) redelivers: Option<crate::store::DeadLetterId>,
    /// Whether it redelivers or discards a dead letter, for ordered dead letters.
    pub(crate) letter: LetterAction,
}

impl Delivery {
    /// An event that is not (or not yet) in a store.
    pub(crate) fn in_memory(event: Event) -> Self {
        Delivery {
            event,
            position: None,
            replay: false,
            redelivers: None,
            letter: LetterAction::None,
        }
    }
}

/// The queue of one lane of a subscription.
pub(crate) type Lane = mpsc::Sender<Delivery>;

/// Which events a subscription receives.
#[derive(Debug)]
pub(crate) enum Matcher {
    /// Every event whose type is one of these names, at any version: a version the union
    /// does not know is dead-lettered, not skipped.
    Names(Vec<&'static str>),
    /// Every event whose type matches.
    Pattern(Pattern),
}

impl Matcher {
    pub(crate) fn matches(&self, event_type: &str) -> bool {
        match self {
            Matcher::Names(names) => names.contains(&event_type),
            Matcher::Pattern(pattern) => pattern.matches(event_type),
        }
    }

    /// Whether the subscription's handler takes the event's JSON.
    pub(crate) fn takes_json(&self) -> bool {
        matches!(self, Matcher::Pattern(_))
    }
}

/// State shared by the bus and every lane: counters and dead letters.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) metrics: Metrics,
    pub(crate) dead_letters: Mutex<Vec<DeadLetter>>,
    pub(crate) max_payload_bytes: usize,
    /// Signalled when the last delivery in flight finishes.
    pub(crate) idle: tokio::sync::Notify,
}

impl Shared {
    /// A delivery is over: delivered or dead-lettered.
    pub(crate) fn finished(&self) {
        if self.metrics.in_flight.fetch_sub(1, Relaxed) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Returns once no delivery is in flight.
    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.metrics.in_flight.load(Relaxed) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Keeps a dead letter in memory.
    pub(crate) fn dead_letter(&self, letter: DeadLetter) {
        self.dead_letters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(letter);
    }
}

/// The routing side of a subscription, held by the bus.
pub(crate) struct Route {
    pub(crate) name: String,
    pub(crate) matcher: Matcher,
    /// One queue per lane; emptied at shutdown, which ends the lanes once drained.
    pub(crate) lanes: std::sync::RwLock<Vec<Lane>>,
    /// Its place in the store, on a durable bus.
    pub(crate) durable: Option<Arc<Durable>>,
    /// The keys held back by dead letters, with ordered dead letters.
    pub(crate) parking: Option<Arc<Parking>>,
}

impl Route {
    /// The lane of an event (see [`pick`]), as an owned sender.
    pub(crate) fn lane<P>(&self, envelope: &Envelope<P>) -> Option<Lane> {
        let lanes = self
            .lanes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pick(&lanes, envelope).cloned()
    }
}

/// The lane of an event among a subscription's: by partition key, so one key's events stay
/// in order; events without a key spread by id. `None` once the lanes are closed.
pub(crate) fn pick<'a, P>(lanes: &'a [Lane], envelope: &Envelope<P>) -> Option<&'a Lane> {
    match lanes.len() {
        0 => return None,
        1 => return lanes.first(),
        _ => {}
    }
    let mut hasher = std::hash::DefaultHasher::new();
    match envelope.partition_key() {
        Some(key) => key.hash(&mut hasher),
        None => envelope.id.hash(&mut hasher),
    }
    let index = usize::try_from(hasher.finish() % lanes.len() as u64).unwrap_or(0);
    lanes.get(index)
}

/// The handling side of a subscription, held by its lanes.
pub(crate) struct Worker<H> {
    pub(crate) name: String,
    pub(crate) handler: H,
    pub(crate) retry: RetryPolicy,
    pub(crate) shared: Arc<Shared>,
    /// The store and this subscription's progress through it, on a durable bus.
    pub(crate) durable: Option<Arc<Durable>>,
    /// The keys held back by dead letters, with ordered dead letters.
    pub(crate) parking: Option<Arc<Parking>>,
    /// Handler calls so far, for sampling their latency.
    pub(crate) calls: AtomicU64,
}

/// Handler latency is measured on one call in this many, per subscription.
const LATENCY_SAMPLE: u64 = 8;

/// Starts `concurrency` lanes with queues of `capacity` each.
pub(crate) fn start<H: Handler>(
    worker: Worker<H>,
    concurrency: usize,
    capacity: usize,
) -> (Vec<Lane>, Vec<JoinHandle<()>>) {
    let worker = Arc::new(worker);
    (0..concurrency.max(1))
        .map(|_| {
            let (tx, mut rx) = mpsc::channel::<Delivery>(capacity.max(1));
            let worker = Arc::clone(&worker);
            let task = tokio::spawn(async move {
                while let Some(delivery) = rx.recv().await {
                    worker.deliver(delivery).await;
                }
            });
            (tx, task)
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
        let key = match &self.parking {
            Some(_) => envelope.partition_key().map(SmolStr::from),
            None => None,
        };
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
        self.shared.finished();
    }

    /// Handles a delivery, or dead-letters it; true when it was dead-lettered.
    async fn settle(&self, delivery: &Delivery) -> bool {
        match &self.durable {
            None => match self.handle(&delivery.event).await {
                Ok(()) => false,
                Err(letter) => {
                    self.shared.dead_letter(letter);
                    true
                }
            },
            Some(durable) => durable.deliver(self, delivery).await,
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
                    durable.settle_position(position);
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
    pub(crate) async fn handle(&self, event: &Event) -> Result<(), DeadLetter> {
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
            let (result, looped) = self.attempt(event).await;
            if let Some(started) = started {
                self.shared.metrics.record_latency(started.elapsed());
            }
            if let Some(refused) = looped {
                // Whatever the handler made of the refusal, retrying would loop again.
                return Err(self.dead_letter(event, refused, attempt));
            }
            let error = match result {
                Ok(()) => {
                    self.shared.metrics.delivered.fetch_add(1, Relaxed);
                    return Ok(());
                }
                Err(error) => error,
            };
            if error.is_permanent() || attempt >= self.retry.attempts() {
                // A payload that never decoded never reached the handler.
                let attempts = if error.kind_is_decode() { 0 } else { attempt };
                return Err(self.dead_letter(event, error.to_string(), attempts));
            }
            tracing::debug!(attempt, error = %error, "handler failed, retrying");
            self.shared.metrics.retried.fetch_add(1, Relaxed);
            tokio::time::sleep(self.retry.delay(attempt)).await;
        }
    }

    /// One call of the handler, with panics caught and counted as retryable failures; with
    /// it, the loop guard's refusal of a publish the handler made, if any.
    async fn attempt(&self, event: &Event) -> (Result<(), HandlerError>, Option<String>) {
        let handled = Handled::of(event);
        let call = std::panic::catch_unwind(AssertUnwindSafe(|| self.handler.call(event)));
        let future = match call {
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

    fn dead_letter(&self, event: &Event, last_error: String, attempts: u32) -> DeadLetter {
        let envelope = event.header();
        tracing::warn!(
            subscription = %self.name,
            event.id = %envelope.id,
            event.r#type = %envelope.event_type,
            attempts,
            error = %last_error,
            "event dead-lettered"
        );
        self.shared.metrics.dead_lettered.fetch_add(1, Relaxed);
        DeadLetter::new(self.name.clone(), event, last_error, attempts)
    }
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
