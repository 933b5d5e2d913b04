//! A payload field marked `#[event(pii)]` is never printed in plain text: not by a dead
//! letter's `Debug` or `Display` (nor its `last_error`), not by a decode error, not in the
//! bus's log lines and spans. (The test harness, the admin API and CLI, and the catalog have
//! theirs in `testing_harness.rs`, `admin_api.rs`/`admin_cli.rs` and event-catalog's tests.)

use event_core::privacy::{REDACTED, RedactedJsonError, redact_envelope, redact_text};
use event_core::{
    DeadLetter, DecodeError, DomainEvent, Envelope, EventBus, HandlerError, RawEnvelope, registry,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Serializes the tests that run the bus. `tracing` caches per callsite whether any
/// subscriber wants it: a callsite one test's thread registers while another test is
/// installing its subscriber can be cached as wanted by no one, and the log test would then
/// miss lines. Run one at a time, no other thread registers the bus's callsites while the
/// log test's subscriber is being set.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `test` on a runtime of its own, one at a time with the other tests that run the bus.
fn serially<T>(test: impl Future<Output = T>) -> T {
    let _serial = one_at_a_time();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(test)
}

/// A customer signed up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "pii_test.customer_registered", version = 1)]
struct CustomerRegistered {
    #[event(partition_key)]
    customer_id: String,
    #[event(pii)]
    email: String,
    #[event(pii)]
    phone: u64,
    plan: String,
}

/// A customer whose email is the partition key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "pii_test.newsletter_joined", version = 1)]
struct NewsletterJoined {
    #[event(partition_key, pii)]
    email: String,
}

const EMAIL: &str = "ada.lovelace@example.com";
const PHONE_TEXT: &str = "+44 20 7946 0958";

fn registered() -> CustomerRegistered {
    CustomerRegistered {
        customer_id: "c-1".into(),
        email: EMAIL.into(),
        phone: 442_079_460_958,
        plan: "gold".into(),
    }
}

/// A `customer_registered` whose phone is a string (a PII value where a number is expected):
/// its decode error is where serde would quote the value.
fn undecodable() -> RawEnvelope {
    let mut raw = Envelope::new(registered()).to_raw().unwrap();
    raw.payload = serde_json::value::RawValue::from_string(format!(
        r#"{{"customer_id":"c-1","email":"{EMAIL}","phone":"{PHONE_TEXT}","plan":"gold"}}"#
    ))
    .unwrap();
    raw
}

/// Asserts `text` shows no PII value of the events above, and shows `[redacted]`.
#[track_caller]
fn assert_redacted(what: &str, text: &str) {
    for secret in [EMAIL, "ada.lovelace", PHONE_TEXT, "7946", "442079460958"] {
        assert!(!text.contains(secret), "{what} shows `{secret}`: {text}");
    }
    assert!(
        text.contains(REDACTED),
        "{what} shows no {REDACTED}: {text}"
    );
}

/// Subscribes a handler that fails for good quoting the email, publishes one typed event
/// and one whose payload does not decode, and returns the dead letters.
async fn dead_letters() -> Vec<DeadLetter> {
    let bus = EventBus::builder().build();
    bus.subscribe_event::<CustomerRegistered, _, _>("welcome", |env| async move {
        Err(HandlerError::permanent(format!(
            "no mailbox at {} (tried \"{}\")",
            env.payload.email, env.payload.email
        )))
    })
    .unwrap();
    bus.publish(registered()).await.unwrap();
    bus.publish_raw(undecodable()).await.unwrap();
    bus.shutdown().await;
    let letters = bus.dead_letters().await;
    assert_eq!(letters.len(), 2, "{letters:?}");
    letters
}

#[test]
fn a_dead_letter_shows_no_pii_in_debug_display_or_last_error() {
    let letters = serially(dead_letters());
    let (handler, decode) = (&letters[0], &letters[1]);

    // The handler's error quoted the email: kept redacted, saying the rest.
    assert_eq!(
        handler.last_error,
        format!("no mailbox at {REDACTED} (tried {REDACTED})")
    );
    // serde quoted the phone: the error still says what and where.
    assert!(
        decode.last_error.starts_with(
            "payload of `pii_test.customer_registered` version 1 does not match its type: \
             invalid type: string [redacted], expected u64 at line 1 column "
        ),
        "{}",
        decode.last_error
    );
    for letter in &letters {
        assert_redacted("last_error", &letter.last_error);
        let debug = format!("{letter:?}");
        assert_redacted("Debug", &debug);
        // The envelope is there, PII fields redacted, the rest as it was.
        assert!(debug.contains(r#""email":"[redacted]""#), "{debug}");
        assert!(debug.contains(r#""plan":"gold""#), "{debug}");
        assert!(debug.contains("welcome"), "{debug}");
        assert_redacted("Debug (pretty)", &format!("{letter:#?}"));
        let display = letter.to_string();
        assert_redacted("Display", &display);
        assert!(
            display.starts_with("`pii_test.customer_registered` version 1 (event "),
            "{display}"
        );
        assert!(display.contains("at subscription `welcome`"), "{display}");
    }
}

#[test]
fn a_pii_partition_key_is_redacted_in_a_dead_letters_debug() {
    let letters = serially(async {
        let bus = EventBus::builder().build();
        bus.subscribe_event::<NewsletterJoined, _, _>("newsletter", |_| async {
            Err(HandlerError::permanent("mail server refused"))
        })
        .unwrap();
        bus.publish(NewsletterJoined {
            email: EMAIL.into(),
        })
        .await
        .unwrap();
        bus.shutdown().await;
        bus.dead_letters().await
    });
    let debug = format!("{:?}", letters[0]);
    assert_redacted("Debug", &debug);
    assert!(
        debug.contains(r#""meta":{"partition_key":"[redacted]"}"#),
        "{debug}"
    );
}

#[test]
fn a_decode_error_shows_no_value_of_the_payload() {
    let error = undecodable()
        .decode::<CustomerRegistered>()
        .expect_err("the phone is not a number");
    let DecodeError::Payload { source, .. } = &error else {
        panic!("a payload error: {error:?}");
    };
    // Display and Debug of the error, of its source, and of the chain a handler's error
    // prints (`HandlerError` writes its sources after its message).
    let chained = HandlerError::from(undecodable().decode::<CustomerRegistered>().unwrap_err());
    for (what, text) in [
        ("Display", error.to_string()),
        ("Debug", format!("{error:?}")),
        ("source's Display", source.to_string()),
        ("source's Debug", format!("{source:?}")),
        ("a HandlerError", chained.to_string()),
        ("a HandlerError's Debug", format!("{chained:?}")),
    ] {
        for secret in [EMAIL, PHONE_TEXT, "7946"] {
            assert!(!text.contains(secret), "{what} shows `{secret}`: {text}");
        }
    }
    assert_eq!(
        chained.to_string(),
        format!(
            "payload of `pii_test.customer_registered` version 1 does not match its type: \
             invalid type: string [redacted], expected u64 at line 1 column {}",
            source.column()
        )
    );
    // The value is there for code that asks for it, and never prints it.
    assert!(source.unredacted().to_string().contains(PHONE_TEXT));
}

/// serde's messages, each with the value it quotes redacted and the rest kept.
#[test]
fn serde_messages_keep_what_and_where_and_lose_the_values() {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "read by the tests' deserializer only")]
    struct Contact {
        name: String,
        age: u8,
        kind: Kind,
    }
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Person,
        Company,
    }
    let cases = [
        (
            r#"{"name": 42}"#,
            "invalid type: integer [redacted], expected a string at line 1 column 11",
        ),
        (
            r#"{"name": "Ada", "age": "forty \"two\""}"#,
            "invalid type: string [redacted], expected u8 at line 1 column 38",
        ),
        (
            r#"{"name": "Ada", "age": 1000}"#,
            "invalid value: integer [redacted], expected u8 at line 1 column 27",
        ),
        (
            r#"{"name": "Ada", "age": 36, "kind": "ada`s, company"}"#,
            "unknown variant [redacted], expected `person` or `company` at line 1 column 51",
        ),
        (
            r#"{"name": "Ada", "age": 36, "email": "ada@example.com"}"#,
            "unknown field `email`, expected one of `name`, `age`, `kind` at line 1 column 34",
        ),
        (
            r#"{"name": "Ada", "age": 36}"#,
            "missing field `kind` at line 1 column 26",
        ),
        (
            r#"{"name": true}"#,
            "invalid type: boolean [redacted], expected a string at line 1 column 13",
        ),
        (
            r#"{"name": "Ada" "age": 36}"#,
            "expected `,` or `}` at line 1 column 16",
        ),
    ];
    for (json, expected) in cases {
        let error = serde_json::from_str::<Contact>(json).unwrap_err();
        let redacted = RedactedJsonError::from(error);
        assert_eq!(redacted.to_string(), expected, "{json}");
    }
}

#[test]
fn redact_text_finds_values_quoted_or_bare_but_not_inside_longer_words() {
    let registry = registry().unwrap();
    let payload = serde_json::to_value(CustomerRegistered {
        email: "al".into(),
        ..registered()
    })
    .unwrap();
    let text = "al: \"al\" alice also 442079460958 c-1 gold";
    assert_eq!(
        redact_text(&registry, CustomerRegistered::NAME, &payload, text),
        "[redacted]: [redacted] alice also [redacted] c-1 gold"
    );
    // A type this process does not know: every value is personal.
    let unknown = json!({"name": "Grace Hopper", "note": "x"});
    assert_eq!(
        redact_text(&registry, "pii_test.unknown", &unknown, "Grace Hopper: x"),
        "[redacted]: x"
    );
    // The envelope as JSON, for views: PII fields and a PII key redacted.
    let joined = Envelope::new(NewsletterJoined {
        email: EMAIL.into(),
    })
    .to_raw()
    .unwrap();
    let view = redact_envelope(&registry, &joined);
    assert_eq!(view["payload"]["email"], REDACTED);
    assert_eq!(view["meta"]["partition_key"], REDACTED);
}

/// Records every span and event as `name field=value ...`.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
}

impl Subscriber for Log {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields(format!("span {}", span.metadata().name()));
        span.record(&mut fields);
        let mut log = self.0.lock().unwrap();
        log.push(fields.0);
        Id::from_u64(log.len() as u64)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut fields = Fields("record".to_owned());
        values.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(format!("event {}", event.metadata().level()));
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn log_lines_and_spans_show_no_pii() {
    let _serial = one_at_a_time();
    let log = Log::default();
    let lines = log.0.clone();
    let _guard = tracing::subscriber::set_default(log);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(dead_letters());
    let lines = lines.lock().unwrap().join("\n");
    assert!(
        lines.contains("span event.deliver") && lines.contains("event dead-lettered"),
        "{lines}"
    );
    assert!(
        lines.contains("invalid type: string [redacted], expected u64"),
        "{lines}"
    );
    assert_redacted("the logs", &lines);
}

#[test]
fn a_serde_error_a_handler_returns_with_question_mark_shows_no_value() {
    fn handler() -> Result<u32, event_core::HandlerError> {
        Ok(serde_json::from_str::<u32>(r#""ada@example.com""#)?)
    }
    let error = handler().unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("ada@example.com"), "{shown}");
    assert!(
        error
            .to_string()
            .starts_with("invalid type: string [redacted], expected u32"),
        "{error}"
    );
    // Other errors keep their message.
    let io: event_core::HandlerError = std::io::Error::other("disk full").into();
    assert_eq!(io.to_string(), "disk full");
}
