//! Who produces and who consumes each event: the warnings `check` prints for an event nobody
//! consumes and for a consumer of an event nobody produces.

use crate::model::Catalog;
use std::collections::BTreeMap;
use std::fmt;

/// Something `check` reports without failing.
///
/// Producers are an event's `source` and the services declared with
/// [`event_core::produces!`]; consumers are the `#[union(consumer = "...")]` unions linked
/// into the binary. Both are judged per event name, over all its versions: a consumer of v2
/// reads v1 events through the upcast chain.
///
/// ```
/// # use event_core::DomainEvent;
/// # use schemars::JsonSchema;
/// # use serde::{Deserialize, Serialize};
/// use event_catalog::{Catalog, Warning};
///
/// /// Nobody subscribes to this one.
/// #[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
/// #[event(name = "audit.trail_written", source = "audit")]
/// struct TrailWritten { entry: String }
///
/// let registry = event_core::Registry::from_descriptors([TrailWritten::descriptor()])?;
/// let warnings = Catalog::from_registry(&registry).warnings();
/// assert_eq!(warnings, [Warning::NotConsumed { event: "audit.trail_written".into() }]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// No consumer accepts any version of the event (deprecated events are not reported).
    NotConsumed {
        /// The event type.
        event: String,
    },
    /// Consumers accept the event, but no version of it has a producer.
    NotProduced {
        /// The event type.
        event: String,
        /// Who waits for it, sorted.
        consumers: Vec<String>,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::NotConsumed { event } => write!(
                f,
                "nobody consumes `{event}`: no `#[union(consumer = \"...\")]` linked into this binary accepts any of its versions"
            ),
            Warning::NotProduced { event, consumers } => write!(
                f,
                "`{event}` is consumed by {} but nobody produces it: it has no `source` and no `event_core::produces!` names it",
                consumers.join(", ")
            ),
        }
    }
}

impl Catalog {
    /// Events nobody consumes and consumers of events nobody produces, sorted by event name.
    pub fn warnings(&self) -> Vec<Warning> {
        #[derive(Default)]
        struct Seen<'a> {
            producers: usize,
            consumers: Vec<&'a str>,
            active: bool,
        }
        let mut by_name: BTreeMap<&str, Seen> = BTreeMap::new();
        for event in self.events() {
            let seen = by_name.entry(&event.name).or_default();
            seen.producers += event.producers().len();
            seen.consumers
                .extend(event.consumers.iter().map(String::as_str));
            seen.active |= !event.deprecated.is_deprecated();
        }
        let mut warnings = Vec::new();
        for (name, mut seen) in by_name {
            if seen.consumers.is_empty() {
                if seen.active {
                    warnings.push(Warning::NotConsumed {
                        event: name.to_owned(),
                    });
                }
            } else if seen.producers == 0 {
                seen.consumers.sort_unstable();
                seen.consumers.dedup();
                warnings.push(Warning::NotProduced {
                    event: name.to_owned(),
                    consumers: seen.consumers.into_iter().map(str::to_owned).collect(),
                });
            }
        }
        warnings
    }
}
