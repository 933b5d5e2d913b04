//! Given / when / then for handlers: test what a handler publishes, without sleeps.

use crate::bus::{Event, EventBus, HandlerError, PublishContext, PublishError, published};
use crate::envelope::{Envelope, RawEnvelope};
use crate::event::DomainEvent;
use std::fmt::Debug;
use std::future::Future;

/// A test of one handler: given some events on a bus, when the handler runs on an event,
/// then it published exactly these events, or failed with this error.
///
/// The handler runs directly, not through a queue, so the outcome is known when `when`
/// returns: no sleeps, no polling. Events it publishes on [`bus`](Self::bus) carry the
/// trigger's correlation id and have its id as causation id, as on a real subscription.
///
/// In one process a typed handler gets a clone of the event, not its JSON; another process
/// gets the JSON. So that a test catches what the wire would change, every event the test
/// records (given, under test, published) is written to JSON, read back and written again,
/// and the test fails when the two JSON texts differ, naming the event and the JSON pointer
/// (a `#[serde(skip_deserializing)]` field, a lossy `Serialize` or `Deserialize`);
/// [`Outcome::assert_published`] also fails when an event reads back from its JSON as
/// another value than the one published (a `#[serde(skip)]` field).
///
/// ```
/// use event_core::testing::HandlerTest;
/// use event_core::{DomainEvent, Envelope, EventBus, HandlerError};
/// use schemars::JsonSchema;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
/// struct OrderPaid { order_id: String }
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
/// struct InvoiceIssued { order_id: String }
///
/// async fn issue_invoice(bus: EventBus, env: Envelope<OrderPaid>) -> Result<(), HandlerError> {
///     bus.publish(InvoiceIssued { order_id: env.payload.order_id }).await?;
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let test = HandlerTest::new();
/// let bus = test.bus();
/// let outcome = test
///     .when(OrderPaid { order_id: "o-1".into() }, |env| issue_invoice(bus, env))
///     .await;
/// outcome.assert_published(&[InvoiceIssued { order_id: "o-1".into() }]);
/// # }
/// ```
#[derive(Debug)]
pub struct HandlerTest {
    bus: EventBus,
    correlation_id: String,
    given: usize,
}

impl Default for HandlerTest {
    fn default() -> Self {
        HandlerTest::new()
    }
}

impl HandlerTest {
    /// A test with a fresh in-memory bus that records what is published.
    pub fn new() -> Self {
        HandlerTest {
            bus: EventBus::builder().record().build(),
            correlation_id: format!("test-{}", uuid::Uuid::now_v7()),
            given: 0,
        }
    }

    /// The bus to hand to the handler under test (and to subscribe helpers on).
    pub fn bus(&self) -> EventBus {
        self.bus.clone()
    }

    /// Publishes an event before the one under test; it is history, not outcome.
    ///
    /// # Errors
    ///
    /// As [`EventBus::publish`].
    ///
    /// # Panics
    ///
    /// When an event published changes on a JSON round trip.
    pub async fn given<E: DomainEvent>(&mut self, event: E) -> Result<Envelope<E>, PublishError> {
        let envelope = self.bus.publish(event).await?;
        let recorded = self.bus.recorded();
        for event in &recorded[self.given..] {
            assert_round_trips(event);
        }
        self.given = recorded.len();
        Ok(envelope)
    }

    /// Runs `handler` on `event` (wrapped in an envelope with a test correlation id) and
    /// returns what happened.
    ///
    /// # Panics
    ///
    /// If `event` does not serialize (a broken test fixture), or when it or an event the
    /// handler published changes on a JSON round trip.
    pub async fn when<E, F, Fut>(&self, event: E, handler: F) -> Outcome
    where
        E: DomainEvent,
        F: FnOnce(Envelope<E>) -> Fut,
        Fut: Future<Output = Result<(), HandlerError>>,
    {
        let mut envelope = Envelope::new(event);
        PublishContext::new()
            .correlation_id(&self.correlation_id)
            .apply(&mut envelope);
        let trigger_event = published::typed(&envelope);
        assert_round_trips(&trigger_event);
        let trigger = (**raw_of(&trigger_event)).clone();
        let before = self.bus.recorded().len().max(self.given);
        let result = self
            .bus
            .run_handler(&trigger_event, handler(envelope))
            .await;
        let events: Vec<Event> = self.bus.recorded()[before..].to_vec();
        for event in &events {
            assert_round_trips(event);
        }
        let published = events
            .iter()
            .map(|event| (**raw_of(event)).clone())
            .collect();
        Outcome {
            trigger,
            result,
            published,
            events,
        }
    }
}

/// Fails the test when `event` changes on a JSON round trip.
#[track_caller]
fn assert_round_trips(event: &Event) {
    if let Err(difference) = event.round_trip() {
        let header = event.header();
        panic!(
            "`{}` version {} (id {}) {difference}",
            header.event_type, header.version, header.id
        );
    }
}

/// The event's JSON; the test fails when it has none.
#[track_caller]
fn raw_of(event: &Event) -> &std::sync::Arc<RawEnvelope> {
    match event.raw() {
        Ok(raw) => raw,
        Err(error) => panic!(
            "`{}` does not serialize: {error}",
            event.header().event_type
        ),
    }
}

/// What a handler did in a [`HandlerTest`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Outcome {
    /// The envelope the handler ran on.
    pub trigger: RawEnvelope,
    /// What the handler returned (a panic is a retryable error).
    pub result: Result<(), HandlerError>,
    /// What it published, in order.
    pub published: Vec<RawEnvelope>,
    /// The same, as published in this process.
    events: Vec<Event>,
}

impl Outcome {
    /// Asserts the handler succeeded and published exactly `expected`, in order, each with
    /// the trigger's correlation id and the trigger's id as causation id.
    ///
    /// # Panics
    ///
    /// With a message saying what differs.
    #[track_caller]
    pub fn assert_published<E: DomainEvent + PartialEq + Debug>(&self, expected: &[E]) {
        let types = self.succeeded_and_published();
        assert!(
            self.published.iter().all(|e| e.event_type == E::NAME),
            "expected only `{}` events, the handler published {types:?}",
            E::NAME
        );
        let payloads: Vec<E> = self
            .published
            .iter()
            .map(|raw| match raw.decode::<E>() {
                Ok(envelope) => envelope.payload,
                Err(error) => panic!("a published `{}` does not decode: {error}", E::NAME),
            })
            .collect();
        // What a handler in this process gets against what one in another process gets.
        for (i, (event, read_back)) in self.events.iter().zip(&payloads).enumerate() {
            if let Some(in_process) = event.payload().and_then(|p| p.downcast_ref::<E>()) {
                assert!(
                    in_process == read_back,
                    "published `{}` #{i} reads back from its JSON as another value: in this \
                     process {in_process:?}, from its JSON {read_back:?} (a `#[serde(skip)]` \
                     field or a lossy Serialize/Deserialize: a handler in another process \
                     would not see what one in this process sees)",
                    E::NAME
                );
            }
        }
        assert_eq!(payloads, expected, "published payloads differ");
        self.assert_caused_by_trigger();
    }

    /// Asserts the handler succeeded and published nothing.
    ///
    /// # Panics
    ///
    /// With the error, or the types published.
    #[track_caller]
    pub fn assert_nothing_published(&self) {
        let types = self.succeeded_and_published();
        assert!(types.is_empty(), "the handler published {types:?}");
    }

    /// The types published, after asserting the handler succeeded.
    #[track_caller]
    fn succeeded_and_published(&self) -> Vec<&str> {
        if let Err(error) = &self.result {
            panic!("the handler failed: {error}");
        }
        self.published
            .iter()
            .map(|e| e.event_type.as_str())
            .collect()
    }

    /// Asserts the handler failed with an error whose message contains `message`, and
    /// whether that error is permanent.
    ///
    /// # Panics
    ///
    /// If it succeeded, or failed otherwise.
    #[track_caller]
    pub fn assert_failed(&self, message: &str, permanent: bool) {
        match &self.result {
            Ok(()) => panic!("the handler succeeded; expected it to fail with `{message}`"),
            Err(error) => {
                assert!(
                    error.to_string().contains(message),
                    "the handler failed with `{error}`, expected `{message}`"
                );
                assert_eq!(error.is_permanent(), permanent, "permanent? for `{error}`");
            }
        }
    }

    #[track_caller]
    fn assert_caused_by_trigger(&self) {
        for event in &self.published {
            assert_eq!(
                event.correlation_id, self.trigger.correlation_id,
                "`{}` lost the correlation id",
                event.event_type
            );
            assert_eq!(
                event.causation_id,
                Some(self.trigger.id.to_string().into()),
                "`{}` does not name the trigger as its cause",
                event.event_type
            );
        }
    }
}
