//! Prints the events of the `orders` domain, as the registry sees them, as a text table.

use event_core::EventDescriptor;
use std::io::{self, Write};
use std::process::ExitCode;

use orders as _; // link the events of `orders`: nothing else here names the crate

const HEADERS: [&str; 7] = [
    "TYPE",
    "VERSION",
    "SOURCE",
    "AGGREGATE",
    "PARTITION KEY",
    "PII",
    "RUST TYPE",
];

fn main() -> ExitCode {
    let registry = match event_core::registry() {
        Ok(registry) => registry,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let rows: Vec<[String; 7]> = registry.iter().map(row).collect();
    let deprecated = registry.iter().filter(|d| d.is_deprecated()).count();
    let summary = format!("{} events, {deprecated} deprecated (*)", registry.len());
    match print_table(&rows, &summary) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: cannot write the table: {err}");
            ExitCode::FAILURE
        }
    }
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
fn print_table(rows: &[[String; 7]], summary: &str) -> io::Result<()> {
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = io::stdout().lock();
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
