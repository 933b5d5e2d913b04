//! The compatibility checker on real schemars output: old and new versions of a payload type
//! derive `JsonSchema`, and each test states the findings that match what serde does when one
//! version reads the JSON the other writes.

use event_catalog::{Breaks, Catalog, Mode, Profile};
use schemars::JsonSchema;
use serde_json::json;

/// A catalog holding one event, `order.paid` v1, with the schema of `T`.
fn catalog<T: JsonSchema>() -> Catalog {
    let schema = schemars::schema_for!(T).to_value();
    let event = json!({
        "name": "order.paid", "version": 1, "description": null,
        "rust_type": "shop::OrderPaid", "source": null, "aggregate": null,
        "consumers": [], "partition_key": null, "pii": [], "deprecated": false,
        "schema": schema,
    });
    Catalog::from_json(&json!({"format": 1, "events": [event]}).to_string()).unwrap()
}

/// The findings for `Old` → `New` in full mode under `profile`, as `rule:side@pointer`, sorted;
/// backward and forward mode are checked to give exactly their side's share.
fn findings<Old: JsonSchema, New: JsonSchema>(profile: Profile) -> Vec<String> {
    let (old, new) = (catalog::<Old>(), catalog::<New>());
    let words = |mode| {
        let mut found: Vec<String> = Catalog::compare(&old, &new, mode, profile)
            .findings
            .iter()
            .map(|f| {
                let side = match f.breaks {
                    Breaks::Backward => "backward",
                    Breaks::Forward => "forward",
                };
                format!("{}:{side}@{}", f.rule, f.pointer)
            })
            .collect();
        found.sort();
        found
    };
    let full = words(Mode::Full);
    for (mode, side) in [(Mode::Backward, ":backward@"), (Mode::Forward, ":forward@")] {
        let share: Vec<String> = full.iter().filter(|f| f.contains(side)).cloned().collect();
        assert_eq!(words(mode), share, "{mode:?}");
    }
    full
}

/// Asserts the same findings under both profiles.
#[track_caller]
fn assert_findings<Old: JsonSchema, New: JsonSchema>(expected: &[&str]) {
    for profile in [Profile::Serde, Profile::Strict] {
        assert_eq!(findings::<Old, New>(profile), expected, "{profile:?}");
    }
}

fn messages<Old: JsonSchema, New: JsonSchema>() -> Vec<String> {
    let (old, new) = (catalog::<Old>(), catalog::<New>());
    Catalog::compare(&old, &new, Mode::Full, Profile::Serde)
        .findings
        .into_iter()
        .map(|f| f.message)
        .collect()
}

/// Declares a module holding one version of the types.
macro_rules! version {
    ($name:ident { $($items:item)* }) => {
        #[allow(dead_code, unreachable_pub)]
        mod $name {
            use schemars::JsonSchema;
            use serde::{Deserialize, Serialize};
            $($items)*
        }
    };
}

// Internally tagged newtype variants: schemars writes `{"$ref": ..., "properties": {"type":
// {"const": ...}}, "required": ["type"]}`; the tag beside the `$ref` names the variant.

version!(tag_paid {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct Info { pub amount: u32 }
    #[derive(Serialize, Deserialize, JsonSchema)]
    #[serde(tag = "type")]
    pub enum Pay { Paid(Info), Refunded { amount: u32 } }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub pay: Pay }
});
version!(tag_settled {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct Info { pub amount: u32 }
    #[derive(Serialize, Deserialize, JsonSchema)]
    #[serde(tag = "type")]
    pub enum Pay { Settled(Info), Refunded { amount: u32 } }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub pay: Pay }
});
version!(tag_two {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct Info { pub amount: u32 }
    #[derive(Serialize, Deserialize, JsonSchema)]
    #[serde(tag = "type")]
    pub enum Pay { Paid(Info), Refunded(Info) }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub pay: Pay }
});
version!(tag_two_swapped {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct Info { pub amount: u32 }
    #[derive(Serialize, Deserialize, JsonSchema)]
    #[serde(tag = "type")]
    pub enum Pay { Refunded(Info), Paid(Info) }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub pay: Pay }
});
version!(tag_one {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct Info { pub amount: u32 }
    #[derive(Serialize, Deserialize, JsonSchema)]
    #[serde(tag = "type")]
    pub enum Pay { Paid(Info) }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub pay: Pay }
});
version!(tag_one_wider {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct Info { pub amount: u32, pub currency: String }
    #[derive(Serialize, Deserialize, JsonSchema)]
    #[serde(tag = "type")]
    pub enum Pay { Paid(Info) }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub pay: Pay }
});

#[test]
fn internally_tagged_newtype_variant_renamed_breaks_both_sides() {
    assert_findings::<tag_paid::E, tag_settled::E>(&[
        "enum-value-added:forward@/$defs/Pay/oneOf/0",
        "enum-value-removed:backward@/$defs/Pay",
    ]);
    let messages = messages::<tag_paid::E, tag_settled::E>();
    assert!(
        messages.iter().any(|m| m.contains("`type=\"Paid\"`")),
        "{messages:?}"
    );
}

#[test]
fn internally_tagged_variant_removed_beside_another_wrapping_the_same_type() {
    assert_findings::<tag_two::E, tag_one::E>(&["enum-value-removed:backward@/$defs/Pay"]);
    assert_findings::<tag_one::E, tag_two::E>(&["enum-value-added:forward@/$defs/Pay/oneOf/1"]);
    assert_findings::<tag_two::E, tag_two_swapped::E>(&[]);
}

#[test]
fn a_ref_with_sibling_keywords_compares_both() {
    // The wrapped struct's fields are compared beside the tag.
    assert_findings::<tag_one::E, tag_one_wider::E>(&[
        "required-property-added:backward@/$defs/Info/properties/currency",
    ]);
}

// Properties beside a flattened enum (`oneOf` on the object, `allOf` of `oneOf`s for two).

version!(flat_one {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub enum K { A { x: u32 }, B { y: u32 } }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub id: String, #[serde(flatten)] pub kind: K }
});
version!(flat_one_amount {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub enum K { A { x: u32 }, B { y: u32 } }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub id: String, pub amount: u64, #[serde(flatten)] pub kind: K }
});
version!(flat_one_more {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub enum K { A { x: u32 }, B { y: u32 }, C { z: u32 } }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub id: String, #[serde(flatten)] pub kind: K }
});
version!(flat_two {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub enum K { A { x: u32 }, B { y: u32 } }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub enum L { P { p: u32 }, Q { q: u32 } }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub id: String, #[serde(flatten)] pub kind: K, #[serde(flatten)] pub l: L }
});
version!(flat_two_less {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub enum K { A { x: u32 }, B { y: u32 } }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub enum L { P { p: u32 } }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub id: String, #[serde(flatten)] pub kind: K, #[serde(flatten)] pub l: L }
});

#[test]
fn properties_beside_a_flattened_enum_are_compared() {
    assert_findings::<flat_one::E, flat_one_amount::E>(&[
        "required-property-added:backward@/properties/amount",
    ]);
    assert_findings::<flat_one::E, flat_one_more::E>(&["enum-value-added:forward@/oneOf/2"]);
    assert_findings::<flat_one::E, flat_one::E>(&[]);
}

#[test]
fn two_flattened_enums_are_compared_entry_by_entry() {
    assert_findings::<flat_two::E, flat_two_less::E>(&["enum-value-removed:backward@/allOf/1"]);
    assert_findings::<flat_two_less::E, flat_two::E>(&[
        "enum-value-added:forward@/allOf/1/oneOf/1",
    ]);
}

// The same pair of definitions at a second site: `null` is judged there too.

version!(stops_optional {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct Address { pub city: String }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub billing: Address, pub stops: Vec<Option<Address>> }
});
version!(stops_plain {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct Address { pub city: String }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub billing: Address, pub stops: Vec<Address> }
});

#[test]
fn nullable_is_judged_at_every_site_of_a_definition_pair() {
    assert_findings::<stops_optional::E, stops_plain::E>(&[
        "nullable-removed:backward@/$defs/Address",
    ]);
    assert_findings::<stops_plain::E, stops_optional::E>(&[
        "nullable-added:forward@/$defs/Address",
    ]);
}

// A property added or removed beside a flattened map: old readers read it as a map entry.

version!(map_only {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub id: String, #[serde(flatten)] pub extra: std::collections::BTreeMap<String, u32> }
});
version!(map_required {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E {
        pub id: String,
        pub name: String,
        #[serde(flatten)] pub extra: std::collections::BTreeMap<String, u32>,
    }
});
version!(map_optional {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E {
        pub id: String,
        #[serde(default)] pub name: Option<String>,
        #[serde(flatten)] pub extra: std::collections::BTreeMap<String, u32>,
    }
});

#[test]
fn a_property_added_beside_a_flattened_map_is_compared_with_its_values() {
    assert_findings::<map_only::E, map_required::E>(&[
        "required-property-added:backward@/properties/name",
        "type-changed:backward@/properties/name",
        "type-changed:forward@/properties/name",
    ]);
    assert_findings::<map_only::E, map_optional::E>(&[
        "nullable-added:forward@/properties/name",
        "type-changed:backward@/properties/name",
        "type-changed:forward@/properties/name",
    ]);
}

// Tuples and length limits.

version!(tuple_number {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub pair: (String, u32), pub code: String, pub bytes: Vec<u8> }
});
version!(tuple_string {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub pair: (String, String), pub code: char, pub bytes: [u8; 2] }
});
version!(tuple_triple {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub pair: (String, u32, bool), pub code: String, pub bytes: Vec<u8> }
});

#[test]
fn tuple_elements_and_length_limits_are_compared() {
    assert_findings::<tuple_number::E, tuple_string::E>(&[
        "type-changed:backward@/properties/pair/prefixItems/1",
        "type-changed:forward@/properties/pair/prefixItems/1",
        "type-narrowed:backward@/properties/bytes",
        "type-narrowed:backward@/properties/code",
    ]);
    let messages = messages::<tuple_number::E, tuple_string::E>();
    assert!(
        messages
            .contains(&"`code` length (minLength/maxLength) narrowed from 0.. to 1..=1".to_owned()),
        "{messages:?}"
    );
    // The other way the limits are looser.
    assert_findings::<tuple_string::E, tuple_number::E>(&[
        "type-changed:backward@/properties/pair/prefixItems/1",
        "type-changed:forward@/properties/pair/prefixItems/1",
        "type-widened:forward@/properties/bytes",
        "type-widened:forward@/properties/code",
    ]);
    // A longer tuple: old events are too short, old readers get too many elements.
    assert_findings::<tuple_number::E, tuple_triple::E>(&[
        "type-narrowed:backward@/properties/pair",
        "type-widened:forward@/properties/pair",
    ]);
}

// Optional property removed from an open object.

version!(note_kept {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub id: String, pub note: Option<String> }
});
version!(note_dropped {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub id: String }
});

#[test]
fn optional_property_removed_breaks_old_readers_only_under_the_strict_profile() {
    assert_eq!(
        findings::<note_kept::E, note_dropped::E>(Profile::Serde),
        Vec::<String>::new()
    );
    assert_eq!(
        findings::<note_kept::E, note_dropped::E>(Profile::Strict),
        ["property-removed:forward@/properties/note"]
    );
}

// A data variant added to a unit-only enum.

version!(status_units {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub enum Status { Open, Closed }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub status: Status }
});
version!(status_held {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub enum Status { Open, Closed, Held { until: String } }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub status: Status }
});
version!(status_documented {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub enum Status {
        /// Open.
        Open,
        /// Closed.
        Closed,
    }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub status: Status }
});
version!(status_documented_held {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub enum Status {
        /// Open.
        Open,
        /// Closed.
        Closed,
        /// Held.
        Held { until: String },
    }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub status: Status }
});

#[test]
fn a_data_variant_added_to_a_unit_only_enum_breaks_only_old_readers() {
    assert_findings::<status_units::E, status_held::E>(&[
        "enum-value-added:forward@/$defs/Status/oneOf/1",
    ]);
    assert_findings::<status_held::E, status_units::E>(&[
        "enum-value-removed:backward@/$defs/Status",
    ]);
    assert_findings::<status_documented::E, status_documented_held::E>(&[
        "enum-value-added:forward@/$defs/Status/oneOf/2",
    ]);
    // A unit variant removed at the same time is found too.
    assert_findings::<status_documented_held::E, status_units::E>(&[
        "enum-value-removed:backward@/$defs/Status",
    ]);
}

// Union alternatives matched by value and by type, not by position.

version!(mixed_ab {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub enum S {
        /// a
        A,
        /// b
        B,
        C { x: u32 },
    }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub s: S }
});
version!(mixed_ba {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub enum S {
        /// b
        B,
        /// a
        A,
        C { x: u32 },
    }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub s: S }
});
version!(mixed_a {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub enum S { A, B, C(u32) }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub s: S }
});
version!(mixed_a_without_b {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub enum S { A, C(u32) }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub s: S }
});
version!(untagged_two {
    #[derive(Serialize, Deserialize, JsonSchema)]
    #[serde(untagged)]
    pub enum V { N(u32), S(String) }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub v: V }
});
version!(untagged_three {
    #[derive(Serialize, Deserialize, JsonSchema)]
    #[serde(untagged)]
    pub enum V { B(bool), N(u32), S(String) }
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { pub v: V }
});

#[test]
fn union_alternatives_are_matched_by_value_and_type_not_position() {
    assert_findings::<mixed_ab::E, mixed_ba::E>(&[]);
    assert_findings::<mixed_a::E, mixed_a_without_b::E>(&["enum-value-removed:backward@/$defs/S"]);
    let messages = messages::<mixed_a::E, mixed_a_without_b::E>();
    assert!(
        messages.iter().any(|m| m.contains("value \"B\"")),
        "{messages:?}"
    );
    assert_findings::<untagged_two::E, untagged_three::E>(&[
        "enum-value-added:forward@/$defs/V/anyOf/0",
    ]);
}

// `serde_json::Value` (schema `true`) accepts null.

version!(note_optional {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { #[serde(default)] pub note: Option<String> }
});
version!(note_any {
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct E { #[serde(default)] pub note: serde_json::Value }
});

#[test]
fn option_to_json_value_keeps_null() {
    assert_findings::<note_optional::E, note_any::E>(&["type-widened:forward@/properties/note"]);
    assert_findings::<note_any::E, note_optional::E>(&["type-narrowed:backward@/properties/note"]);
}
