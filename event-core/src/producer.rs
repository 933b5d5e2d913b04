//! Producers declared in code: which services publish which events, for the catalog.
//!
//! An event's `source` names the service that owns it. When other services publish it too
//! (a gateway re-publishing, a back-office tool, a second writer during a migration), the
//! publishing crate says so once with [`produces!`](crate::produces), and the catalog lists
//! every producer beside the consumers that `#[union(consumer = "...")]` declares.

/// A service registered as a producer of events, for the catalog. Not public API: use
/// [`produces!`](crate::produces).
#[doc(hidden)]
#[derive(Debug)]
pub struct ProducerRegistration {
    /// The producing service's name.
    pub producer: &'static str,
    /// The events it publishes, as (type, version).
    pub events: &'static [(&'static str, u32)],
}

inventory::collect!(ProducerRegistration);

/// Declares, at link time, that a service publishes these events.
///
/// Write it once in the crate that publishes them (any module, at item level). The catalog
/// lists the service among the event's producers, beside the event's own `source`; its
/// `check` warns about a consumer of an event that nobody produces. Each type must be a
/// [`DomainEvent`](crate::DomainEvent), naming its version: `produces!` records
/// `(E::NAME, E::VERSION)`.
///
/// ```
/// use event_core::DomainEvent;
/// use schemars::JsonSchema;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
/// #[event(name = "invoice.issued", source = "billing")]
/// struct InvoiceIssued { invoice_id: String }
///
/// #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
/// #[event(name = "invoice.voided", source = "billing")]
/// struct InvoiceVoided { invoice_id: String }
///
/// // The back office issues and voids invoices too.
/// event_core::produces!("back-office": InvoiceIssued, InvoiceVoided);
///
/// assert_eq!(event_core::producers_of("invoice.voided", 1), ["back-office"]);
/// assert!(event_core::producers_of("invoice.voided", 2).is_empty());
/// ```
#[macro_export]
macro_rules! produces {
    ($producer:literal : $($event:ty),+ $(,)?) => {
        $crate::__private::inventory::submit! {
            $crate::__private::ProducerRegistration {
                producer: $producer,
                events: &[$((
                    <$event as $crate::DomainEvent>::NAME,
                    <$event as $crate::DomainEvent>::VERSION,
                )),+],
            }
        }
    };
}

/// The services that declared with [`produces!`](crate::produces) that they publish this
/// event, sorted and each once. The event's own `source` is not among them unless it
/// declared itself too.
pub fn producers_of(event_type: &str, version: u32) -> Vec<&'static str> {
    crate::union::names_listing(
        inventory::iter::<ProducerRegistration>
            .into_iter()
            .map(|r| (r.producer, r.events)),
        event_type,
        version,
    )
}
