//! `#[derive(EventUnion)]` names everything through `::event_core::__private`: a module that
//! shadows the prelude's names still compiles, and the generated code passes strict lints.

#![deny(warnings, unused_qualifications, rust_2018_idioms)]
#![deny(clippy::all, clippy::pedantic)]

mod shadowing {
    #![allow(dead_code, non_camel_case_types, unused_macros)]

    use event_core::{DomainEvent, EventUnion};
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    // What the expansion could reach for by its short name.
    pub(crate) struct Result;
    pub(crate) struct Ok;
    pub(crate) struct Err;
    pub(crate) struct Option;
    pub(crate) struct Some;
    pub(crate) struct None;
    pub(crate) struct String;
    pub(crate) struct From;
    pub(crate) struct Into;
    pub(crate) struct Vec;
    pub(crate) struct Box;
    pub(crate) struct inventory;
    pub(crate) struct serde_json;
    pub(crate) struct DecodeError;
    pub(crate) struct ConsumerRegistration;
    pub(crate) struct __SAME_EVENT_AS;
    macro_rules! concat {
        () => {};
    }
    macro_rules! module_path {
        () => {};
    }
    macro_rules! unreachable {
        () => {};
    }
    macro_rules! panic {
        () => {};
    }

    /// A customer placed an order.
    #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
    #[event(aggregate = "order")]
    pub(crate) struct OrderCreated {
        #[event(partition_key)]
        pub(crate) order_id: ::std::string::String,
    }

    /// An order was paid.
    #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
    #[event(aggregate = "order")]
    pub(crate) struct OrderPaid {
        pub(crate) order_id: ::std::string::String,
    }

    #[derive(Debug, EventUnion)]
    #[union(consumer = "hygiene-check")]
    pub(crate) enum OrderEvents {
        Created(OrderCreated),
        Paid(OrderPaid),
    }

    /// One variant: no uniqueness check to generate.
    #[derive(Debug, EventUnion)]
    pub(crate) enum Single {
        Created(OrderCreated),
    }
}

mod reexported {
    // A crate that reaches event-core through a re-export names it with `crate = "..."`.
    pub(crate) use event_core as events;
}

/// Uses the re-export only.
#[derive(Debug, reexported::events::EventUnion)]
#[union(crate = "reexported::events", consumer = "reexport-check")]
enum ThroughReexport {
    Paid(OrderPaid),
}

use event_core::{EventUnion, consumers_of};
use shadowing::{OrderCreated, OrderEvents, OrderPaid, Single};

#[test]
fn expands_with_the_prelude_shadowed() {
    assert_eq!(
        OrderEvents::EVENTS,
        [("order.created", 1), ("order.paid", 1)]
    );
    assert_eq!(OrderEvents::CONSUMER, Some("hygiene-check"));
    let decoded =
        OrderEvents::decode_payload("order.created", 1, r#"{"order_id":"o-1"}"#).expect("decodes");
    assert_eq!(decoded.event(), ("order.created", 1));
    assert_eq!(decoded.partition_key().as_deref(), Some("o-1"));
    let paid = OrderEvents::from(OrderPaid {
        order_id: "o-2".into(),
    });
    assert!(matches!(paid, OrderEvents::Paid(_)));
    assert_eq!(paid.partition_key(), None);
    assert_eq!(Single::EVENTS, [("order.created", 1)]);
    let single = Single::from(OrderCreated {
        order_id: "o-3".into(),
    });
    assert_eq!(single.event(), ("order.created", 1));
    assert_eq!(consumers_of("order.created", 1), ["hygiene-check"]);
}

#[test]
fn names_event_core_through_the_crate_key() {
    assert_eq!(ThroughReexport::EVENTS, [("order.paid", 1)]);
    assert_eq!(ThroughReexport::CONSUMER, Some("reexport-check"));
    let paid = ThroughReexport::from(OrderPaid {
        order_id: "o-4".into(),
    });
    assert_eq!(paid.event(), ("order.paid", 1));
    assert_eq!(
        consumers_of("order.paid", 1),
        ["hygiene-check", "reexport-check"]
    );
}
