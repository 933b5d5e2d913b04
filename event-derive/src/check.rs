//! The validation pass: rules that span several keys or fields, one function each.

use crate::ast::Event;
use crate::ast_union::Union;
use crate::ctxt::Ctxt;
use crate::name;
use quote::ToTokens;

/// Runs every check on a parsed event.
pub(crate) fn check(cx: &Ctxt, event: &Event) {
    check_name(cx, event);
    check_aggregate(cx, event);
    check_source(cx, event);
    check_partition_key(cx, event);
    check_subject(cx, event);
    check_previous(cx, event);
}

/// A given name must follow the naming rules, and a `.vN` suffix must agree with `version`:
/// the name is the contract with every consumer, so it cannot be fixed up silently.
fn check_name(cx: &Ctxt, event: &Event) {
    let Some(literal) = &event.attrs.name else {
        // A derived name is valid by construction, except its context may come from a bad
        // aggregate, which `check_aggregate` reports.
        return;
    };
    let version = event.attrs.version.as_ref().map_or(1, |v| v.value);
    if let Err(message) = name::check_name(&literal.value(), version) {
        cx.error_spanned_by(literal, message);
    }
}

/// The aggregate becomes the context of derived names and a key in the catalog, so it is one
/// name segment.
fn check_aggregate(cx: &Ctxt, event: &Event) {
    if let Some(aggregate) = &event.attrs.aggregate
        && !name::is_segment(&aggregate.value())
    {
        cx.error_spanned_by(
            aggregate,
            format!(
                "aggregate `{}` must match `[a-z][a-z0-9_]*`, like `aggregate = \"order\"`",
                aggregate.value()
            ),
        );
    }
}

/// An empty source says nothing and would show as a blank in the catalog.
fn check_source(cx: &Ctxt, event: &Event) {
    if let Some(source) = &event.attrs.source
        && source.value().trim().is_empty()
    {
        cx.error_spanned_by(
            source,
            "`source` is empty: name the publishing service, like `source = \"orders-service\"`",
        );
    }
}

/// One value orders delivery and partitions streams: two partition keys would be ambiguous.
fn check_partition_key(cx: &Ctxt, event: &Event) {
    let mut keyed = event
        .fields
        .iter()
        .filter_map(|f| f.attrs.partition_key.as_ref().map(|tokens| (f, tokens)));
    let Some((first, _)) = keyed.next() else {
        return;
    };
    for (_, tokens) in keyed {
        cx.error_spanned_by(
            tokens,
            format!(
                "an event has at most one `partition_key`, and `{}` already is: remove this one",
                first.member
            ),
        );
    }
}

/// The subject names whose key seals the PII fields: one per event, and not itself
/// personal, since it stays in plain text to find the key (and to forget it).
fn check_subject(cx: &Ctxt, event: &Event) {
    let mut subjects = event
        .fields
        .iter()
        .filter_map(|f| f.attrs.subject.as_ref().map(|tokens| (f, tokens)));
    let Some((first, tokens)) = subjects.next() else {
        return;
    };
    if first.attrs.pii.is_some() {
        cx.error_spanned_by(
            tokens,
            "a `subject` cannot be `pii`: it stays in plain text to find the key that seals \
             the personal fields; use a pseudonymous id (a user id, not an email)",
        );
    }
    for (_, tokens) in subjects {
        cx.error_spanned_by(
            tokens,
            format!(
                "an event has at most one `subject`, and `{}` already is: remove this one",
                first.member
            ),
        );
    }
}

/// `previous` names version N-1, so the event itself is at least version 2.
fn check_previous(cx: &Ctxt, event: &Event) {
    let Some(previous) = &event.attrs.previous else {
        return;
    };
    let version = event.attrs.version.as_ref().map_or(1, |v| v.value);
    if version < 2 {
        cx.error_spanned_by(
            previous,
            "an event with a `previous` version is at least version 2: add `version = 2`",
        );
    }
}

/// Runs every check on a parsed event union.
///
/// Two variants carrying different types with the same (name, version) are caught later, by
/// the compiler: the names and versions are constants of the variants' types.
pub(crate) fn check_union(cx: &Ctxt, union: &Union) {
    check_consumer(cx, union);
    check_repeated_type(cx, union);
}

/// The consumer is listed in the catalog beside every event it reads: it needs a name.
fn check_consumer(cx: &Ctxt, union: &Union) {
    if let Some(consumer) = &union.attrs.consumer
        && consumer.value().trim().is_empty()
    {
        cx.error_spanned_by(
            consumer,
            "`consumer` is empty: name the consuming service or subscription, \
             like `consumer = \"fulfillment\"`",
        );
    }
}

/// Decoding picks the variant by the event's name and version, so one event type in two
/// variants would make the choice ambiguous (and the two `From` impls conflict).
fn check_repeated_type(cx: &Ctxt, union: &Union) {
    let mut seen: Vec<(String, &syn::Ident)> = Vec::new();
    for variant in &union.variants {
        let ty = variant.ty.to_token_stream().to_string();
        if let Some((_, first)) = seen.iter().find(|(t, _)| *t == ty) {
            cx.error_spanned_by(
                variant.ty,
                format!(
                    "variant `{first}` already carries `{}`: a union has one variant per \
                     event, so remove `{}`",
                    ty.replace(' ', ""),
                    variant.ident
                ),
            );
        } else {
            seen.push((ty, variant.ident));
        }
    }
}
