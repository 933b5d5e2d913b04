//! The observability subscriber: one JSON line per event, for every event on the bus.
//!
//! Each line has the keys `event`, `id`, `type`, `correlation_id`, `source` and
//! `latency_ms`, in that order:
//!
//! ```json
//! {"event":"ai_call_success","id":"0199…","type":"ai.call.success","correlation_id":"req-g-5","source":"ai-service","latency_ms":150}
//! ```
//!
//! `event` is the type as one `snake_case` word, a stable log-event name for aggregators that
//! treat dots as paths. `latency_ms` is the payload's `latencyMs` when it has one, else
//! `null`. Nothing else of the payload is read, and nothing of `meta` (which may hold an
//! actor id), so the log holds no personal data whatever the events carry.

use event_core::{EventBus, RawEnvelope, SubscribeError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;

/// A line-oriented output shared by the log subscriber and whoever narrates beside it.
#[derive(Clone)]
pub struct Output {
    out: Arc<Mutex<dyn Write + Send>>,
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output").finish_non_exhaustive()
    }
}

impl Output {
    /// Wraps a writer.
    pub fn new(out: impl Write + Send + 'static) -> Self {
        Output {
            out: Arc::new(Mutex::new(out)),
        }
    }

    /// Writes `text` and a newline, and flushes, as one piece.
    ///
    /// # Errors
    ///
    /// The writer's.
    pub fn line(&self, text: &str) -> io::Result<()> {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        writeln!(out, "{text}")?;
        out.flush()
    }
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// The event type as a `snake_case` label: `ai.breaker.half_open` → `ai_breaker_half_open`.
    pub event: String,
    /// The event id.
    pub id: String,
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The correlation id, if any.
    pub correlation_id: Option<String>,
    /// The publishing service, if known.
    pub source: Option<String>,
    /// The payload's `latencyMs`, if it has one.
    pub latency_ms: Option<u64>,
}

/// The one payload field the log reads.
#[derive(Deserialize)]
struct Latency {
    #[serde(rename = "latencyMs")]
    latency_ms: Option<u64>,
}

impl LogLine {
    /// The line for an envelope.
    pub fn of(envelope: &RawEnvelope) -> Self {
        let latency_ms = serde_json::from_str::<Latency>(envelope.payload.get())
            .ok()
            .and_then(|latency| latency.latency_ms);
        LogLine {
            event: envelope.event_type.replace('.', "_"),
            id: envelope.id.to_string(),
            event_type: envelope.event_type.to_string(),
            correlation_id: envelope.correlation_id.as_deref().map(str::to_owned),
            source: envelope.source.as_deref().map(str::to_owned),
            latency_ms,
        }
    }
}

/// The `*` subscription that writes a [`LogLine`] per event.
#[derive(Debug, Clone)]
pub struct JsonLog {
    /// How many lines were written so far.
    written: watch::Receiver<u64>,
}

impl JsonLog {
    /// The name of its subscription.
    pub const SUBSCRIPTION: &str = "json-log";

    /// Subscribes the log to every event on `bus`, writing to `out`.
    ///
    /// # Errors
    ///
    /// When the subscription name is taken or the bus is shut down.
    pub fn start(bus: &EventBus, out: Output) -> Result<Self, SubscribeError> {
        let (counter, written) = watch::channel(0);
        let counter = Arc::new(counter);
        bus.subscribe_pattern(Self::SUBSCRIPTION, "*", move |raw: RawEnvelope| {
            let (out, counter) = (out.clone(), Arc::clone(&counter));
            async move {
                let line = serde_json::to_string(&LogLine::of(&raw))?;
                out.line(&line)?; // an I/O error is retried
                counter.send_modify(|n| *n += 1);
                Ok(())
            }
        })?;
        Ok(JsonLog { written })
    }

    /// How many lines were written so far.
    pub fn written(&self) -> u64 {
        *self.written.borrow()
    }

    /// Waits until at least `lines` lines are written, for at most `timeout`. With
    /// `lines = bus.metrics().published`, it returns once every event published so far is
    /// in the log, so what is printed next comes after them.
    ///
    /// # Errors
    ///
    /// With the number written, when fewer were written in time.
    pub async fn caught_up(&self, lines: u64, timeout: Duration) -> Result<(), u64> {
        let mut written = self.written.clone();
        match tokio::time::timeout(timeout, written.wait_for(|n| *n >= lines)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(self.written()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LogLine;
    use crate::events::{AiCallSuccess, GuildConnected};
    use event_core::Envelope;

    #[test]
    fn a_line_carries_the_envelope_ids_and_the_latency_only() {
        let env = Envelope::new(AiCallSuccess {
            provider: "p".into(),
            model: "m".into(),
            latency_ms: 150,
            attempts: 2,
        });
        let mut raw = env.to_raw().unwrap();
        raw.correlation_id = Some("req-1".into());
        let line = serde_json::to_string(&LogLine::of(&raw)).unwrap();
        assert_eq!(
            line,
            format!(
                r#"{{"event":"ai_call_success","id":"{}","type":"ai.call.success","correlation_id":"req-1","source":"ai-service","latency_ms":150}}"#,
                env.id
            )
        );
    }

    #[test]
    fn no_latency_is_null_and_the_payload_stays_out() {
        let mut env = Envelope::new(GuildConnected {
            id: "g-1".into(),
            name: "Secret Club".into(),
            member_count: 3,
        });
        env.meta.insert("actor_id".into(), "user-7".into());
        let line = serde_json::to_value(LogLine::of(&env.to_raw().unwrap())).unwrap();
        assert_eq!(line["latency_ms"], serde_json::Value::Null);
        assert_eq!(line["correlation_id"], serde_json::Value::Null);
        assert_eq!(line["source"], "discord-service");
        let text = line.to_string();
        assert!(
            !text.contains("Secret Club") && !text.contains("user-7"),
            "{text}"
        );
        assert_eq!(line.as_object().unwrap().len(), 6);
    }
}
