//! Rendering: the field table (nested objects, arrays, enums, maps, optional fields,
//! recursion), example payloads and schemas checked with a real JSON Schema validator, the
//! README, and determinism.

use event_catalog::{Catalog, Deprecation};
use event_core::{DomainEvent, Registry};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// How a parcel travels.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Speed {
    /// Next day.
    Express,
    /// Two to four days.
    Standard,
}

/// A tree of categories: recursive.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
struct Category {
    /// The category's name.
    name: String,
    /// Sub-categories.
    children: Vec<Category>,
    /// The parent, if any.
    parent: Option<Box<Category>>,
}

/// A line of the parcel.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
struct Line {
    /// The product.
    sku: String,
    /// How many.
    quantity: u32,
}

/// A payment method with data: an internally tagged enum.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Tender {
    /// Paid by card.
    Card {
        /// The last four digits.
        last4: String,
    },
    /// Paid in cash.
    Cash,
}

/// A parcel was shipped.
///
/// It left the warehouse.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(
    name = "parcel.shipped",
    version = 2,
    source = "warehouse",
    aggregate = "parcel"
)]
struct ParcelShipped {
    /// The parcel.
    #[event(partition_key)]
    parcel_id: String,
    /// Who receives it.
    #[event(pii)]
    recipient: Option<String>,
    /// How fast.
    speed: Speed,
    /// What is inside.
    lines: Vec<Line>,
    /// Weights by box label.
    weights: BTreeMap<String, f64>,
    /// Product categories.
    category: Category,
    /// How it was paid.
    tender: Tender,
    /// Tags.
    tags: Vec<String>,
    /// A signed offset in hours.
    offset: i8,
    /// When it left (RFC 3339).
    shipped_at: String,
}

/// A parcel was lost.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "parcel.lost", deprecated = "use parcel.missing")]
#[serde(deny_unknown_fields)]
struct ParcelLost {
    /// The parcel.
    parcel_id: String,
}

fn catalog() -> Catalog {
    let registry =
        Registry::from_descriptors([ParcelShipped::descriptor(), ParcelLost::descriptor()])
            .unwrap();
    Catalog::from_registry(&registry)
}

fn page(catalog: &Catalog, stem: &str) -> String {
    catalog
        .render()
        .get(&format!("events/{stem}.md"))
        .unwrap_or_else(|| panic!("no page for {stem}"))
        .to_owned()
}

/// The field table rows of a page, as `path | type | required | description | pii | key`.
fn rows(page: &str) -> Vec<String> {
    let table = page
        .split("## Fields\n\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .expect("a field table");
    table
        .lines()
        .skip(2)
        .map(|line| line.trim_matches('|').trim().to_owned())
        .collect()
}

fn row<'a>(rows: &'a [String], path: &str) -> &'a str {
    let start = format!("`{path}` |");
    rows.iter()
        .find(|r| r.starts_with(&start))
        .unwrap_or_else(|| panic!("no row `{path}` in {rows:#?}"))
}

#[test]
fn the_model_carries_the_descriptor_metadata() {
    let catalog = catalog();
    let shipped = catalog.get("parcel.shipped", 2).unwrap();
    assert_eq!(
        shipped.description.as_deref(),
        Some("A parcel was shipped.\n\nIt left the warehouse.")
    );
    assert_eq!(shipped.source.as_deref(), Some("warehouse"));
    assert_eq!(shipped.aggregate.as_deref(), Some("parcel"));
    assert_eq!(shipped.partition_key.as_deref(), Some("parcel_id"));
    assert_eq!(shipped.pii, ["recipient"]);
    assert!(shipped.rust_type.ends_with("::ParcelShipped"));
    assert_eq!(shipped.deprecated, Deprecation::Active);
    let lost = catalog.get("parcel.lost", 1).unwrap();
    assert_eq!(
        lost.deprecated,
        Deprecation::Deprecated(Some("use parcel.missing".into()))
    );
    assert_eq!(catalog.sources(), ["warehouse"]);
    assert_eq!(catalog.aggregates(), ["parcel"]);
    assert!(catalog.consumers().is_empty());
}

#[test]
fn the_field_table_flattens_nested_objects_arrays_maps_and_enums() {
    let rows = rows(&page(&catalog(), "parcel.shipped.v2"));
    assert_eq!(
        row(&rows, "parcel_id"),
        "`parcel_id` | string | yes | The parcel. |  | yes"
    );
    assert_eq!(
        row(&rows, "recipient"),
        "`recipient` | string, nullable | no | Who receives it. | yes |"
    );
    assert_eq!(
        row(&rows, "speed"),
        "`speed` | one of `\"express\"`, `\"standard\"` (Speed) | yes | How fast. |  |"
    );
    assert_eq!(
        row(&rows, "lines"),
        "`lines` | array of object (Line) | yes | What is inside. |  |"
    );
    assert_eq!(
        row(&rows, "lines[].quantity"),
        "`lines[].quantity` | integer (uint32) | yes | How many. |  |"
    );
    assert_eq!(
        row(&rows, "weights"),
        "`weights` | map of number (double) | yes | Weights by box label. |  |"
    );
    assert_eq!(
        row(&rows, "tags"),
        "`tags` | array of string | yes | Tags. |  |"
    );
    assert!(row(&rows, "category.name").contains("| string | yes | The category's name."));
    assert!(row(&rows, "tender").contains("one of:"), "{rows:#?}");
}

#[test]
fn recursive_types_are_listed_once() {
    let rows = rows(&page(&catalog(), "parcel.shipped.v2"));
    let category: Vec<&String> = rows.iter().filter(|r| r.starts_with("`category")).collect();
    assert!(
        row(&rows, "category.children").contains("recursive"),
        "{category:#?}"
    );
    assert!(
        row(&rows, "category.parent").contains("recursive"),
        "{category:#?}"
    );
    assert!(
        !rows.iter().any(|r| r.starts_with("`category.children[].")),
        "{category:#?}"
    );
}

#[test]
fn a_deprecated_event_page_says_why() {
    let page = page(&catalog(), "parcel.lost.v1");
    assert!(page.starts_with("# `parcel.lost` v1\n\n> **Deprecated:** use parcel.missing\n"));
    assert!(page.contains("| Schema | [`schemas/parcel.lost.v1.json`]"));
}

fn example(page: &str) -> Value {
    let json = page
        .split("## Example payload\n\n```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("an example block");
    serde_json::from_str(json).unwrap()
}

#[test]
fn example_payloads_validate_and_deserialize_into_the_type() {
    let catalog = catalog();
    let rendered = catalog.render();
    for event in catalog.events() {
        let stem = event.file_stem();
        let example = example(rendered.get(&format!("events/{stem}.md")).unwrap());
        let schema: Value =
            serde_json::from_str(rendered.get(&format!("schemas/{stem}.json")).unwrap()).unwrap();
        if let Err(error) = jsonschema::draft202012::validate(&schema, &example) {
            panic!("example of {stem} does not validate: {error}\n{example:#}");
        }
    }
    let shipped = example(rendered.get("events/parcel.shipped.v2.md").unwrap());
    let typed: ParcelShipped = serde_json::from_value(shipped.clone()).unwrap();
    assert_eq!(typed.shipped_at, "2026-01-01T12:00:00Z");
    assert!(matches!(typed.speed, Speed::Express));
    assert!(
        typed.category.children.is_empty(),
        "recursion stops: {shipped:#}"
    );
    let _: ParcelLost =
        serde_json::from_value(example(rendered.get("events/parcel.lost.v1.md").unwrap())).unwrap();
}

#[test]
fn the_validator_rejects_what_it_should() {
    // The checks above mean something only if the validator can fail.
    let schema = serde_json::from_str::<Value>(
        catalog()
            .render()
            .get("schemas/parcel.lost.v1.json")
            .unwrap(),
    )
    .unwrap();
    let extra = serde_json::json!({"parcel_id": "p-1", "unknown": 1});
    assert!(jsonschema::draft202012::validate(&schema, &extra).is_err());
    assert!(jsonschema::draft202012::meta::validate(&serde_json::json!({"type": 5})).is_err());
}

#[test]
fn schemas_are_valid_2020_12_with_a_stable_id() {
    let rendered = catalog().render();
    for (path, text) in rendered.iter().filter(|(p, _)| p.starts_with("schemas/")) {
        let schema: Value = serde_json::from_str(text).unwrap();
        if let Err(error) = jsonschema::draft202012::meta::validate(&schema) {
            panic!("{path} is not a valid 2020-12 schema: {error}");
        }
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        let stem = path
            .trim_start_matches("schemas/")
            .trim_end_matches(".json");
        let (name, version) = stem.rsplit_once(".v").unwrap();
        assert_eq!(schema["$id"], format!("urn:event:{name}:v{version}"));
    }
}

#[test]
fn the_readme_indexes_every_event_and_draws_the_flow() {
    let rendered = catalog().render();
    let readme = rendered.get("README.md").unwrap();
    assert!(readme.contains(
        "| [`parcel.shipped`](events/parcel.shipped.v2.md) | 2 | A parcel was shipped. | parcel | warehouse | - |"
    ));
    assert!(readme.contains("| [`parcel.lost`](events/parcel.lost.v1.md) | 1 (deprecated) |"));
    assert!(readme.contains("```mermaid\nflowchart LR\n"));
    assert!(readme.contains("    src_warehouse --> ev_parcel__shipped__v2\n"));
}

#[test]
fn rendering_is_deterministic_and_catalog_json_round_trips() {
    let first = catalog().render();
    let second = catalog().render();
    assert_eq!(first, second);
    let back = Catalog::from_json(first.get("catalog.json").unwrap()).unwrap();
    assert_eq!(back, catalog());
    // A catalog read back from catalog.json renders the same bytes, AsyncAPI included.
    assert_eq!(back.render(), first);
}

#[test]
fn catalog_json_has_exactly_the_contract_keys() {
    let rendered = catalog().render();
    let json: Value = serde_json::from_str(rendered.get("catalog.json").unwrap()).unwrap();
    let top: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(top.len(), 2);
    assert_eq!(json["format"], 1);
    let keys: std::collections::BTreeSet<&str> = json["events"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: std::collections::BTreeSet<&str> = [
        "name",
        "version",
        "description",
        "rust_type",
        "source",
        "aggregate",
        "consumers",
        "partition_key",
        "pii",
        "deprecated",
        "schema",
    ]
    .into();
    assert_eq!(keys, expected);
    assert!(rendered.get("catalog.json").unwrap().starts_with(
        "{\n  \"format\": 1,\n  \"events\": [\n    {\n      \"name\": \"parcel.lost\","
    ));
}

#[test]
fn a_corrupt_catalog_json_names_line_and_column() {
    let err = Catalog::from_json("{\"format\": 1,\n \"events\": [}").unwrap_err();
    assert_eq!((err.line(), err.column()), (2, 13));
    let err = Catalog::from_json("{\"format\": 2, \"events\": []}").unwrap_err();
    assert!(
        err.to_string().contains("unsupported catalog format 2"),
        "{err}"
    );
}

#[test]
fn write_to_is_idempotent_and_removes_stale_event_files() {
    let dir = std::env::temp_dir().join(format!("event-catalog-write-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let catalog = catalog();
    let first = catalog.write_to(&dir).unwrap();
    assert_eq!(first.written.len(), catalog.render().len());
    let again = catalog.write_to(&dir).unwrap();
    assert!(again.written.is_empty() && again.removed.is_empty());
    std::fs::write(dir.join("events/gone.event.v1.md"), "old").unwrap();
    std::fs::write(dir.join("schemas/gone.event.v1.json"), "{}").unwrap();
    std::fs::write(dir.join("events/notes.txt"), "kept").unwrap();
    let staleness = catalog.staleness(&dir).unwrap();
    assert_eq!(
        staleness.extra,
        ["events/gone.event.v1.md", "schemas/gone.event.v1.json"]
    );
    let cleaned = catalog.write_to(&dir).unwrap();
    assert_eq!(cleaned.removed, staleness.extra);
    assert!(dir.join("events/notes.txt").exists(), "not ours: kept");
    assert!(catalog.staleness(&dir).unwrap().is_current());
    std::fs::remove_dir_all(&dir).unwrap();
}
