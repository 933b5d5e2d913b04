//! The admin API on a bus with field encryption: a PII field reads `[redacted]` while its
//! subject is known and `[erased]` once the subject is forgotten, in events and dead
//! letters alike; the other fields read as they are.

use event_admin::{Admin, REDACTED, Token};
use event_core::privacy::{ERASED, FieldEncryption, MasterKey};
use event_core::store::SqliteStore;
use event_core::{DomainEvent, EventBus, HandlerError, RetryPolicy};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "member.joined", source = "community")]
struct MemberJoined {
    #[event(partition_key, subject)]
    member: String,
    #[event(pii)]
    email: String,
    plan: String,
}

const TOKEN: &str = "read-secret";

async fn get(http: &reqwest::Client, url: &str) -> Value {
    let response = http.get(url).bearer_auth(TOKEN).send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_subjects_fields_read_erased_in_events_and_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("events.db")).unwrap();
    let (master, _) = MasterKey::generate();
    let bus = EventBus::builder()
        .store(store.clone())
        .encrypt_fields(FieldEncryption::new(store, master))
        .poll_interval(Duration::from_millis(20))
        .retry(RetryPolicy::never())
        .build();
    bus.subscribe_event::<MemberJoined, _, _>("welcome", |_| async {
        Err(HandlerError::permanent("mailbox full"))
    })
    .unwrap();
    for member in ["m-1", "m-2"] {
        let joined = MemberJoined {
            member: member.into(),
            email: format!("{member}@example.com"),
            plan: "pro".into(),
        };
        bus.publish(joined).await.unwrap();
    }
    let started = std::time::Instant::now();
    while bus.try_dead_letters().await.unwrap().len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no two dead letters"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let serving = Admin::new(bus.clone())
        .token(Token::read(TOKEN))
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", serving.local_addr());
    let http = reqwest::Client::new();

    let emails = |page: &Value, list: &str| -> Vec<(String, String)> {
        page[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                let event = item.get("event").unwrap_or(item);
                let payload = &event["payload"];
                assert_eq!(payload["plan"], "pro", "{item}");
                (
                    payload["member"].as_str().unwrap().to_owned(),
                    payload["email"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let events = get(&http, &format!("{base}/v1/events")).await;
    assert_eq!(
        emails(&events, "events"),
        [
            ("m-1".into(), REDACTED.into()),
            ("m-2".into(), REDACTED.into())
        ]
    );

    assert_eq!(bus.forget_subject("m-1").await.unwrap(), 1);
    let events = get(&http, &format!("{base}/v1/events")).await;
    assert_eq!(
        emails(&events, "events"),
        [
            ("m-1".into(), ERASED.into()),
            ("m-2".into(), REDACTED.into())
        ]
    );
    let letters = get(&http, &format!("{base}/v1/dead-letters")).await;
    let mut shown = emails(&letters, "dead_letters");
    shown.sort();
    assert_eq!(
        shown,
        [
            ("m-1".into(), ERASED.into()),
            ("m-2".into(), REDACTED.into())
        ]
    );
    serving.shutdown().await;
    bus.shutdown().await;
}
