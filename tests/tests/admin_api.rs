//! The admin HTTP API (`event-admin`) served on loopback and called by a real HTTP client:
//! every route's 401 and 403, every answer checked against the `OpenAPI` document (itself
//! checked by `openapi-spec-validator`), cursors, 400s naming the parameter, PII redaction,
//! tenant-limited tokens, dead-letter operations, replay, health, and `/metrics` through
//! Prometheus's `promtool`.

use event_admin::{Admin, REDACTED, Serving, Token};
use event_core::store::SqliteStore;
use event_core::{DomainEvent, EventBus, HandlerError, PublishContext, RetryPolicy};
use reqwest::{Method, StatusCode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tests::eventually;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "account.opened", source = "accounts", aggregate = "account")]
struct AccountOpened {
    #[event(partition_key)]
    account: String,
    #[event(pii)]
    email: String,
    plan: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "account.closed", source = "accounts", aggregate = "account")]
struct AccountClosed {
    #[event(partition_key)]
    account: String,
}

/// An event keyed by a personal value.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "newsletter.subscribed", source = "accounts")]
struct NewsletterSubscribed {
    #[event(partition_key, pii)]
    email: String,
}

const OPERATE: &str = "operate-secret";
const READ: &str = "read-secret";
const ACME_READ: &str = "acme-read-secret";
const ACME_OPERATE: &str = "acme-operate-secret";
const ACME_EMAIL: &str = "ada@acme.example";
const GLOBEX_EMAIL: &str = "grace@globex.example";

/// A durable bus on SQLite with two subscriptions, its admin API on loopback, and what it
/// handled.
struct App {
    bus: EventBus,
    serving: Option<Serving>,
    base: String,
    http: reqwest::Client,
    /// The `mailer` handler fails while this holds.
    broken: Arc<AtomicBool>,
    /// Accounts the `mailer` handled.
    mailed: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl App {
    /// Publishes: a-1 opened (tenant acme), a-2 opened (tenant globex), a-1 closed (acme);
    /// the `mailer` fails both openings, which become dead letters.
    async fn start() -> App {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("events.db")).unwrap();
        let bus = EventBus::builder()
            .store(store)
            .poll_interval(Duration::from_millis(20))
            .retry(RetryPolicy::never())
            .build();
        let broken = Arc::new(AtomicBool::new(true));
        let mailed = Arc::new(Mutex::new(Vec::new()));
        let (flag, sink) = (Arc::clone(&broken), Arc::clone(&mailed));
        bus.subscribe_event::<AccountOpened, _, _>("mailer", move |env| {
            let failing = flag.load(Relaxed);
            if !failing {
                sink.lock().unwrap().push(env.payload.account.clone());
            }
            async move {
                if failing {
                    Err(HandlerError::permanent("smtp relay refused the message"))
                } else {
                    Ok(())
                }
            }
        })
        .unwrap();
        bus.subscribe_event::<AccountClosed, _, _>("audit", |_| async { Ok(()) })
            .unwrap();
        let acme = || PublishContext::new().tenant("acme").correlation_id("req-1");
        let globex = PublishContext::new()
            .tenant("globex")
            .correlation_id("req-2");
        bus.publish_with(acme(), opened("a-1", ACME_EMAIL))
            .await
            .unwrap();
        bus.publish_with(globex, opened("a-2", GLOBEX_EMAIL))
            .await
            .unwrap();
        bus.publish_with(
            acme(),
            AccountClosed {
                account: "a-1".into(),
            },
        )
        .await
        .unwrap();
        until("two dead letters", || async {
            bus.dead_letters().await.len() == 2
        })
        .await;
        // The audit's delivery counts as delivered before its checkpoint is saved and it
        // leaves the in-flight gauge: the tests read a settled bus.
        until("nothing in flight", || async {
            bus.metrics().in_flight == 0
        })
        .await;
        App::serve(bus, broken, mailed, dir).await
    }

    async fn serve(
        bus: EventBus,
        broken: Arc<AtomicBool>,
        mailed: Arc<Mutex<Vec<String>>>,
        dir: tempfile::TempDir,
    ) -> App {
        let serving = admin(&bus)
            .serve("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        App {
            base: format!("http://{}", serving.local_addr()),
            serving: Some(serving),
            bus,
            http: reqwest::Client::new(),
            broken,
            mailed,
            _dir: dir,
        }
    }

    async fn call(&self, method: Method, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token)).await
    }

    /// GETs `path`, asserts 200 and that the body matches the document's schema of
    /// `template`.
    async fn ok(&self, template: &str, path: &str, token: &str) -> Value {
        let (status, body) = self.get(path, token).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        conforms("get", template, 200, &body);
        body
    }

    async fn stop(mut self) {
        if let Some(serving) = self.serving.take() {
            serving.shutdown().await;
        }
        self.bus.shutdown().await;
    }
}

/// Polls `check` every 20 ms until it holds; panics after 10 s saying `what` did not happen.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not within 10 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn admin(bus: &EventBus) -> Admin {
    Admin::new(bus.clone())
        .token(Token::operate(OPERATE))
        .token(Token::read(READ))
        .token(Token::read(ACME_READ).tenant("acme"))
        .token(Token::operate(ACME_OPERATE).tenant("acme"))
}

fn opened(account: &str, email: &str) -> AccountOpened {
    AccountOpened {
        account: account.into(),
        email: email.into(),
        plan: "pro".into(),
    }
}

/// Asserts `body` matches the `OpenAPI` document's schema of that answer.
fn conforms(method: &str, template: &str, status: u16, body: &Value) {
    let schema = event_admin::response_schema(method, template, status)
        .unwrap_or_else(|| panic!("no schema for {method} {template} {status}"));
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{method} {template} {status} does not match its schema: {errors:?}\n{body:#}"
    );
}

fn events_of(page: &Value) -> Vec<(String, String)> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"]["type"].as_str().unwrap().to_owned(),
                e["event"]["meta"]["partition_key"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect()
}

/// A path of the document with its `{parameters}` filled in: an event's id, a dead
/// letter's, a subscription's name.
fn concrete(template: &str, event: &str, letter: &str) -> String {
    let id = if template.starts_with("/v1/events/") {
        event.to_owned()
    } else {
        urlencode(letter)
    };
    template.replace("{id}", &id).replace("{name}", "mailer")
}

fn urlencode(text: &str) -> String {
    text.replace(':', "%3A")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_of_the_document_answers_401_403_or_is_public() {
    let app = App::start().await;
    let document = app.ok("/v1/openapi.json", "/v1/openapi.json", READ).await;
    let letters = app.get("/v1/dead-letters", READ).await.1;
    let letter = letters["dead_letters"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let event = letters["dead_letters"][0]["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut checked = 0;
    for (template, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let path = concrete(template, &event, &letter);
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let public = operation["security"] == json!([]);
            let (status, body) = app.call(method.clone(), &path, None).await;
            if public {
                assert!(
                    status.is_success(),
                    "{method} {path} is public: {status} {body}"
                );
                continue;
            }
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} without a token"
            );
            conforms(
                method.as_str().to_lowercase().as_str(),
                template,
                401,
                &body,
            );
            let (status, _) = app.call(method.clone(), &path, Some("not-a-token")).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} wrong token"
            );
            let (status, body) = app.call(method.clone(), &path, Some("Basic x")).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
            match operation["x-required-scope"].as_str() {
                Some("operate") => {
                    let (status, body) = app.call(method.clone(), &path, Some(READ)).await;
                    assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
                    assert_eq!(body["error"], "forbidden");
                }
                Some("read") => {
                    let (status, body) = app.call(method.clone(), &path, Some(READ)).await;
                    assert!(status.is_success(), "{method} {path} with read: {body}");
                }
                other => panic!("{method} {path}: unknown scope {other:?}"),
            }
            checked += 1;
        }
    }
    // Every route of DESIGN.md's list, and the dead letter's own GET.
    assert_eq!(checked, 11, "routes needing a token");
    // A read token with a tenant cannot replay: replay concerns every tenant.
    let replay = "/v1/subscriptions/mailer/replay";
    let (status, body) = app.call(Method::POST, replay, Some(ACME_OPERATE)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().unwrap().contains("tenant acme"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_passes_an_independent_validator() {
    let document = {
        let app = App::start().await;
        let document = app.ok("/v1/openapi.json", "/v1/openapi.json", READ).await;
        app.stop().await;
        document
    };
    assert_eq!(document["openapi"], "3.1.0");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&document).unwrap()).unwrap();
    let validator = std::env::var_os("OPENAPI_VALIDATOR_PATH").unwrap_or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME").map_or_else(
            || std::path::PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"),
            std::path::PathBuf::from,
        );
        cache
            .join("typed-events/openapi-spec-validator-0.9.0")
            .into_os_string()
    });
    let output = Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .arg(&file)
        .env("PYTHONPATH", &validator)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named openapi_spec_validator"),
        "openapi-spec-validator is not installed under {validator:?}: scripts/test.sh installs it"
    );
    assert!(output.status.success(), "invalid: {stdout}\n{stderr}");
    assert!(stdout.contains("OK"), "{stdout}");

    // The validator itself rejects a broken document: the check can fail.
    let mut broken = document.clone();
    broken["paths"]["/v1/events"]["get"]["responses"] = json!("none");
    std::fs::write(&file, serde_json::to_vec(&broken).unwrap()).unwrap();
    let output = Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .arg(&file)
        .env("PYTHONPATH", &validator)
        .output()
        .unwrap();
    assert!(!output.status.success(), "a broken document passed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_filters_pages_and_names_bad_parameters() {
    let app = App::start().await;
    let all = app.ok("/v1/events", "/v1/events", READ).await;
    assert_eq!(
        events_of(&all),
        [
            ("account.opened".into(), "a-1".into()),
            ("account.opened".into(), "a-2".into()),
            ("account.closed".into(), "a-1".into())
        ]
    );
    let by_key = app
        .ok("/v1/events", "/v1/events?key=a-1&order=newest", READ)
        .await;
    assert_eq!(
        events_of(&by_key),
        [
            ("account.closed".into(), "a-1".into()),
            ("account.opened".into(), "a-1".into())
        ]
    );
    let by_type = app
        .ok("/v1/events", "/v1/events?type=account.closed", READ)
        .await;
    assert_eq!(events_of(&by_type).len(), 1);
    let by_aggregate = app
        .ok("/v1/events", "/v1/events?aggregate=account&key=a-2", READ)
        .await;
    assert_eq!(
        events_of(&by_aggregate),
        [("account.opened".into(), "a-2".into())]
    );
    let correlated = app
        .ok("/v1/events", "/v1/events?correlation_id=req-1", READ)
        .await;
    assert_eq!(events_of(&correlated).len(), 2);
    let future = app
        .ok("/v1/events", "/v1/events?from=2999-01-01T00:00:00Z", READ)
        .await;
    assert!(events_of(&future).is_empty());
    let past = app
        .ok("/v1/events", "/v1/events?until=2999-01-01T00:00:00Z", READ)
        .await;
    assert_eq!(events_of(&past).len(), 3);

    // Pages of one, by cursor, each event once.
    let mut seen = Vec::new();
    let mut path = "/v1/events?limit=1".to_owned();
    loop {
        let page = app.ok("/v1/events", &path, READ).await;
        seen.extend(events_of(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/events?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, events_of(&all));
    // A huge page is lowered to the cap, not refused.
    app.ok("/v1/events", "/v1/events?limit=1000000", READ).await;

    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("from=yesterday", "from"),
        ("until=2024-13-01", "until"),
        ("order=sideways", "order"),
        ("cursor=x42", "cursor"),
        ("cursor=c18446744073709551615", "cursor"),
        ("aggregate=spaceship", "aggregate"),
        ("colour=blue", "colour"),
        ("key=a&key=b", "key"),
    ] {
        let (status, body) = app.get(&format!("/v1/events?{query}"), READ).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["parameter"], parameter, "{query}: {body}");
        conforms("get", "/v1/events", 400, &body);
    }
    let (status, body) = app.get("/v1/events/not-a-uuid", READ).await;
    assert_eq!(
        (status, body["parameter"].as_str()),
        (StatusCode::BAD_REQUEST, Some("id"))
    );
    let (status, _) = app
        .get("/v1/events/00000000-0000-7000-8000-000000000000", READ)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app.get("/v1/subscriptions?limit=-1", READ).await;
    assert_eq!(
        (status, body["parameter"].as_str()),
        (StatusCode::BAD_REQUEST, Some("limit"))
    );
    let (status, body) = app.get("/v1/dead-letters?subscripton=mailer", READ).await;
    assert_eq!(body["parameter"], "subscripton", "{status} {body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pii_fields_are_redacted_in_every_answer() {
    let app = App::start().await;
    let all = app.ok("/v1/events", "/v1/events", OPERATE).await;
    let first = &all["events"][0]["event"];
    assert_eq!(first["payload"]["email"], REDACTED);
    assert_eq!(first["payload"]["plan"], "pro", "other fields stay");
    let id = first["id"].as_str().unwrap();
    let one = app
        .ok("/v1/events/{id}", &format!("/v1/events/{id}"), OPERATE)
        .await;
    assert_eq!(one["event"]["payload"]["email"], REDACTED);
    let letters = app
        .ok("/v1/dead-letters", "/v1/dead-letters", OPERATE)
        .await;
    let letter = &letters["dead_letters"][0];
    assert_eq!(letter["event"]["payload"]["email"], REDACTED);
    let shown = app
        .ok(
            "/v1/dead-letters/{id}",
            &format!(
                "/v1/dead-letters/{}",
                urlencode(letter["id"].as_str().unwrap())
            ),
            OPERATE,
        )
        .await;
    assert_eq!(shown["event"]["payload"]["email"], REDACTED);
    // A key that is a PII field is redacted where the envelope repeats it.
    let reader = "reader@example.org";
    let keyed = NewsletterSubscribed {
        email: reader.into(),
    };
    app.bus.publish(keyed).await.unwrap();
    let newest = app
        .ok("/v1/events", "/v1/events?order=newest&limit=1", OPERATE)
        .await;
    let event = &newest["events"][0]["event"];
    assert_eq!(event["type"], "newsletter.subscribed");
    assert_eq!(event["meta"]["partition_key"], REDACTED);
    assert!(!newest.to_string().contains(reader), "{newest}");
    // Nowhere in any answer, not even inside another field.
    for path in [
        "/v1/events",
        "/v1/dead-letters",
        "/v1/subscriptions",
        "/v1/catalog",
    ] {
        let body = app.get(path, OPERATE).await.1.to_string();
        assert!(
            !body.contains(ACME_EMAIL) && !body.contains(GLOBEX_EMAIL),
            "{path}: {body}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_token_sees_only_its_tenant() {
    let app = App::start().await;
    let acme = app.ok("/v1/events", "/v1/events", ACME_READ).await;
    assert_eq!(
        events_of(&acme),
        [
            ("account.opened".into(), "a-1".into()),
            ("account.closed".into(), "a-1".into())
        ]
    );
    let everyone = app.ok("/v1/events", "/v1/events", READ).await;
    let globex = everyone["events"][1]["event"]["id"].as_str().unwrap();
    let (status, _) = app.get(&format!("/v1/events/{globex}"), ACME_READ).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another tenant's event is not there"
    );
    // Its dead-letter counts are its tenant's.
    let subscriptions = app
        .ok("/v1/subscriptions", "/v1/subscriptions", ACME_READ)
        .await;
    assert_eq!(
        subscriptions["subscriptions"][1]["dead_letters"], 1,
        "{subscriptions}"
    );
    let letters = app
        .ok("/v1/dead-letters", "/v1/dead-letters", ACME_READ)
        .await;
    let letters = letters["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["partition_key"], "a-1");
    // Globex's dead letter cannot be acted on with acme's token.
    let all = app.get("/v1/dead-letters", READ).await.1;
    let theirs = all["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["partition_key"] == "a-2")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/dead-letters/{}", urlencode(&theirs));
    let (status, _) = app.call(Method::DELETE, &path, Some(ACME_OPERATE)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.bus.dead_letters().await.len(),
        2,
        "nothing was discarded"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_redelivered_and_discarded() {
    let app = App::start().await;
    let page = app
        .ok("/v1/dead-letters", "/v1/dead-letters?limit=1", READ)
        .await;
    let first = page["dead_letters"][0].clone();
    assert_eq!(first["subscription"], "mailer");
    assert_eq!(first["error"], "smtp relay refused the message");
    assert_eq!(first["attempts"], 1);
    let cursor = page["next_cursor"].as_str().expect("a second page");
    let second = app
        .ok(
            "/v1/dead-letters",
            &format!("/v1/dead-letters?limit=1&cursor={}", urlencode(cursor)),
            READ,
        )
        .await;
    assert_eq!(second["dead_letters"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());
    assert_ne!(second["dead_letters"][0]["id"], first["id"]);
    let only_audit = app
        .ok(
            "/v1/dead-letters",
            "/v1/dead-letters?subscription=audit",
            READ,
        )
        .await;
    assert!(only_audit["dead_letters"].as_array().unwrap().is_empty());

    // Fixed, then redelivered: handled, and off the list.
    app.broken.store(false, Relaxed);
    let id = first["id"].as_str().unwrap();
    let path = format!("/v1/dead-letters/{}/redeliver", urlencode(id));
    let (status, body) = app.call(Method::POST, &path, Some(OPERATE)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    conforms("post", "/v1/dead-letters/{id}/redeliver", 202, &body);
    let mailed = Arc::clone(&app.mailed);
    eventually(
        Duration::from_secs(10),
        "the redelivered event handled",
        || mailed.lock().unwrap().len() == 1,
    )
    .await;
    until("one dead letter left", || async {
        app.bus.dead_letters().await.len() == 1
    })
    .await;
    let (status, _) = app.call(Method::POST, &path, Some(OPERATE)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "redelivered once");

    let rest = second["dead_letters"][0]["id"].as_str().unwrap();
    let path = format!("/v1/dead-letters/{}", urlencode(rest));
    let (status, body) = app.call(Method::DELETE, &path, Some(OPERATE)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    conforms("delete", "/v1/dead-letters/{id}", 200, &body);
    assert!(app.bus.dead_letters().await.is_empty());
    assert_eq!(
        mailed.lock().unwrap().len(),
        1,
        "a discarded event is not handled"
    );
    let (status, body) = app.get("/v1/dead-letters/no-colon-here", READ).await;
    assert_eq!(
        (status, body["parameter"].as_str()),
        (StatusCode::BAD_REQUEST, Some("id"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_show_checkpoints_and_replay_reads_again() {
    let app = App::start().await;
    let page = app.ok("/v1/subscriptions", "/v1/subscriptions", READ).await;
    let subscriptions = page["subscriptions"].as_array().unwrap();
    let names: Vec<&str> = subscriptions
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["audit", "mailer"]);
    let mailer = &subscriptions[1];
    assert_eq!(mailer["feed"], "store");
    assert_eq!(mailer["dead_letters"], 2);
    assert_eq!(mailer["dead_lettered"], 2);
    assert_eq!(mailer["events"], json!(["account.opened"]));
    let audit = &subscriptions[0];
    assert_eq!(audit["delivered"], 1);
    assert_eq!(audit["by_type"][0]["event_type"], "account.closed");
    assert!(audit["by_type"][0]["latency_p50_ms"].as_f64().is_some());
    until("checkpoints at the head", || async {
        let subscriptions = app.bus.subscriptions().await;
        subscriptions
            .iter()
            .all(|s| s.checkpoint == Some(3) && s.lag == Some(0))
    })
    .await;
    let paged = app
        .ok(
            "/v1/subscriptions",
            "/v1/subscriptions?limit=1&cursor=audit",
            READ,
        )
        .await;
    assert_eq!(paged["subscriptions"][0]["name"], "mailer");
    assert!(paged["next_cursor"].is_null());

    // Replay from the start, the handler fixed: both openings handled.
    app.broken.store(false, Relaxed);
    let (status, body) = app
        .call(
            Method::POST,
            "/v1/subscriptions/mailer/replay?from=0",
            Some(OPERATE),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    conforms("post", "/v1/subscriptions/{name}/replay", 202, &body);
    let again = Arc::clone(&app.mailed);
    eventually(
        Duration::from_secs(10),
        "both openings handled again",
        || again.lock().unwrap().len() == 2,
    )
    .await;
    let (status, _) = app
        .call(
            Method::POST,
            "/v1/subscriptions/nobody/replay",
            Some(OPERATE),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app
        .call(
            Method::POST,
            "/v1/subscriptions/mailer/replay?from=4",
            Some(OPERATE),
        )
        .await;
    assert_eq!(
        (status, body["parameter"].as_str()),
        (StatusCode::BAD_REQUEST, Some("from")),
        "past the head (3) would skip events: {body}"
    );
    let (status, body) = app
        .call(
            Method::POST,
            "/v1/subscriptions/mailer/replay?from=x",
            Some(OPERATE),
        )
        .await;
    assert_eq!(
        (status, body["parameter"].as_str()),
        (StatusCode::BAD_REQUEST, Some("from"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_catalog_and_health() {
    let app = App::start().await;
    let streams = app.ok("/v1/streams", "/v1/streams", READ).await;
    assert!(streams["transport"].is_null(), "no transport: {streams}");
    let (status, catalog) = app.get("/v1/catalog", READ).await;
    assert_eq!(status, StatusCode::OK);
    let text = catalog.to_string();
    assert!(
        text.contains("account.opened") && text.contains(r#""pii":["email"]"#),
        "{text}"
    );
    let (status, health) = app.call(Method::GET, "/health", None).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    conforms("get", "/health", 200, &health);
    let names: Vec<&str> = health["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["store", "bus", "lag:mailer", "lag:audit"]);
    app.bus.shutdown().await;
    let (status, health) = app.call(Method::GET, "/health", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    conforms("get", "/health", 503, &health);
    assert!(health.to_string().contains("shut down"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_fails_when_a_subscription_lags_and_a_memory_bus_has_no_timeline() {
    // In memory, a handler that waits: the events behind it are its lag.
    let bus = EventBus::builder().build();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let wait = Arc::clone(&gate);
    bus.subscribe_event::<AccountClosed, _, _>("slow", move |_| {
        let wait = Arc::clone(&wait);
        async move {
            wait.acquire().await.expect("open").forget();
            Ok(())
        }
    })
    .unwrap();
    for n in 0..4 {
        bus.publish(AccountClosed {
            account: format!("a-{n}"),
        })
        .await
        .unwrap();
    }
    let serving = admin(&bus)
        .max_lag(1)
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", serving.local_addr());
    let http = reqwest::Client::new();
    let response = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health: Value = response.json().await.unwrap();
    let lag = health["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "lag:slow")
        .unwrap();
    assert_eq!(lag["ok"], false, "{health}");
    let response = http
        .get(format!("{base}/v1/events"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "no_store");
    let subscriptions: Value = http
        .get(format!("{base}/v1/subscriptions"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let slow = &subscriptions["subscriptions"][0];
    assert_eq!(
        (slow["feed"].as_str(), slow["in_flight"].as_u64()),
        (Some("memory"), Some(4))
    );
    gate.add_permits(4);
    serving.shutdown().await;
    bus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_count_per_subscription_and_type() {
    let app = App::start().await;
    let response = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    for line in [
        "events_published_total 3",
        r#"events_dead_lettered_total{subscription="mailer",event_type="account.opened"} 2"#,
        r#"events_delivered_total{subscription="audit",event_type="account.closed"} 1"#,
        r#"event_handler_duration_seconds_count{subscription="audit",event_type="account.closed"} 1"#,
        r#"event_dead_letters{subscription="mailer"} 2"#,
        r#"event_subscription_in_flight{subscription="audit"} 0"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in:\n{text}"
        );
    }
    assert!(text.contains("event_subscription_lag{subscription=\"mailer\"}"));
    // Cumulative buckets: the one call (well under a second) is in every bucket from some
    // bound on, and in the last.
    let buckets: Vec<u64> = text
        .lines()
        .filter(|l| {
            l.starts_with("event_handler_duration_seconds_bucket{")
                && l.contains(r#"subscription="audit""#)
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), 12, "{text}");
    assert!(
        buckets.windows(2).all(|w| w[0] <= w[1]),
        "cumulative: {buckets:?}"
    );
    assert!(
        text.contains(r#"event_handler_duration_seconds_bucket{le="+Inf",subscription="audit",event_type="account.closed"} 1"#),
        "OpenMetrics spells the last bound +Inf:\n{text}"
    );
    assert_eq!((buckets[8], buckets[11]), (1, 1), "{buckets:?}");
    let (code, said) = promtool(&text);
    assert_ne!(
        code,
        Some(1),
        "promtool could not parse /metrics: {said}\n{text}"
    );
    // promtool 2.42 lints as the classic text format, where a counter's HELP names its
    // `_total` sample; OpenMetrics (what prometheus-client writes, and Prometheus scrapes
    // first) names the family without it. That is the one complaint allowed.
    for complaint in said.lines().filter(|l| !l.trim().is_empty()) {
        let family = complaint
            .strip_suffix("_total no help text")
            .unwrap_or_else(|| panic!("promtool: {complaint}\n{text}"));
        assert!(text.contains(&format!("# HELP {family} ")), "{complaint}");
        assert!(
            text.contains(&format!("# TYPE {family} counter")),
            "{complaint}"
        );
    }
    // promtool can fail: a malformed exposition is refused.
    let broken = text.replacen(
        "events_published_total 3",
        "events_published_total three",
        1,
    );
    assert_eq!(
        promtool(&broken).0,
        Some(1),
        "promtool accepted a malformed exposition"
    );
    app.stop().await;
}

/// Runs `promtool check metrics` on `text`: its exit code (1: not parsed, 3: lint
/// problems) and what it said.
fn promtool(text: &str) -> (Option<i32>, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian's prometheus package; scripts/test.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), said)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_addresses_beyond_loopback_unless_allowed() {
    let bus = EventBus::builder().build();
    let refused = admin(&bus).serve("0.0.0.0:0".parse().unwrap()).await;
    let error = refused.expect_err("0.0.0.0 refused");
    assert_eq!(error.kind(), std::io::ErrorKind::PermissionDenied);
    assert!(error.to_string().contains("allow_remote"), "{error}");
    let serving = admin(&bus)
        .allow_remote()
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    serving.shutdown().await;
    bus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_broker_streams_and_lag_come_from_the_transport() {
    let url = tests::redis_server::RedisServer::shared().url();
    let transport = event_core::transport::RedisTransport::builder(&url)
        .prefix(format!("admin-{}", uuid::Uuid::now_v7().simple()))
        .shards(2)
        .lease(Duration::from_secs(2))
        .connect()
        .await
        .expect("connects to the test's redis-server");
    let bus = EventBus::builder().transport(transport).build();
    bus.subscribe_event::<AccountClosed, _, _>("audit", |_| async { Ok(()) })
        .unwrap();
    let serving = admin(&bus)
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let app = App {
        base: format!("http://{}", serving.local_addr()),
        serving: Some(serving),
        bus: bus.clone(),
        http: reqwest::Client::new(),
        broken: Arc::new(AtomicBool::new(false)),
        mailed: Arc::new(Mutex::new(Vec::new())),
        _dir: tempfile::tempdir().unwrap(),
    };
    until("the group on the broker", || async {
        bus.transport_info().await.is_ok_and(|info| {
            info.is_some_and(|info| info.topics.iter().any(|t| !t.groups.is_empty()))
        })
    })
    .await;
    for n in 0..5 {
        let closed = AccountClosed {
            account: format!("a-{n}"),
        };
        bus.publish(closed).await.unwrap();
    }
    until("five handled", || async {
        bus.subscriptions().await[0].delivered() == 5
    })
    .await;
    let streams = app.ok("/v1/streams", "/v1/streams", READ).await;
    let transport = &streams["transport"];
    assert!(
        transport["broker"]
            .as_str()
            .unwrap()
            .starts_with("redis://"),
        "{streams}"
    );
    assert_eq!(transport["shards"], 2);
    let page = app.ok("/v1/subscriptions", "/v1/subscriptions", READ).await;
    let audit = &page["subscriptions"][0];
    assert_eq!(
        (audit["feed"].as_str(), audit["delivered"].as_u64()),
        (Some("transport"), Some(5))
    );
    assert!(audit["lag"].as_u64().is_some(), "the broker's lag: {audit}");
    let (status, health) = app.call(Method::GET, "/health", None).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert!(health.to_string().contains("\"transport\""), "{health}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_nested_under_a_prefix() {
    let bus = EventBus::builder().build();
    let app = axum::Router::new().nest("/admin", admin(&bus).router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    for page in ["/admin"] {
        let html = http.get(format!("{base}{page}")).send().await.unwrap();
        assert_eq!(html.status(), StatusCode::OK, "{page}");
        let html = html.text().await.unwrap();
        assert!(html.contains(r#"src="/admin/assets/app.js""#), "{html}");
        assert!(html.contains(r#"href="/admin/assets/style.css""#), "{html}");
        assert!(html.contains(r#"<body data-base="/admin">"#), "{html}");
    }
    let script = http
        .get(format!("{base}/admin/assets/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    let api = http
        .get(format!("{base}/admin/v1/subscriptions"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::OK);
    // At the root, the links stay as they are.
    let root = admin(&bus)
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let html = http
        .get(format!("http://{}/", root.local_addr()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"src="/assets/app.js""#) && html.contains(r#"data-base="""#));
    root.shutdown().await;
    server.abort();
    bus.shutdown().await;
}
