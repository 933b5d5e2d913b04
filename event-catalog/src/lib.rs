//! The event catalog: documentation, schemas and an AsyncAPI document generated from the
//! events linked into a binary, and a CI gate on stale docs and breaking schema changes.
//!
//! ```
//! use event_catalog::{Catalog, Mode, Profile};
//! # use event_core::DomainEvent;
//! # use schemars::JsonSchema;
//! # use serde::{Deserialize, Serialize};
//! /// A customer placed an order.
//! #[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
//! #[event(name = "order.created", source = "orders-service", aggregate = "order")]
//! struct OrderCreated {
//!     #[event(partition_key)]
//!     order_id: String,
//!     total_cents: u64,
//! }
//!
//! let registry = event_core::Registry::from_descriptors([OrderCreated::descriptor()])?;
//! let catalog = Catalog::from_registry(&registry);
//! let rendered = catalog.render(); // every file, in memory
//! assert!(rendered.get("events/order.created.v1.md").unwrap().contains("| `total_cents` |"));
//!
//! // compare with the catalog.json committed earlier
//! let committed = Catalog::from_json(rendered.get("catalog.json").unwrap())?;
//! assert!(Catalog::compare(&committed, &catalog, Mode::Backward, Profile::Serde).is_compatible());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The command line
//!
//! A workspace adds a three-line binary that links the domain crates and calls [`main`]:
//!
//! ```no_run
//! # #![allow(unused_imports)]
//! # mod orders {}
//! use orders as _; // link the events: a crate nothing references is not linked
//! fn main() -> std::process::ExitCode { event_catalog::main() }
//! ```
//!
//! - `generate --out DIR [--format catalog|eventcatalog]` writes the catalog,
//!   deterministically (byte-identical on rerun), in this crate's layout (the default) or as
//!   an EventCatalog project ([`Format`]);
//! - `check --out DIR [--mode backward|forward|full] [--strict]` exits 1 when DIR is stale
//!   or an event's schema changed incompatibly against `DIR/catalog.json` without a version
//!   bump; `check --format eventcatalog --out DIR` checks staleness only (an EventCatalog
//!   folder has no `catalog.json`);
//! - `diff OLD NEW [--format text|markdown]` compares two `catalog.json` files; the Markdown
//!   form is a changelog for a release note or a pull-request comment
//!   ([`Report::to_markdown`]).
//!
//! `check` also warns, without failing, about an event nobody consumes and a consumer of an
//! event nobody produces ([`Catalog::warnings`]). Producers are an event's `source` and the
//! services that declare it with [`event_core::produces!`].
//!
//! Exit codes: 0 success, 1 check or diff failed, 2 usage or input error
//! ([`EXIT_OK`], [`EXIT_FAILED`], [`EXIT_ERROR`]).
//!
//! # What is generated
//!
//! - `README.md`: the index of events (type, version, description, aggregate, producers,
//!   consumers) and a Mermaid diagram of producers → events → consumers;
//! - `events/<name>.v<N>.md`: description, metadata, the field table (nested objects
//!   flattened as `a.b`, array items as `a[]`, enum values listed), the version history
//!   (each step's upcast, field changes and compatibility verdict: [`Catalog::history`]),
//!   an example payload synthesised from the schema, and the schema;
//! - `catalog.json`: `{"format":1,"events":[...]}` with the keys of [`CatalogEvent`], sorted
//!   by name then version: the input of `check` and `diff`;
//! - `schemas/<name>.v<N>.json`: each payload schema (JSON Schema 2020-12, as schemars emits
//!   it) standalone, with `$id` `urn:event:<name>:v<N>` ([`schema_id`]);
//! - `asyncapi.json`: AsyncAPI 3.0.0, a channel and a message per event version, a `send`
//!   operation for its source and a `receive` operation per consumer. Payloads are JSON
//!   Schema draft-07 (`schemaFormat: application/schema+json;version=draft-07`): the
//!   descriptor's `schema_with(&SchemaSettings::draft07())`, or, for a catalog read back from
//!   `catalog.json`, the same transforms applied to the stored 2020-12 schema. AsyncAPI
//!   resolves `$ref`s against the whole document, so `#/definitions/X` in a payload becomes
//!   `#/components/messages/<name>.v<N>/payload/schema/definitions/X`.
//!
//! JSON is pretty-printed with sorted keys, so output does not depend on `serde_json`'s
//! `preserve_order` feature. Consumers come from `#[derive(EventUnion)]
//! #[union(consumer = "...")]` enums linked into the binary.
//!
//! # EventCatalog
//!
//! [`Format::EventCatalog`] ([`Catalog::write_as`], `generate --format eventcatalog`) writes
//! an [EventCatalog](https://eventcatalog.dev) project folder instead, MDX pages with YAML
//! frontmatter that EventCatalog 3.x builds into a browsable site:
//!
//! - `events/<id>/index.mdx` and `schema.json` (the payload schema, as in `schemas/`) for the
//!   newest version of each event name, `events/<id>/versioned/<N>.0.0/` for older ones.
//!   Frontmatter: `id`, `name`, `version`, `summary` (the description's first paragraph),
//!   `badges` (deprecated with the reason, personal data with the fields), `schemaPath`; no
//!   `owners`, which the registry does not know. Body: the rest of the description, the
//!   field table, the metadata (Rust type, aggregate, partition key, personal data, upcast
//!   steps, schema id), EventCatalog's `<SchemaViewer>` and `<NodeGraph>`;
//! - `services/<id>/index.mdx` per source and per consumer, `sends` and `receives` listing
//!   event versions (a name that is both is one service with both lists);
//! - `domains/<id>/index.mdx` per aggregate, or per first segment of the name of an event
//!   without one (`order.created` → `order`), `services` listing those that send its events;
//! - `eventcatalog.config.js`, `package.json` (the pinned `@eventcatalog/core` and
//!   `@eventcatalog/linter`), `.eventcatalogrc.js` (the linter's owner rule off) and
//!   `.gitignore`, written only when absent: yours after that, and never checked.
//!
//! Ids: a name made of lowercase ASCII letters, digits, `.`, `_` and `-` (every event name
//! the derive accepts, service names like `orders-service`) is its own id; any other name is
//! slugged and suffixed with a hash of it (`Billing Service` → `billing-service-<8 hex>`).
//! Versions are `N.0.0`: EventCatalog's linter wants semver, and orders versions as semver.
//! Text from doc comments is escaped for MDX (`<`, `>`, `{`, `}`, `:name` outside code), and
//! frontmatter strings are always double-quoted YAML.
//!
//! The folder owns only the pages it generated (their frontmatter opens with a
//! `# Generated by event-catalog` comment) and the schemas beside them: pages written by hand
//! in the same folders are neither checked nor deleted. To browse it, with Node.js 22.12 or
//! later: `npm install` and `npm run dev` in the folder; `scripts/check-eventcatalog.sh`
//! lints it and builds it with EventCatalog's own tools.
//!
//! # Compatibility
//!
//! [`Catalog::compare`] walks the old and new schema of every event version present in both
//! catalogs: properties removed or added, required and optional, types changed, narrowed or
//! widened (integer ranges included), `null` removed or added, enum values and variants
//! removed or added, `additionalProperties` tightened or loosened, through nested objects,
//! array items, map values and `$ref`s. Each [`Finding`] names the event, version, JSON
//! pointer, [`Rule`] and a fix hint. [`Mode::Backward`] (default) protects new readers of old
//! events, [`Mode::Forward`] old readers of new events, [`Mode::Full`] both.
//! [`Profile::Serde`] (default) judges as serde reads, so adding an optional field is never
//! breaking; [`Profile::Strict`] judges the schemas alone, as schema registries do.
//!
//! # Keeping a committed catalog current
//!
//! A build script cannot generate the catalog of its own crate's events: build scripts run
//! before the crate is compiled, so its events do not exist yet. The supported ways:
//!
//! - a test in the domain crate calling [`assert_catalog_current`] (and
//!   [`assert_eventcatalog_current`] for an EventCatalog folder): `cargo test` fails with
//!   a summary of stale files (and of incompatible changes) when the committed catalog is out
//!   of date, and `EVENT_CATALOG_BLESS=1 cargo test` rewrites it;
//! - the catalog binary's `check` in CI;
//! - the library API ([`Catalog::from_registry`], [`Catalog::write_to`] or
//!   [`Catalog::write_as`], [`Catalog::staleness`] or [`Catalog::staleness_as`],
//!   [`Catalog::compare`]) from the build script of *another* crate,
//!   one that has the domain crate as a build-dependency (reference it with
//!   `use my_events as _;` so that its events are linked into the build script).
//!
//! Linking: events register themselves before `main` runs, not by a call. A crate that
//! nothing in the binary references is not linked and its events are missing, so the
//! catalog binary references each domain crate; `generate` and `check` refuse to run when
//! no events are linked at all.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod changelog;
mod check;
mod cli;
mod compat;
mod coverage;
mod draft07;
mod error;
mod format;
mod history;
mod json;
mod model;
mod render;
mod schema;
mod sealed;
mod testing;
mod write;

pub use check::{StaleFile, Staleness};
pub use cli::{EXIT_ERROR, EXIT_FAILED, EXIT_OK, main};
pub use compat::{Breaks, Finding, Mode, Profile, Report, Rule};
pub use coverage::Warning;
pub use error::CatalogError;
pub use format::Format;
pub use history::{FieldChange, VersionStep};
pub use model::{Catalog, CatalogEvent, Deprecation, FORMAT, Upcast, UpcastBy};
pub use render::{Rendered, schema_id};
pub use testing::{BLESS_ENV, assert_catalog_current, assert_eventcatalog_current};
pub use write::WriteSummary;
