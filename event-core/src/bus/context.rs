//! What a publisher says about an event beyond its payload, and what a handler passes on.

use super::published::Event;
use crate::envelope::{ACTOR_ID, Envelope, TENANT_ID};
use smol_str::SmolStr;
use std::cell::RefCell;
use std::sync::Arc;
use tokio::task::futures::TaskLocalFuture;
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
    pub(crate) correlation_id: Option<SmolStr>,
    pub(crate) causation_id: Option<SmolStr>,
    pub(crate) trace_id: Option<SmolStr>,
    pub(crate) tenant: Option<String>,
    pub(crate) actor: Option<String>,
    pub(crate) source: Option<SmolStr>,
}

impl PublishContext {
    /// An empty context: ids come from the handler scope, if any, then from the ambient
    /// context ([`scope`](Self::scope)), or stay empty.
    pub fn new() -> Self {
        PublishContext::default()
    }

    /// Ties the event to a request or workflow.
    #[must_use]
    pub fn correlation_id(mut self, id: impl AsRef<str>) -> Self {
        self.correlation_id = Some(id.as_ref().into());
        self
    }

    /// The event that caused this one (set automatically inside a handler).
    #[must_use]
    pub fn causation_id(mut self, id: impl AsRef<str>) -> Self {
        self.causation_id = Some(id.as_ref().into());
        self
    }

    /// A distributed-tracing id: a W3C `traceparent` to join that trace (with the feature
    /// `opentelemetry`, the bus fills one in from the current span when none is given), or
    /// any other id, passed on untouched.
    #[must_use]
    pub fn trace_id(mut self, id: impl AsRef<str>) -> Self {
        self.trace_id = Some(id.as_ref().into());
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
    pub fn source(mut self, source: impl AsRef<str>) -> Self {
        self.source = Some(source.as_ref().into());
        self
    }

    /// Fills the envelope's ids and metadata from this context and the handler scope,
    /// and its causation depth: one more than the handled event's, 0 outside a handler.
    pub(crate) fn apply<E>(self, envelope: &mut Envelope<E>) {
        let causation_given = self.causation_id.is_some();
        let source_given = self.source.is_some();
        let _ = HANDLED.try_with(|scope| {
            let handled = scope.header();
            if scope.carries_ids {
                envelope.correlation_id.clone_from(&handled.correlation_id);
                if !causation_given {
                    envelope.causation_id = Some(SmolStr::new(
                        handled
                            .id
                            .hyphenated()
                            .encode_lower(&mut Uuid::encode_buffer()),
                    ));
                }
                envelope.trace_id.clone_from(&handled.trace_id);
            }
            envelope
                .meta
                .set_depth(handled.meta.depth().saturating_add(1));
        });
        // What the context names wins over what the handler scope gave.
        for (field, given) in [
            (&mut envelope.correlation_id, self.correlation_id),
            (&mut envelope.causation_id, self.causation_id),
            (&mut envelope.trace_id, self.trace_id),
        ] {
            if given.is_some() {
                *field = given;
            }
        }
        if let Some(source) = self.source {
            envelope.source = Some(source);
        }
        if let Some(tenant) = self.tenant {
            envelope.meta.insert(TENANT_ID.to_owned(), tenant.into());
        }
        if let Some(actor) = self.actor {
            envelope.meta.insert(ACTOR_ID.to_owned(), actor.into());
        }
        // Last, the ambient scope, for what neither the context nor the handler scope set.
        let _ = AMBIENT.try_with(|ambient| ambient.fill(envelope, source_given));
    }

    /// Sets each field of `envelope` this context names and the envelope lacks: the
    /// ambient scope's part in [`apply`](Self::apply).
    fn fill<E>(&self, envelope: &mut Envelope<E>, source_given: bool) {
        for (field, ambient) in [
            (&mut envelope.correlation_id, &self.correlation_id),
            (&mut envelope.causation_id, &self.causation_id),
            (&mut envelope.trace_id, &self.trace_id),
        ] {
            if field.is_none() {
                field.clone_from(ambient);
            }
        }
        // The event's declared source is a default, not a choice of this publish.
        if let Some(source) = &self.source
            && !source_given
        {
            envelope.source = Some(source.clone());
        }
        for (key, ambient) in [(TENANT_ID, &self.tenant), (ACTOR_ID, &self.actor)] {
            if let Some(value) = ambient
                && envelope.meta.get(key).is_none()
            {
                envelope.meta.insert(key.to_owned(), value.clone().into());
            }
        }
    }

    /// Runs `future` with this context as the ambient default of every publish inside it
    /// (`publish`, `publish_with`, `try_publish`, on any bus).
    ///
    /// A field is taken from the ambient context only when the publish has it from nowhere
    /// else: what a `publish_with` context names wins, and inside a handler the handled
    /// event's correlation, causation and trace ids win, so a handler's follow-up events
    /// keep their chain. The source, tenant and actor of the ambient context are used unless
    /// the publish names its own (the source replaces the event's declared one).
    ///
    /// The context is a tokio task-local: a task spawned inside `future`
    /// (`tokio::spawn`) does not inherit it; wrap that task's future in a `scope` of its
    /// own (`PublishContext::current()` gives the context to pass on). A nested `scope`
    /// replaces the outer context for its duration, field by field included: it does not
    /// merge with it. Subscription handlers run on the bus's own tasks, outside any scope
    /// of the publisher: what they publish follows the handled event instead.
    ///
    /// With the feature `http`, [`RequestContextLayer`](crate::http::RequestContextLayer)
    /// runs each HTTP request's handler in a scope built from its headers.
    ///
    /// ```
    /// use event_core::{DomainEvent, EventBus, PublishContext};
    /// use schemars::JsonSchema;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
    /// struct OrderPlaced {
    ///     order_id: String,
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), event_core::PublishError> {
    /// let bus = EventBus::builder().build();
    /// let request = PublishContext::new().correlation_id("req-1").tenant("acme");
    /// let placed = request
    ///     .scope(async {
    ///         bus.publish(OrderPlaced { order_id: "o-1".into() }).await
    ///     })
    ///     .await?;
    /// assert_eq!(placed.correlation_id.as_deref(), Some("req-1"));
    /// assert_eq!(placed.meta.tenant_id(), Some("acme"));
    ///
    /// // Outside the scope, nothing is set.
    /// let later = bus.publish(OrderPlaced { order_id: "o-2".into() }).await?;
    /// assert_eq!(later.correlation_id, None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn scope<F: Future>(self, future: F) -> impl Future<Output = F::Output> {
        self.scoped(future)
    }

    /// [`scope`](Self::scope), as a type the HTTP layer can name.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn scoped<F: Future>(self, future: F) -> TaskLocalFuture<PublishContext, F> {
        AMBIENT.scope(self, future)
    }

    /// The ambient context of the current task, set by [`scope`](Self::scope); `None`
    /// outside any scope (a spawned task included).
    ///
    /// ```
    /// use event_core::PublishContext;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// assert_eq!(PublishContext::current(), None);
    /// let seen = PublishContext::new()
    ///     .correlation_id("req-1")
    ///     .scope(async { PublishContext::current() })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(seen.get_correlation_id(), Some("req-1"));
    /// # }
    /// ```
    pub fn current() -> Option<PublishContext> {
        AMBIENT.try_with(Clone::clone).ok()
    }

    /// The correlation id this context sets, if any.
    ///
    /// ```
    /// # use event_core::PublishContext;
    /// assert_eq!(PublishContext::new().correlation_id("c-1").get_correlation_id(), Some("c-1"));
    /// ```
    pub fn get_correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }

    /// The causation id this context sets, if any.
    ///
    /// ```
    /// # use event_core::PublishContext;
    /// assert_eq!(PublishContext::new().causation_id("e-1").get_causation_id(), Some("e-1"));
    /// ```
    pub fn get_causation_id(&self) -> Option<&str> {
        self.causation_id.as_deref()
    }

    /// The trace id this context sets, if any.
    ///
    /// ```
    /// # use event_core::PublishContext;
    /// assert_eq!(PublishContext::new().trace_id("t-1").get_trace_id(), Some("t-1"));
    /// ```
    pub fn get_trace_id(&self) -> Option<&str> {
        self.trace_id.as_deref()
    }

    /// The tenant this context sets, if any.
    ///
    /// ```
    /// # use event_core::PublishContext;
    /// assert_eq!(PublishContext::new().tenant("acme").get_tenant(), Some("acme"));
    /// ```
    pub fn get_tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// The actor this context sets, if any.
    ///
    /// ```
    /// # use event_core::PublishContext;
    /// assert_eq!(PublishContext::new().actor("user-7").get_actor(), Some("user-7"));
    /// ```
    pub fn get_actor(&self) -> Option<&str> {
        self.actor.as_deref()
    }

    /// The source this context sets, if any.
    ///
    /// ```
    /// # use event_core::PublishContext;
    /// assert_eq!(PublishContext::new().source("api").get_source(), Some("api"));
    /// ```
    pub fn get_source(&self) -> Option<&str> {
        self.source.as_deref()
    }
}

/// The event a handler is handling, for the ids and depth of what it publishes.
#[derive(Debug)]
pub(crate) struct Handled {
    /// The event: its header gives the ids and the depth.
    event: Event,
    /// Whether what the handler publishes carries the event's correlation, causation and
    /// trace ids: not for a batch, whose events need not share them.
    carries_ids: bool,
    /// Set when the loop guard refused a publish of this handler: why.
    looped: RefCell<Option<String>>,
}

impl Handled {
    /// The scope of a handler handling `event`.
    pub(crate) fn of(event: &Event) -> Self {
        Handled::new(event, true)
    }

    /// The scope of a handler handling `event`; without `carries_ids` (a batch handler,
    /// whose events need not share them), what it publishes takes only its depth from
    /// `event`, and its ids from a `PublishContext`.
    pub(crate) fn new(event: &Event, carries_ids: bool) -> Self {
        Handled {
            event: Arc::clone(event),
            carries_ids,
            looped: RefCell::new(None),
        }
    }

    /// The handled event's header.
    pub(crate) fn header(&self) -> &Envelope<()> {
        self.event.header()
    }

    /// Records that the loop guard refused a publish of this handler.
    pub(crate) fn refuse_loop(&self, why: String) {
        self.looped.borrow_mut().get_or_insert(why);
    }

    /// Why the loop guard refused a publish of this handler, if it did.
    pub(crate) fn take_loop(&self) -> Option<String> {
        self.looped.borrow_mut().take()
    }
}

tokio::task_local! {
    /// The ambient context of [`PublishContext::scope`].
    static AMBIENT: PublishContext;
}

tokio::task_local! {
    /// Set around each handler call. A task the handler spawns does not inherit it: pass a
    /// `PublishContext` there.
    pub(crate) static HANDLED: Handled;
}

impl super::EventBus {
    /// Runs `handler` on `envelope` as a subscription would: in the handler scope, so
    /// what it publishes carries correlation and causation; panics caught.
    pub(crate) async fn run_handler<Fut>(
        &self,
        event: &Event,
        handler: Fut,
    ) -> Result<(), super::HandlerError>
    where
        Fut: Future<Output = Result<(), super::HandlerError>>,
    {
        let scope = Handled::of(event);
        let scoped = std::panic::AssertUnwindSafe(HANDLED.scope(scope, handler));
        match futures_util::FutureExt::catch_unwind(scoped).await {
            Ok(result) => result,
            Err(panic) => Err(super::error::panicked(&*panic)),
        }
    }
}
