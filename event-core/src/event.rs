//! The `DomainEvent` trait and the descriptor every event carries.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::any::Any;
use std::fmt;

/// A domain event: a fact with a stable name, a schema version and a JSON Schema.
///
/// Implement it with `#[derive(Clone, DomainEvent)]`, which also registers the event so that
/// [`registry()`](crate::registry()) and the catalog find it.
///
/// ```
/// use event_core::DomainEvent;
/// use schemars::JsonSchema;
/// use serde::{Deserialize, Serialize};
///
/// /// A customer placed an order.
/// #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
/// #[event(version = 2, source = "orders-service", aggregate = "order")]
/// pub struct OrderCreated {
///     #[event(partition_key)]
///     pub order_id: String,
///     pub total_cents: u64,
/// }
///
/// assert_eq!(OrderCreated::NAME, "order.created");
/// assert_eq!(OrderCreated::VERSION, 2);
/// let event = OrderCreated { order_id: "o-1".into(), total_cents: 1200 };
/// assert_eq!(event.partition_key().as_deref(), Some("o-1"));
/// assert_eq!(OrderCreated::descriptor().description(), Some("A customer placed an order."));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a domain event",
    label = "not a domain event",
    note = "add `#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]` to `{Self}`"
)]
pub trait DomainEvent:
    Serialize + DeserializeOwned + JsonSchema + Clone + Send + Sync + 'static
{
    /// The event type, like `order.created`.
    const NAME: &'static str;
    /// The schema version, from 1; bumped only for breaking payload changes.
    const VERSION: u32;

    /// Everything known about the event type: name, version, where it is defined, its
    /// catalog metadata and its JSON Schema.
    fn descriptor() -> &'static EventDescriptor;

    /// The value of the `#[event(partition_key)]` field as a string, or `None` without one.
    ///
    /// Events with the same partition key are delivered in order.
    fn partition_key(&self) -> Option<String>;

    /// Not public API: decodes a payload written at `version`, this event's or an older one
    /// reached through `previous`, upcasting it step by step. `None` when no version of the
    /// chain is `version`. The derive overrides it for events with a `previous` version.
    ///
    /// Without `previous`, a version below this one is read through the raw upcasters
    /// registered for it ([`raw_upcaster!`](crate::raw_upcaster)), when they reach this
    /// version.
    #[doc(hidden)]
    fn __decode_at(version: u32, payload: &str) -> Option<Result<Self, serde_json::Error>>
    where
        Self: Sized,
    {
        if version == Self::VERSION {
            return Some(serde_json::from_str(payload));
        }
        crate::upcast::upcast_raw(Self::NAME, version, Self::VERSION, payload)
            .map(|value| value.and_then(serde_json::from_value))
    }

    /// Not public API: the event held by `event` as this type, cloned, when it is this type
    /// or an older version of it reached through `previous` (then upcast). `None` otherwise.
    /// The derive overrides it for events with a `previous` version.
    #[doc(hidden)]
    fn __from_any(event: &dyn Any) -> Option<Self>
    where
        Self: Sized,
    {
        event.downcast_ref::<Self>().cloned()
    }
}

/// What the derive records about one event type. Obtained from
/// [`DomainEvent::descriptor`] or from the [`Registry`](crate::Registry).
///
/// ```
/// # use event_core::DomainEvent;
/// # use schemars::JsonSchema;
/// # use serde::{Deserialize, Serialize};
/// /// An invoice went unpaid past its due date.
/// #[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
/// #[event(name = "invoice.overdue", source = "billing", aggregate = "invoice")]
/// struct InvoiceOverdue {
///     #[event(partition_key)]
///     invoice_id: String,
///     #[event(pii)]
///     billing_email: String,
/// }
///
/// let d = InvoiceOverdue::descriptor();
/// assert_eq!((d.name(), d.version()), ("invoice.overdue", 1));
/// assert_eq!(d.source(), Some("billing"));
/// assert_eq!(d.partition_key(), Some("invoice_id"));
/// assert_eq!(d.pii(), ["billing_email"]);
/// assert!(d.rust_type().ends_with("::InvoiceOverdue"));
/// assert!(d.schema().as_value()["properties"]["billing_email"].is_object());
/// ```
pub struct EventDescriptor {
    parts: DescriptorParts,
}

/// The fields of an [`EventDescriptor`], filled in by the derive. Not public API.
#[doc(hidden)]
#[allow(
    missing_debug_implementations,
    reason = "shown through EventDescriptor's Debug"
)]
pub struct DescriptorParts {
    pub name: &'static str,
    pub version: u32,
    pub rust_type: &'static str,
    pub module_path: &'static str,
    pub file: &'static str,
    pub line: u32,
    pub description: Option<&'static str>,
    pub source: Option<&'static str>,
    pub aggregate: Option<&'static str>,
    pub partition_key: Option<&'static str>,
    pub pii: &'static [&'static str],
    pub subject: Option<&'static str>,
    /// The JSON of a PII field's `Default`, by its JSON name.
    pub erased: fn(&str) -> Option<serde_json::Value>,
    /// `Some(None)`: deprecated without a reason.
    pub deprecated: Option<Option<&'static str>>,
    pub previous: Option<fn() -> &'static EventDescriptor>,
    pub schema: &'static crate::__private::SchemaFns,
}

impl EventDescriptor {
    /// Not public API: used by the derive.
    #[doc(hidden)]
    pub const fn __from_parts(parts: DescriptorParts) -> Self {
        EventDescriptor { parts }
    }

    /// The event type, like `order.created`.
    pub fn name(&self) -> &'static str {
        self.parts.name
    }

    /// The schema version, from 1.
    pub fn version(&self) -> u32 {
        self.parts.version
    }

    /// The full path of the Rust type, like `orders_domain::order::OrderCreated`.
    pub fn rust_type(&self) -> &'static str {
        self.parts.rust_type
    }

    /// The module the type is defined in, as `module_path!()` gives it.
    pub fn module_path(&self) -> &'static str {
        self.parts.module_path
    }

    /// The source file of the definition, as `file!()` gives it.
    pub fn file(&self) -> &'static str {
        self.parts.file
    }

    /// The line of the type's name in [`file`](Self::file).
    pub fn line(&self) -> u32 {
        self.parts.line
    }

    /// The `description` key, or else the doc comment, with common indentation removed.
    pub fn description(&self) -> Option<&'static str> {
        self.parts.description
    }

    /// The publishing service or module (`source` key).
    pub fn source(&self) -> Option<&'static str> {
        self.parts.source
    }

    /// The aggregate type the event belongs to (`aggregate` key).
    pub fn aggregate(&self) -> Option<&'static str> {
        self.parts.aggregate
    }

    /// The JSON name of the `#[event(partition_key)]` field, after serde renames.
    pub fn partition_key(&self) -> Option<&'static str> {
        self.parts.partition_key
    }

    /// The JSON names of the `#[event(pii)]` fields, in declaration order.
    pub fn pii(&self) -> &'static [&'static str] {
        self.parts.pii
    }

    /// The JSON name of the `#[event(subject)]` field: the data subject whose key seals the
    /// PII fields under field encryption (else the partition key seals them).
    pub fn subject(&self) -> Option<&'static str> {
        self.parts.subject
    }

    /// The field whose value names the data subject: the `subject` field, else the
    /// partition key.
    pub fn subject_field(&self) -> Option<&'static str> {
        self.parts.subject.or(self.parts.partition_key)
    }

    /// What the PII field `field` (a JSON name) reads as once its subject is forgotten: its
    /// type's `Default`, as JSON. `None` for a field that is not PII.
    pub fn erased_value(&self, field: &str) -> Option<serde_json::Value> {
        (self.parts.erased)(field)
    }

    /// Whether the event is marked `deprecated`.
    pub fn is_deprecated(&self) -> bool {
        self.parts.deprecated.is_some()
    }

    /// The reason given with `deprecated = "..."`, if any.
    pub fn deprecation_note(&self) -> Option<&'static str> {
        self.parts.deprecated.flatten()
    }

    /// The descriptor of the previous version (`previous` key), if this event names one.
    pub fn previous(&self) -> Option<&'static EventDescriptor> {
        self.parts.previous.map(|previous| previous())
    }

    /// The payload's JSON Schema, draft 2020-12, as schemars generates it (`schema_for!`).
    pub fn schema(&self) -> Schema {
        crate::__private::root_schema(self.parts.schema, &SchemaSettings::default())
    }

    /// The payload's JSON Schema generated with other schemars settings, for example
    /// `SchemaSettings::draft07()` for AsyncAPI tooling, which reads draft-07.
    ///
    /// ```
    /// # use event_core::DomainEvent;
    /// # use schemars::{JsonSchema, generate::SchemaSettings};
    /// # use serde::{Deserialize, Serialize};
    /// #[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
    /// #[event(version = 1)]
    /// struct OrderPlaced { order_id: String }
    ///
    /// let schema = OrderPlaced::descriptor().schema_with(&SchemaSettings::draft07());
    /// assert_eq!(schema.get("$schema").and_then(|s| s.as_str()), Some("http://json-schema.org/draft-07/schema#"));
    /// ```
    pub fn schema_with(&self, settings: &SchemaSettings) -> Schema {
        crate::__private::root_schema(self.parts.schema, settings)
    }

    /// `file:line` of the definition, for messages.
    pub fn location(&self) -> String {
        format!("{}:{}", self.parts.file, self.parts.line)
    }
}

impl fmt::Debug for EventDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.parts;
        f.debug_struct("EventDescriptor")
            .field("name", &p.name)
            .field("version", &p.version)
            .field("rust_type", &p.rust_type)
            .field("location", &self.location())
            .field("description", &p.description)
            .field("source", &p.source)
            .field("aggregate", &p.aggregate)
            .field("partition_key", &p.partition_key)
            .field("pii", &p.pii)
            .field("subject", &p.subject)
            .field("deprecated", &p.deprecated)
            .field(
                "previous",
                &self.previous().map(|d| (d.name(), d.version())),
            )
            .finish_non_exhaustive()
    }
}
