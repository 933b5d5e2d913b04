//! The field table of an event page, derived from the payload's JSON Schema.
//!
//! Nested objects are flattened with dotted paths (`shipping_address.city`), array items
//! get `[]` (`line_items[].sku`), map values `.<key>`; `$ref`s are followed, each definition
//! at most once per path (a recursive type is shown once and marked).

use crate::model::CatalogEvent;
use crate::schema::{self, definition_name};
use serde_json::Value;

/// One row of the field table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldRow {
    /// Dotted path of the field in the payload.
    pub(crate) path: String,
    /// The type, in words: `string`, `integer (uint64)`, `array of object (LineItem)`.
    pub(crate) ty: String,
    /// Whether the field must be present in its object.
    pub(crate) required: bool,
    pub(crate) description: Option<String>,
    /// Marked `#[event(pii)]`, or inside a field that is.
    pub(crate) pii: bool,
    pub(crate) partition_key: bool,
}

/// What a field's schema describes, seen through `$ref`, `Option` and wrappers.
struct Shape<'a> {
    ty: String,
    nullable: bool,
    /// Rows below this field: an object's properties (prefix `.`), array items (`[]`).
    nested: Option<(String, &'a Value, String)>,
    /// The definition this shape came from, to stop recursion.
    target: Option<String>,
    description: Option<&'a str>,
}

/// The rows of an event's field table, in the order of the schema's (sorted) properties.
pub(crate) fn rows(event: &CatalogEvent) -> Vec<FieldRow> {
    let root = &event.schema;
    let mut out = Vec::new();
    let mut stack = Vec::new();
    let top = schema::resolve(root, root, "");
    object_rows(root, top.schema, "", &mut stack, &mut out);
    for row in &mut out {
        let top_field = row
            .path
            .split(['.', '['])
            .next()
            .unwrap_or(row.path.as_str());
        row.pii = event.pii.iter().any(|f| f == top_field);
        row.partition_key = event.partition_key.as_deref() == Some(row.path.as_str());
    }
    out
}

fn object_rows<'a>(
    root: &'a Value,
    object: &'a Value,
    prefix: &str,
    stack: &mut Vec<String>,
    out: &mut Vec<FieldRow>,
) {
    let required = schema::required(object);
    for (name, field) in schema::properties(object) {
        let path = format!("{prefix}{name}");
        let is_required = required.contains(&name.as_str());
        field_rows(root, field, &path, is_required, stack, out);
    }
}

fn field_rows<'a>(
    root: &'a Value,
    field: &'a Value,
    path: &str,
    required: bool,
    stack: &mut Vec<String>,
    out: &mut Vec<FieldRow>,
) {
    let shape = shape(root, field);
    let description = field
        .get("description")
        .and_then(Value::as_str)
        .or(shape.description);
    let recursive = leads_back(root, &shape, stack);
    let mut ty = shape.ty.clone();
    if shape.nullable {
        ty.push_str(", nullable");
    }
    if recursive {
        ty.push_str(" (recursive: its fields are listed above)");
    }
    out.push(FieldRow {
        path: path.to_owned(),
        ty,
        required,
        description: description.map(str::to_owned),
        pii: false,
        partition_key: false,
    });
    expand(root, &shape, path, stack, out);
}

/// Whether the value (or, for arrays and maps, its elements) is a definition already being
/// listed on this path.
fn leads_back(root: &Value, shape: &Shape<'_>, stack: &[String]) -> bool {
    if shape.target.as_ref().is_some_and(|t| stack.contains(t)) {
        return true;
    }
    match &shape.nested {
        Some((_, element, kind)) if kind != "object" => {
            leads_back(root, &self::shape(root, element), stack)
        }
        _ => false,
    }
}

/// The rows below a value of this shape: an object's properties, the fields of array items
/// (`path[]`) and map values (`path.<key>`), each definition at most once on a path.
fn expand<'a>(
    root: &'a Value,
    shape: &Shape<'a>,
    path: &str,
    stack: &mut Vec<String>,
    out: &mut Vec<FieldRow>,
) {
    if shape.target.as_ref().is_some_and(|t| stack.contains(t)) {
        return;
    }
    let Some((suffix, nested, kind)) = &shape.nested else {
        return;
    };
    if let Some(target) = &shape.target {
        stack.push(target.clone());
    }
    let path = format!("{path}{suffix}");
    if kind == "object" {
        object_rows(root, nested, &format!("{path}."), stack, out);
    } else {
        let element = self::shape(root, nested);
        expand(root, &element, &path, stack, out);
    }
    if shape.target.is_some() {
        stack.pop();
    }
}

fn shape<'a>(root: &'a Value, field: &'a Value) -> Shape<'a> {
    let resolved = schema::resolve(root, field, "");
    let mut target = resolved.target.clone();
    let mut s = resolved.schema;
    if let Some(inner) = schema::unwrap_all_of(s) {
        let inner = schema::resolve(root, inner, "");
        target = inner.target.or(target);
        s = inner.schema;
    }
    let description = s.get("description").and_then(Value::as_str);
    let named = |base: &str| match &target {
        Some(t) => format!("{base} ({})", definition_name(t)),
        None => base.to_owned(),
    };

    if let Some((_, alternatives)) = schema::alternatives(s) {
        return alternatives_shape(root, alternatives, target, description);
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        let nullable = values.contains(&Value::Null);
        let values: Vec<&Value> = values.iter().filter(|v| !v.is_null()).collect();
        return Shape {
            ty: named(&enum_words(&values)),
            nullable,
            nested: None,
            target,
            description,
        };
    }
    if let Some(value) = s.get("const") {
        return Shape {
            ty: enum_words(&[value]),
            nullable: false,
            nested: None,
            target,
            description,
        };
    }
    let all = schema::types(s);
    let nullable = all.contains(&"null");
    let types: Vec<&str> = all.into_iter().filter(|t| *t != "null").collect();
    let (ty, nested) = match types.as_slice() {
        ["object"] => match s.get("additionalProperties") {
            Some(values @ Value::Object(_)) if s.get("properties").is_none() => {
                let inner = shape(root, values).ty;
                (
                    named(&format!("map of {inner}")),
                    Some((".<key>".to_owned(), values, "map".to_owned())),
                )
            }
            _ => (
                named("object"),
                s.get("properties")
                    .map(|_| (String::new(), s, "object".to_owned())),
            ),
        },
        ["array"] => match s.get("items") {
            Some(items @ Value::Object(_)) => {
                let inner = shape(root, items);
                let mut words = inner.ty;
                if inner.nullable {
                    words.push_str(", nullable");
                }
                (
                    format!("array of {words}"),
                    Some(("[]".to_owned(), items, "array".to_owned())),
                )
            }
            _ => ("array".to_owned(), None),
        },
        [] => ("any".to_owned(), None),
        [single] => {
            let format = s.get("format").and_then(Value::as_str);
            (
                match format {
                    Some(format) => format!("{single} ({format})"),
                    None => (*single).to_owned(),
                },
                None,
            )
        }
        several => (several.join(" or "), None),
    };
    Shape {
        ty,
        nullable,
        nested,
        target,
        description,
    }
}

/// The values of alternatives that are all `const` or `enum` of scalars, like documented
/// unit variants of a Rust enum.
fn const_values<'a>(alternatives: &[&'a Value]) -> Option<Vec<&'a Value>> {
    if alternatives.is_empty() {
        return None;
    }
    let mut values = Vec::new();
    for alternative in alternatives {
        if let Some(value) = alternative.get("const") {
            values.push(value);
        } else if let Some(list) = alternative.get("enum").and_then(Value::as_array) {
            values.extend(list);
        } else {
            return None;
        }
    }
    Some(values)
}

fn enum_words(values: &[&Value]) -> String {
    let words: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
    format!("one of {}", words.join(", "))
}

/// The shape of `anyOf`/`oneOf`: an `Option` of one type, an enum of documented unit
/// variants, or a union of data-carrying variants.
fn alternatives_shape<'a>(
    root: &'a Value,
    alternatives: &'a [Value],
    target: Option<String>,
    description: Option<&'a str>,
) -> Shape<'a> {
    let named = |base: &str| match &target {
        Some(t) => format!("{base} ({})", definition_name(t)),
        None => base.to_owned(),
    };
    let nullable = alternatives.iter().any(schema::is_null_schema);
    let others: Vec<&Value> = alternatives
        .iter()
        .filter(|a| !schema::is_null_schema(a))
        .collect();
    if let Some(values) = const_values(&others) {
        return Shape {
            ty: named(&enum_words(&values)),
            nullable,
            nested: None,
            target,
            description,
        };
    }
    if let [single] = others.as_slice() {
        let mut inner = shape(root, single);
        inner.nullable |= nullable;
        inner.description = inner.description.or(description);
        return inner;
    }
    let words: Vec<String> = others
        .iter()
        .map(|alt| {
            alt.get("title")
                .and_then(Value::as_str)
                .map_or_else(|| shape(root, alt).ty, str::to_owned)
        })
        .collect();
    Shape {
        ty: named(&format!("one of: {}", words.join("; "))),
        nullable,
        nested: None,
        target,
        description,
    }
}
