//! The expansion names everything through `::event_core::__private`: a crate that shadows
//! the prelude's names still compiles, and the generated code passes strict lints.

#![deny(warnings, unused_qualifications, rust_2018_idioms)]
#![deny(clippy::all, clippy::pedantic)]

mod shadowing {
    #![allow(dead_code, non_camel_case_types, unused_macros)]

    use event_core::DomainEvent;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    // What the expansion could reach for by its short name (serde's and schemars' own
    // derives do not survive shadowing `str` or `schemars`, so those stay).
    pub(crate) struct Result;
    pub(crate) struct Ok;
    pub(crate) struct Err;
    pub(crate) struct Option;
    pub(crate) struct Some;
    pub(crate) struct None;
    pub(crate) struct String;
    pub(crate) struct ToString;
    pub(crate) struct Vec;
    pub(crate) struct Box;
    pub(crate) struct inventory;
    pub(crate) struct EventDescriptor;
    pub(crate) struct Registration;
    macro_rules! concat {
        () => {};
    }
    macro_rules! line {
        () => {};
    }
    macro_rules! file {
        () => {};
    }
    macro_rules! module_path {
        () => {};
    }

    /// A customer placed an order.
    #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
    #[event(source = "orders-service", aggregate = "order")]
    pub(crate) struct OrderCreated {
        #[event(partition_key)]
        pub(crate) order_id: ::std::string::String,
        #[event(pii)]
        pub(crate) customer_email: ::std::option::Option<::std::string::String>,
    }

    /// An order's payment failed.
    #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
    pub(crate) struct OrderPaymentFailed {
        #[event(partition_key)]
        pub(crate) order_id: ::std::option::Option<u64>,
    }
}

use event_core::DomainEvent;
use shadowing::{OrderCreated, OrderPaymentFailed};

#[test]
fn expands_with_the_prelude_shadowed() {
    assert_eq!(OrderCreated::NAME, "order.created");
    let d = OrderCreated::descriptor();
    assert_eq!(d.description(), Some("A customer placed an order."));
    assert_eq!(d.pii(), ["customer_email"]);
    assert!(d.file().ends_with("derive_hygiene.rs"), "{}", d.file());
    let event = OrderCreated {
        order_id: "o-1".into(),
        customer_email: None,
    };
    assert_eq!(event.partition_key().as_deref(), Some("o-1"));
    let failed = OrderPaymentFailed { order_id: Some(7) };
    assert_eq!(failed.partition_key().as_deref(), Some("7"));
    assert_eq!(OrderPaymentFailed { order_id: None }.partition_key(), None);
}
