//! `events/<name>.v<N>.md`: one event's description, metadata, field table, example payload
//! and JSON Schema.

use super::fields::{self, FieldRow};
use super::{SCHEMAS_DIR, cell, list};
use crate::json;
use crate::model::{Catalog, CatalogEvent};
use std::fmt::Write;

pub(super) fn render(catalog: &Catalog, event: &CatalogEvent) -> String {
    let mut out = String::new();
    write(&mut out, catalog, event).expect("writing to a String cannot fail");
    out
}

fn write(out: &mut String, catalog: &Catalog, event: &CatalogEvent) -> std::fmt::Result {
    let stem = event.file_stem();
    writeln!(out, "# `{}` v{}\n", event.name, event.version)?;
    if event.deprecated.is_deprecated() {
        match event.deprecated.note() {
            Some(note) => writeln!(out, "> **Deprecated:** {}\n", note.trim())?,
            None => writeln!(out, "> **Deprecated.**\n")?,
        }
    }
    match &event.description {
        Some(description) => writeln!(out, "{}\n", description.trim())?,
        None => writeln!(out, "No description.\n")?,
    }
    writeln!(out, "| | |\n|---|---|")?;
    writeln!(out, "| Type | `{}` |", event.name)?;
    writeln!(out, "| Version | {} |", event.version)?;
    writeln!(out, "| Rust type | `{}` |", event.rust_type)?;
    writeln!(
        out,
        "| Source | {} |",
        cell(event.source.as_deref().unwrap_or("-"))
    )?;
    writeln!(
        out,
        "| Aggregate | {} |",
        cell(event.aggregate.as_deref().unwrap_or("-"))
    )?;
    writeln!(out, "| Producers | {} |", cell(&list(&event.producers())))?;
    writeln!(out, "| Consumers | {} |", cell(&list(&event.consumers)))?;
    let key = event
        .partition_key
        .as_deref()
        .map_or_else(|| "-".to_owned(), |k| format!("`{k}`"));
    writeln!(out, "| Partition key | {key} |")?;
    let pii: Vec<String> = event.pii.iter().map(|f| format!("`{f}`")).collect();
    writeln!(out, "| Personal data | {} |", list(&pii))?;
    let others: Vec<String> = catalog
        .events()
        .iter()
        .filter(|e| e.name == event.name && e.version != event.version)
        .map(|e| format!("[v{}]({}.md)", e.version, e.file_stem()))
        .collect();
    if !others.is_empty() {
        writeln!(out, "| Other versions | {} |", others.join(", "))?;
    }
    if !event.upcasts.is_empty() {
        let steps = super::upcast_steps(event);
        writeln!(out, "| Reads older versions | {} |", steps.join("; "))?;
    }
    writeln!(
        out,
        "| Schema | [`{SCHEMAS_DIR}/{stem}.json`](../{SCHEMAS_DIR}/{stem}.json) (`{}`) |",
        super::schema_id(&event.name, event.version)
    )?;

    writeln!(out, "\n## Fields\n")?;
    let rows = fields::rows(event);
    if rows.is_empty() {
        writeln!(out, "No fields.")?;
    } else {
        writeln!(
            out,
            "| Field | Type | Required | Description | PII | Partition key |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|")?;
        for row in &rows {
            write_row(out, row)?;
        }
    }

    writeln!(
        out,
        "\n{}",
        crate::history::markdown(catalog, &event.name).trim_end()
    )?;
    writeln!(out, "\n## Example payload\n")?;
    writeln!(
        out,
        "```json\n{}```",
        json::pretty(&super::example_payload(event))
    )?;
    writeln!(out, "\n## JSON Schema\n")?;
    writeln!(out, "```json\n{}```", json::pretty(&event.schema))
}

fn write_row(out: &mut String, row: &FieldRow) -> std::fmt::Result {
    let yes = |flag: bool| if flag { "yes" } else { "" };
    writeln!(
        out,
        "| `{}` | {} | {} | {} | {} | {} |",
        row.path,
        cell(&row.ty),
        if row.required { "yes" } else { "no" },
        cell(row.description.as_deref().unwrap_or("")),
        yes(row.pii),
        yes(row.partition_key),
    )
}
