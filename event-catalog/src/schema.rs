//! Reading the JSON Schema that schemars emits: resolving `$ref`s within the document,
//! seeing through `Option` (`anyOf` with `null`) and single-element `allOf` wrappers.

use crate::json::{escape_token, unescape_token};
use serde_json::Value;

/// How many `$ref`s are followed in a row before giving up (a `$ref` cycle).
const MAX_REF_CHAIN: usize = 32;

/// A subschema after following its `$ref` chain.
#[derive(Debug, Clone)]
pub(crate) struct Resolved<'a> {
    pub(crate) schema: &'a Value,
    pub(crate) pointer: String,
    /// The pointer of the last `$ref` target followed, which names a definition.
    pub(crate) target: Option<String>,
}

/// The subschema at a local JSON pointer (`#/$defs/Address` or `/$defs/Address`).
pub(crate) fn at_pointer<'a>(root: &'a Value, reference: &str) -> Option<(&'a Value, String)> {
    let pointer = reference.strip_prefix('#').unwrap_or(reference);
    let mut node = root;
    for token in pointer.split('/').skip(1) {
        let token = unescape_token(token);
        node = match node {
            Value::Object(map) => map.get(&token)?,
            Value::Array(items) => items.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some((node, pointer.to_owned()))
}

/// Follows `schema`'s `$ref` chain within `root`; unresolvable or cyclic chains stop where
/// they are. Keywords beside a `$ref` are not read: the renderers' view (the compatibility
/// checker reads them, see [`ref_target`] and [`has_constraints`]).
pub(crate) fn resolve<'a>(root: &'a Value, schema: &'a Value, pointer: &str) -> Resolved<'a> {
    let mut resolved = Resolved {
        schema,
        pointer: pointer.to_owned(),
        target: None,
    };
    for _ in 0..MAX_REF_CHAIN {
        let Some(reference) = resolved.schema.get("$ref").and_then(Value::as_str) else {
            break;
        };
        let Some((target, target_pointer)) = at_pointer(root, reference) else {
            break;
        };
        resolved.schema = target;
        resolved.pointer.clone_from(&target_pointer);
        resolved.target = Some(target_pointer);
    }
    resolved
}

/// The subschema `schema`'s own `$ref` points to (one step), with its pointer.
pub(crate) fn ref_target<'a>(root: &'a Value, schema: &Value) -> Option<(&'a Value, String)> {
    at_pointer(root, schema.get("$ref")?.as_str()?)
}

/// The keywords that constrain instances, as the compatibility checker reads them, other than
/// `$ref` and `allOf`.
const CONSTRAINTS: [&str; 17] = [
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "unevaluatedProperties",
    "items",
    "prefixItems",
    "oneOf",
    "anyOf",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
];

/// Whether the schema constrains instances by keywords other than `$ref` and `allOf`;
/// annotations such as `description` do not count. A `$ref` with such siblings (an internally
/// tagged newtype variant: the tag beside the wrapped struct) means both apply.
pub(crate) fn has_constraints(schema: &Value) -> bool {
    schema
        .as_object()
        .is_some_and(|map| CONSTRAINTS.iter().any(|k| map.contains_key(*k)))
}

/// The single subschema a wrapper stands for: `allOf: [x]` (draft-07's `$ref` with siblings).
pub(crate) fn unwrap_all_of(schema: &Value) -> Option<&Value> {
    match schema.get("allOf") {
        Some(Value::Array(items)) if items.len() == 1 && schema.get("type").is_none() => {
            items.first()
        }
        _ => None,
    }
}

/// The alternatives of `anyOf` / `oneOf`, with the keyword used.
pub(crate) fn alternatives(schema: &Value) -> Option<(&'static str, &Vec<Value>)> {
    ["anyOf", "oneOf"].into_iter().find_map(|keyword| {
        schema
            .get(keyword)
            .and_then(Value::as_array)
            .map(|items| (keyword, items))
    })
}

/// Whether the schema is exactly the `null` type.
pub(crate) fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
        || schema.get("const") == Some(&Value::Null)
}

/// The instance types a schema names with `type` (a string or an array of strings).
pub(crate) fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The properties of an object schema, in key order.
pub(crate) fn properties(schema: &Value) -> Vec<(&String, &Value)> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| props.iter().collect())
        .unwrap_or_default()
}

/// The names listed in `required`.
pub(crate) fn required(schema: &Value) -> Vec<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// `pointer` extended by one token.
pub(crate) fn child(pointer: &str, token: &str) -> String {
    format!("{pointer}/{}", escape_token(token))
}

/// The last token of a definition pointer: `/$defs/Address` gives `Address`.
pub(crate) fn definition_name(pointer: &str) -> &str {
    pointer.rsplit('/').next().unwrap_or(pointer)
}
