//! Given / when / then for handlers: test what a handler publishes, without sleeps.
//!
//! A failing test says what differs without printing personal data: the payloads' fields
//! marked `#[event(pii)]` read `[redacted]` in every message, and so do their values where an
//! error or a `Debug` quotes them.

use crate::bus::{Event, EventBus, HandlerError, PublishContext, PublishError, published};
use crate::envelope::{Envelope, RawEnvelope};
use crate::event::DomainEvent;
use crate::privacy::{REDACTED, redact_envelope, redact_payload, redact_text};
use crate::registry::Registry;
use serde_json::Value;
use std::fmt::{self, Debug};
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
            "`{}` version {} (id {}) {}",
            header.event_type,
            header.version,
            header.id,
            redact_difference(event, &difference)
        );
    }
}

/// The registry to redact with: the events linked in, or none when it is invalid (then
/// every payload is redacted whole).
fn registry() -> Registry {
    crate::registry().unwrap_or_default()
}

/// The payload of `envelope` as JSON (`null` if it is not JSON).
fn payload_of(envelope: &RawEnvelope) -> Value {
    serde_json::from_str(envelope.payload.get()).unwrap_or(Value::Null)
}

/// The JSON names of the PII fields of every version of `event_type`; `None` for a type
/// the registry does not know, whose every field counts as personal.
fn pii_fields(registry: &Registry, event_type: &str) -> Option<Vec<&'static str>> {
    let versions: Vec<_> = registry
        .iter()
        .filter(|descriptor| descriptor.name() == event_type)
        .collect();
    (!versions.is_empty()).then(|| {
        versions
            .iter()
            .flat_map(|descriptor| descriptor.pii().iter().copied())
            .collect()
    })
}

/// A round trip's difference with nothing personal in it: both sides redacted when the
/// difference is inside a PII field (what reads back may not be what was written), and any
/// value of the event's PII fields redacted wherever it appears.
fn redact_difference(event: &Event, difference: &str) -> String {
    let registry = registry();
    let event_type = event.header().event_type.as_str();
    let pii = pii_fields(&registry, event_type);
    let personal = |pointer: &str| {
        let field = pointer.split('/').nth(1).map(unescape_pointer);
        match (&pii, field) {
            (None, _) => true,
            (Some(pii), None) => !pii.is_empty(),
            (Some(pii), Some(field)) => pii.contains(&field.as_str()),
        }
    };
    // "changes on a JSON round trip at `{pointer}`: written {before}, read back as {after}
    // (a `#[serde(skip...)]` field ...": the published event's wording.
    let mut text = difference.to_owned();
    if let Some((head, tail)) = difference.split_once("`: written ")
        && let Some((_, pointer)) = head.rsplit_once(" at `")
        && personal(pointer)
        && let Some((_, after)) = tail.split_once(", read back as ")
    {
        let why = after.find(" (a `").map_or("", |i| &after[i..]);
        text = format!("{head}`: written {REDACTED}, read back as {REDACTED}{why}");
    }
    let payload = event.raw().map_or(Value::Null, |raw| payload_of(raw));
    redact_text(&registry, event_type, &payload, &text)
}

/// A JSON pointer's reference token, unescaped.
fn unescape_pointer(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// A JSON pointer's reference token, escaped.
fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The pointers at which `a` and `b` differ, the first `limit` of them.
fn differences(a: &Value, b: &Value, pointer: &str, limit: usize, out: &mut Vec<String>) {
    if out.len() >= limit {
        return;
    }
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let at = format!("{pointer}/{}", escape_pointer(key));
                match (a.get(key), b.get(key)) {
                    (Some(a), Some(b)) => differences(a, b, &at, limit, out),
                    _ if out.len() < limit => out.push(at),
                    _ => return,
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let at = format!("{pointer}/{i}");
                match (a.get(i), b.get(i)) {
                    (Some(a), Some(b)) => differences(a, b, &at, limit, out),
                    _ if out.len() < limit => out.push(at),
                    _ => return,
                }
            }
        }
        _ if a != b => out.push(pointer.to_owned()),
        _ => {}
    }
}

/// A derived `Debug` text with the values of the fields named `fields` (and their
/// `snake_case` forms, the Rust names of renamed fields) replaced by [`REDACTED`].
fn redact_debug_fields(text: &str, fields: &[&str]) -> String {
    let mut names: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
    names.extend(fields.iter().map(|f| snake_case(f)));
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(c) = text[at..].chars().next() {
        let rest = &text[at..];
        if c == '"' {
            let end = string_end(rest);
            out.push_str(&rest[..end]);
            at += end;
        } else if ident(c) && !out.ends_with(ident) {
            let len = rest.find(|c| !ident(c)).unwrap_or(rest.len());
            let name = &rest[..len];
            out.push_str(name);
            at += len;
            if text[at..].starts_with(": ")
                && names.iter().any(|n| n == name)
                && out[..out.len() - len].trim_end().ends_with(['{', ','])
            {
                out.push_str(": ");
                out.push_str(REDACTED);
                at += 2;
                at += debug_value_len(&text[at..]);
            }
        } else {
            out.push(c);
            at += c.len_utf8();
        }
    }
    out
}

/// `camelCase` or `kebab-case` as `snake_case`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_uppercase() {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else if c == '-' {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    out
}

/// The length of the Rust-escaped string literal opening `text`, quotes included.
fn string_end(text: &str) -> usize {
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return i + 1,
            _ => {}
        }
    }
    text.len()
}

/// The length of the `Debug` value opening `text`: up to the `,` or the closing bracket
/// that ends it, nested brackets and string or character literals skipped, without the
/// whitespace before that end.
fn debug_value_len(text: &str) -> usize {
    let mut depth = 0usize;
    let mut at = 0;
    let mut end = 0;
    while let Some(c) = text[at..].chars().next() {
        let rest = &text[at..];
        match c {
            '"' => {
                at += string_end(rest);
                end = at;
                continue;
            }
            '\'' => {
                // A char literal: `'x'`, `'\''`, `'\u{1f}'`.
                let first = rest[1..].chars().next().map_or(0, char::len_utf8);
                let body = 1 + first + usize::from(rest[1..].starts_with('\\'));
                at += rest
                    .get(body..)
                    .and_then(|tail| tail.find('\''))
                    .map_or(c.len_utf8(), |i| body + i + 1);
                end = at;
                continue;
            }
            '{' | '[' | '(' => depth += 1,
            '}' | ']' | ')' | ',' if depth == 0 => break,
            '}' | ']' | ')' => depth -= 1,
            _ => {}
        }
        at += c.len_utf8();
        if !c.is_whitespace() {
            end = at;
        }
    }
    end
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
///
/// Its `Debug` shows the envelopes as JSON with their PII fields redacted.
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
            if let Some(in_process) = event.payload().and_then(|p| p.downcast_ref::<E>())
                && in_process != read_back
            {
                panic!(
                    "published `{}` #{i} reads back from its JSON as another value: in this \
                     process {}, from its JSON {} (a `#[serde(skip)]` field or a lossy \
                     Serialize/Deserialize: a handler in another process would not see what \
                     one in this process sees)",
                    E::NAME,
                    self.redact_debug::<E>(&format!("{in_process:?}"), expected),
                    self.redact_debug::<E>(&format!("{read_back:?}"), expected),
                );
            }
        }
        assert!(
            payloads == expected,
            "{}",
            self.payloads_differ(&payloads, expected)
        );
        self.assert_caused_by_trigger();
    }

    /// Why the published payloads are not `expected`: where they differ, and both lists
    /// as JSON, PII fields redacted.
    fn payloads_differ<E: DomainEvent + Debug>(&self, payloads: &[E], expected: &[E]) -> String {
        let registry = registry();
        let published: Vec<Value> = self.published.iter().map(payload_of).collect();
        let wanted: Vec<Value> = expected
            .iter()
            .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
            .collect();
        let mut at = Vec::new();
        differences(
            &Value::Array(published.clone()),
            &Value::Array(wanted.clone()),
            "",
            10,
            &mut at,
        );
        if at.is_empty() {
            // Their JSON is the same: what differs does not reach JSON, and shows in `Debug`.
            return format!(
                "published payloads differ, though not in their JSON:\n  published: {}\n  \
                 expected:  {}",
                self.redact_debug::<E>(&format!("{payloads:?}"), expected),
                self.redact_debug::<E>(&format!("{expected:?}"), expected),
            );
        }
        let redacted = |values: Vec<Value>| {
            Value::Array(
                values
                    .into_iter()
                    .map(|mut value| {
                        redact_payload(&registry, E::NAME, &mut value);
                        value
                    })
                    .collect(),
            )
        };
        format!(
            "published payloads differ at {}:\n  published: {}\n  expected:  {}",
            at.iter()
                .map(|pointer| format!("`{pointer}`"))
                .collect::<Vec<_>>()
                .join(", "),
            redacted(published),
            redacted(wanted),
        )
    }

    /// The `Debug` text of payloads of `E` with their PII fields redacted: by name, and
    /// any of their values found in the text (those published, and those of `expected`).
    fn redact_debug<E: DomainEvent>(&self, text: &str, expected: &[E]) -> String {
        let registry = registry();
        let mut text = redact_debug_fields(text, E::descriptor().pii());
        let expected = expected
            .iter()
            .map(|e| serde_json::to_value(e).unwrap_or(Value::Null));
        for payload in self.published.iter().map(payload_of).chain(expected) {
            text = redact_text(&registry, E::NAME, &payload, &text);
        }
        text
    }

    /// `text` with the values of the PII fields of the trigger and of what was published
    /// redacted.
    fn redact(&self, text: &str) -> String {
        let registry = registry();
        std::iter::once(&self.trigger).chain(&self.published).fold(
            text.to_owned(),
            |text, envelope| {
                redact_text(
                    &registry,
                    &envelope.event_type,
                    &payload_of(envelope),
                    &text,
                )
            },
        )
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
            panic!("the handler failed: {}", self.redact(&error.to_string()));
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
            Ok(()) => panic!(
                "the handler succeeded; expected it to fail with `{}`",
                self.redact(message)
            ),
            Err(error) => {
                let text = error.to_string();
                assert!(
                    text.contains(message),
                    "the handler failed with `{}`, expected `{}`",
                    self.redact(&text),
                    self.redact(message)
                );
                assert!(
                    error.is_permanent() == permanent,
                    "the handler failed with `{}`, permanent: {}, expected {permanent}",
                    self.redact(&text),
                    error.is_permanent()
                );
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

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let registry = registry();
        let published: Vec<Value> = self
            .published
            .iter()
            .map(|envelope| redact_envelope(&registry, envelope))
            .collect();
        let result = match &self.result {
            Ok(()) => "Ok(())".to_owned(),
            Err(error) => format!(
                "Err({:?}: {})",
                error.kind(),
                self.redact(&error.to_string())
            ),
        };
        f.debug_struct("Outcome")
            .field(
                "trigger",
                &format_args!("{}", redact_envelope(&registry, &self.trigger)),
            )
            .field("result", &format_args!("{result}"))
            .field("published", &format_args!("{}", Value::Array(published)))
            .finish_non_exhaustive()
    }
}
