//! Code generation. Reads only the checked model.

mod domain_event;
mod event_union;
mod fallback;

use crate::ast::Event;
use crate::ast_union::Union;
use crate::check;
use crate::ctxt::Ctxt;
use proc_macro2::TokenStream;
use syn::DeriveInput;

/// `#[derive(Clone, DomainEvent)]`: the impl and its registration, or every error at once plus a
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

/// `#[derive(EventUnion)]`: the impl, the `From` impls and the consumer's registration, or
/// every error at once plus a stub impl.
pub(crate) fn event_union(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let union = Union::from_ast(&cx, input);
    if let Some(union) = &union {
        check::check_union(&cx, union);
    }
    match (cx.check(), union) {
        (Ok(()), Some(union)) => event_union::expand(&union),
        (Err(errors), union) => fallback::event_union(input, union.as_ref(), &errors),
        (Ok(()), None) => unreachable!("an input with no model always records an error"),
    }
}

/// `::event_core`, unless `#[event(crate = "...")]` or `#[union(crate = "...")]` says otherwise.
pub(crate) fn default_crate_path() -> syn::Path {
    syn::parse_quote!(::event_core)
}

/// `tokens` with every span set to `span`, so that an error the compiler finds anywhere in
/// them points at `span`.
pub(crate) fn respan(tokens: TokenStream, span: proc_macro2::Span) -> TokenStream {
    use proc_macro2::{Group, TokenTree};
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut new = Group::new(group.delimiter(), respan(group.stream(), span));
                new.set_span(span);
                tree = TokenTree::Group(new);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}
