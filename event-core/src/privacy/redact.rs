//! Redaction: what a PII field reads as wherever the toolkit shows a payload, and how text
//! that may quote one (an error message, a panic message) is cleaned of it.

use crate::envelope::RawEnvelope;
use crate::event::EventDescriptor;
use crate::registry::Registry;
use serde_json::Value;
use std::fmt;

/// What a redacted field reads as.
pub const REDACTED: &str = "[redacted]";

/// Every version of `event_type` that `registry` knows.
fn versions(registry: &Registry, event_type: &str) -> Vec<&'static EventDescriptor> {
    registry
        .iter()
        .filter(|descriptor| descriptor.name() == event_type)
        .collect()
}

/// Replaces the `#[event(pii)]` fields of a payload of `event_type` with [`REDACTED`], for
/// every version of the type `registry` knows; a payload of a type it does not know at
/// all is replaced whole, since nothing says which of its fields are personal.
pub fn redact_payload(registry: &Registry, event_type: &str, payload: &mut Value) {
    let versions = versions(registry, event_type);
    if versions.is_empty() {
        *payload = Value::String(format!(
            "{REDACTED}: an event type this service does not know"
        ));
        return;
    }
    if let Value::Object(fields) = payload {
        for descriptor in &versions {
            for field in descriptor.pii() {
                if let Some(value) = fields.get_mut(*field) {
                    *value = Value::String(REDACTED.to_owned());
                }
            }
        }
    }
}

/// The envelope as JSON, its payload redacted as by [`redact_payload`]. The partition key
/// is a copy of a payload field: when that field is personal (or the type unknown), its
/// copy in `meta.partition_key` reads [`REDACTED`] too.
pub fn redact_envelope(registry: &Registry, envelope: &RawEnvelope) -> Value {
    let mut json = serde_json::to_value(envelope).unwrap_or(Value::Null);
    let Some(payload) = json.get_mut("payload") else {
        return json;
    };
    redact_payload(registry, &envelope.event_type, payload);
    let versions = versions(registry, &envelope.event_type);
    let personal_key = versions.is_empty()
        || versions.iter().any(|descriptor| {
            descriptor
                .partition_key()
                .is_some_and(|key| descriptor.pii().contains(&key))
        });
    if personal_key && let Some(key) = json.pointer_mut("/meta/partition_key") {
        *key = Value::String(REDACTED.to_owned());
    }
    json
}

/// `text` (an error or a panic message about an event) with every value of the event's
/// `#[event(pii)]` fields replaced by [`REDACTED`]: the fields of every version of
/// `event_type` that `registry` knows, each string and number inside them, as `payload`
/// holds them; of a type the registry does not know, every string and number of `payload`.
///
/// A value is found quoted as JSON or as Rust's `Debug` writes it, or bare as a whole word
/// (not inside a longer one); a bare value of one character is left alone, and so are
/// booleans and `null`.
///
/// ```
/// use event_core::privacy::{REDACTED, redact_text};
/// use event_core::Registry;
/// use serde_json::json;
///
/// // A registry that knows no type: every value of the payload is personal.
/// let payload = json!({"email": "ada@example.com", "quantity": 3});
/// let text = r#"no customer "ada@example.com" (ada@example.com), 3 items"#;
/// assert_eq!(
///     redact_text(&Registry::default(), "customer.found", &payload, text),
///     format!("no customer {REDACTED} ({REDACTED}), 3 items"),
/// );
/// ```
pub fn redact_text(registry: &Registry, event_type: &str, payload: &Value, text: &str) -> String {
    let mut needles = Needles::default();
    let versions = versions(registry, event_type);
    if versions.is_empty() {
        needles.add(payload);
    } else if let Value::Object(fields) = payload {
        for descriptor in &versions {
            for field in descriptor.pii() {
                if let Some(value) = fields.get(*field) {
                    needles.add(value);
                }
            }
        }
    }
    needles.scrub(text)
}

/// The texts a personal value may appear as.
#[derive(Default)]
struct Needles {
    /// Found anywhere: a string quoted.
    quoted: Vec<String>,
    /// Found as a whole word: a string or a number as written.
    bare: Vec<String>,
}

impl Needles {
    fn add(&mut self, value: &Value) {
        match value {
            Value::String(s) if !s.is_empty() => {
                let debug = format!("{s:?}");
                let json = Value::String(s.clone()).to_string();
                self.bare.push(debug[1..debug.len() - 1].to_owned());
                self.bare.push(json[1..json.len() - 1].to_owned());
                self.bare.push(s.clone());
                self.quoted.push(debug);
                self.quoted.push(json);
            }
            Value::Number(n) => self.bare.push(n.to_string()),
            Value::Array(items) => items.iter().for_each(|item| self.add(item)),
            Value::Object(fields) => fields.values().for_each(|item| self.add(item)),
            _ => {}
        }
    }

    /// One pass over `text`, longest needles first, so that a value is never found again
    /// inside what replaced another, nor half of a longer value replaced.
    fn scrub(mut self, text: &str) -> String {
        self.bare.retain(|needle| needle.chars().count() > 1);
        if self.quoted.is_empty() && self.bare.is_empty() {
            return text.to_owned();
        }
        let mut needles: Vec<(&str, bool)> = self
            .quoted
            .iter()
            .map(|n| (n.as_str(), false))
            .chain(self.bare.iter().map(|n| (n.as_str(), true)))
            .collect();
        needles.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.cmp(b)));
        needles.dedup();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        'scan: while at < text.len() {
            let rest = &text[at..];
            for &(needle, whole_word) in &needles {
                if rest.starts_with(needle)
                    && (!whole_word || whole_word_at(text, at, at + needle.len()))
                {
                    out.push_str(REDACTED);
                    at += needle.len();
                    continue 'scan;
                }
            }
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            at += c.len_utf8();
        }
        out
    }
}

/// Whether `text[start..end]` is not part of a longer word: no letter or digit right
/// before it when it starts with one, nor right after it when it ends with one.
fn whole_word_at(text: &str, start: usize, end: usize) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let found = &text[start..end];
    let before_ok = !found.starts_with(word) || !text[..start].ends_with(word);
    let after_ok = !found.ends_with(word) || !text[end..].starts_with(word);
    before_ok && after_ok
}

/// A `serde_json` error that shows no value of the JSON it read.
///
/// Serde's messages quote the offending value (`invalid type: string "ada@example.com",
/// expected u32`): a personal one, maybe. This error says the same with the value
/// [`REDACTED`] (`invalid type: string [redacted], expected u32 at line 1 column 30`):
/// what went wrong and where (the kind of value, what was expected, line and column, the
/// names of missing, unknown or duplicate fields) and nothing of what the payload holds.
/// Its `Display` and `Debug` both show it so; [`unredacted`](Self::unredacted) gives the
/// error as `serde_json` wrote it, for code that must see the value and never prints it.
///
/// ```
/// use event_core::privacy::RedactedJsonError;
///
/// let error = serde_json::from_str::<u32>(r#""ada@example.com""#).unwrap_err();
/// let error = RedactedJsonError::from(error);
/// assert_eq!(
///     error.to_string(),
///     "invalid type: string [redacted], expected u32 at line 1 column 17"
/// );
/// assert!(!format!("{error:?}").contains("ada"));
/// ```
pub struct RedactedJsonError {
    error: serde_json::Error,
}

impl RedactedJsonError {
    /// The line of the input where the error was found, from 1 (0 when no input was read).
    pub fn line(&self) -> usize {
        self.error.line()
    }

    /// The column of that line, from 1 (0 when no input was read).
    pub fn column(&self) -> usize {
        self.error.column()
    }

    /// Whether the input was unreadable, not JSON, cut short, or JSON of another shape.
    pub fn classify(&self) -> serde_json::error::Category {
        self.error.classify()
    }

    /// The error as `serde_json` wrote it, quoting values of the payload: not for logs,
    /// dead letters or anything else shown to people.
    pub fn unredacted(&self) -> &serde_json::Error {
        &self.error
    }

    /// The error as `serde_json` wrote it; see [`unredacted`](Self::unredacted).
    pub fn into_unredacted(self) -> serde_json::Error {
        self.error
    }
}

impl From<serde_json::Error> for RedactedJsonError {
    fn from(error: serde_json::Error) -> Self {
        RedactedJsonError { error }
    }
}

impl fmt::Display for RedactedJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_quoted(&self.error.to_string()))
    }
}

impl fmt::Debug for RedactedJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedactedJsonError")
            .field("message", &redact_quoted(&self.error.to_string()))
            .field("line", &self.error.line())
            .field("column", &self.error.column())
            .finish()
    }
}

impl std::error::Error for RedactedJsonError {}

/// A serde message with the values it quotes replaced by [`REDACTED`]: every string in
/// double quotes, and what is in backticks (`` integer `5` ``, `` unknown variant `x` ``,
/// `` found `z` ``), except a field's name (`` missing field `email` ``) and what follows
/// "expected", which the type wrote, not the payload.
fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    let mut expected = false;
    while let Some(i) = rest.find(['"', '`']) {
        let (before, from) = rest.split_at(i);
        out.push_str(before);
        expected = expected
            || before
                .split(|c: char| !c.is_alphanumeric())
                .any(|word| word == "expected");
        if from.starts_with('"') {
            out.push_str(REDACTED);
            rest = &from[closing_quote(from)..];
        } else if out.ends_with("field ") || (expected && !out.ends_with("found ")) {
            let end = from[1..].find('`').map_or(from.len(), |j| j + 2);
            out.push_str(&from[..end]);
            rest = &from[end..];
        } else {
            out.push_str(REDACTED);
            rest = &from[closing_backtick(from)..];
        }
    }
    out.push_str(rest);
    out
}

/// Where the Rust-escaped string opening `from` ends: after its closing quote.
fn closing_quote(from: &str) -> usize {
    let mut escaped = false;
    for (i, c) in from.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return i + 1,
            _ => {}
        }
    }
    from.len()
}

/// Where the value in backticks opening `from` ends: after the backtick serde's messages
/// follow with `, expected`, `, there are no` or ` at line` (the value itself may hold
/// backticks), else with `, `; else after the last one.
fn closing_backtick(from: &str) -> usize {
    let inner = &from[1..];
    ["`, expected ", "`, there are no ", "` at line "]
        .iter()
        .filter_map(|end| inner.find(end))
        .min()
        .or_else(|| inner.find("`, "))
        .or_else(|| inner.rfind('`'))
        .map_or(from.len(), |j| j + 2)
}
