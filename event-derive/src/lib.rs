//! The derive macros of [`event-core`](https://docs.rs/event-core): `#[derive(DomainEvent)]`
//! for an event struct and `#[derive(EventUnion)]` for the enum a consumer subscribes with.
//!
//! Do not depend on this crate directly. `event-core` re-exports both derives (its default
//! feature `derive`), the way `serde` re-exports `serde_derive`, and the code they generate
//! names `event_core`. A crate defining events needs `event-core`, `serde` (feature `derive`)
//! and `schemars` (1.x):
//!
//! ```
//! use event_core::{DomainEvent, EventUnion};
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! /// A customer placed an order.
//! #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
//! #[event(aggregate = "order")] // the name defaults from the type: `order.created`
//! pub struct OrderCreated {
//!     #[event(partition_key)]
//!     pub order_id: String,
//!     #[event(pii)]
//!     pub customer_email: String,
//! }
//!
//! /// What billing handles: one variant per event, matched exhaustively.
//! #[derive(Debug, Clone, EventUnion)]
//! #[union(consumer = "billing")]
//! pub enum BillingEvents {
//!     Created(OrderCreated),
//! }
//!
//! assert_eq!(OrderCreated::NAME, "order.created");
//! assert_eq!(OrderCreated::VERSION, 1);
//! assert_eq!(OrderCreated::descriptor().pii(), ["customer_email"]);
//! let order = OrderCreated { order_id: "o-1".into(), customer_email: "a@example.com".into() };
//! assert_eq!(DomainEvent::partition_key(&order).as_deref(), Some("o-1"));
//! ```
//!
//! - [`DomainEvent`](derive@DomainEvent) implements `event_core::DomainEvent` (name, version,
//!   partition key, a descriptor with the catalog metadata and the JSON Schema) and registers
//!   the event in event-core's link-time registry.
//! - [`EventUnion`](derive@EventUnion) implements `event_core::EventUnion` (the (name, version)
//!   pairs it accepts, decoding an envelope into its variant) and `From` each event.
//!
//! A malformed definition is a compile error on the token to fix: a bad name, version 0, an
//! unknown or repeated key, two partition keys, an enum or tuple struct as an event, generic
//! parameters, a missing `Clone`, `Serialize`, `Deserialize` or `JsonSchema` impl, a union
//! carrying one event version twice.
//!
//! Every key of `#[event(...)]` and `#[union(...)]` is documented on the re-exports,
//! [`event_core::DomainEvent`](https://docs.rs/event-core/latest/event_core/derive.DomainEvent.html)
//! and [`event_core::EventUnion`](https://docs.rs/event-core/latest/event_core/derive.EventUnion.html).
//! This crate has no cargo features.
//!
//! # Inside
//!
//! Each derive parses its input into a model (`ast`), validates it (`check`), then expands it
//! (`expand`). Errors are collected in a `ctxt::Ctxt` and reported together, each on the
//! token the user has to edit.

#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod ast;
mod ast_union;
mod attr;
mod check;
mod ctxt;
mod doc;
mod expand;
mod name;
mod symbol;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Implements `event_core::DomainEvent` for a struct with named fields.
///
/// See the documentation of `event_core::DomainEvent` (the derive) for every key.
#[proc_macro_derive(DomainEvent, attributes(event))]
pub fn derive_domain_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::domain_event(&input).into()
}

/// Implements `event_core::EventUnion` for an enum with one variant per event, each carrying
/// its event as one unnamed field, and `From<Event>` for each variant.
///
/// See the documentation of `event_core::EventUnion` (the derive) for every key.
#[proc_macro_derive(EventUnion, attributes(union))]
pub fn derive_event_union(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::event_union(&input).into()
}
