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

/// A customer was billed; the email is personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "customer.billed")]
struct CustomerBilled {
    customer_id: String,
    #[event(pii)]
    email: String,
}

/// A note about a customer, personal, that never reads back from JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "customer.noted")]
struct CustomerNoted {
    customer_id: String,
    #[event(pii)]
    #[serde(skip_deserializing)]
    note: String,
}

fn billed(email: &str) -> CustomerBilled {
    CustomerBilled {
        customer_id: "c-1".into(),
        email: email.into(),
    }
}

/// The message of the panic `run` ends with.
fn panic_message(run: impl FnOnce()) -> String {
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
        .expect_err("the harness fails the test");
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[tokio::test]
async fn differing_payloads_are_shown_with_pii_redacted() {
    let test = HandlerTest::new();
    let bus = test.bus();
    let outcome = test
        .when(paid("o-1", 1), |_env| async move {
            bus.publish(billed("ada@example.com")).await?;
            Ok(())
        })
        .await;
    let message = panic_message(|| outcome.assert_published(&[billed("grace@example.com")]));
    assert!(
        message.starts_with("published payloads differ at `/0/email`"),
        "{message}"
    );
    assert!(message.contains(r#""email":"[redacted]""#), "{message}");
    assert!(message.contains(r#""customer_id":"c-1""#), "{message}");
    for secret in ["ada@", "grace@"] {
        assert!(!message.contains(secret), "shows `{secret}`: {message}");
    }
    let debug = format!("{outcome:?}");
    assert!(!debug.contains("ada@"), "{debug}");
    assert!(debug.contains("[redacted]"), "{debug}");
}

#[tokio::test]
async fn a_handler_error_quoting_pii_is_shown_redacted() {
    let test = HandlerTest::new();
    let outcome = test
        .when(billed("ada@example.com"), |env| async move {
            Err(HandlerError::permanent(format!(
                "no invoice address for {}",
                env.payload.email
            )))
        })
        .await;
    let failed = panic_message(|| outcome.assert_nothing_published());
    assert_eq!(
        failed,
        "the handler failed: no invoice address for [redacted]"
    );
    let other = panic_message(|| outcome.assert_failed("timeout", false));
    assert!(other.contains("for [redacted]`"), "{other}");
    for message in [&failed, &other, &format!("{outcome:?}")] {
        assert!(!message.contains("ada@"), "{message}");
    }
    // The assertion itself still sees the real text.
    outcome.assert_failed("no invoice address for ada@example.com", true);
}

#[tokio::test]
async fn a_round_trip_failure_in_a_pii_field_shows_neither_side() {
    let test = HandlerTest::new();
    let run = async move {
        test.when(
            CustomerNoted {
                customer_id: "c-1".into(),
                note: "called about her divorce".into(),
            },
            |_env| async move { Ok(()) },
        )
        .await
    };
    let panic = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run))
        .await
        .expect_err("the harness fails the test");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains(
            "changes on a JSON round trip at `/note`: written [redacted], read back as [redacted]"
        ),
        "{message}"
    );
    assert!(!message.contains("divorce"), "{message}");
}
