//! The compatibility rules, each in each mode (backward, forward, full) and both profiles
//! (serde, strict), on hand-written schemas shaped like schemars output; and the contents of
//! a finding.

use event_catalog::{Breaks, Catalog, Finding, Mode, Profile, Rule};
use serde_json::{Value, json};

/// A catalog holding one event, `order.paid` v1 (type `shop::OrderPaid`), with this schema.
fn catalog(schema: &Value) -> Catalog {
    catalog_of(&[("order.paid", 1, false, schema.clone())])
}

fn catalog_of(events: &[(&str, u32, bool, Value)]) -> Catalog {
    let events: Vec<Value> = events
        .iter()
        .map(|(name, version, deprecated, schema)| {
            json!({
                "name": name, "version": version, "description": null,
                "rust_type": "shop::OrderPaid", "source": null, "aggregate": null,
                "consumers": [], "partition_key": null, "pii": [], "deprecated": deprecated,
                "schema": schema,
            })
        })
        .collect();
    Catalog::from_json(&json!({"format": 1, "events": events}).to_string()).unwrap()
}

/// An object schema as schemars writes one: `properties`, `required`, and
/// `additionalProperties: false` for `deny_unknown_fields`.
fn object(properties: &Value, required: &[&str]) -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "OrderPaid",
        "type": "object",
        "properties": properties,
        "required": required,
    })
}

fn closed(mut schema: Value) -> Value {
    schema["additionalProperties"] = json!(false);
    schema
}

fn findings(old: &Value, new: &Value, mode: Mode, profile: Profile) -> Vec<Finding> {
    Catalog::compare(&catalog(old), &catalog(new), mode, profile).findings
}

/// Which readers break, by profile: (serde backward, serde forward, strict backward, strict
/// forward).
struct Expect {
    serde: (bool, bool),
    strict: (bool, bool),
}

const BACKWARD: Expect = Expect {
    serde: (true, false),
    strict: (true, false),
};
const FORWARD: Expect = Expect {
    serde: (false, true),
    strict: (false, true),
};
const BOTH: Expect = Expect {
    serde: (true, true),
    strict: (true, true),
};

/// Asserts, in every mode and profile, that `rule` is found at `pointer` exactly when
/// `expect` says that mode's readers break, with the right `breaks` side.
#[track_caller]
fn assert_rule(old: &Value, new: &Value, rule: Rule, pointer: &str, expect: &Expect) {
    for profile in [Profile::Serde, Profile::Strict] {
        let (backward, forward) = match profile {
            Profile::Serde => expect.serde,
            Profile::Strict => expect.strict,
        };
        for mode in [Mode::Backward, Mode::Forward, Mode::Full] {
            let found = findings(old, new, mode, profile);
            let sides: Vec<Breaks> = found
                .iter()
                .filter(|f| f.rule == rule && f.pointer == pointer)
                .map(|f| f.breaks)
                .collect();
            let mut expected = Vec::new();
            if backward && mode != Mode::Forward {
                expected.push(Breaks::Backward);
            }
            if forward && mode != Mode::Backward {
                expected.push(Breaks::Forward);
            }
            assert_eq!(
                sides, expected,
                "{rule} at {pointer:?} in {mode:?}/{profile:?}; all findings: {found:#?}"
            );
        }
    }
}

fn string() -> Value {
    json!({"type": "string"})
}

fn optional_string() -> Value {
    json!({"type": ["string", "null"]})
}

#[test]
fn identical_schemas_are_compatible_in_every_mode_and_profile() {
    let schema = object(
        &json!({"order_id": string(), "note": optional_string()}),
        &["order_id"],
    );
    for profile in [Profile::Serde, Profile::Strict] {
        for mode in [Mode::Backward, Mode::Forward, Mode::Full] {
            assert!(findings(&schema, &schema, mode, profile).is_empty());
        }
    }
}

#[test]
fn required_property_added_breaks_new_readers() {
    let old = object(&json!({"order_id": string()}), &["order_id"]);
    let new = object(
        &json!({"order_id": string(), "paid_at": string()}),
        &["order_id", "paid_at"],
    );
    assert_rule(
        &old,
        &new,
        Rule::RequiredPropertyAdded,
        "/properties/paid_at",
        &BACKWARD,
    );
}

#[test]
fn optional_property_added_breaks_only_under_the_strict_profile() {
    let old = object(&json!({"order_id": string()}), &["order_id"]);
    let new = object(
        &json!({"order_id": string(), "note": optional_string()}),
        &["order_id"],
    );
    let expect = Expect {
        serde: (false, false),
        strict: (true, false),
    };
    assert_rule(&old, &new, Rule::PropertyAdded, "/properties/note", &expect);
    assert!(findings(&old, &new, Mode::Full, Profile::Serde).is_empty());
}

#[test]
fn property_added_to_a_type_denying_unknown_fields_breaks_old_readers() {
    let old = closed(object(&json!({"order_id": string()}), &["order_id"]));
    let new = closed(object(
        &json!({"order_id": string(), "note": optional_string()}),
        &["order_id"],
    ));
    assert_rule(
        &old,
        &new,
        Rule::PropertyAdded,
        "/properties/note",
        &FORWARD,
    );
}

/// Serde writers send only the fields their type declares, so old readers never see the
/// removed field; by its schema alone an open object may still carry it, with any value (the
/// mirror of an optional property added).
#[test]
fn optional_property_removed_from_an_open_type_breaks_only_strict_old_readers() {
    let old = object(
        &json!({"order_id": string(), "note": optional_string()}),
        &["order_id"],
    );
    let new = object(&json!({"order_id": string()}), &["order_id"]);
    let expect = Expect {
        serde: (false, false),
        strict: (false, true),
    };
    assert_rule(
        &old,
        &new,
        Rule::PropertyRemoved,
        "/properties/note",
        &expect,
    );
    assert!(findings(&old, &new, Mode::Full, Profile::Serde).is_empty());
    assert_eq!(findings(&old, &new, Mode::Full, Profile::Strict).len(), 1);
}

#[test]
fn required_property_removed_breaks_old_readers() {
    let old = object(
        &json!({"order_id": string(), "amount": {"type": "integer"}}),
        &["order_id", "amount"],
    );
    let new = object(&json!({"order_id": string()}), &["order_id"]);
    assert_rule(
        &old,
        &new,
        Rule::PropertyRemoved,
        "/properties/amount",
        &FORWARD,
    );
}

#[test]
fn property_removed_from_a_type_denying_unknown_fields_breaks_new_readers() {
    let old = closed(object(
        &json!({"order_id": string(), "note": optional_string()}),
        &["order_id"],
    ));
    let new = closed(object(&json!({"order_id": string()}), &["order_id"]));
    assert_rule(
        &old,
        &new,
        Rule::PropertyRemoved,
        "/properties/note",
        &BACKWARD,
    );
}

#[test]
fn optional_made_required_breaks_new_readers() {
    let old = object(
        &json!({"order_id": string(), "note": string()}),
        &["order_id"],
    );
    let new = object(
        &json!({"order_id": string(), "note": string()}),
        &["order_id", "note"],
    );
    assert_rule(
        &old,
        &new,
        Rule::OptionalMadeRequired,
        "/properties/note",
        &BACKWARD,
    );
}

#[test]
fn required_made_optional_breaks_old_readers() {
    let old = object(
        &json!({"order_id": string(), "note": string()}),
        &["order_id", "note"],
    );
    let new = object(
        &json!({"order_id": string(), "note": string()}),
        &["order_id"],
    );
    assert_rule(
        &old,
        &new,
        Rule::RequiredMadeOptional,
        "/properties/note",
        &FORWARD,
    );
}

#[test]
fn type_changed_breaks_both_sides() {
    let old = object(&json!({"amount": string()}), &["amount"]);
    let new = object(&json!({"amount": {"type": "integer"}}), &["amount"]);
    assert_rule(&old, &new, Rule::TypeChanged, "/properties/amount", &BOTH);
}

#[test]
fn number_to_integer_is_narrowed_and_integer_to_number_widened() {
    let number = object(
        &json!({"amount": {"type": "number", "format": "double"}}),
        &["amount"],
    );
    let integer = object(
        &json!({"amount": {"type": "integer", "format": "int64"}}),
        &["amount"],
    );
    assert_rule(
        &number,
        &integer,
        Rule::TypeNarrowed,
        "/properties/amount",
        &BACKWARD,
    );
    assert_rule(
        &integer,
        &number,
        Rule::TypeWidened,
        "/properties/amount",
        &FORWARD,
    );
    assert!(
        findings(&integer, &number, Mode::Backward, Profile::Strict).is_empty(),
        "a number reader reads integers"
    );
}

#[test]
fn integer_range_narrowed_and_widened() {
    let u64_ = object(
        &json!({"n": {"type": "integer", "format": "uint64", "minimum": 0}}),
        &["n"],
    );
    let u32_ = object(
        &json!({"n": {"type": "integer", "format": "uint32", "minimum": 0}}),
        &["n"],
    );
    assert_rule(&u64_, &u32_, Rule::TypeNarrowed, "/properties/n", &BACKWARD);
    assert_rule(&u32_, &u64_, Rule::TypeWidened, "/properties/n", &FORWARD);
}

#[test]
fn nullable_removed_and_added() {
    let optional = object(&json!({"note": optional_string()}), &[]);
    let plain = object(&json!({"note": string()}), &[]);
    assert_rule(
        &optional,
        &plain,
        Rule::NullableRemoved,
        "/properties/note",
        &BACKWARD,
    );
    assert_rule(
        &plain,
        &optional,
        Rule::NullableAdded,
        "/properties/note",
        &FORWARD,
    );
}

#[test]
fn option_of_a_struct_through_any_of_is_seen_as_nullable() {
    let defs = json!({"Address": {"type": "object", "properties": {"city": string()}, "required": ["city"]}});
    let mut optional = object(
        &json!({"address": {"anyOf": [{"$ref": "#/$defs/Address"}, {"type": "null"}]}}),
        &[],
    );
    optional["$defs"] = defs.clone();
    let mut plain = object(
        &json!({"address": {"$ref": "#/$defs/Address"}}),
        &["address"],
    );
    plain["$defs"] = defs;
    // The pointer follows the `$ref` to the definition.
    assert_rule(
        &optional,
        &plain,
        Rule::NullableRemoved,
        "/$defs/Address",
        &BACKWARD,
    );
}

#[test]
fn enum_value_removed_and_added() {
    let two = object(
        &json!({"carrier": {"type": "string", "enum": ["dhl", "ups"]}}),
        &["carrier"],
    );
    let one = object(
        &json!({"carrier": {"type": "string", "enum": ["dhl"]}}),
        &["carrier"],
    );
    assert_rule(
        &two,
        &one,
        Rule::EnumValueRemoved,
        "/properties/carrier",
        &BACKWARD,
    );
    assert_rule(
        &one,
        &two,
        Rule::EnumValueAdded,
        "/properties/carrier",
        &FORWARD,
    );
}

/// Documented unit variants: schemars writes `oneOf` of `const`s in a `$defs` entry.
#[test]
fn documented_enum_variants_behind_a_ref_are_enum_values() {
    let with = |variants: &[&str]| {
        let one_of: Vec<Value> = variants
            .iter()
            .map(|v| json!({"type": "string", "const": v, "description": format!("{v}.")}))
            .collect();
        let mut schema = object(
            &json!({"method": {"$ref": "#/$defs/PaymentMethod", "description": "How."}}),
            &["method"],
        );
        schema["$defs"] = json!({"PaymentMethod": {"oneOf": one_of}});
        schema
    };
    let old = with(&["card", "paypal"]);
    let new = with(&["card"]);
    assert_rule(
        &old,
        &new,
        Rule::EnumValueRemoved,
        "/$defs/PaymentMethod",
        &BACKWARD,
    );
    assert_rule(
        &new,
        &old,
        Rule::EnumValueAdded,
        "/$defs/PaymentMethod",
        &FORWARD,
    );
}

#[test]
fn string_restricted_to_an_enum_is_narrowed() {
    let free = object(&json!({"carrier": string()}), &["carrier"]);
    let fixed = object(
        &json!({"carrier": {"type": "string", "enum": ["dhl"]}}),
        &["carrier"],
    );
    assert_rule(
        &free,
        &fixed,
        Rule::TypeNarrowed,
        "/properties/carrier",
        &BACKWARD,
    );
    assert_rule(
        &fixed,
        &free,
        Rule::TypeWidened,
        "/properties/carrier",
        &FORWARD,
    );
}

#[test]
fn additional_properties_tightened_breaks_only_under_the_strict_profile() {
    let open = object(&json!({"order_id": string()}), &["order_id"]);
    let shut = closed(open.clone());
    let strict_backward = Expect {
        serde: (false, false),
        strict: (true, false),
    };
    assert_rule(
        &open,
        &shut,
        Rule::AdditionalPropertiesTightened,
        "/additionalProperties",
        &strict_backward,
    );
    let strict_forward = Expect {
        serde: (false, false),
        strict: (false, true),
    };
    assert_rule(
        &shut,
        &open,
        Rule::AdditionalPropertiesLoosened,
        "/additionalProperties",
        &strict_forward,
    );
}

#[test]
fn a_map_closed_breaks_new_readers_in_both_profiles() {
    let map = object(&json!({"order_id": string()}), &["order_id"]);
    let mut with_map = map.clone();
    with_map["additionalProperties"] = json!({"type": "string"});
    let shut = closed(map);
    assert_rule(
        &with_map,
        &shut,
        Rule::AdditionalPropertiesTightened,
        "/additionalProperties",
        &BACKWARD,
    );
}

#[test]
fn map_values_are_compared() {
    let map = |values: Value| {
        object(
            &json!({"totals": {"type": "object", "additionalProperties": values}}),
            &["totals"],
        )
    };
    let old = map(json!({"type": "number"}));
    let new = map(json!({"type": "integer"}));
    assert_rule(
        &old,
        &new,
        Rule::TypeNarrowed,
        "/properties/totals/additionalProperties",
        &BACKWARD,
    );
    let found = findings(&old, &new, Mode::Backward, Profile::Serde);
    assert_eq!(found[0].path, "totals.<key>");
}

fn with_address(address: &Value) -> Value {
    let mut schema = object(
        &json!({"shipping_address": {"$ref": "#/$defs/Address", "description": "Where."}}),
        &["shipping_address"],
    );
    schema["$defs"] = json!({"Address": address});
    schema
}

#[test]
fn nested_objects_behind_refs_are_followed() {
    let old = with_address(
        &json!({"type": "object", "properties": {"city": string()}, "required": ["city"]}),
    );
    let new = with_address(&json!({
        "type": "object",
        "properties": {"city": string(), "zip": string()},
        "required": ["city", "zip"],
    }));
    assert_rule(
        &old,
        &new,
        Rule::RequiredPropertyAdded,
        "/$defs/Address/properties/zip",
        &BACKWARD,
    );
    let found = findings(&old, &new, Mode::Backward, Profile::Serde);
    assert_eq!(found[0].path, "shipping_address.zip");
}

#[test]
fn array_items_are_followed() {
    let with_items = |quantity: Value| {
        let mut schema = object(
            &json!({"line_items": {"type": "array", "items": {"$ref": "#/$defs/LineItem"}}}),
            &["line_items"],
        );
        schema["$defs"] = json!({"LineItem": {
            "type": "object", "properties": {"quantity": quantity}, "required": ["quantity"],
        }});
        schema
    };
    let old = with_items(json!({"type": "integer", "format": "uint32", "minimum": 0}));
    let new = with_items(string());
    assert_rule(
        &old,
        &new,
        Rule::TypeChanged,
        "/$defs/LineItem/properties/quantity",
        &BOTH,
    );
    let found = findings(&old, &new, Mode::Backward, Profile::Serde);
    assert_eq!(found[0].path, "line_items[].quantity");
}

#[test]
fn recursive_definitions_terminate_and_report_once() {
    let node = |value: Value| {
        let mut schema = object(&json!({"root": {"$ref": "#/$defs/Node"}}), &["root"]);
        schema["$defs"] = json!({"Node": {
            "type": "object",
            "properties": {
                "value": value,
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                "parent": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]},
            },
            "required": ["value", "children"],
        }});
        schema
    };
    let old = node(json!({"type": "integer"}));
    let new = node(string());
    let found = findings(&old, &new, Mode::Backward, Profile::Strict);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].rule, Rule::TypeChanged);
    assert_eq!(found[0].pointer, "/$defs/Node/properties/value");
}

#[test]
fn tagged_enum_variants_removed_and_added() {
    let with = |variants: &[&str]| {
        let one_of: Vec<Value> = variants
            .iter()
            .map(|v| {
                json!({"type": "object",
                    "properties": {"kind": {"type": "string", "const": v}, "id": string()},
                    "required": ["kind", "id"]})
            })
            .collect();
        object(&json!({"refund": {"oneOf": one_of}}), &["refund"])
    };
    let old = with(&["full", "partial"]);
    let new = with(&["full"]);
    assert_rule(
        &old,
        &new,
        Rule::EnumValueRemoved,
        "/properties/refund",
        &BACKWARD,
    );
    let added = findings(&new, &old, Mode::Forward, Profile::Serde);
    assert_eq!(added.len(), 1, "{added:#?}");
    assert_eq!(added[0].rule, Rule::EnumValueAdded);
    assert!(added[0].message.contains("partial"), "{}", added[0].message);
}

#[test]
fn a_version_that_disappears_is_breaking_unless_deprecated() {
    let schema = object(&json!({"order_id": string()}), &["order_id"]);
    let old = catalog_of(&[
        ("order.paid", 1, false, schema.clone()),
        ("order.paid", 2, false, schema.clone()),
    ]);
    let new = catalog_of(&[("order.paid", 2, false, schema.clone())]);
    for mode in [Mode::Backward, Mode::Forward, Mode::Full] {
        let report = Catalog::compare(&old, &new, mode, Profile::Serde);
        assert_eq!(report.removed, [("order.paid".to_owned(), 1)]);
        assert_eq!(report.findings.len(), 1);
        assert_eq!(report.findings[0].rule, Rule::VersionRemoved);
        assert_eq!(report.findings[0].version, 1);
    }

    let deprecated = catalog_of(&[
        ("order.paid", 1, true, schema.clone()),
        ("order.paid", 2, false, schema.clone()),
    ]);
    let report = Catalog::compare(&deprecated, &new, Mode::Full, Profile::Strict);
    assert!(report.is_compatible(), "{report}");
    assert_eq!(report.removed.len(), 1);
}

#[test]
fn a_new_version_beside_the_old_is_fine() {
    let v1 = object(&json!({"amount": {"type": "number"}}), &["amount"]);
    let v2 = object(
        &json!({"amount_cents": {"type": "integer"}}),
        &["amount_cents"],
    );
    let old = catalog_of(&[("order.paid", 1, false, v1.clone())]);
    let new = catalog_of(&[("order.paid", 1, false, v1), ("order.paid", 2, false, v2)]);
    let report = Catalog::compare(&old, &new, Mode::Full, Profile::Strict);
    assert!(report.is_compatible(), "{report}");
    assert_eq!(report.added, [("order.paid".to_owned(), 2)]);
    assert!(report.changed.is_empty());
}

#[test]
fn a_finding_names_event_version_pointer_rule_and_fix() {
    let old = object(&json!({"order_id": string()}), &["order_id"]);
    let new = object(
        &json!({"order_id": string(), "paid_at": string()}),
        &["order_id", "paid_at"],
    );
    let report = Catalog::compare(
        &catalog(&old),
        &catalog(&new),
        Mode::Backward,
        Profile::Serde,
    );
    assert_eq!(report.changed, [("order.paid".to_owned(), 1)]);
    let [finding] = report.findings.as_slice() else {
        panic!("one finding expected: {report}");
    };
    assert_eq!(finding.event, "order.paid");
    assert_eq!(finding.version, 1);
    assert_eq!(finding.pointer, "/properties/paid_at");
    assert_eq!(finding.path, "paid_at");
    assert_eq!(finding.rule, Rule::RequiredPropertyAdded);
    assert_eq!(finding.breaks, Breaks::Backward);
    assert!(finding.message.contains("`paid_at`"), "{}", finding.message);
    assert!(
        finding
            .hint
            .contains("make `paid_at` optional (`Option<T>` with `#[serde(default)]`)"),
        "{}",
        finding.hint
    );
    assert!(
        finding
            .hint
            .contains("keep `OrderPaid` as v1 (renamed, e.g. `OrderPaidV1`) and add v2 with `previous = OrderPaidV1`"),
        "{}",
        finding.hint
    );
    let text = finding.to_string();
    assert!(
        text.starts_with("order.paid v1 at /properties/paid_at: "),
        "{text}"
    );
    assert!(
        text.contains("[required-property-added; new readers cannot read old events]"),
        "{text}"
    );
}

#[test]
fn modes_and_profiles_parse_from_their_names() {
    assert_eq!("backward".parse::<Mode>(), Ok(Mode::Backward));
    assert_eq!("forward".parse::<Mode>(), Ok(Mode::Forward));
    assert_eq!("full".parse::<Mode>(), Ok(Mode::Full));
    assert!("sideways".parse::<Mode>().is_err());
    assert_eq!("strict".parse::<Profile>(), Ok(Profile::Strict));
    assert_eq!(Mode::default(), Mode::Backward);
    assert_eq!(Profile::default(), Profile::Serde);
}
