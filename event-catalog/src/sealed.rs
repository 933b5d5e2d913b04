//! The catalog of a bus with field encryption: each PII field's schema as it is on the wire,
//! a sealed string.

use crate::json;
use crate::model::{Catalog, CatalogEvent};
use serde_json::{Value, json};

/// The pattern of a sealed field: `enc:v1:` then unpadded base64url.
pub(crate) const SEALED_PATTERN: &str = "^enc:v1:[A-Za-z0-9_-]+$";

impl Catalog {
    /// The catalog as the events are on the wire of a bus with field encryption
    /// ([`EventBusBuilder::encrypt_fields`](event_core::EventBusBuilder::encrypt_fields)):
    /// each `#[event(pii)]` field's schema becomes a sealed string (`enc:v1:` and base64url,
    /// or `null` where the field may be `null`, which is not sealed), in the JSON Schema,
    /// the draft-07 schema and so in AsyncAPI. Generate and check with the same choice.
    ///
    /// ```
    /// # use event_core::DomainEvent;
    /// # use schemars::JsonSchema;
    /// # use serde::{Deserialize, Serialize};
    /// #[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
    /// struct CustomerRegistered {
    ///     #[event(subject)]
    ///     customer_id: String,
    ///     #[event(pii)]
    ///     email: String,
    /// }
    ///
    /// let catalog = event_catalog::Catalog::from_events([event_catalog::CatalogEvent::from_descriptor(
    ///     CustomerRegistered::descriptor(),
    /// )])
    /// .sealed_pii();
    /// let email = &catalog.events()[0].schema["properties"]["email"];
    /// assert_eq!(email["pattern"], "^enc:v1:[A-Za-z0-9_-]+$");
    /// ```
    #[must_use]
    pub fn sealed_pii(self) -> Self {
        Catalog::from_events(self.events().iter().cloned().map(CatalogEvent::sealed_pii))
    }
}

impl CatalogEvent {
    /// This event's schemas with its PII fields sealed (see [`Catalog::sealed_pii`]).
    #[must_use]
    pub fn sealed_pii(mut self) -> Self {
        let draft07 = self.schema_draft07();
        self.schema = json::canonical(seal_properties(self.schema, &self.pii));
        self.schema_draft07 = Some(json::canonical(seal_properties(draft07, &self.pii)));
        self
    }
}

fn seal_properties(mut schema: Value, pii: &[String]) -> Value {
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        for field in pii {
            if let Some(property) = properties.get_mut(field) {
                *property = sealed(property);
            }
        }
    }
    schema
}

/// The schema of a sealed field, keeping the field's description.
fn sealed(original: &Value) -> Value {
    let kind = if nullable(original) {
        json!(["string", "null"])
    } else {
        json!("string")
    };
    let mut description =
        "Personal data, sealed with its data subject's key (XChaCha20-Poly1305): \
         `enc:v1:` then, in unpadded base64url, the key id (16 bytes), a nonce (24 bytes), \
         the ciphertext of the field's JSON and its tag (16 bytes). Reads as its type's \
         default once the subject is forgotten."
            .to_owned();
    if let Some(Value::String(own)) = original.get("description") {
        description = format!("{own}\n\n{description}");
    }
    json!({
        "type": kind,
        "pattern": SEALED_PATTERN,
        "description": description,
    })
}

/// Whether a property's schema admits `null`: `"type"` lists it, or one of `anyOf`/`oneOf`
/// is `{"type": "null"}`.
fn nullable(schema: &Value) -> bool {
    let null_type = |s: &Value| match s.get("type") {
        Some(Value::String(t)) => t == "null",
        Some(Value::Array(types)) => types.iter().any(|t| t == "null"),
        _ => false,
    };
    null_type(schema)
        || ["anyOf", "oneOf"].iter().any(|key| {
            schema
                .get(*key)
                .and_then(Value::as_array)
                .is_some_and(|options| options.iter().any(null_type))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pii_property_becomes_a_sealed_string_and_null_stays_allowed() {
        let schema = json!({
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "email": {"type": "string", "description": "Where to write."},
                "phone": {"type": ["string", "null"]},
                "address": {"anyOf": [{"$ref": "#/$defs/Address"}, {"type": "null"}]},
                "card": {"$ref": "#/$defs/Card"}
            }
        });
        let pii = ["email", "phone", "address", "card"].map(String::from);
        let sealed = seal_properties(schema, &pii);
        let properties = &sealed["properties"];
        assert_eq!(properties["id"], json!({"type": "string"}));
        assert_eq!(properties["email"]["type"], "string");
        assert_eq!(properties["email"]["pattern"], SEALED_PATTERN);
        assert!(
            properties["email"]["description"]
                .as_str()
                .unwrap()
                .starts_with("Where to write.\n\nPersonal data, sealed")
        );
        assert_eq!(properties["phone"]["type"], json!(["string", "null"]));
        assert_eq!(properties["address"]["type"], json!(["string", "null"]));
        assert_eq!(properties["card"]["type"], "string");
    }
}
