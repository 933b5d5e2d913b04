//! The test helper that keeps a committed catalog current: `cargo test` fails when it is
//! stale, and `EVENT_CATALOG_BLESS=1 cargo test` regenerates it.

use crate::compat::{Mode, Profile};
use crate::format::Format;
use crate::model::Catalog;
use std::path::Path;

/// The environment variable that makes [`assert_catalog_current`] and
/// [`assert_eventcatalog_current`] regenerate the catalog instead of failing (set it to `1`).
pub const BLESS_ENV: &str = "EVENT_CATALOG_BLESS";

/// Fails the calling test when the catalog in `dir` is not what the linked events render;
/// with `EVENT_CATALOG_BLESS=1` set, writes the catalog instead (like trybuild's
/// `TRYBUILD=overwrite`), and review the diff before committing it.
///
/// The panic message lists stale, missing and extra files with the first differing line of
/// each, and any incompatible schema change against the committed `catalog.json` (backward
/// mode, serde profile), so that blessing never hides a breaking change unnoticed.
///
/// Call it from a test of the crate that defines the events (a build script cannot: it runs
/// before the crate it builds is compiled, so it cannot see the crate's own events):
///
/// ```no_run
/// // tests/catalog.rs of the domain crate
/// #[test]
/// fn catalog_is_current() {
///     event_catalog::assert_catalog_current(concat!(env!("CARGO_MANIFEST_DIR"), "/catalog"));
/// }
/// ```
///
/// # Panics
///
/// When the catalog is stale and `EVENT_CATALOG_BLESS` is not `1`, when the registry is
/// invalid (two types declare the same event), or when a file cannot be read or written.
#[track_caller]
pub fn assert_catalog_current(dir: impl AsRef<Path>) {
    let dir = dir.as_ref();
    let catalog = Catalog::linked().unwrap_or_else(|err| panic!("invalid event registry: {err}"));
    let staleness = catalog
        .staleness(dir)
        .unwrap_or_else(|err| panic!("cannot check the catalog in `{}`: {err}", dir.display()));
    if staleness.is_current() {
        return;
    }
    let committed = Catalog::read(dir.join("catalog.json")).ok();
    let breaking = committed
        .map(|old| Catalog::compare(&old, &catalog, Mode::Backward, Profile::Serde))
        .filter(|report| !report.is_compatible());
    if std::env::var(BLESS_ENV).is_ok_and(|v| v == "1") {
        catalog
            .write_to(dir)
            .unwrap_or_else(|err| panic!("cannot write the catalog to `{}`: {err}", dir.display()));
        if let Some(report) = breaking {
            eprintln!("event catalog regenerated with incompatible changes:\n{report}");
        }
        return;
    }
    let mut message = format!(
        "the event catalog in `{}` is stale:\n{staleness}",
        dir.display()
    );
    if let Some(report) = breaking {
        message.push_str(
            "\nand the schema changes are incompatible with the committed catalog.json:\n",
        );
        message.push_str(&report.to_string());
    }
    message.push_str("\nregenerate it with `EVENT_CATALOG_BLESS=1 cargo test` and review the diff");
    panic!("{message}");
}

/// [`assert_catalog_current`] for an EventCatalog folder ([`Format::EventCatalog`]): fails
/// the calling test when the generated pages and schemas in `dir` are not what the linked
/// events render, and with `EVENT_CATALOG_BLESS=1` set, writes them instead.
///
/// Only staleness is checked (an EventCatalog folder has no `catalog.json` to compare
/// schemas against); `eventcatalog.config.js` and the other project files are the user's and
/// not compared.
///
/// ```no_run
/// // tests/catalog.rs of the domain crate
/// #[test]
/// fn eventcatalog_is_current() {
///     event_catalog::assert_eventcatalog_current(concat!(env!("CARGO_MANIFEST_DIR"), "/eventcatalog"));
/// }
/// ```
///
/// # Panics
///
/// When the folder is stale and `EVENT_CATALOG_BLESS` is not `1`, when the registry is
/// invalid (two types declare the same event), or when a file cannot be read or written.
#[track_caller]
pub fn assert_eventcatalog_current(dir: impl AsRef<Path>) {
    let dir = dir.as_ref();
    let catalog = Catalog::linked().unwrap_or_else(|err| panic!("invalid event registry: {err}"));
    let staleness = catalog
        .staleness_as(dir, Format::EventCatalog)
        .unwrap_or_else(|err| {
            panic!(
                "cannot check the EventCatalog folder `{}`: {err}",
                dir.display()
            )
        });
    if staleness.is_current() {
        return;
    }
    if std::env::var(BLESS_ENV).is_ok_and(|v| v == "1") {
        catalog
            .write_as(dir, Format::EventCatalog)
            .unwrap_or_else(|err| {
                panic!(
                    "cannot write the EventCatalog folder `{}`: {err}",
                    dir.display()
                )
            });
        return;
    }
    panic!(
        "the EventCatalog folder `{}` is stale:\n{staleness}\nregenerate it with `EVENT_CATALOG_BLESS=1 cargo test` and review the diff",
        dir.display()
    );
}
