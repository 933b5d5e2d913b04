//! W3C trace context through the bus (event-core's feature `opentelemetry`): a publish inside
//! an OpenTelemetry span stamps the envelope's `trace_id` with its `traceparent`, and the
//! handlers' spans join that trace, down the chain of follow-up publishes; in memory and
//! through a SQLite store, where each event is read back by another subscription's pump. An
//! explicit trace id wins; one that is not a `traceparent` is passed on as it is.
//!
//! Spans go through `tracing-opentelemetry` to an SDK tracer provider whose in-memory
//! exporter keeps each span as it ends. The subscriber is this thread's default, and the
//! tests run on a current-thread runtime, so that every task of the bus reports to it.

use event_core::store::SqliteStore;
use event_core::{DomainEvent, Envelope, EventBus, HandlerError, PublishContext, RetryPolicy};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;
use tracing::subscriber::DefaultGuard;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "parcel.shipped")]
struct ParcelShipped {
    #[event(partition_key)]
    parcel: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "parcel.tracked")]
struct ParcelTracked {
    parcel: String,
}

/// A trace id of another system's, in W3C form.
const EXPLICIT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/// The OpenTelemetry pipeline of a test: its exporter, and the guard that keeps its
/// subscriber this thread's default.
struct Telemetry {
    exporter: InMemorySpanExporter,
    _provider: SdkTracerProvider,
    _guard: DefaultGuard,
    // Dropped last: the next test installs its pipeline only once this one is gone.
    _serial: MutexGuard<'static, ()>,
}

impl Telemetry {
    fn install() -> Self {
        // One test at a time. `tracing` caches per callsite whether any subscriber wants
        // it: a callsite one test's thread registers while another test is installing its
        // subscriber can be cached as wanted by no one, and that test would miss spans.
        static LOCK: Mutex<()> = Mutex::new(());
        let serial = LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let exporter = InMemorySpanExporter::default();
        // The simple processor exports each span as it ends, on the thread that ends it.
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let tracer = provider.tracer("bus_trace_context");
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
        let guard = tracing::subscriber::set_default(subscriber);
        Telemetry {
            exporter,
            _provider: provider,
            _guard: guard,
            _serial: serial,
        }
    }

    fn spans(&self) -> Vec<SpanData> {
        self.exporter
            .get_finished_spans()
            .expect("the exported spans")
    }
}

/// The span context a `traceparent` stands for, read by the SDK's own propagator.
fn remote(traceparent: &str) -> SpanContext {
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    let span = context.span().span_context().clone();
    assert!(span.is_valid(), "not a traceparent: {traceparent}");
    span
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

fn named<'s>(spans: &'s [SpanData], name: &str) -> Vec<&'s SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// The one `event.deliver` span of subscription `name`.
fn delivery<'s>(spans: &'s [SpanData], name: &str) -> &'s SpanData {
    let found: Vec<_> = named(spans, "event.deliver")
        .into_iter()
        .filter(|s| attribute(s, "subscription").as_deref() == Some(name))
        .collect();
    assert_eq!(found.len(), 1, "one delivery to {name}: {spans:#?}");
    found[0]
}

/// Whether `ancestor` is the parent of `span`, or the parent of one of its parents, among
/// the exported spans.
fn descends_from(spans: &[SpanData], span: &SpanData, ancestor: SpanId) -> bool {
    let mut parent = span.parent_span_id;
    while parent != SpanId::INVALID {
        if parent == ancestor {
            return true;
        }
        let Some(next) = spans.iter().find(|s| s.span_context.span_id() == parent) else {
            return false;
        };
        parent = next.parent_span_id;
    }
    false
}

/// What each handler saw: the `trace_id` of the envelopes it handled.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Option<String>>>>);

impl Seen {
    fn record<E>(&self, envelope: &Envelope<E>) {
        let trace_id = envelope.trace_id.as_deref().map(str::to_owned);
        self.0.lock().unwrap().push(trace_id);
    }

    fn taken(&self) -> Vec<Option<String>> {
        self.0.lock().unwrap().clone()
    }
}

/// "shipping" handles `parcel.shipped` and publishes `parcel.tracked`, which "tracking"
/// handles; each records the trace id it saw, and "tracking" says when it is done.
struct Chain {
    shipping: Seen,
    tracking: Seen,
    done: mpsc::UnboundedReceiver<()>,
}

fn chain(bus: &EventBus) -> Chain {
    let shipping = Seen::default();
    let tracking = Seen::default();
    let (tx, done) = mpsc::unbounded_channel();
    let (seen, publisher) = (shipping.clone(), bus.clone());
    bus.subscribe_event::<ParcelShipped, _, _>("shipping", move |env| {
        seen.record(&env);
        let bus = publisher.clone();
        async move {
            bus.publish(ParcelTracked {
                parcel: env.payload.parcel,
            })
            .await?;
            Ok::<_, HandlerError>(())
        }
    })
    .unwrap();
    let seen = tracking.clone();
    bus.subscribe_event::<ParcelTracked, _, _>("tracking", move |env| {
        seen.record(&env);
        let _ = tx.send(());
        async { Ok(()) }
    })
    .unwrap();
    Chain {
        shipping,
        tracking,
        done,
    }
}

impl Chain {
    /// Waits until "tracking" handled `n` events.
    async fn handled(&mut self, n: usize) {
        for _ in 0..n {
            tokio::time::timeout(Duration::from_secs(10), self.done.recv())
                .await
                .expect("the follow-up event is handled within 10 s")
                .expect("the handler is there");
        }
    }
}

fn durable_bus(path: &Path) -> EventBus {
    EventBus::builder()
        .store(SqliteStore::open(path).expect("opens the store"))
        .poll_interval(Duration::from_millis(20))
        .retry(RetryPolicy::never())
        .build()
}

/// Publishes `parcel.shipped` inside a root span, waits for the whole chain, and checks that
/// it is one trace: root → delivery to "shipping" → delivery to "tracking".
async fn one_trace_through(bus: EventBus, telemetry: &Telemetry) {
    let mut chain = chain(&bus);
    let root = tracing::info_span!("http.request");
    let root_context = root.context().span().span_context().clone();
    assert!(root_context.is_valid(), "the root span is in a trace");
    let shipped = bus
        .publish(ParcelShipped {
            parcel: "p-1".into(),
        })
        .instrument(root.clone())
        .await
        .unwrap();
    drop(root);
    chain.handled(1).await;
    bus.shutdown().await;

    let spans = telemetry.spans();
    let trace = root_context.trace_id();
    let root = named(&spans, "http.request");
    assert_eq!(root.len(), 1, "{spans:#?}");
    let root = root[0];
    for span in &spans {
        assert_eq!(span.span_context.trace_id(), trace, "one trace: {span:#?}");
    }

    // The published envelope carries the traceparent of the span current at publish.
    let traceparent = shipped.trace_id.as_deref().expect("a traceparent");
    assert_eq!(
        traceparent,
        format!("00-{trace}-{}-01", root_context.span_id())
    );
    assert_eq!(chain.shipping.taken(), [Some(traceparent.to_owned())]);

    // The delivery to "shipping" is the root's child, through the envelope.
    let shipping = delivery(&spans, "shipping");
    assert_eq!(shipping.parent_span_id, root.span_context.span_id());
    assert!(shipping.parent_span_is_remote);

    // The handler's follow-up carries the traceparent of its span, and the delivery to
    // "tracking" is a child of the delivery to "shipping".
    let tracking = delivery(&spans, "tracking");
    assert!(
        descends_from(&spans, tracking, shipping.span_context.span_id()),
        "{spans:#?}"
    );
    assert!(descends_from(&spans, tracking, root.span_context.span_id()));
    let [Some(followup)] = &chain.tracking.taken()[..] else {
        panic!("one traceparent: {:?}", chain.tracking.taken());
    };
    let followup = remote(followup);
    assert_eq!(followup.trace_id(), trace);
    assert_eq!(followup.span_id(), tracking.parent_span_id);
    assert!(followup.is_sampled());

    // The publish spans are in the trace too, each under the span it was published in.
    let publishes = named(&spans, "event.publish");
    assert_eq!(publishes.len(), 2, "{spans:#?}");
    assert!(
        publishes
            .iter()
            .any(|p| p.parent_span_id == root.span_context.span_id())
    );
    assert!(
        publishes
            .iter()
            .any(|p| descends_from(&spans, p, shipping.span_context.span_id()))
    );
}

#[tokio::test]
async fn publish_handler_and_follow_up_are_one_trace_in_memory() {
    let telemetry = Telemetry::install();
    one_trace_through(EventBus::builder().build(), &telemetry).await;
}

#[tokio::test]
async fn publish_handler_and_follow_up_are_one_trace_through_a_store() {
    let telemetry = Telemetry::install();
    let dir = tempfile::tempdir().unwrap();
    one_trace_through(durable_bus(&dir.path().join("events.db")), &telemetry).await;
}

#[tokio::test]
async fn an_explicit_trace_id_wins() {
    let telemetry = Telemetry::install();
    let bus = EventBus::builder().build();
    let mut chain = chain(&bus);
    let root = tracing::info_span!("http.request");
    let shipped = bus
        .publish_with(
            PublishContext::new().trace_id(EXPLICIT),
            ParcelShipped {
                parcel: "p-2".into(),
            },
        )
        .instrument(root.clone())
        .await
        .unwrap();
    drop(root);
    chain.handled(1).await;
    bus.shutdown().await;

    assert_eq!(shipped.trace_id.as_deref(), Some(EXPLICIT));
    assert_eq!(chain.shipping.taken(), [Some(EXPLICIT.to_owned())]);
    // The handlers join the trace the explicit id names, not the root span's.
    let explicit = remote(EXPLICIT);
    let spans = telemetry.spans();
    let shipping = delivery(&spans, "shipping");
    assert_eq!(shipping.span_context.trace_id(), explicit.trace_id());
    assert_eq!(shipping.parent_span_id, explicit.span_id());
    let tracking = delivery(&spans, "tracking");
    assert_eq!(tracking.span_context.trace_id(), explicit.trace_id());
    assert!(descends_from(
        &spans,
        tracking,
        shipping.span_context.span_id()
    ));
    let [Some(followup)] = &chain.tracking.taken()[..] else {
        panic!("one trace id: {:?}", chain.tracking.taken());
    };
    assert_eq!(remote(followup).trace_id(), explicit.trace_id());
}

#[tokio::test]
async fn a_trace_id_that_is_no_traceparent_is_passed_on_as_it_is() {
    let telemetry = Telemetry::install();
    let bus = EventBus::builder().build();
    let mut chain = chain(&bus);
    let root = tracing::info_span!("http.request");
    let root_id = root.context().span().span_context().span_id();
    let shipped = bus
        .publish_with(
            PublishContext::new().trace_id("abc"),
            ParcelShipped {
                parcel: "p-3".into(),
            },
        )
        .instrument(root.clone())
        .await
        .unwrap();
    drop(root);
    chain.handled(1).await;
    bus.shutdown().await;

    assert_eq!(shipped.trace_id.as_deref(), Some("abc"));
    // Both handlers ran, and the follow-up inherited the id unchanged.
    assert_eq!(chain.shipping.taken(), [Some("abc".to_owned())]);
    assert_eq!(chain.tracking.taken(), [Some("abc".to_owned())]);
    // No trace to join: the delivery is not the root's child.
    let spans = telemetry.spans();
    assert_ne!(delivery(&spans, "shipping").parent_span_id, root_id);
}

#[tokio::test]
async fn outside_any_span_no_trace_id_is_made_up() {
    let _telemetry = Telemetry::install();
    let bus = EventBus::builder().build();
    let mut chain = chain(&bus);
    let shipped = bus
        .publish(ParcelShipped {
            parcel: "p-4".into(),
        })
        .await
        .unwrap();
    chain.handled(1).await;
    bus.shutdown().await;
    assert_eq!(shipped.trace_id, None);
    assert_eq!(chain.shipping.taken(), [None]);
    // The follow-up is published inside the handler's delivery span, a trace of its own.
    let [Some(followup)] = &chain.tracking.taken()[..] else {
        panic!("a traceparent: {:?}", chain.tracking.taken());
    };
    remote(followup);
}

#[tokio::test]
async fn a_batch_joins_the_trace_of_its_first_event() {
    let telemetry = Telemetry::install();
    let bus = EventBus::builder().build();
    let seen = Seen::default();
    let (tx, mut done) = mpsc::unbounded_channel();
    let (sink, publisher) = (seen.clone(), bus.clone());
    bus.subscribe_batch::<ParcelShipped, _, _>("manifest", 8, move |batch| {
        for env in &batch {
            sink.record(env);
        }
        let bus = publisher.clone();
        async move {
            bus.publish(ParcelTracked {
                parcel: format!("{} parcels", batch.len()),
            })
            .await?;
            Ok::<_, HandlerError>(())
        }
    })
    .unwrap();
    let tracked = Seen::default();
    let sink = tracked.clone();
    bus.subscribe_event::<ParcelTracked, _, _>("tracking", move |env| {
        sink.record(&env);
        let _ = tx.send(());
        async { Ok(()) }
    })
    .unwrap();
    let root = tracing::info_span!("http.request");
    let root_context = root.context().span().span_context().clone();
    // On this thread's runtime the lane runs once the publisher yields: all three at once.
    async {
        for n in 0..3 {
            bus.publish(ParcelShipped {
                parcel: format!("p-{n}"),
            })
            .await
            .unwrap();
        }
    }
    .instrument(root.clone())
    .await;
    drop(root);
    tokio::time::timeout(Duration::from_secs(10), done.recv())
        .await
        .unwrap()
        .unwrap();
    bus.shutdown().await;

    let spans = telemetry.spans();
    let batches = named(&spans, "event.deliver_batch");
    assert_eq!(batches.len(), 1, "one batch of three: {spans:#?}");
    let batch = batches[0];
    assert_eq!(batch.span_context.trace_id(), root_context.trace_id());
    assert_eq!(batch.parent_span_id, root_context.span_id());
    // What the batch handler published continues the trace, under the batch's span.
    let tracking = delivery(&spans, "tracking");
    assert_eq!(tracking.span_context.trace_id(), root_context.trace_id());
    assert!(descends_from(
        &spans,
        tracking,
        batch.span_context.span_id()
    ));
    assert_eq!(seen.taken().len(), 3);
}
