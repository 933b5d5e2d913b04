//! `orders --admin ADDR`: the example serves the admin API while its bus runs, prints where
//! and with which token, and after the flow keeps serving until Ctrl-C (SIGINT).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const TOKEN: &str = "example-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_serves_its_admin_api_until_interrupted() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_orders"))
        .args(["--admin", "127.0.0.1:0"])
        .env("EVENT_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the example starts");
    let (lines, received) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |prefix: &str| -> String {
        loop {
            let line = received
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no line starting {prefix:?} within 30 s"));
            if line.starts_with(prefix) {
                return line;
            }
        }
    };
    let announced = wait_for("admin API and dashboard: http://");
    assert!(
        announced.ends_with(&format!("(token {TOKEN})")),
        "{announced}"
    );
    let base = announced
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap()
        .to_owned();
    wait_for("the flow is done");

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

    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running after SIGINT"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
}

/// What a redacted field reads as (`event_admin::REDACTED`).
fn event_admin_redacted() -> &'static str {
    "[redacted]"
}
