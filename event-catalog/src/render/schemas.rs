//! `schemas/<name>.v<N>.json`: each payload schema standalone, with a stable `$id`.

use crate::json;
use crate::model::CatalogEvent;
use serde_json::Value;

/// The `$id` of an event's standalone schema: `urn:event:<name>:v<version>`.
///
/// A URN is stable wherever the catalog is published, and the `$ref`s inside the schema
/// (`#/$defs/...`) resolve against it.
///
/// ```
/// assert_eq!(event_catalog::schema_id("order.created", 2), "urn:event:order.created:v2");
/// ```
pub fn schema_id(name: &str, version: u32) -> String {
    // The same URI as the CloudEvents `dataschema` of the event's envelopes.
    event_core::dataschema(name, version)
}

/// The schema of `event` with its `$id`.
pub(super) fn render(event: &CatalogEvent) -> String {
    let mut schema = event.schema.clone();
    if let Value::Object(map) = &mut schema {
        map.insert(
            "$id".to_owned(),
            Value::String(schema_id(&event.name, event.version)),
        );
    }
    json::pretty(&schema)
}
