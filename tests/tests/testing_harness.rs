//! The given/when/then harness catches what it promises to catch.

use event_core::testing::HandlerTest;
use event_core::{DomainEvent, Envelope, EventBus, HandlerError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
struct OrderPaid {
    order_id: String,
    total_cents: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
struct InvoiceIssued {
    order_id: String,
    amount_cents: u64,
}

/// The handler under test: one invoice per paid order, none for a free one.
async fn issue_invoice(bus: EventBus, env: Envelope<OrderPaid>) -> Result<(), HandlerError> {
    if env.payload.order_id.is_empty() {
        return Err(HandlerError::permanent("order id is empty"));
    }
    if env.payload.total_cents > 0 {
        bus.publish(InvoiceIssued {
            order_id: env.payload.order_id,
            amount_cents: env.payload.total_cents,
        })
        .await?;
    }
    Ok(())
}

fn paid(order_id: &str, total_cents: u64) -> OrderPaid {
    OrderPaid {
        order_id: order_id.into(),
        total_cents,
    }
}

#[tokio::test]
async fn then_published_exactly_these_with_ids_carried() {
    let mut test = HandlerTest::new();
    test.given(paid("o-0", 5)).await.unwrap(); // history, not outcome
    let bus = test.bus();
    let outcome = test
        .when(paid("o-1", 1200), |env| issue_invoice(bus, env))
        .await;
    outcome.assert_published(&[InvoiceIssued {
        order_id: "o-1".into(),
        amount_cents: 1200,
    }]);
    assert_eq!(outcome.published.len(), 1);
    assert_eq!(
        outcome.published[0].causation_id,
        Some(outcome.trigger.id.to_string().into())
    );
}

#[tokio::test]
async fn then_nothing_or_an_error() {
    let test = HandlerTest::new();
    let bus = test.bus();
    test.when(paid("o-1", 0), |env| issue_invoice(bus.clone(), env))
        .await
        .assert_nothing_published();
    test.when(paid("", 10), |env| issue_invoice(bus, env))
        .await
        .assert_failed("order id is empty", true);
}

#[tokio::test]
#[should_panic(expected = "published payloads differ")]
async fn a_wrong_payload_fails_the_test() {
    let test = HandlerTest::new();
    let bus = test.bus();
    test.when(paid("o-1", 1200), |env| issue_invoice(bus, env))
        .await
        .assert_published(&[InvoiceIssued {
            order_id: "o-1".into(),
            amount_cents: 1,
        }]);
}

#[tokio::test]
#[should_panic(expected = "lost the correlation id")]
async fn a_lost_causation_fails_the_test() {
    let test = HandlerTest::new();
    let bus = test.bus();
    // Publishing from a spawned task leaves the handler scope: the ids are not carried.
    let outcome = test
        .when(paid("o-1", 1200), |env| async move {
            tokio::spawn(async move { issue_invoice(bus, env).await })
                .await
                .unwrap()
        })
        .await;
    outcome.assert_published(&[InvoiceIssued {
        order_id: "o-1".into(),
        amount_cents: 1200,
    }]);
}

#[tokio::test]
async fn a_panic_is_a_failure() {
    let test = HandlerTest::new();
    let outcome = test
        .when(paid("o-1", 1), |_env| async move {
            let empty: Vec<u8> = Vec::new();
            let _ = empty[3];
            Ok(())
        })
        .await;
    outcome.assert_failed("handler panicked", false);
}

/// A note that is written but never read back: lost on the way to another process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "ticket.escalated")]
struct TicketEscalated {
    ticket_id: String,
    #[serde(skip_deserializing)]
    note: String,
}

/// A priority that never reaches JSON: a handler in this process sees it, one in another
/// process sees the default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "ticket.assigned")]
struct TicketAssigned {
    ticket_id: String,
    #[serde(skip)]
    priority: u8,
}

#[tokio::test]
async fn the_round_trip_failure_names_the_json_pointer() {
    let test = HandlerTest::new();
    let bus = test.bus();
    let run = async move {
        test.when(
            TicketAssigned {
                ticket_id: "t-1".into(),
                priority: 0,
            },
            |env| async move {
                bus.publish(TicketEscalated {
                    ticket_id: env.payload.ticket_id,
                    note: "customer called twice".into(),
                })
                .await?;
                Ok(())
            },
        )
        .await
    };
    let panic = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run))
        .await
        .expect_err("the harness fails the test");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("changes on a JSON round trip at `/note`"),
        "{message}"
    );
    assert!(message.contains("\"customer called twice\""), "{message}");
    assert!(
        message.starts_with("`ticket.escalated` version 1"),
        "{message}"
    );
}

#[tokio::test]
#[should_panic(expected = "reads back from its JSON as another value")]
async fn a_skipped_field_fails_assert_published() {
    let test = HandlerTest::new();
    let bus = test.bus();
    let outcome = test
        .when(
            TicketEscalated {
                ticket_id: "t-2".into(),
                note: String::new(),
            },
            |env| async move {
                bus.publish(TicketAssigned {
                    ticket_id: env.payload.ticket_id,
                    priority: 3,
                })
                .await?;
                Ok(())
            },
        )
        .await;
    outcome.assert_published(&[TicketAssigned {
        ticket_id: "t-2".into(),
        priority: 3,
    }]);
}
