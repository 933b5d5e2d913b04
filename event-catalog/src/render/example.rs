//! An example payload synthesised from an event's JSON Schema.
//!
//! Deterministic: the same schema always gives the same example. Every property is filled,
//! optional ones too, so the example shows the whole shape; values are chosen to validate
//! against the schema: the first enum value, numbers inside `minimum`/`maximum`, strings by
//! `format` or by the field's name (`*_at` a timestamp, `*email*` an address, `*_url` a URL).
//! A recursive type stops at its first repetition with `null`, `[]` or `{}`.
//!
//! A field marked `#[event(pii)]`, and everything inside it, shows no value a person wrote
//! down (the schema's `examples` and `default`, which may be real data): its strings read
//! `[redacted]` where the schema allows it, and everything else is synthesised as above.

use crate::schema;
use event_core::privacy::REDACTED;
use serde_json::{Map, Value, json};

/// Whether a schema is personal data.
#[derive(Clone, Copy)]
enum Privacy<'a> {
    /// The payload itself: its properties named here are its PII fields.
    Root(&'a [String]),
    /// A PII field, or something inside one.
    Personal,
    /// Anything else.
    Plain,
}

impl<'a> Privacy<'a> {
    /// The privacy of the property `key` of a schema of this privacy.
    fn of(self, key: &str) -> Privacy<'a> {
        match self {
            Privacy::Root(pii) if pii.iter().any(|field| field == key) => Privacy::Personal,
            Privacy::Root(_) => Privacy::Plain,
            other => other,
        }
    }

    /// The privacy of what is not a named property (map values, array items).
    fn inner(self) -> Privacy<'a> {
        match self {
            Privacy::Root(_) => Privacy::Plain,
            other => other,
        }
    }

    fn is_personal(self) -> bool {
        matches!(self, Privacy::Personal)
    }
}

/// An example payload for the root schema `root`, whose top-level properties named in
/// `pii` are its PII fields.
pub(crate) fn example(root: &Value, pii: &[String]) -> Value {
    let mut stack = Vec::new();
    value(root, root, "", Privacy::Root(pii), &mut stack).unwrap_or(Value::Null)
}

/// An example of `schema`, or `None` when only a recursive value would do.
fn value(
    root: &Value,
    schema: &Value,
    name: &str,
    privacy: Privacy<'_>,
    stack: &mut Vec<String>,
) -> Option<Value> {
    let resolved = schema::resolve(root, schema, "");
    if let Some(target) = &resolved.target {
        if stack.contains(target) {
            return None;
        }
        stack.push(target.clone());
        let result = value_of(root, resolved.schema, name, privacy, stack);
        stack.pop();
        return result;
    }
    value_of(root, resolved.schema, name, privacy, stack)
}

fn value_of(
    root: &Value,
    s: &Value,
    name: &str,
    privacy: Privacy<'_>,
    stack: &mut Vec<String>,
) -> Option<Value> {
    if let Some(value) = s.get("const") {
        return Some(value.clone());
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .find(|v| !v.is_null())
            .or(values.first())
            .cloned();
    }
    // Examples and defaults are written by people, and may be real: not for personal data.
    if !privacy.is_personal() {
        if let Some(first) = s
            .get("examples")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
        {
            return Some(first.clone());
        }
        if let Some(default) = s.get("default") {
            return Some(default.clone());
        }
    }
    if let Some(inner) = schema::unwrap_all_of(s) {
        return value(root, inner, name, privacy, stack);
    }
    if let Some((_, alternatives)) = schema::alternatives(s) {
        let non_null = alternatives
            .iter()
            .filter(|a| !schema::is_null_schema(a))
            .find_map(|a| value(root, a, name, privacy, stack));
        let nullable = alternatives.iter().any(schema::is_null_schema);
        return non_null.or(nullable.then_some(Value::Null));
    }
    let types = schema::types(s);
    let ty = types.iter().find(|t| **t != "null").copied();
    match ty {
        Some("object") => object(root, s, privacy, stack),
        Some("array") => Some(array(root, s, name, privacy.inner(), stack)),
        Some("string") if privacy.is_personal() => Some(personal_string(s, name)),
        Some("string") => Some(string(s, name)),
        Some("integer") => Some(integer(s)),
        Some("number") => Some(number(s)),
        Some("boolean") => Some(Value::Bool(true)),
        None if types.contains(&"null") => Some(Value::Null),
        _ if s.get("properties").is_some() => object(root, s, privacy, stack),
        _ => Some(json!({})),
    }
}

fn object(root: &Value, s: &Value, privacy: Privacy<'_>, stack: &mut Vec<String>) -> Option<Value> {
    let required = schema::required(s);
    let mut map = Map::new();
    for (key, property) in schema::properties(s) {
        match value(root, property, key, privacy.of(key), stack) {
            Some(v) => {
                map.insert(key.clone(), v);
            }
            // Only a recursive value fits: an optional property is left out.
            None if !required.contains(&key.as_str()) => {}
            None => return None,
        }
    }
    if map.is_empty()
        && let Some(values @ Value::Object(_)) = s.get("additionalProperties")
        && let Some(v) = value(root, values, "key", privacy.inner(), stack)
    {
        map.insert("key".to_owned(), v);
    }
    Some(Value::Object(map))
}

fn array(
    root: &Value,
    s: &Value,
    name: &str,
    privacy: Privacy<'_>,
    stack: &mut Vec<String>,
) -> Value {
    if let Some(prefix) = s.get("prefixItems").and_then(Value::as_array) {
        let items: Option<Vec<Value>> = prefix
            .iter()
            .map(|p| value(root, p, name, privacy, stack))
            .collect();
        return Value::Array(items.unwrap_or_default());
    }
    let min = s.get("minItems").and_then(Value::as_u64).unwrap_or(0);
    let count = usize::try_from(min.max(1)).unwrap_or(1);
    match s
        .get("items")
        .and_then(|items| value(root, items, name, privacy, stack))
    {
        Some(item) => Value::Array(vec![item; count]),
        None => Value::Array(Vec::new()),
    }
}

/// A string of a PII field: [`REDACTED`], unless the schema wants a format, a pattern or a
/// length it does not have; then a made-up value as for any string.
fn personal_string(s: &Value, name: &str) -> Value {
    let (min, max) = length_bounds(s);
    let constrained = s.get("format").is_some() || s.get("pattern").is_some();
    if !constrained && (min..=max).contains(&REDACTED.chars().count()) {
        return Value::String(REDACTED.to_owned());
    }
    string(s, name)
}

/// `minLength` and `maxLength`, 0 and `usize::MAX` when absent.
fn length_bounds(s: &Value) -> (usize, usize) {
    let bound = |key: &str| {
        s.get(key)
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
    };
    (
        bound("minLength").unwrap_or(0),
        bound("maxLength").unwrap_or(usize::MAX),
    )
}

fn string(s: &Value, name: &str) -> Value {
    let text = match s.get("format").and_then(Value::as_str) {
        Some("date-time") => "2026-01-01T12:00:00Z",
        Some("date") => "2026-01-01",
        Some("time") => "12:00:00Z",
        Some("email") => "ada@example.com",
        Some("uri" | "url") => "https://example.com/",
        Some("uuid") => "01936f5c-1b2a-7c3d-8e4f-5a6b7c8d9e0f",
        Some("ipv4") => "192.0.2.1",
        Some("ipv6") => "2001:db8::1",
        _ if name.ends_with("_at") => "2026-01-01T12:00:00Z",
        _ if name.contains("email") => "ada@example.com",
        _ if name.ends_with("_url") || name == "url" => "https://example.com/",
        _ if name == "currency" => "EUR",
        _ if name == "country" => "DE",
        _ => "",
    };
    if !text.is_empty() {
        return Value::String(text.to_owned());
    }
    let base = if name.is_empty() { "text" } else { name };
    let (min, max) = length_bounds(s);
    let mut text = format!("example {}", base.replace('_', " "));
    while text.chars().count() < min {
        text.push('x');
    }
    Value::String(text.chars().take(max).collect())
}

fn integer(s: &Value) -> Value {
    let min = s.get("minimum").and_then(Value::as_f64);
    let max = s.get("maximum").and_then(Value::as_f64);
    let mut n: i64 = 1;
    if let Some(min) = min.and_then(|m| as_i64(m.ceil())) {
        n = n.max(min);
    }
    if let Some(max) = max.and_then(|m| as_i64(m.floor())) {
        n = n.min(max);
    }
    Value::from(n)
}

fn number(s: &Value) -> Value {
    let min = s.get("minimum").and_then(Value::as_f64).unwrap_or(f64::MIN);
    let max = s.get("maximum").and_then(Value::as_f64).unwrap_or(f64::MAX);
    json!(1.5_f64.clamp(min, max.max(min)))
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "checked against the i64 range first"
)]
fn as_i64(value: f64) -> Option<i64> {
    #[expect(clippy::cast_precision_loss, reason = "a bound, not a value")]
    let range = (i64::MIN as f64)..(i64::MAX as f64);
    range.contains(&value).then_some(value as i64)
}
