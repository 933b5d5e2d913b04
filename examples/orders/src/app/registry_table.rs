//! The event registry as a text table: every event linked into the binary.

use super::Error;
use event_core::EventDescriptor;
use std::io::{self, Write};

const HEADERS: [&str; 7] = [
    "TYPE",
    "VERSION",
    "SOURCE",
    "AGGREGATE",
    "PARTITION KEY",
    "PII",
    "RUST TYPE",
];

/// Writes every event of the registry (those of this crate, when it is linked) as a table,
/// sorted by type and version, then a one-line summary: how many events, how many of them
/// deprecated (their version is marked `*`).
///
/// ```
/// let mut out = Vec::new();
/// orders::app::write_registry_table(&mut out)?;
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.lines().any(|line| line.starts_with("order.created ")));
/// assert!(text.ends_with("17 events, 1 deprecated (*)\n"));
/// # Ok::<(), orders::app::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Registry`] when two event types share a name and version; [`Error::Io`] when
/// `out` fails.
pub fn write_registry_table(out: &mut dyn Write) -> Result<(), Error> {
    let registry = event_core::registry()?;
    let rows: Vec<[String; 7]> = registry.iter().map(row).collect();
    let deprecated = registry.iter().filter(|d| d.is_deprecated()).count();
    let summary = format!("{} events, {deprecated} deprecated (*)", registry.len());
    print_table(out, &rows, &summary)?;
    Ok(())
}

/// One table row; a deprecated event's version is marked `*`.
fn row(d: &EventDescriptor) -> [String; 7] {
    let mark = if d.is_deprecated() { "*" } else { "" };
    let pii = if d.pii().is_empty() {
        "-".to_owned()
    } else {
        d.pii().join(", ")
    };
    [
        d.name().to_owned(),
        format!("{}{mark}", d.version()),
        d.source().unwrap_or("-").to_owned(),
        d.aggregate().unwrap_or("-").to_owned(),
        d.partition_key().unwrap_or("-").to_owned(),
        pii,
        d.rust_type().to_owned(),
    ]
}

/// Writes the header and rows left-aligned in columns two spaces apart, then the summary.
fn print_table(out: &mut dyn Write, rows: &[[String; 7]], summary: &str) -> io::Result<()> {
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = HEADERS.map(str::to_owned);
    for cells in std::iter::once(&header).chain(rows) {
        let line: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    writeln!(out, "\n{summary}")
}
