//! `orders --admin ADDR`: the example serves the admin API while its bus runs, prints where
//! and with which token, and after the flow keeps serving until Ctrl-C (SIGINT).

mod support;

use serde_json::Value;
use support::Example;

const TOKEN: &str = "example-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_serves_its_admin_api_until_interrupted() {
    let example = Example::start(&["--admin", "127.0.0.1:0"], &[("EVENT_ADMIN_TOKEN", TOKEN)]);
    let announced = example.wait_for("admin API and dashboard: http://");
    assert!(
        announced.ends_with(&format!("(token {TOKEN})")),
        "{announced}"
    );
    let base = Example::address_in(&announced);
    example.wait_for("the flow is done");

    let http = reqwest::Client::new();
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert!(
        health.status().is_success(),
        "{}",
        health.text().await.unwrap()
    );
    let subscriptions: Value = http
        .get(format!("{base}/v1/subscriptions"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = subscriptions["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{subscriptions}");
    let timeline: Value = http
        .get(format!(
            "{base}/v1/events?correlation_id={}",
            orders::app::CORRELATION_ID
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = timeline["events"].as_array().unwrap();
    assert!(events.len() >= 10, "{timeline}");
    let created = events
        .iter()
        .find(|e| e["event"]["type"] == "order.created")
        .expect("order.created in the timeline");
    assert_eq!(
        created["event"]["payload"]["customer_email"],
        event_admin_redacted(),
        "{created}"
    );

    let status = example.interrupt().await;
    assert!(status.success(), "{status}");
}

/// What a redacted field reads as (`event_admin::REDACTED`).
fn event_admin_redacted() -> &'static str {
    "[redacted]"
}
