//! What the commands print: aligned tables for people (column widths from content), JSON
//! for scripts, and the progress bar of `replay --wait`.
//!
//! Both targets hand over the API's JSON shapes (`SubscriptionPage`, `DeadLetterView`,
//! `EventPage`, `HealthView`...), so the tables read the same whichever answered.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use std::fmt::Write as _;
use std::io::Write as _;

/// How to print.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Out {
    pub(crate) json: bool,
}

impl Out {
    pub(crate) fn new(json: bool) -> Self {
        Out { json }
    }

    /// Prints one document: as JSON, or as `render` makes it for people.
    pub(crate) fn document(self, value: &Value, render: impl FnOnce(&Value) -> String) {
        if self.json {
            let text = serde_json::to_string_pretty(value).unwrap_or_default();
            emit(&text);
        } else {
            emit(render(value).trim_end_matches('\n'));
        }
    }
}

/// Writes `text` and a newline to stdout, flushed; false when stdout is gone (a closed pipe).
pub(crate) fn emit(text: &str) -> bool {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .is_ok()
}

/// A column of a table: its header and where its cells are in each row (a JSON pointer).
pub(crate) struct Column {
    header: &'static str,
    pointer: &'static str,
    /// Longer cells are cut to this many characters.
    max: Option<usize>,
}

const fn col(header: &'static str, pointer: &'static str) -> Column {
    Column {
        header,
        pointer,
        max: None,
    }
}

const fn cut(header: &'static str, pointer: &'static str, max: usize) -> Column {
    Column {
        header,
        pointer,
        max: Some(max),
    }
}

/// A row's cell as text on one line: strings as they are, `null` as `-`, anything else as
/// compact JSON.
fn cell(value: Option<&Value>, max: Option<usize>) -> String {
    let text = match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Bool(true)) => "yes".to_owned(),
        Some(Value::Bool(false)) => "NO".to_owned(),
        Some(other) => other.to_string(),
    };
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match max {
        Some(max) if text.chars().count() > max => {
            let kept: String = text.chars().take(max.saturating_sub(1)).collect();
            format!("{kept}…")
        }
        _ => text,
    }
}

/// The rows as an aligned table under a header; columns none of the rows has are left out.
pub(crate) fn table(rows: &[Value], columns: &[Column]) -> String {
    let columns: Vec<&Column> = columns
        .iter()
        .filter(|c| rows.iter().any(|row| row.pointer(c.pointer).is_some()))
        .collect();
    let mut lines: Vec<Vec<String>> = vec![columns.iter().map(|c| c.header.to_owned()).collect()];
    for row in rows {
        lines.push(
            columns
                .iter()
                .map(|c| cell(row.pointer(c.pointer), c.max))
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            lines
                .iter()
                .map(|line| line[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for line in lines {
        let mut out = String::new();
        for (i, value) in line.iter().enumerate() {
            if i + 1 == line.len() {
                out.push_str(value);
            } else {
                let pad = widths[i] - value.chars().count();
                out.push_str(value);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        text.push_str(out.trim_end());
        text.push('\n');
    }
    text
}

fn list<'a>(value: &'a Value, field: &str) -> &'a [Value] {
    value
        .get(field)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `{"subscriptions": [...]}`.
pub(crate) fn subscriptions(value: &Value) -> String {
    let rows = list(value, "subscriptions");
    if rows.is_empty() {
        return "no subscriptions".to_owned();
    }
    let mut text = table(
        rows,
        &[
            col("NAME", "/name"),
            col("FEED", "/feed"),
            col("CHECKPOINT", "/checkpoint"),
            col("LAG", "/lag"),
            col("IN FLIGHT", "/in_flight"),
            col("DELIVERED", "/delivered"),
            col("RETRIED", "/retried"),
            col("DEAD LETTERS", "/dead_letters"),
        ],
    );
    if let Some(head) = value.get("head") {
        let _ = writeln!(text, "head at position {head}");
    }
    text
}

/// `{"dead_letters": [...]}`.
pub(crate) fn dead_letters(value: &Value) -> String {
    let rows = list(value, "dead_letters");
    if rows.is_empty() {
        return "no dead letters".to_owned();
    }
    table(
        rows,
        &[
            col("ID", "/id"),
            col("TYPE", "/event_type"),
            col("KEY", "/partition_key"),
            col("ATTEMPTS", "/attempts"),
            col("FAILED AT", "/failed_at"),
            cut("ERROR", "/error", 60),
        ],
    )
}

/// One `DeadLetterView`: its fields, then its event.
pub(crate) fn dead_letter(value: &Value) -> String {
    let fields = [
        ("id", "/id"),
        ("subscription", "/subscription"),
        ("event id", "/event_id"),
        ("type", "/event_type"),
        ("partition key", "/partition_key"),
        ("attempts", "/attempts"),
        ("failed at", "/failed_at"),
        ("held back", "/held_back"),
        ("error", "/error"),
    ];
    let width = fields.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let mut text = String::new();
    for (name, pointer) in fields {
        let _ = writeln!(
            text,
            "{name:width$}  {}",
            cell(value.pointer(pointer), None)
        );
    }
    text.push_str("event:\n");
    let event = value.get("event").cloned().unwrap_or(Value::Null);
    text.push_str(&serde_json::to_string_pretty(&event).unwrap_or_default());
    text.push('\n');
    text
}

/// An `EventPage`.
pub(crate) fn events(value: &Value) -> String {
    let rows = list(value, "events");
    let mut text = if rows.is_empty() {
        "no events\n".to_owned()
    } else {
        table(rows, &EVENT_COLUMNS)
    };
    if let Some(cursor) = value.get("next_cursor").and_then(Value::as_str) {
        let _ = writeln!(text, "more: --cursor {cursor}");
    }
    text
}

const EVENT_COLUMNS: [Column; 6] = [
    col("POSITION", "/position"),
    col("OCCURRED AT", "/event/occurred_at"),
    col("TYPE", "/event/type"),
    col("KEY", "/event/meta/partition_key"),
    col("ID", "/event/id"),
    cut("PAYLOAD", "/event/payload", 100),
];

/// One `EventView` on one line, for `tail`: no header, columns separated by two spaces.
pub(crate) fn event_line(value: &Value) -> String {
    EVENT_COLUMNS
        .iter()
        .map(|c| cell(value.pointer(c.pointer), c.max))
        .collect::<Vec<_>>()
        .join("  ")
}

/// A `HealthView`.
pub(crate) fn health(value: &Value) -> String {
    let mut text = table(
        list(value, "checks"),
        &[
            col("CHECK", "/name"),
            col("OK", "/ok"),
            col("DETAIL", "/detail"),
        ],
    );
    let _ = writeln!(text, "status: {}", cell(value.get("status"), None));
    text
}

/// An `ActionView`: `redelivered ID`, `discarded ID`, `replaying NAME`.
pub(crate) fn action(value: &Value) -> String {
    let mut text = format!(
        "{} {}",
        cell(value.get("action"), None),
        cell(value.get("id"), None)
    );
    if let Some(from) = value.get("from") {
        let _ = write!(text, " after position {from}");
    }
    if let Some(checkpoint) = value.get("checkpoint") {
        let _ = write!(
            text,
            ": checkpoint {checkpoint}, lag {}",
            cell(value.get("lag"), None)
        );
    }
    text
}

/// The progress of a replay: the subscription's checkpoint on its way to the head. Drawn
/// only on a terminal (stderr), never with `--json`.
pub(crate) struct Progress {
    bar: ProgressBar,
    from: u64,
    /// Whether to draw, once the first `set` gave the bar its length.
    draw: bool,
}

impl Progress {
    pub(crate) fn new(out: Out, name: &str, from: u64) -> Self {
        let bar = ProgressBar::hidden();
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} events ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(format!("replaying {name}"));
        Progress {
            bar,
            from,
            draw: !out.json,
        }
    }

    /// The checkpoint is at `checkpoint`, the head at `head`.
    pub(crate) fn set(&mut self, checkpoint: u64, head: u64) {
        self.bar.set_length(head.saturating_sub(self.from));
        self.bar
            .set_position(checkpoint.min(head).saturating_sub(self.from));
        if std::mem::take(&mut self.draw) {
            // Drawn only where stderr is a terminal.
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let rows = [
            json!({"name": "billing", "lag": 0}),
            json!({"name": "shipping-labels", "lag": 12}),
        ];
        let text = table(
            &rows,
            &[
                col("NAME", "/name"),
                col("FEED", "/feed"),
                col("LAG", "/lag"),
            ],
        );
        assert_eq!(
            text,
            "NAME             LAG\nbilling          0\nshipping-labels  12\n"
        );
    }

    #[test]
    fn long_cells_are_cut_and_kept_on_one_line() {
        let value = json!("a\nb".to_owned() + &"x".repeat(20));
        assert_eq!(cell(Some(&value), Some(5)), "a bx…");
        assert_eq!(cell(None, None), "-");
    }
}
