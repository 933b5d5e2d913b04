//! W3C trace context through the bus (feature `opentelemetry`): the envelope's `trace_id`
//! carries a `traceparent`, and the spans of the handlers join the publisher's trace.
//!
//! - On publish, an envelope given no trace id of its own (neither by the `PublishContext`
//!   nor, as an id of another kind, by the handler scope) takes the `traceparent` of the
//!   current `tracing` span's OpenTelemetry context, when it has a valid one. Inside a
//!   handler the current span is the delivery's (or a child of it), so what the handler
//!   publishes continues the handled event's trace one level down.
//! - On delivery, an envelope whose trace id is a valid `traceparent` makes that remote span
//!   the OpenTelemetry parent of the `event.deliver` (or `event.deliver_batch`) span. A trace
//!   id of another kind is left alone.
//!
//! Every path goes through the envelope (in memory, a store, a broker), so these two hooks
//! cover them all. The `traceparent` is read and written here with the API crate's ids,
//! strictly as the W3C Trace Context specification has it (version `00`, lowercase hex, ids
//! not all zero); `opentelemetry_sdk`'s `TraceContextPropagator` does the same, but a
//! library should not tie its users to an SDK. The `tracestate` has no field in the
//! envelope and is not carried.

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use smol_str::{SmolStr, format_smolstr};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Stamps a new envelope's `trace_id` with the current span's `traceparent`, unless the
/// publisher gave one (`explicit`) or the handler scope passed on an id that is not a
/// `traceparent` (a scheme of the application's own, kept as it is).
///
/// An id inherited from the handler scope that is a `traceparent` is replaced by the current
/// span's when there is one: the same trace, with the handler's span as the parent.
pub(crate) fn stamp(trace_id: &mut Option<SmolStr>, explicit: bool) {
    if explicit || trace_id.as_deref().is_some_and(|id| parse(id).is_none()) {
        return;
    }
    if let Some(traceparent) = current() {
        *trace_id = Some(traceparent);
    }
}

/// Makes the remote span of `trace_id`, when it is a valid `traceparent`, the OpenTelemetry
/// parent of `span` (not entered yet). Without an OpenTelemetry layer, nothing happens.
pub(crate) fn adopt(span: &tracing::Span, trace_id: Option<&str>) {
    if span.is_disabled() {
        return;
    }
    if let Some(remote) = trace_id.and_then(parse) {
        // Fails only without an OpenTelemetry layer or on a span already started: there is
        // no trace to join then.
        let _ = span.set_parent(Context::new().with_remote_span_context(remote));
    }
}

/// The `traceparent` of the current span's OpenTelemetry context, if it has a valid one.
fn current() -> Option<SmolStr> {
    let span = tracing::Span::current();
    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    let span = context.span();
    let span = span.span_context();
    span.is_valid().then(|| format(span))
}

/// `00-{trace id}-{span id}-{flags}`: the W3C `traceparent` of a span context, with only
/// the `sampled` flag, as the specification asks of a version `00` writer.
fn format(span: &SpanContext) -> SmolStr {
    format_smolstr!(
        "00-{}-{}-{:02x}",
        span.trace_id(),
        span.span_id(),
        span.trace_flags() & TraceFlags::SAMPLED
    )
}

/// The remote span context of a W3C `traceparent`; `None` for anything else.
///
/// Version `00` has exactly four fields; a later version (below `ff`) may have more after
/// them, which are ignored. Only the `sampled` flag is kept.
fn parse(traceparent: &str) -> Option<SpanContext> {
    let mut fields = traceparent.split('-');
    let version = fields.next()?;
    let trace_id = fields.next()?;
    let span_id = fields.next()?;
    let flags = fields.next()?;
    let well_formed = hex(version, 2)
        && version != "ff"
        && hex(trace_id, 32)
        && hex(span_id, 16)
        && hex(flags, 2)
        && (version != "00" || fields.next().is_none());
    if !well_formed {
        return None;
    }
    let context = SpanContext::new(
        TraceId::from_hex(trace_id).ok()?,
        SpanId::from_hex(span_id).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?) & TraceFlags::SAMPLED,
        true,
        TraceState::NONE,
    );
    context.is_valid().then_some(context)
}

/// `len` lowercase hex digits.
fn hex(field: &str, len: usize) -> bool {
    field.len() == len
        && field
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_traceparent_reads_back_as_written() {
        let context = parse(TRACEPARENT).expect("a valid traceparent");
        assert_eq!(
            context.trace_id(),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
        assert_eq!(
            context.span_id(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap()
        );
        assert!(context.is_sampled());
        assert!(context.is_remote());
        assert_eq!(format(&context), TRACEPARENT);
    }

    #[test]
    fn only_the_sampled_flag_is_kept() {
        let context = parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09").unwrap();
        assert_eq!(context.trace_flags(), TraceFlags::SAMPLED);
        let context = parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        assert!(!context.is_sampled());
        assert!(format(&context).ends_with("-00"));
    }

    #[test]
    fn a_later_version_may_carry_more_fields() {
        assert!(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz").is_some());
        assert!(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz").is_none());
    }

    #[test]
    fn anything_else_is_not_a_traceparent() {
        for id in [
            "",
            "abc",
            "4bf92f3577b34da6",
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        ] {
            assert!(parse(id).is_none(), "{id:?}");
        }
    }

    #[test]
    fn outside_any_span_nothing_is_stamped() {
        let mut none = None;
        stamp(&mut none, false);
        assert_eq!(none, None);
        let mut other = Some(SmolStr::new("abc"));
        stamp(&mut other, false);
        assert_eq!(other.as_deref(), Some("abc"));
        let mut given = Some(SmolStr::new(TRACEPARENT));
        stamp(&mut given, true);
        assert_eq!(given.as_deref(), Some(TRACEPARENT));
    }
}
