//! Every legal edge of `#[derive(Clone, DomainEvent)]` compiles and records what it says.

use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Digits and underscores are legal in segments.
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "s3.object_v2_put", source = "storage_2")]
struct ObjectPut {
    key: String,
}

/// A `.vN` suffix equal to the version.
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "billing.invoice_issued.v2", version = 2)]
struct InvoiceIssuedV2 {
    invoice_id: String,
}

/// Deprecated, with and without a reason.
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "legacy.sync_requested", deprecated = "use legacy.sync_started")]
struct LegacySyncRequested {
    job_id: String,
}

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(deprecated)]
struct LegacySyncCompleted {
    job_id: String,
}

/// A numeric partition key.
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
struct GuildConnected {
    #[event(partition_key)]
    id: u64,
    name: String,
}

mod outer {
    pub(crate) mod inner {
        use event_core::DomainEvent;
        use schemars::JsonSchema;
        use serde::{Deserialize, Serialize};

        /// Defined two modules down.
        #[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
        pub(crate) struct ShipmentDrafted {
            pub(crate) shipment_id: String,
        }
    }
}

macro_rules! define_event {
    ($(#[$meta:meta])* $name:ident, $event:literal) => {
        $(#[$meta])*
        #[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
        #[event(name = $event, aggregate = "automation")]
        struct $name {
            #[event(partition_key)]
            step_id: String,
        }
    };
}

define_event!(
    /// Made by a macro.
    AutomationStepQueued,
    "automation.step_queued"
);

/// Raw identifiers as field names.
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
struct AiCallFailure {
    #[event(partition_key)]
    r#type: String,
    #[event(pii)]
    r#match: String,
}

/// Serde renames are the JSON names the descriptor records.
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[serde(rename_all = "camelCase")]
struct AiBreakerOpen {
    #[event(partition_key)]
    provider_name: String,
    #[serde(rename = "rate")]
    #[event(pii)]
    failure_rate: f64,
}

/// An `Option` partition key.
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(aggregate = "order", description = "Payment is being processed.")]
struct PaymentProcessing {
    #[event(partition_key)]
    order_id: Option<String>,
}

#[doc = concat!("Built ", "from an expression.")]
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
struct GuildDisconnected {
    id: u64,
}

mod reexported {
    // A crate that reaches event-core through a re-export names it with `crate = "..."`.
    pub(crate) use event_core as events;
}

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(crate = "reexported::events")]
struct InvoiceVoided {
    invoice_id: String,
}

const LINE_BEFORE_LOCATED: u32 = line!();
/// Its line is recorded.
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
struct FulfillmentCreated {
    fulfillment_id: String,
}

fn key(name: &str, version: u32) -> &'static event_core::EventDescriptor {
    event_core::registry()
        .expect("no duplicates")
        .get(name, version)
        .unwrap_or_else(|| panic!("{name} v{version} is registered"))
}

#[test]
fn digits_and_underscores_in_names() {
    assert_eq!(ObjectPut::NAME, "s3.object_v2_put");
    assert_eq!(key("s3.object_v2_put", 1).source(), Some("storage_2"));
}

#[test]
fn version_suffix_equal_to_version() {
    assert_eq!(InvoiceIssuedV2::NAME, "billing.invoice_issued.v2");
    assert_eq!(InvoiceIssuedV2::VERSION, 2);
}

#[test]
fn deprecated_with_and_without_reason() {
    let with = LegacySyncRequested::descriptor();
    assert!(with.is_deprecated());
    assert_eq!(with.deprecation_note(), Some("use legacy.sync_started"));
    let without = LegacySyncCompleted::descriptor();
    assert!(without.is_deprecated());
    assert_eq!(without.deprecation_note(), None);
    assert!(!ObjectPut::descriptor().is_deprecated());
}

#[test]
fn numeric_partition_key() {
    let event = GuildConnected {
        id: 981_234,
        name: "rustaceans".into(),
    };
    assert_eq!(event.partition_key().as_deref(), Some("981234"));
    assert_eq!(GuildConnected::descriptor().partition_key(), Some("id"));
}

#[test]
fn nested_modules() {
    let d = outer::inner::ShipmentDrafted::descriptor();
    assert_eq!(d.name(), "shipment.drafted");
    assert_eq!(d.module_path(), "derive_edges::outer::inner");
    assert_eq!(d.rust_type(), "derive_edges::outer::inner::ShipmentDrafted");
    assert_eq!(d.description(), Some("Defined two modules down."));
    let _ = outer::inner::ShipmentDrafted {
        shipment_id: String::new(),
    }
    .shipment_id;
}

#[test]
fn defined_by_macro_rules() {
    let d = key("automation.step_queued", 1);
    assert_eq!(d.rust_type(), "derive_edges::AutomationStepQueued");
    assert_eq!(d.aggregate(), Some("automation"));
    assert_eq!(d.description(), Some("Made by a macro."));
    let event = AutomationStepQueued {
        step_id: "s-9".into(),
    };
    assert_eq!(event.partition_key().as_deref(), Some("s-9"));
}

#[test]
fn raw_identifiers_as_fields() {
    let d = AiCallFailure::descriptor();
    assert_eq!(d.name(), "ai.call_failure");
    assert_eq!(d.partition_key(), Some("type"));
    assert_eq!(d.pii(), ["match"]);
    let event = AiCallFailure {
        r#type: "timeout".into(),
        r#match: "m".into(),
    };
    assert_eq!(event.partition_key().as_deref(), Some("timeout"));
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["type"], "timeout");
}

#[test]
fn serde_renames_give_json_names() {
    let d = AiBreakerOpen::descriptor();
    assert_eq!(d.partition_key(), Some("providerName"));
    assert_eq!(d.pii(), ["rate"]);
    let schema = d.schema();
    let properties = schema.as_value()["properties"].as_object().unwrap();
    assert!(properties.contains_key("providerName") && properties.contains_key("rate"));
    let event = AiBreakerOpen {
        provider_name: "openai".into(),
        failure_rate: 0.5,
    };
    assert_eq!(event.partition_key().as_deref(), Some("openai"));
}

#[test]
fn option_partition_key() {
    assert_eq!(PaymentProcessing::NAME, "order.payment_processing");
    assert_eq!(
        PaymentProcessing::descriptor().description(),
        Some("Payment is being processed.")
    );
    let some = PaymentProcessing {
        order_id: Some("o-1".into()),
    };
    assert_eq!(some.partition_key().as_deref(), Some("o-1"));
    assert_eq!(PaymentProcessing { order_id: None }.partition_key(), None);
}

#[test]
fn description_from_doc_expression() {
    assert_eq!(
        GuildDisconnected::descriptor().description(),
        Some("Built from an expression.")
    );
    assert_eq!(InvoiceVoided::descriptor().description(), None);
}

#[test]
fn crate_path_override() {
    assert_eq!(InvoiceVoided::NAME, "invoice.voided");
    assert_eq!(
        key("invoice.voided", 1).rust_type(),
        "derive_edges::InvoiceVoided"
    );
}

#[test]
fn records_file_and_line_of_the_type_name() {
    let d = FulfillmentCreated::descriptor();
    assert!(d.file().ends_with("derive_edges.rs"), "{}", d.file());
    // The doc comment and the derive stand between the marker and the struct line.
    assert_eq!(d.line(), LINE_BEFORE_LOCATED + 3);
    assert_eq!(d.location(), format!("{}:{}", d.file(), d.line()));
}

#[test]
fn schema_is_draft_2020_12_with_the_doc_comment() {
    let schema = ObjectPut::descriptor().schema();
    let value = schema.as_value();
    assert_eq!(
        value["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(value["title"], "ObjectPut");
    assert_eq!(
        value["description"],
        "Digits and underscores are legal in segments."
    );
    assert_eq!(value["required"], serde_json::json!(["key"]));
}
