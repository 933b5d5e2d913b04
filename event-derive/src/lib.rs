//! Derive macros behind `event-core`. Depend on `event-core` and use them through its
//! re-exports; the documentation lives there (`event_core::DomainEvent`).
//!
//! Each derive parses its input into a model (`ast`), validates it (`check`), then expands it
//! (`expand`). Errors are collected in a `ctxt::Ctxt` and reported together, each on the
//! token the user has to edit.

#![forbid(unsafe_code)]

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
