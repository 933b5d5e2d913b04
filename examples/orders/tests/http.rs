//! `orders --http ADDR PATH`: the storefront's HTTP API. An order's row and its
//! `order.created` are written in one sqlx transaction; the request's correlation id is the
//! event's and its follow-up's; the timeline comes back redacted; bad requests get clear
//! errors and store nothing; Ctrl-C drains the bus.

mod support;

use event_core::store::sqlx::{self, Connection as _, SqliteConnection};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use support::Example;

const EMAIL: &str = "ada.lovelace@example.com";

/// A new order's body; `order_id` when given.
fn new_order(order_id: Option<&str>) -> Value {
    let mut body = json!({
        "customer_id": "cus_481",
        "customer_email": EMAIL,
        "customer_name": "Ada Lovelace",
        "currency": "EUR",
        "line_items": [
            {"sku": "MUG-BLK-350", "quantity": 2, "unit_price_cents": 1250},
            {"sku": "TEE-WHT-M", "quantity": 1, "unit_price_cents": 2400}
        ],
        "shipping_address": {
            "name": "Ada Lovelace", "line1": "Torstraße 42", "city": "Berlin",
            "postal_code": "10119", "country": "DE"
        }
    });
    if let Some(id) = order_id {
        body["order_id"] = id.into();
    }
    body
}

/// The API's client, with its base address.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn post(&self, body: &Value, correlation_id: Option<&str>) -> reqwest::Response {
        let mut request = self.http.post(format!("{}/orders", self.base)).json(body);
        if let Some(id) = correlation_id {
            request = request.header("x-correlation-id", id);
        }
        request.send().await.unwrap()
    }

    async fn events(&self, order_id: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/orders/{order_id}/events", self.base))
            .send()
            .await
            .unwrap()
    }

    /// The order's timeline once it holds `count` events (within 10 s).
    async fn timeline(&self, order_id: &str, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let response = self.events(order_id).await;
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            let events = body["events"].as_array().unwrap().clone();
            if events.len() >= count || Instant::now() > deadline {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The rows of the application's `orders` table with this id, read from the file.
async fn order_rows(path: &Path, order_id: &str) -> i64 {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query_scalar("SELECT count(*) FROM orders WHERE id = ?1")
        .bind(order_id)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_api_writes_the_order_and_its_event_together_and_shows_its_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    let example = Example::start(&["--http", "127.0.0.1:0", path.to_str().unwrap()], &[]);
    let announced = example.wait_for("orders API on http://");
    let api = Api {
        http: reqwest::Client::new(),
        base: Example::address_in(&announced),
    };

    // The request's correlation id is echoed, and is the event's.
    let response = api.post(&new_order(None), Some("req-42")).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-correlation-id"], "req-42");
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["correlation_id"], "req-42", "{created}");
    let order_id = created["order_id"].as_str().unwrap().to_owned();
    assert!(order_id.starts_with("ord_"), "{order_id}");
    assert_eq!(order_rows(&path, &order_id).await, 1);

    // Billing's follow-up carries the correlation id on, caused by order.created.
    let events = api.timeline(&order_id, 2).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["order.created", "invoice.issued"], "{events:?}");
    let (order, invoice) = (&events[0], &events[1]);
    assert_eq!(order["id"], created["event_id"]);
    assert_eq!(order["correlation_id"], "req-42");
    assert_eq!(invoice["correlation_id"], "req-42");
    assert_eq!(invoice["causation_id"], order["id"]);
    // Totals computed by the shop: 4,900 + 495 shipping + 19 % tax.
    assert_eq!(order["payload"]["subtotal_cents"], 4900);
    assert_eq!(order["payload"]["total_cents"], 4900 + 495 + 1025);
    assert_eq!(invoice["payload"]["amount_cents"], 6420, "{invoice}");
    // Personal fields never leave redacted views.
    let shown = Value::Array(events.clone()).to_string();
    assert!(
        !shown.contains(EMAIL) && !shown.contains("Torstraße"),
        "{shown}"
    );
    assert_eq!(order["payload"]["customer_email"], "[redacted]");

    // Without a correlation id, the layer makes one and echoes it.
    let response = api.post(&new_order(Some("ord_second")), None).await;
    assert_eq!(response.status(), 201);
    let echoed = response.headers()["x-correlation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let second: Value = response.json().await.unwrap();
    assert_eq!(second["correlation_id"], echoed.as_str());
    let events = api.timeline("ord_second", 2).await;
    assert!(
        events
            .iter()
            .all(|e| e["correlation_id"] == echoed.as_str()),
        "{events:?}"
    );

    // The same order again: refused, and nothing more is stored.
    let again = api
        .post(&new_order(Some("ord_second")), Some("req-43"))
        .await;
    assert_eq!(again.status(), 409);
    let error: Value = again.json().await.unwrap();
    assert_eq!(error["error"], "order ord_second exists already");
    assert_eq!(order_rows(&path, "ord_second").await, 1);
    let created_again = api
        .timeline("ord_second", 2)
        .await
        .iter()
        .filter(|e| e["type"] == "order.created")
        .count();
    assert_eq!(created_again, 1);

    // Bad requests: clear errors, no row, no event.
    let mut empty = new_order(Some("ord_empty"));
    empty["line_items"] = json!([]);
    let refused = api.post(&empty, None).await;
    assert_eq!(refused.status(), 422);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"], "an order needs at least one line");
    let mut euros = new_order(Some("ord_euros"));
    euros["currency"] = "euros".into();
    assert_eq!(api.post(&euros, None).await.status(), 422);
    let not_json = api
        .http
        .post(format!("{}/orders", api.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let error: Value = not_json.json().await.unwrap();
    assert!(error["error"].as_str().unwrap().contains("JSON"), "{error}");
    for id in ["ord_empty", "ord_euros"] {
        assert_eq!(order_rows(&path, id).await, 0);
        assert_eq!(api.events(id).await.status(), 404);
    }

    let status = example.interrupt().await;
    assert!(status.success(), "{status}");
    example_stopped(&path).await;
}

/// After Ctrl-C the store holds both orders and both invoices, and nothing else.
async fn example_stopped(path: &Path) {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let types: Vec<String> =
        sqlx::query_scalar("SELECT event_type FROM event_store_events ORDER BY position")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let created = types.iter().filter(|t| *t == "order.created").count();
    let issued = types.iter().filter(|t| *t == "invoice.issued").count();
    assert_eq!((created, issued, types.len()), (2, 2, 4), "{types:?}");
}
