//! The main example: one order's life on a durable bus, as the library runs it and as
//! `cargo run -p orders` prints it.

use orders::app::{self, CORRELATION_ID, FlowReport};
use std::io::{self, Write};
use std::process::Command;
use std::sync::{Arc, Mutex};

/// Every stored event, in position order, with the event that caused it: `None` for the
/// script's own steps, which have no cause.
const FLOW: [(&str, u32, Option<&str>); 11] = [
    ("order.created", 1, None),
    ("invoice.issued", 2, Some("order.created")),
    ("order.checkout_sent", 1, None),
    ("order.payment_processing", 1, None),
    ("order.paid", 1, None),
    ("invoice.paid", 1, Some("order.paid")),
    ("fulfillment.created", 1, Some("order.paid")),
    ("shipment.drafted", 1, Some("order.paid")),
    ("shipment.ready", 1, Some("shipment.drafted")),
    ("shipment.in_transit", 1, Some("shipment.ready")),
    ("shipment.delivered", 1, Some("shipment.in_transit")),
];

/// Each subscription and how many events it handles.
const HANDLED: [(&str, u64); 3] = [
    ("fulfillment-service", 2),
    ("billing-service", 3),
    ("notifications", 6),
];

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

async fn run() -> (FlowReport, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Capture::default();
    let report = app::run(&dir.path().join("orders.db"), out.clone())
        .await
        .expect("the flow runs");
    (report, out.text())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_holds_the_flow_in_order_each_follow_up_naming_its_cause() {
    let (report, _) = run().await;

    let stored: Vec<(&str, u32)> = report
        .events
        .iter()
        .map(|e| (e.envelope.event_type.as_str(), e.envelope.version))
        .collect();
    let expected: Vec<(&str, u32)> = FLOW.iter().map(|(t, v, _)| (*t, *v)).collect();
    assert_eq!(stored, expected);
    let positions: Vec<u64> = report.events.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=11).collect::<Vec<_>>());
    assert_eq!(report.head, 11);

    for (event, (event_type, _, cause)) in report.events.iter().zip(FLOW) {
        let envelope = &event.envelope;
        assert_eq!(
            envelope.correlation_id.as_deref(),
            Some(CORRELATION_ID),
            "{event_type}"
        );
        match cause {
            None => assert_eq!(envelope.causation_id, None, "{event_type} has no cause"),
            Some(cause) => {
                let found = report
                    .cause_of(event)
                    .unwrap_or_else(|| panic!("{event_type}: its causation id names no event"));
                assert_eq!(
                    found.envelope.event_type, cause,
                    "the cause of {event_type}"
                );
                assert_eq!(
                    envelope.causation_id,
                    Some(found.envelope.id.to_string().into()),
                    "{event_type}"
                );
                assert!(found.position < event.position, "{event_type}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscription_handles_its_events_once_and_nothing_is_dead_lettered() {
    let (report, _) = run().await;

    let handled: Vec<(&str, u64, u64)> = report
        .subscriptions
        .iter()
        .map(|s| (s.name, s.handled, s.received))
        .collect();
    let expected: Vec<(&str, u64, u64)> = HANDLED.iter().map(|(n, h)| (*n, *h, *h)).collect();
    assert_eq!(handled, expected);
    for s in &report.subscriptions {
        assert_eq!(s.checkpoint, report.head, "checkpoint of {}", s.name);
    }
    assert!(report.dead_letters.is_empty(), "{:?}", report.dead_letters);
    assert_eq!(report.metrics.published, 11);
    assert_eq!(report.metrics.delivered, 11);
    assert_eq!(report.metrics.retried, 0);
    assert_eq!(report.metrics.dead_lettered, 0);
    assert!(report.is_complete());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_email_the_customer_with_the_address_masked() {
    let (_, narration) = run().await;

    let emails: Vec<&str> = narration
        .lines()
        .filter(|line| line.starts_with("  email to "))
        .collect();
    assert_eq!(
        emails,
        [
            "  email to a***@example.com: invoice inv_ord_7Hq2 for order ord_7Hq2: 53.95 EUR, attached",
            "  email to a***@example.com: complete your order ord_7Hq2",
            "  email to a***@example.com: thank you for your order ord_7Hq2: 53.95 EUR received",
            "  email to a***@example.com: invoice inv_ord_7Hq2 is paid: thank you",
            "  email to a***@example.com: your order ord_7Hq2 is being packed",
            "  email to a***@example.com: your parcel JJDSHPORD7HQ21 has arrived",
        ]
    );
    assert!(!narration.contains("ada@"), "{narration}");
}

#[test]
fn the_binary_prints_the_flow_the_subscriptions_and_the_registry() {
    let output = Command::new(env!("CARGO_BIN_EXE_orders"))
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    for expected in [
        "== the flow as stored: 11 events in position order, all with correlation id checkout-ord_7Hq2",
        "   1  order.created v1             orders-service",
        "   6  invoice.paid v1              billing-service      caused by order.paid",
        "  11  shipment.delivered v1        shipments-service    caused by shipment.in_transit",
        "  fulfillment-service  2 handled   checkpoint 11 = head",
        "  billing-service      3 handled   checkpoint 11 = head",
        "  notifications        6 handled   checkpoint 11 = head",
        "bus: 11 published, 11 delivered, 0 retried, 0 dead letters",
        "17 events, 1 deprecated (*)",
    ] {
        assert!(
            lines.contains(&expected),
            "no line {expected:?} in\n{stdout}"
        );
    }
    assert!(
        lines.iter().any(|line| line.starts_with("order.created ")),
        "no registry row for order.created in\n{stdout}"
    );
    assert!(!stdout.contains("ada@"), "{stdout}");
}

#[test]
fn the_binary_prints_the_same_on_every_run() {
    let run = || {
        let output = Command::new(env!("CARGO_BIN_EXE_orders"))
            .output()
            .expect("runs");
        assert!(output.status.success());
        output.stdout
    };
    assert_eq!(String::from_utf8(run()), String::from_utf8(run()));
}

#[test]
fn the_binary_refuses_an_existing_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    let first = Command::new(env!("CARGO_BIN_EXE_orders"))
        .arg(&path)
        .output()
        .expect("runs");
    assert!(first.status.success());
    assert!(path.exists());

    let second = Command::new(env!("CARGO_BIN_EXE_orders"))
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("exists already"), "{stderr}");
}
