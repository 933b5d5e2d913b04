//! `event_core::http::RequestContextLayer` on a real axum server with a real HTTP client:
//! the events a request handler publishes carry the request's context.

use axum::routing::post;
use event_core::http::RequestContextLayer;
use event_core::{DomainEvent, Envelope, EventBus};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tests::eventually;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(source = "orders-service")]
struct OrderPlaced {
    order_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
struct InvoiceIssued {
    order_id: String,
}

/// What one envelope says about its context.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    id: String,
    correlation_id: Option<String>,
    causation_id: Option<String>,
    trace_id: Option<String>,
    tenant: Option<String>,
    source: Option<String>,
}

fn seen<E>(envelope: &Envelope<E>) -> Seen {
    Seen {
        id: envelope.id.to_string(),
        correlation_id: envelope.correlation_id.as_deref().map(str::to_owned),
        causation_id: envelope.causation_id.as_deref().map(str::to_owned),
        trace_id: envelope.trace_id.as_deref().map(str::to_owned),
        tenant: envelope.meta.tenant_id().map(str::to_owned),
        source: envelope.source.as_deref().map(str::to_owned),
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A server on loopback: `POST /orders` publishes `OrderPlaced` and answers with the
/// envelope's id; a `billing` subscription answers each with `InvoiceIssued`. Both event
/// types are recorded as delivered.
struct App {
    base: String,
    client: reqwest::Client,
    placed: Log,
    invoiced: Log,
    server: tokio::task::JoinHandle<()>,
}

impl App {
    async fn start(layer: RequestContextLayer) -> App {
        let bus = EventBus::builder().build();
        let placed = Log::default();
        let invoiced = Log::default();
        let (log, b) = (placed.clone(), bus.clone());
        bus.subscribe_event::<OrderPlaced, _, _>("billing", move |envelope| {
            log.lock().unwrap().push(seen(&envelope));
            let b = b.clone();
            async move {
                b.publish(InvoiceIssued {
                    order_id: envelope.payload.order_id,
                })
                .await?;
                Ok(())
            }
        })
        .unwrap();
        let log = invoiced.clone();
        bus.subscribe_event::<InvoiceIssued, _, _>("ledger", move |envelope| {
            log.lock().unwrap().push(seen(&envelope));
            async { Ok(()) }
        })
        .unwrap();
        let router = axum::Router::new()
            .route(
                "/orders",
                post(move || {
                    let bus = bus.clone();
                    async move {
                        let placed = bus
                            .publish(OrderPlaced {
                                order_id: "o-1".into(),
                            })
                            .await
                            .unwrap();
                        placed.id.to_string()
                    }
                }),
            )
            .layer(layer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        App {
            base,
            client: reqwest::Client::new(),
            placed,
            invoiced,
            server,
        }
    }

    /// Posts an order with `headers`; returns the response's `x-correlation-id` (or the
    /// header `echo`) and what the `billing` subscription saw of the published event.
    async fn order(&self, headers: &[(&str, &str)], echo: &str) -> (Option<String>, Seen) {
        let mut request = self.client.post(format!("{}/orders", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        let echoed = response
            .headers()
            .get(echo)
            .map(|value| value.to_str().unwrap().to_owned());
        let id = response.text().await.unwrap();
        let log = self.placed.clone();
        eventually(Duration::from_secs(5), "the event delivered", || {
            log.lock().unwrap().iter().any(|seen| seen.id == id)
        })
        .await;
        let placed = self.placed.lock().unwrap();
        let placed = placed.iter().find(|seen| seen.id == id).unwrap().clone();
        (echoed, placed)
    }

    async fn with(&self, headers: &[(&str, &str)]) -> (Option<String>, Seen) {
        self.order(headers, "x-correlation-id").await
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_correlation_header_is_taken_and_echoed() {
    let app = App::start(RequestContextLayer::new()).await;
    let (echoed, placed) = app.with(&[("x-correlation-id", "abc")]).await;
    assert_eq!(placed.correlation_id.as_deref(), Some("abc"));
    assert_eq!(echoed.as_deref(), Some("abc"));
    // No tenant or trace header: none set; the declared source kept.
    assert_eq!(placed.tenant, None);
    assert_eq!(placed.trace_id, None);
    assert_eq!(placed.source.as_deref(), Some("orders-service"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_request_id_is_the_fallback() {
    let app = App::start(RequestContextLayer::new()).await;
    let (echoed, placed) = app.with(&[("x-request-id", "r-1")]).await;
    assert_eq!(placed.correlation_id.as_deref(), Some("r-1"));
    assert_eq!(echoed.as_deref(), Some("r-1"));
    // The configured header wins over the fallback.
    let (echoed, placed) = app
        .with(&[("x-request-id", "r-2"), ("x-correlation-id", "c-2")])
        .await;
    assert_eq!(placed.correlation_id.as_deref(), Some("c-2"));
    assert_eq!(echoed.as_deref(), Some("c-2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_header_an_id_is_generated_and_echoed() {
    let app = App::start(RequestContextLayer::new()).await;
    let (echoed, placed) = app.with(&[]).await;
    let echoed = echoed.expect("the generated id echoed");
    assert_eq!(placed.correlation_id.as_deref(), Some(echoed.as_str()));
    let id = uuid::Uuid::parse_str(&echoed).expect("a UUID");
    assert_eq!(id.get_version_num(), 7);
    // A new one per request.
    let (again, _) = app.with(&[]).await;
    assert_ne!(again.as_deref(), Some(echoed.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenant_header_sets_the_tenant() {
    let app = App::start(RequestContextLayer::new()).await;
    let (_, placed) = app.with(&[("x-tenant-id", "acme")]).await;
    assert_eq!(placed.tenant.as_deref(), Some("acme"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_traceparent_is_the_trace_id_and_a_malformed_one_is_ignored() {
    let app = App::start(RequestContextLayer::new()).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let (_, placed) = app.with(&[("traceparent", traceparent)]).await;
    assert_eq!(placed.trace_id.as_deref(), Some(traceparent));
    for malformed in [
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "not-a-traceparent",
    ] {
        let (_, placed) = app.with(&[("traceparent", malformed)]).await;
        assert_eq!(placed.trace_id, None, "{malformed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handlers_follow_up_keeps_the_chain() {
    let app = App::start(RequestContextLayer::new()).await;
    let (_, placed) = app
        .with(&[("x-correlation-id", "chain-1"), ("x-tenant-id", "acme")])
        .await;
    let invoiced = app.invoiced.clone();
    eventually(Duration::from_secs(5), "the follow-up delivered", || {
        !invoiced.lock().unwrap().is_empty()
    })
    .await;
    let invoice = app.invoiced.lock().unwrap()[0].clone();
    assert_eq!(invoice.correlation_id.as_deref(), Some("chain-1"));
    assert_eq!(invoice.causation_id.as_deref(), Some(placed.id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_or_invalid_header_gets_a_generated_id() {
    let app = App::start(RequestContextLayer::new()).await;
    let oversized = "a".repeat(129);
    for (name, value) in [
        ("x-correlation-id", oversized.as_str()),
        ("x-correlation-id", "has space"),
        ("x-request-id", oversized.as_str()),
    ] {
        let (echoed, placed) = app.with(&[(name, value)]).await;
        let echoed = echoed.expect("an id echoed");
        assert!(uuid::Uuid::parse_str(&echoed).is_ok(), "{name}: {echoed}");
        assert_eq!(placed.correlation_id.as_deref(), Some(echoed.as_str()));
    }
    // 128 bytes is still an id; an oversized tenant is no tenant.
    let longest = "b".repeat(128);
    let (echoed, _) = app.with(&[("x-correlation-id", longest.as_str())]).await;
    assert_eq!(echoed.as_deref(), Some(longest.as_str()));
    let (_, placed) = app.with(&[("x-tenant-id", oversized.as_str())]).await;
    assert_eq!(placed.tenant, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_headers_and_the_source_are_configurable() {
    let layer = RequestContextLayer::new()
        .correlation_header(axum::http::HeaderName::from_static("x-trace-token"))
        .tenant_header(axum::http::HeaderName::from_static("x-org"))
        .source("checkout-api");
    let app = App::start(layer).await;
    let (echoed, placed) = app
        .order(
            &[
                ("x-trace-token", "t-9"),
                ("x-org", "globex"),
                ("x-tenant-id", "acme"),
            ],
            "x-trace-token",
        )
        .await;
    assert_eq!(echoed.as_deref(), Some("t-9"));
    assert_eq!(placed.correlation_id.as_deref(), Some("t-9"));
    assert_eq!(placed.tenant.as_deref(), Some("globex"));
    assert_eq!(placed.source.as_deref(), Some("checkout-api"));
}
