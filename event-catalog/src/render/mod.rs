//! Rendering a catalog to its files, in memory: every renderer is a pure function of the
//! [`Catalog`], so the same catalog always gives byte-identical files.

mod asyncapi;
mod catalog_json;
mod event_page;
pub(crate) mod eventcatalog;
mod example;
pub(crate) mod fields;
mod readme;
mod schemas;

use crate::format::Format;
use crate::model::Catalog;
use std::collections::BTreeMap;

pub use schemas::schema_id;

/// The directory holding one Markdown page per event.
pub(crate) const EVENTS_DIR: &str = "events";
/// The directory holding one standalone JSON Schema per event.
pub(crate) const SCHEMAS_DIR: &str = "schemas";

/// Every file of a rendered catalog, by path relative to the output directory (`/`-separated),
/// sorted by path.
///
/// ```
/// # use event_core::DomainEvent;
/// # use schemars::JsonSchema;
/// # use serde::{Deserialize, Serialize};
/// # /// An order was paid.
/// # #[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
/// # #[event(name = "order.paid")]
/// # struct OrderPaid { order_id: String }
/// let registry = event_core::Registry::from_descriptors([OrderPaid::descriptor()])?;
/// let rendered = event_catalog::Catalog::from_registry(&registry).render();
/// let paths: Vec<&str> = rendered.iter().map(|(path, _)| path).collect();
/// assert_eq!(
///     paths,
///     ["README.md", "asyncapi.json", "catalog.json", "events/order.paid.v1.md", "schemas/order.paid.v1.json"]
/// );
/// assert!(rendered.get("README.md").unwrap().contains("order.paid"));
/// # Ok::<(), event_core::RegistryError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rendered {
    files: BTreeMap<String, String>,
}

impl Rendered {
    /// The files as (relative path, contents), sorted by path.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files.iter().map(|(p, c)| (p.as_str(), c.as_str()))
    }

    /// The contents of one file.
    pub fn get(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(String::as_str)
    }

    /// How many files there are.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there are no files (never in [`Format::Catalog`]: `README.md` and the JSON
    /// documents are always there; in [`Format::EventCatalog`], for a catalog without events).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    fn insert(&mut self, path: String, contents: String) {
        self.files.insert(path, contents);
    }
}

impl Catalog {
    /// Renders every file of the catalog in memory, in this crate's own layout
    /// ([`Format::Catalog`]); see the crate docs for the layout.
    pub fn render(&self) -> Rendered {
        let mut out = Rendered::default();
        out.insert("README.md".to_owned(), readme::render(self));
        out.insert("catalog.json".to_owned(), catalog_json::render(self));
        out.insert("asyncapi.json".to_owned(), asyncapi::render(self));
        for event in self.events() {
            let stem = event.file_stem();
            out.insert(
                format!("{EVENTS_DIR}/{stem}.md"),
                event_page::render(self, event),
            );
            out.insert(format!("{SCHEMAS_DIR}/{stem}.json"), schemas::render(event));
        }
        out
    }

    /// Renders, in memory, every file `format` owns: what
    /// [`write_as`](Catalog::write_as) writes and [`staleness_as`](Catalog::staleness_as)
    /// compares. The files [`Format::EventCatalog`] only creates when absent
    /// (`eventcatalog.config.js`...) are not among them.
    ///
    /// ```
    /// # use event_core::DomainEvent;
    /// # use schemars::JsonSchema;
    /// # use serde::{Deserialize, Serialize};
    /// /// An order was paid.
    /// #[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
    /// #[event(name = "order.paid", source = "payments", aggregate = "order")]
    /// struct OrderPaid { order_id: String }
    ///
    /// use event_catalog::{Catalog, Format};
    /// let registry = event_core::Registry::from_descriptors([OrderPaid::descriptor()])?;
    /// let catalog = Catalog::from_registry(&registry);
    /// assert_eq!(catalog.render_as(Format::Catalog), catalog.render());
    ///
    /// let rendered = catalog.render_as(Format::EventCatalog);
    /// let paths: Vec<&str> = rendered.iter().map(|(path, _)| path).collect();
    /// assert_eq!(
    ///     paths,
    ///     [
    ///         "domains/order/index.mdx",
    ///         "events/order.paid/index.mdx",
    ///         "events/order.paid/schema.json",
    ///         "services/payments/index.mdx",
    ///     ]
    /// );
    /// let page = rendered.get("events/order.paid/index.mdx").unwrap();
    /// assert!(page.contains("\nversion: \"1.0.0\"\n"));
    /// # Ok::<(), event_core::RegistryError>(())
    /// ```
    pub fn render_as(&self, format: Format) -> Rendered {
        match format {
            Format::Catalog => self.render(),
            Format::EventCatalog => {
                let mut out = Rendered::default();
                eventcatalog::render(self, &mut out);
                out
            }
        }
    }
}

/// The example payload the event page shows, synthesised from the schema, its PII fields
/// `[redacted]`.
pub(crate) fn example_payload(event: &crate::model::CatalogEvent) -> serde_json::Value {
    example::example(&event.schema, &event.pii)
}

/// How each older version is read as `event`, in words ("v1 by a raw upcaster ...").
pub(crate) fn upcast_steps(event: &crate::model::CatalogEvent) -> Vec<String> {
    event
        .upcasts
        .iter()
        .map(|step| match step.by {
            crate::model::UpcastBy::Previous => {
                format!("v{} by `previous` and `From`", step.from_version)
            }
            crate::model::UpcastBy::Raw => format!(
                "v{} by a raw upcaster (its type is gone)",
                step.from_version
            ),
        })
        .collect()
}

/// Text made safe for one Markdown table cell: pipes escaped, line breaks as `<br>`.
pub(crate) fn cell(text: &str) -> String {
    text.trim()
        .replace('|', "\\|")
        .replace("\r\n", "\n")
        .replace("\n\n", "<br><br>")
        .replace('\n', " ")
}

/// The first paragraph of a description, on one line.
pub(crate) fn summary(text: &str) -> String {
    let first = text.trim().split("\n\n").next().unwrap_or_default();
    cell(first)
}

/// A comma-separated list, or `-` when empty.
pub(crate) fn list<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(", ")
    }
}
