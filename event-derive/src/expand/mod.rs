//! Code generation. Reads only the checked model.

mod domain_event;
mod fallback;

use crate::ast::Event;
use crate::check;
use crate::ctxt::Ctxt;
use proc_macro2::TokenStream;
use syn::DeriveInput;

/// `#[derive(DomainEvent)]`: the impl and its registration, or every error at once plus a
/// stub impl so that code using the type adds no second wave of errors.
pub(crate) fn domain_event(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let event = Event::from_ast(&cx, input);
    if let Some(event) = &event {
        check::check(&cx, event);
    }
    match (cx.check(), event) {
        (Ok(()), Some(event)) => domain_event::expand(&event),
        (Err(errors), event) => {
            let krate = event
                .and_then(|e| e.attrs.crate_path)
                .unwrap_or_else(default_crate_path);
            fallback::domain_event(input, &krate, &errors)
        }
        (Ok(()), None) => unreachable!("an input with no model always records an error"),
    }
}

/// `::event_core`, unless `#[event(crate = "...")]` says otherwise.
pub(crate) fn default_crate_path() -> syn::Path {
    syn::parse_quote!(::event_core)
}
