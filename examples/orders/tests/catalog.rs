//! The committed event catalog under `catalog/`, and the EventCatalog folder under
//! `eventcatalog/`: both must be current (regenerate with `EVENT_CATALOG_BLESS=1 cargo test -p
//! orders`), and their documents must be valid. `scripts/check-eventcatalog.sh` lints and
//! builds the EventCatalog folder with EventCatalog's own tools.

use event_catalog::Catalog;
use orders::fulfillment::FulfillmentCreated;
use orders::invoice::{
    InvoiceIssued, InvoiceIssuedV1, InvoiceOverdue, InvoicePaid, InvoicePartiallyPaid,
    InvoiceVoided,
};
use orders::order::{
    OrderCheckoutExpired, OrderCheckoutSent, OrderCreated, OrderPaid, OrderPaymentFailed,
    OrderPaymentProcessing,
};
use orders::shipment::{ShipmentDelivered, ShipmentDrafted, ShipmentInTransit, ShipmentReady};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const CATALOG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/catalog");
const EVENTCATALOG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/eventcatalog");

fn read_json(path: impl AsRef<Path>) -> Value {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The golden test: a stale catalog fails `cargo test`.
#[test]
fn committed_catalog_is_current() {
    event_catalog::assert_catalog_current(CATALOG);
}

/// The golden test of the EventCatalog folder: a stale page or schema fails `cargo test`.
#[test]
fn committed_eventcatalog_is_current() {
    event_catalog::assert_eventcatalog_current(EVENTCATALOG);
}

/// The EventCatalog folder holds the schemas of `catalog/`, an event page per version, and a
/// service per source and consumer sending and receiving what `catalog.json` says.
#[test]
fn the_eventcatalog_folder_matches_the_catalog() {
    let catalog = Catalog::read(Path::new(CATALOG).join("catalog.json")).unwrap();
    let root = Path::new(EVENTCATALOG);
    let mut sends = BTreeSet::new();
    let mut receives = BTreeSet::new();
    for event in catalog.events() {
        let newest = catalog
            .events()
            .iter()
            .filter(|e| e.name == event.name)
            .all(|e| e.version <= event.version);
        let folder = if newest {
            root.join("events").join(&event.name)
        } else {
            root.join(format!(
                "events/{}/versioned/{}.0.0",
                event.name, event.version
            ))
        };
        let page = std::fs::read_to_string(folder.join("index.mdx")).unwrap();
        assert!(
            page.contains(&format!("\nversion: \"{}.0.0\"\n", event.version)),
            "{}",
            folder.display()
        );
        let schema = read_json(folder.join("schema.json"));
        let stem = event.file_stem();
        assert_eq!(
            schema,
            read_json(Path::new(CATALOG).join(format!("schemas/{stem}.json"))),
            "{stem}"
        );
        let pointer = (event.name.clone(), format!("{}.0.0", event.version));
        for producer in event.producers() {
            sends.insert((producer.to_owned(), pointer.clone()));
        }
        for consumer in &event.consumers {
            receives.insert((consumer.clone(), pointer.clone()));
        }
    }
    let mut found_sends = BTreeSet::new();
    let mut found_receives = BTreeSet::new();
    for entry in std::fs::read_dir(root.join("services")).unwrap() {
        let entry = entry.unwrap();
        let service = entry.file_name().to_string_lossy().into_owned();
        let page = std::fs::read_to_string(entry.path().join("index.mdx")).unwrap();
        let (front, _) = page[4..].split_once("\n---\n").unwrap();
        let mut list = None;
        let mut id = String::new();
        for line in front.lines() {
            let unquote = |v: &str| v.trim().trim_matches('"').to_owned();
            match line {
                "sends:" | "receives:" => list = Some(line.to_owned()),
                _ if line.starts_with("  - id: ") => id = unquote(&line[8..]),
                _ if line.starts_with("    version: ") => {
                    let pointer = (id.clone(), unquote(&line[13..]));
                    match list.as_deref() {
                        Some("sends:") => found_sends.insert((service.clone(), pointer)),
                        _ => found_receives.insert((service.clone(), pointer)),
                    };
                }
                _ => list = None,
            }
        }
    }
    assert_eq!(found_sends, sends);
    assert_eq!(found_receives, receives);
    assert!(receives.contains(&(
        "notifications".to_owned(),
        ("invoice.issued".to_owned(), "2.0.0".to_owned())
    )));
}

#[test]
fn generating_twice_is_byte_identical() {
    let base = std::env::temp_dir().join(format!("orders-catalog-{}", std::process::id()));
    let (a, b) = (base.join("a"), base.join("b"));
    let catalog = Catalog::linked().unwrap();
    catalog.write_to(&a).unwrap();
    Catalog::linked().unwrap().write_to(&b).unwrap();
    let files = |dir: &PathBuf| -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for sub in ["", "events", "schemas"] {
            for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
                let entry = entry.unwrap();
                if entry.file_type().unwrap().is_file() {
                    let name = format!("{sub}/{}", entry.file_name().to_string_lossy());
                    out.push((name, std::fs::read(entry.path()).unwrap()));
                }
            }
        }
        out.sort();
        out
    };
    let (first, second) = (files(&a), files(&b));
    assert_eq!(first.len(), 3 + 2 * 17);
    assert!(first == second, "two runs differ");
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn every_schema_is_valid_2020_12_with_its_id() {
    let catalog = Catalog::read(Path::new(CATALOG).join("catalog.json")).unwrap();
    assert_eq!(catalog.events().len(), 17);
    for event in catalog.events() {
        let stem = event.file_stem();
        let schema = read_json(Path::new(CATALOG).join(format!("schemas/{stem}.json")));
        if let Err(error) = jsonschema::draft202012::meta::validate(&schema) {
            panic!("schemas/{stem}.json is not valid JSON Schema 2020-12: {error}");
        }
        assert_eq!(
            schema["$id"],
            format!("urn:event:{}:v{}", event.name, event.version)
        );
    }
}

/// The example payload of an event page.
fn example(stem: &str) -> Value {
    let page =
        std::fs::read_to_string(Path::new(CATALOG).join(format!("events/{stem}.md"))).unwrap();
    let block = page
        .split("## Example payload\n\n```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("events/{stem}.md has no example"));
    serde_json::from_str(block).unwrap()
}

fn deserializes<T: DeserializeOwned>(stem: &str, example: &Value) {
    if let Err(err) = serde_json::from_value::<T>(example.clone()) {
        panic!("the example of {stem} does not deserialize into its type: {err}\n{example:#}");
    }
}

#[test]
fn every_example_validates_and_deserializes_into_its_type() {
    let catalog = Catalog::read(Path::new(CATALOG).join("catalog.json")).unwrap();
    for event in catalog.events() {
        let stem = event.file_stem();
        let example = example(&stem);
        let schema = read_json(Path::new(CATALOG).join(format!("schemas/{stem}.json")));
        if let Err(error) = jsonschema::draft202012::validate(&schema, &example) {
            panic!("the example of {stem} does not validate: {error}\n{example:#}");
        }
        match (event.name.as_str(), event.version) {
            ("fulfillment.created", 1) => deserializes::<FulfillmentCreated>(&stem, &example),
            ("invoice.issued", 1) => deserializes::<InvoiceIssuedV1>(&stem, &example),
            ("invoice.issued", 2) => deserializes::<InvoiceIssued>(&stem, &example),
            ("invoice.overdue", 1) => deserializes::<InvoiceOverdue>(&stem, &example),
            ("invoice.paid", 1) => deserializes::<InvoicePaid>(&stem, &example),
            ("invoice.partially_paid", 1) => deserializes::<InvoicePartiallyPaid>(&stem, &example),
            ("invoice.voided", 1) => deserializes::<InvoiceVoided>(&stem, &example),
            ("order.checkout_expired", 1) => deserializes::<OrderCheckoutExpired>(&stem, &example),
            ("order.checkout_sent", 1) => deserializes::<OrderCheckoutSent>(&stem, &example),
            ("order.created", 1) => deserializes::<OrderCreated>(&stem, &example),
            ("order.paid", 1) => deserializes::<OrderPaid>(&stem, &example),
            ("order.payment_failed", 1) => deserializes::<OrderPaymentFailed>(&stem, &example),
            ("order.payment_processing", 1) => {
                deserializes::<OrderPaymentProcessing>(&stem, &example);
            }
            ("shipment.delivered", 1) => deserializes::<ShipmentDelivered>(&stem, &example),
            ("shipment.drafted", 1) => deserializes::<ShipmentDrafted>(&stem, &example),
            ("shipment.in_transit", 1) => deserializes::<ShipmentInTransit>(&stem, &example),
            ("shipment.ready", 1) => deserializes::<ShipmentReady>(&stem, &example),
            other => panic!("no Rust type listed for {other:?}"),
        }
    }
}

#[test]
fn the_order_created_page_lists_nested_fields_and_personal_data() {
    let page =
        std::fs::read_to_string(Path::new(CATALOG).join("events/order.created.v1.md")).unwrap();
    assert!(page.contains("| Consumers | billing-service |"));
    assert!(page.contains(
        "| `line_items[].quantity` | integer (uint32) | yes | How many units were ordered, at least 1. |  |  |"
    ));
    assert!(page.contains(
        "| `shipping_address.line2` | string, nullable | no | Apartment, suite, floor or building. | yes |  |"
    ));
    assert!(page.contains("| `order_id` | string | yes | The new order. |  | yes |"));
}

fn asyncapi() -> Value {
    read_json(Path::new(CATALOG).join("asyncapi.json"))
}

/// Resolves a local `$ref` (`#/a/b`) in the document.
fn resolve<'a>(document: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("not a local $ref: {reference}"));
    document
        .pointer(pointer)
        .unwrap_or_else(|| panic!("$ref {reference} does not resolve"))
}

#[test]
fn asyncapi_has_a_channel_and_message_per_event_and_resolving_operations() {
    let doc = asyncapi();
    assert_eq!(doc["asyncapi"], "3.0.0");
    let catalog = Catalog::read(Path::new(CATALOG).join("catalog.json")).unwrap();
    let channels = doc["channels"].as_object().unwrap();
    let messages = doc["components"]["messages"].as_object().unwrap();
    assert_eq!(channels.len(), catalog.events().len());
    assert_eq!(messages.len(), catalog.events().len());

    let mut expected_ops = BTreeSet::new();
    for event in catalog.events() {
        let id = event.file_stem();
        let channel = &channels[&id];
        let message_ref = channel["messages"][&id]["$ref"].as_str().unwrap();
        let message = resolve(&doc, message_ref);
        assert_eq!(message["name"], id);
        assert_eq!(message["x-event-type"], event.name);
        assert_eq!(message["x-event-version"], event.version);
        assert_eq!(
            message["payload"]["schemaFormat"],
            "application/schema+json;version=draft-07"
        );
        for producer in event.producers() {
            expected_ops.insert((id.clone(), "send".to_owned(), producer.to_owned()));
        }
        for consumer in &event.consumers {
            expected_ops.insert((id.clone(), "receive".to_owned(), consumer.clone()));
        }
    }

    let mut actual_ops = BTreeSet::new();
    for (op_id, op) in doc["operations"].as_object().unwrap() {
        let channel_ref = op["channel"]["$ref"].as_str().unwrap();
        let channel = resolve(&doc, channel_ref);
        let [message] = op["messages"].as_array().unwrap().as_slice() else {
            panic!("{op_id}: one message expected");
        };
        let message_ref = message["$ref"].as_str().unwrap();
        assert!(
            message_ref.starts_with(&format!("{channel_ref}/messages/")),
            "{op_id}: the message must be one of its channel's"
        );
        let message = resolve(&doc, message_ref);
        let message = resolve(&doc, message["$ref"].as_str().unwrap());
        let id = message["name"].as_str().unwrap().to_owned();
        assert_eq!(channel["address"], id);
        let service = op["tags"][0]["name"].as_str().unwrap().to_owned();
        actual_ops.insert((id, op["action"].as_str().unwrap().to_owned(), service));
    }
    assert_eq!(actual_ops, expected_ops);
    assert!(actual_ops.contains(&(
        "order.paid.v1".to_owned(),
        "receive".to_owned(),
        "fulfillment-service".to_owned()
    )));
}

/// A payload schema taken out of the document: its `$ref`s point back at its own
/// `definitions`.
fn standalone(payload: &Value, message_id: &str) -> Value {
    let prefix = format!("#/components/messages/{message_id}/payload/schema/definitions/");
    let text = payload.to_string().replace(&prefix, "#/definitions/");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn asyncapi_payloads_are_valid_draft_07_matching_the_descriptor() {
    let doc = asyncapi();
    for event in Catalog::linked().unwrap().events() {
        let id = event.file_stem();
        let payload = &doc["components"]["messages"][&id]["payload"]["schema"];
        if let Err(error) = jsonschema::draft7::meta::validate(payload) {
            panic!("payload of {id} is not valid draft-07: {error}");
        }
        assert_eq!(
            payload["$schema"],
            "http://json-schema.org/draft-07/schema#"
        );
        let schema = standalone(payload, &id);
        // What the descriptor emits with `SchemaSettings::draft07()`.
        assert_eq!(schema, event.schema_draft07(), "{id}");
        let example = example(&id);
        if let Err(error) = jsonschema::draft7::validate(&schema, &example) {
            panic!("the example of {id} does not validate against its draft-07 payload: {error}");
        }
    }
}

#[test]
fn a_catalog_read_back_from_catalog_json_renders_the_same_asyncapi() {
    let linked = Catalog::linked().unwrap();
    let read = Catalog::read(Path::new(CATALOG).join("catalog.json")).unwrap();
    for (a, b) in linked.events().iter().zip(read.events()) {
        // from the descriptor vs derived from the stored 2020-12 schema
        assert_eq!(a.schema_draft07(), b.schema_draft07(), "{}", a.file_stem());
    }
    assert_eq!(linked.render(), read.render());
}

/// The EventCatalog `package.json` the renderer writes asks for the versions
/// `scripts/check-eventcatalog.sh` installs and validates (here, not in event-catalog's own
/// tests: the script is not in that crate's package).
#[test]
fn the_check_script_pins_the_versions_the_package_json_asks_for() {
    let dir = std::env::temp_dir().join(format!("orders-eventcatalog-pins-{}", std::process::id()));
    Catalog::from_events(Vec::new())
        .write_as(&dir, event_catalog::Format::EventCatalog)
        .unwrap();
    let package = read_json(dir.join("package.json"));
    std::fs::remove_dir_all(&dir).unwrap();
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/check-eventcatalog.sh"
    ))
    .unwrap();
    let pin = |name: &str| {
        script
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name}= in the script"))
            .trim_matches('"')
            .to_owned()
    };
    assert_eq!(
        package["dependencies"]["@eventcatalog/core"],
        pin("CORE_VERSION")
    );
    assert_eq!(
        package["devDependencies"]["@eventcatalog/linter"],
        pin("LINTER_VERSION")
    );
}
