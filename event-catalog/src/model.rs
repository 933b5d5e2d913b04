//! The catalog model: every event with its metadata and schema, built from the registry or
//! read back from `catalog.json`.

use crate::error::CatalogError;
use crate::json;
use event_core::{EventDescriptor, RawUpcaster, Registry, RegistryError};
use schemars::generate::SchemaSettings;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// The version of the `catalog.json` format this crate writes and reads.
pub const FORMAT: u32 = 1;

/// Every event of a domain, sorted by (name, version), with what the catalog shows of each.
///
/// Build it from the events linked into the binary ([`Catalog::linked`]), from any
/// [`Registry`] ([`Catalog::from_registry`]), or read it back from a `catalog.json`
/// ([`Catalog::read`], [`Catalog::from_json`]).
///
/// ```
/// # use event_core::DomainEvent;
/// # use schemars::JsonSchema;
/// # use serde::{Deserialize, Serialize};
/// /// An order was paid.
/// #[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
/// #[event(name = "order.paid", source = "payments", aggregate = "order")]
/// struct OrderPaid {
///     #[event(partition_key)]
///     order_id: String,
/// }
///
/// let registry = event_core::Registry::from_descriptors([OrderPaid::descriptor()])?;
/// let catalog = event_catalog::Catalog::from_registry(&registry);
/// let paid = catalog.get("order.paid", 1).unwrap();
/// assert_eq!(paid.description.as_deref(), Some("An order was paid."));
/// assert_eq!(catalog.sources(), ["payments"]);
///
/// // catalog.json round-trips
/// let back = event_catalog::Catalog::from_json(&catalog.to_json())?;
/// assert_eq!(back, catalog);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Catalog {
    events: Vec<CatalogEvent>,
}

/// One event (a name at one version) as the catalog records it: the keys of an entry of
/// `catalog.json`'s `events`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEvent {
    /// The event type, like `order.created`.
    pub name: String,
    /// The schema version, from 1.
    pub version: u32,
    /// The description (the `description` key or the doc comment).
    pub description: Option<String>,
    /// The Rust type's full path.
    pub rust_type: String,
    /// The publishing service or module.
    pub source: Option<String>,
    /// The aggregate the event belongs to.
    pub aggregate: Option<String>,
    /// The consumers whose `#[union(consumer = "...")]` accepts this event, sorted.
    pub consumers: Vec<String>,
    /// The services other than `source` that publish this event, declared in code with
    /// [`event_core::produces!`], sorted; left out of `catalog.json` when empty. See
    /// [`producers`](CatalogEvent::producers) for every producer, `source` included.
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "producers")]
    pub declared_producers: Vec<String>,
    /// The JSON name of the partition key field.
    pub partition_key: Option<String>,
    /// The JSON names of the personal-data fields.
    pub pii: Vec<String>,
    /// Whether the event is deprecated, and why.
    pub deprecated: Deprecation,
    /// How older versions are read as this one, one step each, newest first: the version
    /// below through `previous`, or through raw upcasters down the versions whose type is
    /// gone. Empty for a first version; left out of `catalog.json` when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upcasts: Vec<Upcast>,
    /// The payload's JSON Schema, draft 2020-12, as schemars emits it.
    pub schema: Value,
    /// The draft-07 form, when it came from the descriptor; derived from `schema` otherwise.
    #[serde(skip)]
    pub(crate) schema_draft07: Option<Value>,
}

/// One step of an event's version chain: how `from_version` is read as the version above it.
///
/// ```
/// use event_catalog::{Upcast, UpcastBy};
///
/// let step = Upcast { from_version: 1, by: UpcastBy::Raw };
/// assert_eq!(serde_json::to_string(&step)?, r#"{"from_version":1,"by":"raw"}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upcast {
    /// The version read.
    pub from_version: u32,
    /// How.
    pub by: UpcastBy,
}

/// How one version is upcast to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpcastBy {
    /// The typed chain: `previous = TypeOfVersionBefore` and a `From` impl.
    Previous,
    /// An upcaster over the raw JSON payload (`event_core::raw_upcaster!`): the version's
    /// Rust type is gone.
    Raw,
}

/// Whether an event is deprecated: in `catalog.json`, `false`, `true`, or the reason as a
/// string.
///
/// ```
/// use event_catalog::Deprecation;
///
/// let note = Deprecation::Deprecated(Some("read v2".into()));
/// assert_eq!(serde_json::to_string(&note)?, r#""read v2""#);
/// assert_eq!(serde_json::from_str::<Deprecation>("false")?, Deprecation::Active);
/// assert!(serde_json::from_str::<Deprecation>("true")?.is_deprecated());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Deprecation {
    /// Not deprecated (`false`).
    #[default]
    Active,
    /// Deprecated (`true`), or deprecated with a reason (the reason as a string).
    Deprecated(Option<String>),
}

impl Deprecation {
    /// Whether the event is deprecated.
    pub fn is_deprecated(&self) -> bool {
        matches!(self, Deprecation::Deprecated(_))
    }

    /// The reason given, if any.
    pub fn note(&self) -> Option<&str> {
        match self {
            Deprecation::Deprecated(Some(note)) => Some(note),
            _ => None,
        }
    }
}

impl Serialize for Deprecation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Deprecation::Active => serializer.serialize_bool(false),
            Deprecation::Deprecated(None) => serializer.serialize_bool(true),
            Deprecation::Deprecated(Some(note)) => serializer.serialize_str(note),
        }
    }
}

impl<'de> Deserialize<'de> for Deprecation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(
            untagged,
            expecting = "`false`, `true` or the deprecation reason as a string"
        )]
        enum Wire {
            Flag(bool),
            Note(String),
        }
        Ok(match Wire::deserialize(deserializer)? {
            Wire::Flag(false) => Deprecation::Active,
            Wire::Flag(true) => Deprecation::Deprecated(None),
            Wire::Note(note) => Deprecation::Deprecated(Some(note)),
        })
    }
}

/// The document `catalog.json` holds.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    format: u32,
    events: Vec<CatalogEvent>,
}

/// Equal when every `catalog.json` key is equal.
impl PartialEq for CatalogEvent {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.name,
            self.version,
            &self.description,
            &self.rust_type,
            &self.source,
            &self.aggregate,
            &self.consumers,
            &self.partition_key,
            &self.pii,
            &self.deprecated,
            &self.upcasts,
            &self.schema,
        ) == (
            &other.name,
            other.version,
            &other.description,
            &other.rust_type,
            &other.source,
            &other.aggregate,
            &other.consumers,
            &other.partition_key,
            &other.pii,
            &other.deprecated,
            &other.upcasts,
            &other.schema,
        ) && self.declared_producers == other.declared_producers
    }
}

impl CatalogEvent {
    /// The catalog entry of one descriptor; `consumers` come from
    /// [`event_core::consumers_of`].
    pub fn from_descriptor(descriptor: &EventDescriptor) -> Self {
        Self::with_upcasters(descriptor, &event_core::raw_upcasters())
    }

    /// [`from_descriptor`](Self::from_descriptor) with the raw upcasters read once by the
    /// caller, for a whole registry.
    fn with_upcasters(descriptor: &EventDescriptor, raw: &[RawUpcaster]) -> Self {
        let consumers = event_core::consumers_of(descriptor.name(), descriptor.version())
            .into_iter()
            .map(str::to_owned)
            .collect();
        let deprecated = if descriptor.is_deprecated() {
            Deprecation::Deprecated(descriptor.deprecation_note().map(str::to_owned))
        } else {
            Deprecation::Active
        };
        CatalogEvent {
            name: descriptor.name().to_owned(),
            version: descriptor.version(),
            description: descriptor.description().map(str::to_owned),
            rust_type: descriptor.rust_type().to_owned(),
            source: descriptor.source().map(str::to_owned),
            aggregate: descriptor.aggregate().map(str::to_owned),
            consumers,
            declared_producers: event_core::producers_of(descriptor.name(), descriptor.version())
                .into_iter()
                .map(str::to_owned)
                .collect(),
            partition_key: descriptor.partition_key().map(str::to_owned),
            pii: descriptor.pii().iter().map(|&f| f.to_owned()).collect(),
            deprecated,
            upcasts: upcasts(descriptor, raw),
            schema: json::canonical(descriptor.schema().to_value()),
            schema_draft07: Some(json::canonical(
                descriptor
                    .schema_with(&SchemaSettings::draft07())
                    .to_value(),
            )),
        }
    }

    /// Every service that publishes this event: its `source` and the
    /// [declared producers](CatalogEvent::declared_producers), sorted, each once.
    pub fn producers(&self) -> Vec<&str> {
        collect_sorted(
            self.source
                .as_deref()
                .into_iter()
                .chain(self.declared_producers.iter().map(String::as_str)),
        )
    }

    /// `name.vN`, the stem of the event's file names (`events/order.created.v1.md`).
    pub fn file_stem(&self) -> String {
        format!("{}.v{}", self.name, self.version)
    }

    /// The payload schema in JSON Schema draft-07, for AsyncAPI.
    ///
    /// From the descriptor (`schema_with(&SchemaSettings::draft07())`) when the catalog was
    /// built from a registry; otherwise derived from [`schema`](Self::schema) by the same
    /// transforms schemars applies for draft-07, so that both give the same document.
    pub fn schema_draft07(&self) -> Value {
        self.schema_draft07
            .clone()
            .unwrap_or_else(|| crate::draft07::from_2020_12(&self.schema))
    }
}

/// The steps below `descriptor`'s version: its `previous`, or the raw upcasters down from
/// the version below as far as they go.
fn upcasts(descriptor: &EventDescriptor, raw: &[RawUpcaster]) -> Vec<Upcast> {
    if descriptor.previous().is_some() {
        return vec![Upcast {
            from_version: descriptor.version() - 1,
            by: UpcastBy::Previous,
        }];
    }
    (1..descriptor.version())
        .rev()
        .take_while(|&v| {
            raw.iter()
                .any(|u| u.name() == descriptor.name() && u.from_version() == v)
        })
        .map(|from_version| Upcast {
            from_version,
            by: UpcastBy::Raw,
        })
        .collect()
}

impl Catalog {
    /// The catalog of every event in `registry`.
    pub fn from_registry(registry: &Registry) -> Self {
        let raw = event_core::raw_upcasters();
        Catalog::from_events(
            registry
                .iter()
                .map(|descriptor| CatalogEvent::with_upcasters(descriptor, &raw)),
        )
    }

    /// The catalog of every event linked into the running binary ([`event_core::registry()`]).
    ///
    /// # Errors
    ///
    /// The registry's error when two types declare the same name and version.
    pub fn linked() -> Result<Self, RegistryError> {
        Ok(Catalog::from_registry(&event_core::registry()?))
    }

    /// A catalog of these events, sorted by (name, version); with duplicates, the last wins.
    ///
    /// Each event's `pii` is kept as given; `consumers` and `declared_producers` are sorted,
    /// each once.
    pub fn from_events(events: impl IntoIterator<Item = CatalogEvent>) -> Self {
        let mut events: Vec<CatalogEvent> = events
            .into_iter()
            .map(|mut event| {
                event.consumers.sort();
                event.consumers.dedup();
                event.declared_producers.sort();
                event.declared_producers.dedup();
                event.schema = json::canonical(event.schema);
                event
            })
            .collect();
        events.sort_by(|a, b| (&a.name, a.version).cmp(&(&b.name, b.version)));
        events.dedup_by(|later, earlier| {
            let same = (&later.name, later.version) == (&earlier.name, earlier.version);
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        Catalog { events }
    }

    /// Parses a `catalog.json` document.
    ///
    /// # Errors
    ///
    /// `serde_json`'s error, with line and column, when the text is not a catalog of format 1.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        let file: CatalogFile = serde_json::from_str(text)?;
        if file.format != FORMAT {
            return Err(serde::de::Error::custom(format_args!(
                "unsupported catalog format {}, expected {FORMAT}",
                file.format
            )));
        }
        Ok(Catalog::from_events(file.events))
    }

    /// Reads a `catalog.json` file.
    ///
    /// # Errors
    ///
    /// [`CatalogError::Read`] when the file cannot be read, [`CatalogError::Parse`] (naming
    /// the file, line and column) when it is not a valid catalog.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, CatalogError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.to_owned(),
            source,
        })?;
        Catalog::from_json(&text).map_err(|source| CatalogError::parse(path, source))
    }

    /// The `catalog.json` document: pretty JSON, keys in the order of the format
    /// (`format`, `events`; each event `name`, `version`, ... `schema`), schema keys sorted,
    /// events by name then version, ending with a newline.
    pub fn to_json(&self) -> String {
        let file = CatalogFile {
            format: FORMAT,
            events: self.events.clone(),
        };
        // Struct fields serialize in declaration order; schemas were made canonical (sorted
        // keys) when the catalog was built.
        match serde_json::to_string_pretty(&file) {
            Ok(mut text) => {
                text.push('\n');
                text
            }
            // Every field is a string, number, list or JSON value: serializing cannot fail.
            Err(err) => unreachable!("a catalog serializes to JSON: {err}"),
        }
    }

    /// The events, sorted by (name, version).
    pub fn events(&self) -> &[CatalogEvent] {
        &self.events
    }

    /// The event with this name and version.
    pub fn get(&self, name: &str, version: u32) -> Option<&CatalogEvent> {
        self.events
            .binary_search_by(|e| (e.name.as_str(), e.version).cmp(&(name, version)))
            .ok()
            .map(|i| &self.events[i])
    }

    /// Whether there are no events.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The publishing services, sorted, each once.
    pub fn sources(&self) -> Vec<&str> {
        collect_sorted(self.events.iter().filter_map(|e| e.source.as_deref()))
    }

    /// The aggregates, sorted, each once.
    pub fn aggregates(&self) -> Vec<&str> {
        collect_sorted(self.events.iter().filter_map(|e| e.aggregate.as_deref()))
    }

    /// Every producer (sources and declared producers), sorted, each once.
    pub fn producers(&self) -> Vec<&str> {
        collect_sorted(self.events.iter().flat_map(CatalogEvent::producers))
    }

    /// The consumers, sorted, each once.
    pub fn consumers(&self) -> Vec<&str> {
        collect_sorted(
            self.events
                .iter()
                .flat_map(|e| e.consumers.iter().map(String::as_str)),
        )
    }
}

fn collect_sorted<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    items
        .collect::<BTreeSet<&str>>()
        .into_iter()
        .collect::<Vec<_>>()
}
