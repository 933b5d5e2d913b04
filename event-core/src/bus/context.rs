//! What a publisher says about an event beyond its payload, and what a handler passes on.

use crate::envelope::{ACTOR_ID, Envelope, TENANT_ID};
use serde_json::Value;
use uuid::Uuid;

/// Ids and metadata for one `publish_with`.
///
/// Inside a handler, `publish` carries the handled event's correlation id over and sets the
/// causation id to the handled event's id, unless the context says otherwise.
///
/// ```
/// use event_core::PublishContext;
///
/// let ctx = PublishContext::new()
///     .correlation_id("c-1")
///     .trace_id("4bf92f3577b34da6")
///     .tenant("acme")
///     .actor("user-7")
///     .source("checkout-api");
/// # let _ = ctx;
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PublishContext {
    pub(crate) correlation_id: Option<String>,
    pub(crate) causation_id: Option<String>,
    pub(crate) trace_id: Option<String>,
    pub(crate) tenant: Option<String>,
    pub(crate) actor: Option<String>,
    pub(crate) source: Option<String>,
}

impl PublishContext {
    /// An empty context: ids come from the handler scope, if any, or stay empty.
    pub fn new() -> Self {
        PublishContext::default()
    }

    /// Ties the event to a request or workflow.
    #[must_use]
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// The event that caused this one (set automatically inside a handler).
    #[must_use]
    pub fn causation_id(mut self, id: impl Into<String>) -> Self {
        self.causation_id = Some(id.into());
        self
    }

    /// A distributed-tracing id, passed through untouched.
    #[must_use]
    pub fn trace_id(mut self, id: impl Into<String>) -> Self {
        self.trace_id = Some(id.into());
        self
    }

    /// The tenant, stored in `meta.tenant_id`.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Who caused the event, stored in `meta.actor_id`.
    #[must_use]
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Overrides the event's declared `source`.
    #[must_use]
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Fills the envelope's ids and metadata from this context and the handler scope.
    pub(crate) fn apply<E>(self, envelope: &mut Envelope<E>) {
        let scope = HANDLED.try_with(Clone::clone).ok();
        envelope.correlation_id = self
            .correlation_id
            .or_else(|| scope.as_ref().and_then(|s| s.correlation_id.clone()));
        envelope.causation_id = self
            .causation_id
            .or_else(|| scope.as_ref().map(|s| s.event_id.to_string()));
        envelope.trace_id = self
            .trace_id
            .or_else(|| scope.as_ref().and_then(|s| s.trace_id.clone()));
        if let Some(source) = self.source {
            envelope.source = Some(source);
        }
        if let Some(tenant) = self.tenant {
            envelope
                .meta
                .insert(TENANT_ID.to_owned(), Value::String(tenant));
        }
        if let Some(actor) = self.actor {
            envelope
                .meta
                .insert(ACTOR_ID.to_owned(), Value::String(actor));
        }
    }
}

/// The event a handler is handling, for the ids of what it publishes.
#[derive(Debug, Clone)]
#[allow(
    clippy::struct_field_names,
    reason = "they are ids, named as in the envelope"
)]
pub(crate) struct Handled {
    pub(crate) event_id: Uuid,
    pub(crate) correlation_id: Option<String>,
    pub(crate) trace_id: Option<String>,
}

tokio::task_local! {
    /// Set around each handler call. A task the handler spawns does not inherit it: pass a
    /// `PublishContext` there.
    pub(crate) static HANDLED: Handled;
}
