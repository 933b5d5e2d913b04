//! Publishing and delivering open `tracing` spans carrying the event's type, id and
//! correlation id.

use event_core::{DomainEvent, EventBus, PublishContext};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
struct GuildConnected {
    #[event(partition_key)]
    id: u64,
}

/// Records each new span as `name field=value ...`.
#[derive(Clone, Default)]
struct SpanLog(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
}

impl Subscriber for SpanLog {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields(span.metadata().name().to_owned());
        span.record(&mut fields);
        let mut log = self.0.lock().unwrap();
        log.push(fields.0);
        Id::from_u64(log.len() as u64)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn spans_carry_type_id_and_correlation_id() {
    let log = SpanLog::default();
    let spans = log.0.clone();
    let _guard = tracing::subscriber::set_default(log);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = runtime.block_on(async {
        let bus = EventBus::builder().build();
        bus.subscribe_event::<GuildConnected, _, _>("presence", |_| async { Ok(()) })
            .unwrap();
        let env = bus
            .publish_with(
                PublishContext::new().correlation_id("c-7"),
                GuildConnected { id: 42 },
            )
            .await
            .unwrap();
        bus.shutdown().await;
        env.id
    });
    let spans = spans.lock().unwrap();
    let publish = spans
        .iter()
        .find(|s| s.starts_with("event.publish"))
        .expect("a publish span");
    let deliver = spans
        .iter()
        .find(|s| s.starts_with("event.deliver"))
        .expect("a deliver span");
    for span in [publish, deliver] {
        assert!(span.contains("event.type=guild.connected"), "{span}");
        assert!(span.contains(&format!("event.id={id}")), "{span}");
        assert!(span.contains("correlation_id=c-7"), "{span}");
    }
    assert!(deliver.contains("subscription=presence"), "{deliver}");
}
