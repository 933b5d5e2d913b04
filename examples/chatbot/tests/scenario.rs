//! The whole scenario, as `cargo run -p chatbot` runs it: what it prints and what it returns.

use chatbot::breaker::State;
use chatbot::events::{AiCallFailure, AiCallSuccess};
use chatbot::{Config, Error, Summary};
use event_core::WaitError;
use serde_json::Value;
use std::collections::HashSet;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

/// A writer the test keeps a handle on.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

const KEYS: [&str; 6] = [
    "event",
    "id",
    "type",
    "correlation_id",
    "source",
    "latency_ms",
];

/// Every event of the story, in publish order, with its correlation id.
const EXPECTED: [(&str, &str); 15] = [
    ("guild.connected", "req-g-1"),
    ("ai.call.failure", "req-g-1"),
    ("guild.connected", "req-g-2"),
    ("ai.call.failure", "req-g-2"),
    ("guild.connected", "req-g-3"),
    ("ai.call.failure", "req-g-3"),
    ("ai.breaker.open", "req-g-3"),
    ("guild.connected", "req-g-4"),
    ("ai.call.failure", "req-g-4"),
    ("ai.breaker.half_open", "req-g-3"),
    ("guild.connected", "req-g-5"),
    ("ai.call.success", "req-g-5"),
    ("ai.breaker.closed", "req-g-5"),
    ("guild.connected", "req-g-2-refresh"),
    ("guild.disconnected", "req-leave-g-1"),
];

/// The JSON lines of the output, each checked to be an object with exactly the log's keys.
fn json_lines(output: &str) -> Vec<serde_json::Map<String, Value>> {
    let mut lines = Vec::new();
    for line in output.lines() {
        if line.starts_with("== ") || line.starts_with("> ") {
            continue; // narration
        }
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not narration, not JSON ({e}): {line}"));
        let object = value
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {line}"))
            .clone();
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        let mut expected = KEYS.to_vec();
        expected.sort_unstable();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, expected, "keys of {line}");
        lines.push(object);
    }
    lines
}

fn check_log(output: &str, summary: &Summary) {
    let lines = json_lines(output);
    let events: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["type"].as_str().unwrap(),
                l["correlation_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(events, EXPECTED, "the events logged, in order");
    assert_eq!(
        lines.len() as u64,
        summary.metrics.published,
        "one line per event"
    );
    assert_eq!(summary.log_lines, summary.metrics.published);

    let ids: HashSet<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), lines.len(), "ids are unique");
    for line in &lines {
        let event_type = line["type"].as_str().unwrap();
        let id = line["id"].as_str().unwrap();
        assert_eq!(line["event"], event_type.replace('.', "_"));
        assert_eq!(id.len(), 36, "a UUID: {id}");
        assert_eq!(id.matches('-').count(), 4, "a UUID: {id}");
        let source = if event_type.starts_with("guild.") {
            "discord-service"
        } else {
            "ai-service"
        };
        assert_eq!(line["source"], source, "{event_type}");
        if event_type == "ai.call.success" {
            assert_eq!(line["latency_ms"], 150, "latencyMs of the payload");
        } else {
            assert_eq!(line["latency_ms"], Value::Null, "{event_type}");
        }
    }

    // PII-free: no payload field but latencyMs reaches the log.
    let json: String = output.lines().filter(|l| l.starts_with('{')).collect();
    for name in [
        "Rustaceans",
        "Tokio Town",
        "Clippy Club",
        "memberCount",
        "sim-llm",
    ] {
        assert!(!json.contains(name), "`{name}` leaked into the log");
    }

    // The reply answers the request: its cause is the fifth guild's connection.
    let connected_g5 = lines
        .iter()
        .find(|l| l["type"] == "guild.connected" && l["correlation_id"] == "req-g-5")
        .unwrap();
    assert_eq!(
        summary.reply.causation_id.as_deref(),
        connected_g5["id"].as_str()
    );
}

fn check_summary(summary: &Summary) {
    assert_eq!(
        summary.breaker_states,
        [State::Closed, State::Open, State::HalfOpen, State::Closed]
    );
    assert_eq!(
        summary.reply.payload,
        AiCallSuccess {
            provider: "sim-llm".into(),
            model: "sim-1".into(),
            latency_ms: 30 + 120,
            attempts: 2,
        }
    );
    assert_eq!(summary.reply.correlation_id.as_deref(), Some("req-g-5"));
    assert_eq!(
        summary.greeting,
        "Hello, Clippy Club! I'm here to help: just mention me."
    );
    let (request, refused) = &summary.timed_out;
    assert_eq!(request, "req-g-4");
    assert_eq!(
        refused.payload,
        AiCallFailure {
            provider: "sim-llm".into(),
            model: "sim-1".into(),
            code: "circuit_open".into(),
            attempts: 0,
        }
    );
    // 3 failed requests of 2 attempts, none for the refused one, 2 for the trial, none for
    // the presence refresh.
    assert_eq!(summary.provider_calls, 8);
    let m = summary.metrics;
    assert_eq!(
        (m.published, m.retried, m.dead_lettered, m.in_flight),
        (15, 0, 0, 0)
    );
    // json-log: 15, greeter: 7 guild events, ai-breaker: 5 call outcomes, ops-dashboard: 3.
    assert_eq!(m.delivered, 15 + 7 + 5 + 3);
    assert!(
        summary.dead_letters.is_empty(),
        "{:?}",
        summary.dead_letters
    );
}

fn check_narration(output: &str) {
    let said: Vec<&str> = output.lines().filter(|l| l.starts_with("> ")).collect();
    for expected in [
        "> req-g-3: ai.call.failure code=upstream_unavailable attempts=2",
        "> breaker sim-llm: closed -> open (failureRate 1.00, recentFailures 3)",
        "> TIMEOUT (expected): no ai.call.success for req-g-4 within 200ms",
        "> breaker sim-llm: open -> half_open",
        "> breaker sim-llm: half_open -> closed",
        "> breaker states: closed -> open -> half_open -> closed",
        "> dead letters: none",
    ] {
        assert!(
            said.contains(&expected),
            "missing `{expected}` in:\n{output}"
        );
    }
    assert!(
        said.iter().any(|l| l.starts_with(
            "> reply to req-g-5: \"Hello, Clippy Club! I'm here to help: just mention me.\""
        )),
        "{output}"
    );
    // Each transition is narrated after its event is logged.
    let position = |needle: &str| output.find(needle).unwrap();
    assert!(position("\"type\":\"ai.breaker.open\"") < position("closed -> open"));
    assert!(position("\"type\":\"ai.breaker.half_open\"") < position("open -> half_open"));
    assert!(position("\"type\":\"ai.breaker.closed\"") < position("half_open -> closed"));
}

/// With a paused clock: the cool-down and the timeout take no time, and which comes first is
/// certain.
#[tokio::test(start_paused = true)]
async fn the_scenario_with_a_paused_clock() {
    let out = Capture::default();
    let summary = chatbot::run(out.clone()).await.unwrap();
    let output = out.text();
    check_log(&output, &summary);
    check_summary(&summary);
    check_narration(&output);
}

/// As `cargo run` runs it: real time, several threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_scenario_in_real_time() {
    let out = Capture::default();
    let summary = chatbot::run(out.clone()).await.unwrap();
    let output = out.text();
    check_log(&output, &summary);
    check_summary(&summary);
    check_narration(&output);
}

/// A provider that never recovers: the trial fails, the breaker reopens, and the request
/// waiting for a reply gets a timeout, which the scenario reports as its error.
#[tokio::test(start_paused = true)]
async fn a_provider_that_never_recovers_ends_in_a_timeout() {
    let out = Capture::default();
    let config = Config {
        provider_failures: u32::MAX,
        ..Config::default()
    };
    let error = chatbot::run_with(out.clone(), &config).await.unwrap_err();
    match &error {
        Error::Wait(WaitError::Timeout {
            event_type,
            correlation_id,
            ..
        }) => {
            assert_eq!(
                (*event_type, correlation_id.as_str()),
                ("ai.call.success", "req-g-5")
            );
        }
        other => panic!("expected a timeout, got {other}"),
    }
    assert!(error.to_string().contains("req-g-5"), "{error}");
    let output = out.text();
    let breaker: Vec<(String, String)> = json_lines(&output)
        .iter()
        .filter(|l| l["type"].as_str().unwrap().starts_with("ai.breaker."))
        .map(|l| {
            (
                l["type"].as_str().unwrap().to_owned(),
                l["correlation_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("ai.breaker.open", "req-g-3"),
        ("ai.breaker.half_open", "req-g-3"),
        ("ai.breaker.open", "req-g-5"), // the trial failed
    ];
    assert_eq!(
        breaker[..3],
        expected.map(|(t, c)| (t.to_owned(), c.to_owned()))
    );
}
