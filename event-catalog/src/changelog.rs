//! A human changelog between two catalogs, in Markdown: for a release note or a pull-request
//! comment (`diff OLD NEW --format markdown`).

use crate::compat::{Breaks, Report};
use crate::model::{Catalog, CatalogEvent};
use crate::render::summary;
use std::fmt::Write;

impl Report {
    /// This report as a Markdown changelog from `old` to `new` (the catalogs it compared):
    /// breaking changes with their rule and fix, new events, new versions with their field
    /// changes, deprecations, removals, and the other changes of events present in both.
    ///
    /// ```
    /// # use event_core::DomainEvent;
    /// # use schemars::JsonSchema;
    /// # use serde::{Deserialize, Serialize};
    /// use event_catalog::{Catalog, Mode, Profile};
    ///
    /// /// A refund was paid out.
    /// #[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
    /// #[event(name = "refund.paid", source = "payments")]
    /// struct RefundPaid { refund_id: String }
    ///
    /// let old = Catalog::default();
    /// let new = Catalog::from_registry(&event_core::Registry::from_descriptors([
    ///     RefundPaid::descriptor(),
    /// ])?);
    /// let report = Catalog::compare(&old, &new, Mode::Backward, Profile::Serde);
    /// let markdown = report.to_markdown(&old, &new);
    /// assert!(markdown.contains("## New events\n\n- `refund.paid` v1: A refund was paid out."));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_markdown(&self, old: &Catalog, new: &Catalog) -> String {
        render(self, old, new)
    }
}

fn render(report: &Report, old: &Catalog, new: &Catalog) -> String {
    let mut out = String::new();
    write(&mut out, report, old, new).expect("writing to a String cannot fail");
    out
}

fn write(out: &mut String, report: &Report, old: &Catalog, new: &Catalog) -> std::fmt::Result {
    let was_known = |name: &str| old.events().iter().any(|e| e.name == name);
    let (new_events, new_versions): (Vec<_>, Vec<_>) =
        report.added.iter().partition(|(name, _)| !was_known(name));
    let deprecated: Vec<&CatalogEvent> = report
        .changed
        .iter()
        .filter_map(|(name, version)| {
            let (before, after) = (old.get(name, *version)?, new.get(name, *version)?);
            (after.deprecated.is_deprecated() && !before.deprecated.is_deprecated())
                .then_some(after)
        })
        .collect();

    writeln!(out, "# Event changes\n")?;
    if report.added.is_empty() && report.removed.is_empty() && report.changed.is_empty() {
        return writeln!(out, "No changes.");
    }
    writeln!(
        out,
        "{} new event(s), {} new version(s), {} deprecated, {} removed, {} breaking change(s).",
        new_events
            .iter()
            .map(|(name, _)| name)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        new_versions.len(),
        deprecated.len(),
        report.removed.len(),
        report.findings.len()
    )?;

    write_breaking(out, report)?;

    if !new_events.is_empty() {
        writeln!(out, "\n## New events\n")?;
        for (name, version) in &new_events {
            let event = new.get(name, *version);
            let about = event
                .and_then(|e| e.description.as_deref())
                .map_or_else(String::new, |d| format!(": {}", summary(d)));
            writeln!(out, "- `{name}` v{version}{about}")?;
        }
    }

    if !new_versions.is_empty() {
        writeln!(out, "\n## New versions\n")?;
        for (name, version) in &new_versions {
            write_new_version(out, new, name, *version)?;
        }
    }

    if !deprecated.is_empty() {
        writeln!(out, "\n## Deprecated\n")?;
        for event in &deprecated {
            let why = event
                .deprecated
                .note()
                .map_or_else(String::new, |note| format!(": {}", summary(note)));
            writeln!(out, "- `{}` v{}{why}", event.name, event.version)?;
        }
    }

    if !report.removed.is_empty() {
        writeln!(out, "\n## Removed\n")?;
        for (name, version) in &report.removed {
            let was_deprecated = old
                .get(name, *version)
                .is_some_and(|e| e.deprecated.is_deprecated());
            let how = if was_deprecated {
                "it was deprecated"
            } else {
                "breaking: it was not deprecated first"
            };
            writeln!(out, "- `{name}` v{version} ({how})")?;
        }
    }

    let others: Vec<String> = report
        .changed
        .iter()
        .filter_map(|(name, version)| {
            let (before, after) = (old.get(name, *version)?, new.get(name, *version)?);
            let breaking = report
                .findings
                .iter()
                .any(|f| &f.event == name && f.version == *version);
            let what = differences(before, after, breaking);
            (!what.is_empty()).then(|| format!("- `{name}` v{version}: {}", what.join("; ")))
        })
        .collect();
    if !others.is_empty() {
        writeln!(out, "\n## Other changes\n")?;
        for line in others {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// The breaking changes, each with its rule, who breaks, and the fix.
fn write_breaking(out: &mut String, report: &Report) -> std::fmt::Result {
    if !report.findings.is_empty() {
        writeln!(out, "\n## Breaking changes\n")?;
        for finding in &report.findings {
            let at = if finding.path.is_empty() {
                String::new()
            } else {
                format!(", `{}`", finding.path)
            };
            let readers = match finding.breaks {
                Breaks::Backward => "new readers cannot read old events",
                Breaks::Forward => "old readers cannot read new events",
            };
            writeln!(
                out,
                "- `{}` v{}{at}: {} (rule `{}`; {readers}). Fix: {}",
                finding.event,
                finding.version,
                finding.message.trim_end_matches('.'),
                finding.rule,
                finding.hint
            )?;
        }
    }
    Ok(())
}

/// A new version of a known event: how the one below is read as it, and its field changes.
fn write_new_version(
    out: &mut String,
    new: &Catalog,
    name: &str,
    version: u32,
) -> std::fmt::Result {
    let step = new.history(name).into_iter().find(|s| s.to == version);
    let Some(step) = step else {
        return writeln!(out, "- `{name}` v{version}");
    };
    let read = match step.upcast {
        Some(crate::model::UpcastBy::Previous) => "read through `previous` and `From`",
        Some(crate::model::UpcastBy::Raw) => "read by a raw upcaster",
        None => "not upcast: subscriptions must name the old version to receive it",
    };
    writeln!(out, "- `{name}` v{version} (v{} {read})", step.from)?;
    for change in &step.changes {
        writeln!(out, "  - `{}` {}", change.path(), change.describe())?;
    }
    Ok(())
}

/// What else changed in one (name, version) present in both catalogs, in words.
fn differences(before: &CatalogEvent, after: &CatalogEvent, breaking: bool) -> Vec<String> {
    let mut what = Vec::new();
    if before.schema != after.schema {
        what.push(if breaking {
            "schema changed (breaking, see above)".to_owned()
        } else {
            "schema changed (compatible)".to_owned()
        });
    }
    if before.description != after.description {
        what.push("description changed".to_owned());
    }
    let moved = |label: &str, old: &[String], new: &[String], what: &mut Vec<String>| {
        let added: Vec<&str> = new
            .iter()
            .filter(|x| !old.contains(x))
            .map(String::as_str)
            .collect();
        let removed: Vec<&str> = old
            .iter()
            .filter(|x| !new.contains(x))
            .map(String::as_str)
            .collect();
        if !added.is_empty() {
            what.push(format!("{label} added: {}", backticked(&added)));
        }
        if !removed.is_empty() {
            what.push(format!("{label} removed: {}", backticked(&removed)));
        }
    };
    moved("consumers", &before.consumers, &after.consumers, &mut what);
    moved(
        "producers",
        &before.declared_producers,
        &after.declared_producers,
        &mut what,
    );
    moved("personal data", &before.pii, &after.pii, &mut what);
    for (label, old, new) in [
        ("source", &before.source, &after.source),
        ("aggregate", &before.aggregate, &after.aggregate),
        ("partition key", &before.partition_key, &after.partition_key),
    ] {
        if old != new {
            what.push(format!(
                "{label}: {} → {}",
                or_none(old.as_deref()),
                or_none(new.as_deref())
            ));
        }
    }
    if before.rust_type != after.rust_type {
        what.push(format!(
            "Rust type: `{}` → `{}`",
            before.rust_type, after.rust_type
        ));
    }
    if before.upcasts != after.upcasts {
        what.push("upcast steps changed".to_owned());
    }
    // A deprecation has its own section; an undeprecation is said here.
    if before.deprecated.is_deprecated() && !after.deprecated.is_deprecated() {
        what.push("no longer deprecated".to_owned());
    } else if before.deprecated.is_deprecated()
        && after.deprecated.is_deprecated()
        && before.deprecated != after.deprecated
    {
        what.push("deprecation note changed".to_owned());
    }
    what
}

fn backticked(items: &[&str]) -> String {
    items
        .iter()
        .map(|x| format!("`{x}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn or_none(value: Option<&str>) -> String {
    value.map_or_else(|| "none".to_owned(), |v| format!("`{v}`"))
}
