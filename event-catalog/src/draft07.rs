//! The draft-07 form of a draft 2020-12 schema, as schemars would have emitted it.

use crate::json;
use schemars::Schema;
use schemars::transform::{
    RemoveRefSiblings, ReplacePrefixItems, ReplaceUnevaluatedProperties, Transform,
};
use serde_json::Value;

/// The draft-07 meta-schema URI.
pub(crate) const DRAFT07: &str = "http://json-schema.org/draft-07/schema#";

/// Converts a schemars 2020-12 schema to the draft-07 dialect: `$defs` becomes `definitions`
/// (and `$ref`s follow), then the transforms of `SchemaSettings::draft07()` run.
pub(crate) fn from_2020_12(schema: &Value) -> Value {
    let mut value = rename_defs(schema.clone(), true);
    if let Some(map) = value.as_object_mut() {
        map.insert("$schema".to_owned(), Value::String(DRAFT07.to_owned()));
    }
    let Ok(mut schema) = Schema::try_from(value.clone()) else {
        return json::canonical(value);
    };
    ReplaceUnevaluatedProperties::default().transform(&mut schema);
    RemoveRefSiblings::default().transform(&mut schema);
    ReplacePrefixItems::default().transform(&mut schema);
    json::canonical(schema.to_value())
}

fn rename_defs(value: Value, root: bool) -> Value {
    match value {
        Value::Object(map) => map
            .into_iter()
            .map(|(key, value)| {
                let key = if root && key == "$defs" {
                    "definitions".to_owned()
                } else {
                    key
                };
                let value = match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => Value::String(
                        reference
                            .strip_prefix("#/$defs/")
                            .map_or(reference.clone(), |rest| format!("#/definitions/{rest}")),
                    ),
                    (_, value) => rename_defs(value, false),
                };
                (key, value)
            })
            .collect(),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| rename_defs(item, false))
                .collect(),
        ),
        other => other,
    }
}
