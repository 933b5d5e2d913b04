//! The admin dashboard in a real headless Chromium, driven over `WebDriver` (chromedriver) on
//! loopback: a wrong token shows the API's 401 message; the right one shows the
//! subscriptions, the dead letters of a failing handler with their error, the catalog and a
//! timeline search (PII redacted: the page never holds a `#[event(pii)]` value); Redeliver,
//! once the handler is fixed, hands the event to it again; Discard takes a letter away. Both
//! show on the page (it refreshes itself) and in the API.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian's `chromium` and
//! `chromium-driver`; `scripts/test.sh` installs them). `WebDriver` is spoken with `fantoccini`,
//! over plain HTTP to chromedriver on 127.0.0.1.

use event_admin::{Admin, Token};
use event_core::store::SqliteStore;
use event_core::{DomainEvent, EventBus, HandlerError, RetryPolicy};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "test-token";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long the browser is given for anything to show.
const PATIENCE: Duration = Duration::from_secs(20);

/// A new account asked for the welcome mail.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "dashboard.signup", version = 1, aggregate = "signup")]
struct Signup {
    #[event(partition_key)]
    account: String,
    #[event(pii)]
    email: String,
    plan: String,
}

fn email(n: u32) -> String {
    format!("person-{n}@private.example")
}

/// A durable bus whose mailer fails while `broken`, and records the accounts it handled.
#[derive(Debug)]
struct Mailer {
    bus: EventBus,
    broken: Arc<AtomicBool>,
    handled: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Mailer {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bus = EventBus::builder()
            .store(SqliteStore::open(dir.path().join("events.db")).expect("opens the store"))
            .poll_interval(Duration::from_millis(20))
            .retry(RetryPolicy::never())
            .build();
        let broken = Arc::new(AtomicBool::new(true));
        let handled = Arc::new(Mutex::new(Vec::<String>::new()));
        let (is_broken, sink) = (Arc::clone(&broken), Arc::clone(&handled));
        bus.subscribe_event::<Signup, _, _>("welcome-mailer", move |env| {
            let result = if is_broken.load(Ordering::SeqCst) {
                Err(HandlerError::permanent(format!(
                    "mail server refused {}",
                    env.payload.account
                )))
            } else {
                sink.lock().unwrap().push(env.payload.account.clone());
                Ok(())
            };
            async move { result }
        })
        .expect("subscribes");
        Mailer {
            bus,
            broken,
            handled,
            _dir: dir,
        }
    }

    /// Publishes acct-1 to acct-3's signups and waits until the three are dead letters.
    async fn three_dead_letters(&self) {
        for n in 1..=3 {
            self.bus
                .publish(Signup {
                    account: format!("acct-{n}"),
                    email: email(n),
                    plan: "pro".to_owned(),
                })
                .await
                .expect("publishes");
        }
        let letters = eventually("3 dead letters in the bus", Duration::from_secs(10), || {
            let bus = self.bus.clone();
            async move {
                let letters = bus.dead_letters().await;
                if letters.len() == 3 {
                    Ok(letters)
                } else {
                    Err(format!("{} dead letters", letters.len()))
                }
            }
        })
        .await;
        // The personal data is there, in the clear, for the page to hide.
        for n in 1..=3 {
            assert!(
                letters.iter().any(|l| serde_json::to_string(&l.envelope)
                    .unwrap()
                    .contains(&email(n))),
                "the stored letters hold {}",
                email(n)
            );
        }
    }

    fn handled(&self) -> Vec<String> {
        self.handled.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_redelivers_and_discards_dead_letters() {
    let started = Instant::now();
    let mailer = Mailer::start();
    mailer.three_dead_letters().await;

    let serving = Admin::new(mailer.bus.clone())
        .token(Token::operate(TOKEN))
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .expect("serves the admin API");
    let api = Api::new(serving.local_addr());
    api.serves_the_dashboard().await;
    let browser = Browser::start().await;
    let steps = AssertUnwindSafe(drive(&browser, &api, &mailer))
        .catch_unwind()
        .await;
    // The session ends (Chromium quits) whether the steps passed or not.
    let closed = browser.close().await;
    if let Err(failure) = steps {
        std::panic::resume_unwind(failure);
    }
    closed.expect("ends the WebDriver session");

    serving.shutdown().await;
    mailer.bus.shutdown().await;
    println!("the dashboard test took {:?}", started.elapsed());
}

/// What an operator does on the dashboard, and what the test checks of it.
async fn drive(browser: &Browser, api: &Api, mailer: &Mailer) {
    let page = format!("{}/", api.base);
    browser
        .client
        .goto(&page)
        .await
        .expect("opens the dashboard");
    signs_in(browser).await;
    shows_dead_letters_subscriptions_and_catalog(browser).await;
    searches_the_timeline_without_pii(browser).await;

    let png = browser
        .client
        .screenshot()
        .await
        .expect("takes a screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "the screenshot is a PNG"
    );
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("admin-dashboard.png");
    std::fs::write(&shot, &png).expect("writes the screenshot");
    println!("dashboard screenshot: {}", shot.display());

    redelivers_and_discards(browser, api, mailer).await;
}

/// Fixed, the mailer takes acct-1's event again when the operator redelivers it; acct-2's
/// letter, discarded, is gone without the mailer seeing it.
async fn redelivers_and_discards(browser: &Browser, api: &Api, mailer: &Mailer) {
    mailer.broken.store(false, Ordering::SeqCst);
    let id = browser.click_action("acct-1", "redeliver").await;
    let state = browser
        .eventually("2 dead letters, acct-1's gone", |state| {
            state.count == "2"
                && state.dead_letters.len() == 2
                && state.dead_letters.iter().all(|l| l.id != id)
        })
        .await;
    assert!(state.error.is_none(), "no error: {state:?}");
    api.has_dead_letters(2, &id).await;
    eventually(
        "the mailer handled acct-1",
        Duration::from_secs(20),
        || async {
            let handled = mailer.handled();
            if handled == ["acct-1"] {
                Ok(())
            } else {
                Err(format!("handled {handled:?}"))
            }
        },
    )
    .await;

    let id = browser.click_action("acct-2", "discard").await;
    let state = browser
        .eventually("1 dead letter, acct-2's gone", |state| {
            state.count == "1"
                && state.dead_letters.len() == 1
                && state.dead_letters.iter().all(|l| l.id != id)
        })
        .await;
    assert!(state.error.is_none(), "no error: {state:?}");
    api.has_dead_letters(1, &id).await;
    assert_eq!(mailer.handled(), ["acct-1"], "discard handles nothing");
    assert!(
        !browser.source().await.contains("private.example"),
        "no email on the page after the actions"
    );
}

/// A wrong token: the form stays, with the API's 401 message. The right one: the dashboard.
async fn signs_in(browser: &Browser) {
    browser.wait_for("#token-form input#token").await;
    browser.type_into("#token", "not-the-token").await;
    browser.click("#token-form button[type=submit]").await;
    browser
        .eventually("the API's 401 message and the token form again", |state| {
            state.form_visible
                && state
                    .error
                    .as_deref()
                    .is_some_and(|e| e.contains("401") && e.contains("token is not valid"))
        })
        .await;

    browser.type_into("#token", TOKEN).await;
    browser.click("#token-form button[type=submit]").await;
    browser
        .eventually("the dashboard, without the error", |state| {
            !state.form_visible && state.dashboard_visible && state.error.is_none()
        })
        .await;
}

async fn shows_dead_letters_subscriptions_and_catalog(browser: &Browser) {
    let state = browser
        .eventually(
            "3 dead letters, the subscription and the catalog",
            |state| {
                state.count == "3"
                    && state.dead_letters.len() == 3
                    && state.subscriptions.iter().any(|s| {
                        s.name == "welcome-mailer" && s.feed == "store" && s.dead_letters == "3"
                    })
                    && state
                        .catalog
                        .iter()
                        .any(|e| e.event == "dashboard.signup@1")
            },
        )
        .await;
    for n in 1..=3 {
        let key = format!("acct-{n}");
        let letter = state
            .dead_letters
            .iter()
            .find(|l| l.key == key)
            .unwrap_or_else(|| panic!("a row for {key}: {state:?}"));
        assert_eq!(letter.subscription, "welcome-mailer", "{letter:?}");
        assert_eq!(letter.event_type, "dashboard.signup", "{letter:?}");
        assert!(
            letter.error.contains(&format!("mail server refused {key}")),
            "the row shows the handler's error: {letter:?}"
        );
        assert_eq!(letter.attempts, "1", "{letter:?}");
        assert_eq!(letter.buttons, ["redeliver", "discard"], "{letter:?}");
    }
    let summary = &state
        .catalog
        .iter()
        .find(|e| e.event == "dashboard.signup@1")
        .unwrap()
        .summary;
    assert!(
        summary.contains("A new account asked for the welcome mail"),
        "the catalog shows the doc comment: {summary:?}"
    );
    // What a person sees, not only the DOM: the count as rendered.
    let count = browser.find("#dead-letter-count").await.text().await;
    assert_eq!(count.expect("reads the count"), "3");
    let source = browser.source().await;
    for n in 1..=3 {
        assert!(
            !source.contains(&email(n)),
            "the page holds {} in the clear",
            email(n)
        );
    }
}

/// The timeline by partition key shows acct-2's event, its email redacted.
async fn searches_the_timeline_without_pii(browser: &Browser) {
    let by = browser.find("#timeline-by").await;
    by.select_by_value("key")
        .await
        .expect("picks the search by key");
    browser.type_into("#timeline-value", "acct-2").await;
    browser.click("#timeline-search").await;
    let state = browser
        .eventually(
            "acct-2's event in the timeline, its email redacted",
            |state| {
                state.timeline.len() == 1
                    && state.timeline[0].key == "acct-2"
                    && state.timeline[0].payload.contains("[redacted]")
            },
        )
        .await;
    let event = &state.timeline[0];
    assert_eq!(event.event_type, "dashboard.signup", "{event:?}");
    assert!(event.payload.contains("\"plan\":\"pro\""), "{event:?}");
    let source = browser.source().await;
    assert!(
        source.contains("[redacted]"),
        "the page shows the payload, redacted"
    );
    for n in 1..=3 {
        assert!(
            !source.contains(&email(n)),
            "the page holds {} in the clear",
            email(n)
        );
    }
}

/// Polls `probe` until it answers `Ok`, for at most `timeout`; fails with what it last saw.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => {
                panic!("waited {timeout:?} for {what}; last saw: {seen}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The admin API, as a client with the token.
#[derive(Debug)]
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(addr: SocketAddr) -> Self {
        Api {
            http: reqwest::Client::new(),
            base: format!("http://{addr}"),
        }
    }

    /// The page, its script and its style, each of its type and under a policy that lets
    /// the page load nothing but them and talk to nothing but this origin.
    async fn serves_the_dashboard(&self) {
        for (path, kind) in [
            ("/", "text/html"),
            ("/assets/app.js", "text/javascript"),
            ("/assets/style.css", "text/css"),
        ] {
            let response = self
                .http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .expect("the API answers");
            assert_eq!(response.status(), 200, "GET {path}");
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            assert!(header("content-type").starts_with(kind), "GET {path}");
            assert!(
                header("content-security-policy").contains("script-src 'self'"),
                "GET {path}: {}",
                header("content-security-policy")
            );
            assert_eq!(header("x-content-type-options"), "nosniff", "GET {path}");
        }
    }

    /// The API lists `count` dead letters, none of them `gone`.
    async fn has_dead_letters(&self, count: usize, gone: &str) {
        let page: Value = self
            .http
            .get(format!("{}/v1/dead-letters", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("the API answers")
            .error_for_status()
            .expect("the API lists the dead letters")
            .json()
            .await
            .expect("a JSON page");
        let ids: Vec<&str> = page["dead_letters"]
            .as_array()
            .expect("a list of dead letters")
            .iter()
            .map(|l| l["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), count, "the API's dead letters: {ids:?}");
        assert!(!ids.contains(&gone), "the API still lists {gone}: {ids:?}");
    }
}

/// What the page shows, read by one script.
#[derive(Debug, Deserialize)]
struct PageState {
    form_visible: bool,
    dashboard_visible: bool,
    error: Option<String>,
    count: String,
    subscriptions: Vec<SubscriptionRow>,
    dead_letters: Vec<DeadLetterRow>,
    timeline: Vec<TimelineRow>,
    catalog: Vec<CatalogRow>,
}

#[derive(Debug, Deserialize)]
struct SubscriptionRow {
    name: String,
    feed: String,
    dead_letters: String,
}

#[derive(Debug, Deserialize)]
struct DeadLetterRow {
    id: String,
    subscription: String,
    event_type: String,
    key: String,
    error: String,
    attempts: String,
    buttons: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct TimelineRow {
    event_type: String,
    key: String,
    payload: String,
}

#[derive(Debug, Deserialize)]
struct CatalogRow {
    event: String,
    summary: String,
}

const READ_PAGE: &str = r##"
const all = (selector) => Array.from(document.querySelectorAll(selector));
const cell = (row, field) => {
  const td = row.querySelector(`td[data-field="${field}"]`);
  return td ? td.textContent : "";
};
const shown = (id) => { const e = document.getElementById(id); return !!e && !e.hidden; };
return {
  form_visible: shown("token-form"),
  dashboard_visible: shown("dashboard"),
  error: shown("error") ? document.getElementById("error").textContent : null,
  count: document.getElementById("dead-letter-count").textContent,
  subscriptions: all("tr[data-subscription]").map((r) => ({
    name: cell(r, "name"), feed: cell(r, "feed"), dead_letters: cell(r, "dead_letters"),
  })),
  dead_letters: all("tr[data-dead-letter-id]").map((r) => ({
    id: r.getAttribute("data-dead-letter-id"),
    subscription: cell(r, "subscription"), event_type: cell(r, "event_type"),
    key: cell(r, "partition_key"), error: cell(r, "error"), attempts: cell(r, "attempts"),
    buttons: Array.from(r.querySelectorAll("button[data-action]")).map((b) => b.dataset.action),
  })),
  timeline: all("#timeline-body tr").map((r) => ({
    event_type: cell(r, "type"), key: cell(r, "key"), payload: cell(r, "payload"),
  })),
  catalog: all("tr[data-event]").map((r) => ({
    event: r.getAttribute("data-event"), summary: cell(r, "summary"),
  })),
};
"##;

/// chromedriver on a free port of loopback, killed when dropped (a failing test too).
#[derive(Debug)]
struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    fn start() -> Self {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "{CHROMEDRIVER} and {CHROMIUM} are needed: apt-get install chromium chromium-driver \
             (scripts/test.sh does)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts chromedriver");
        ChromeDriver { child, port }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `WebDriver` session of headless Chromium, on a chromedriver of its own. The test
/// [`close`](Self::close)s it, also when a step fails, so that Chromium quits before
/// chromedriver is killed.
#[derive(Debug)]
struct Browser {
    client: Client,
    _driver: ChromeDriver,
}

impl Browser {
    async fn start() -> Self {
        let mut driver = ChromeDriver::start();
        let Value::Object(capabilities) = json!({"goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900"],
        }}) else {
            unreachable!("an object")
        };
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let url = format!("http://127.0.0.1:{}", driver.port);
        let (builder, url) = (&builder, url.as_str());
        // chromedriver refuses connections until it listens.
        let client = eventually("a session from chromedriver", PATIENCE, || {
            if let Ok(Some(exit)) = driver.child.try_wait() {
                panic!("chromedriver exited at start: {exit}");
            }
            async move { builder.connect(url).await.map_err(|e| e.to_string()) }
        })
        .await;
        Browser {
            client,
            _driver: driver,
        }
    }

    /// Ends the session; chromedriver is killed next.
    async fn close(self) -> Result<(), fantoccini::error::CmdError> {
        self.client.close().await
    }

    async fn wait_for(&self, css: &str) {
        let wait = self.client.wait().at_most(PATIENCE);
        wait.for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("waited {PATIENCE:?} for an element {css}: {error}"));
    }

    async fn find(&self, css: &str) -> Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no element {css} on the page: {error}"))
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicks {css}: {e}"));
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        element
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clears {css}: {e}"));
        element
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("types into {css}: {e}"));
    }

    async fn source(&self) -> String {
        self.client.source().await.expect("reads the page source")
    }

    async fn state(&self) -> PageState {
        let state = self
            .client
            .execute(READ_PAGE, vec![])
            .await
            .expect("runs READ_PAGE");
        serde_json::from_value(state.clone())
            .unwrap_or_else(|error| panic!("the page's state {state}: {error}"))
    }

    /// Waits ([`PATIENCE`] at most) until the page's state passes `check`.
    async fn eventually(&self, what: &str, check: impl Fn(&PageState) -> bool) -> PageState {
        let check = &check;
        eventually(what, PATIENCE, || async move {
            let state = self.state().await;
            if check(&state) {
                Ok(state)
            } else {
                Err(format!("{state:?}"))
            }
        })
        .await
    }

    /// Clicks `action` on the dead letter of partition key `key`; answers the letter's id.
    async fn click_action(&self, key: &str, action: &str) -> String {
        let state = self.state().await;
        let id = state
            .dead_letters
            .iter()
            .find(|l| l.key == key)
            .unwrap_or_else(|| panic!("no dead letter row of {key}: {state:?}"))
            .id
            .clone();
        self.click(&format!(
            "tr[data-dead-letter-id=\"{id}\"] button[data-action={action}]"
        ))
        .await;
        id
    }
}
