//! `events/<id>/index.mdx` (and `versioned/<version>/index.mdx`): one event version's page.
//!
//! Frontmatter: `id`, `name`, `version`, `summary` (the description's first paragraph),
//! `badges` (deprecated, with the reason; personal data, with the fields) and
//! `schemaPath`. Body: the deprecation notice, the description past its first paragraph
//! (EventCatalog shows the summary under the title), the field table, the metadata, the
//! version history (empty for now), the schema viewer and the node graph.

use super::yaml::Frontmatter;
use super::{SCHEMA, ids, mdx};
use crate::model::{Catalog, CatalogEvent};
use crate::render::fields::{self, FieldRow};
use std::fmt::Write;

pub(super) fn render(catalog: &Catalog, event: &CatalogEvent) -> String {
    let mut front = Frontmatter::new();
    front.string("id", &ids::id(&event.name));
    front.string("name", &event.name);
    front.string("version", &ids::version(event.version));
    front.string("summary", &summary(event));
    front.maps("badges", &badges(event));
    front.string("schemaPath", SCHEMA);
    let mut out = front.finish();
    out.push('\n');
    write_body(&mut out, catalog, event);
    out
}

/// The first paragraph of the description on one line, or a sentence naming the event when
/// there is none (the linter requires a summary).
pub(super) fn summary(event: &CatalogEvent) -> String {
    let first = event
        .description
        .as_deref()
        .map(|d| d.replace("\r\n", "\n"))
        .and_then(|d| {
            d.trim()
                .split("\n\n")
                .next()
                .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .filter(|p| !p.is_empty());
    first.unwrap_or_else(|| format!("The {} event, version {}.", event.name, event.version))
}

/// The description without its first paragraph, which EventCatalog shows as the summary
/// under the title; the whole description when that paragraph holds a code fence (cutting
/// there would leave a fence open); `None` when nothing is left.
fn description_after_summary(event: &CatalogEvent) -> Option<String> {
    let description = event.description.as_deref()?.replace("\r\n", "\n");
    let description = description.trim();
    let (first, rest) = description.split_once("\n\n").unwrap_or((description, ""));
    let fenced = first
        .lines()
        .any(|line| matches!(line.trim_start().get(..3), Some("```" | "~~~")));
    let rest = if fenced { description } else { rest.trim() };
    (!rest.is_empty()).then(|| rest.to_owned())
}

/// The badges: deprecated (red, with the reason) and personal data (amber, with the fields).
fn badges(event: &CatalogEvent) -> Vec<Vec<(&'static str, String)>> {
    let badge = |content: String, color: &str| {
        vec![
            ("content", content),
            ("backgroundColor", color.to_owned()),
            ("textColor", color.to_owned()),
        ]
    };
    let mut badges = Vec::new();
    if event.deprecated.is_deprecated() {
        // A badge is one line: the reason's whitespace, line breaks included, collapsed.
        let note = event
            .deprecated
            .note()
            .map(|note| note.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        let content = if note.is_empty() {
            "Deprecated".to_owned()
        } else {
            format!("Deprecated: {note}")
        };
        badges.push(badge(content, "red"));
    }
    if !event.pii.is_empty() {
        badges.push(badge(
            format!("Personal data: {}", event.pii.join(", ")),
            "amber",
        ));
    }
    badges
}

fn write_body(out: &mut String, catalog: &Catalog, event: &CatalogEvent) {
    if event.deprecated.is_deprecated() {
        out.push_str(":::warning[Deprecated]\n");
        match event.deprecated.note().map(str::trim) {
            Some(note) if !note.is_empty() => out.push_str(&mdx::text(note)),
            _ => out.push_str("This event is deprecated."),
        }
        out.push_str("\n:::\n\n");
    }
    if let Some(rest) = description_after_summary(event) {
        out.push_str(&mdx::text(&rest));
        out.push_str("\n\n");
    }

    out.push_str("## Fields\n\n");
    let rows = fields::rows(event);
    if rows.is_empty() {
        out.push_str("No fields.\n\n");
    } else {
        out.push_str("| Field | Type | Required | Description | Personal data | Partition key |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        for row in &rows {
            write_row(out, row);
        }
        out.push('\n');
    }

    write_metadata(out, event);
    out.push_str(&version_history(catalog, event));

    out.push_str("## Schema\n\n");
    let _ = writeln!(out, "<SchemaViewer file=\"{SCHEMA}\" />\n");
    out.push_str("## Producers and consumers\n\n<NodeGraph />\n");
}

fn write_row(out: &mut String, row: &FieldRow) {
    let yes = |flag: bool| if flag { "yes" } else { "" };
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} |",
        mdx::cell(&mdx::code(&row.path)),
        mdx::cell(&row.ty),
        if row.required { "yes" } else { "no" },
        mdx::cell(row.description.as_deref().unwrap_or("")),
        yes(row.pii),
        yes(row.partition_key),
    );
}

/// The metadata table: what EventCatalog does not show by itself.
fn write_metadata(out: &mut String, event: &CatalogEvent) {
    out.push_str("## Metadata\n\n| | |\n|---|---|\n");
    let mut row = |key: &str, value: String| {
        let _ = writeln!(out, "| {key} | {value} |");
    };
    row("Event type", mdx::cell(&mdx::code(&event.name)));
    row("Version", event.version.to_string());
    row("Rust type", mdx::cell(&mdx::code(&event.rust_type)));
    row(
        "Aggregate",
        event
            .aggregate
            .as_deref()
            .map_or_else(|| "-".to_owned(), |a| mdx::cell(&mdx::code(a))),
    );
    row(
        "Partition key",
        event
            .partition_key
            .as_deref()
            .map_or_else(|| "-".to_owned(), |k| mdx::cell(&mdx::code(k))),
    );
    let pii: Vec<String> = event
        .pii
        .iter()
        .map(|field| mdx::cell(&mdx::code(field)))
        .collect();
    row("Personal data", list(&pii));
    let steps = crate::render::upcast_steps(event);
    row(
        "Reads older versions",
        if steps.is_empty() {
            "-".to_owned()
        } else {
            steps.join("; ")
        },
    );
    row(
        "Schema",
        format!(
            "`{SCHEMA}` ({})",
            mdx::cell(&mdx::code(&crate::render::schema_id(
                &event.name,
                event.version
            )))
        ),
    );
    out.push('\n');
}

/// A comma-separated list, or `-` when empty.
fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}

/// The "Version history" section of the event page, between the metadata and the schema:
/// the same section as the Markdown page ([`crate::history`]), every step of the event's
/// versions with its upcast, field changes and verdict, its prose made safe for MDX.
fn version_history(catalog: &Catalog, event: &CatalogEvent) -> String {
    let section = crate::history::markdown(catalog, &event.name);
    format!("{}\n", mdx::text(&section))
}
