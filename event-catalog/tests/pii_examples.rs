//! The example payload of an event shows no realistic value in its `#[event(pii)]` fields:
//! not the schema's `examples` or `default` (a person wrote them, maybe from real data);
//! their strings read `[redacted]` where the schema allows it. Other fields keep theirs.

use event_catalog::Catalog;
use event_core::{DomainEvent, Registry};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A home address: personal as a whole.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
struct Home {
    /// Street and number.
    #[schemars(example = &"221B Baker Street")]
    street: String,
    /// Postal code, too short for `[redacted]`.
    #[schemars(length(max = 8))]
    postal_code: String,
    /// Floor.
    #[schemars(example = 3)]
    floor: u8,
}

/// A member joined.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "member.joined")]
struct MemberJoined {
    /// The member.
    #[event(partition_key)]
    #[schemars(example = &"m-42")]
    member_id: String,
    /// Where the welcome mail goes.
    #[event(pii)]
    #[schemars(example = &"sherlock.holmes@gmail.com")]
    email: String,
    /// A second address, with a format.
    #[event(pii)]
    #[schemars(email, example = &"mycroft.holmes@gmail.com")]
    backup_email: String,
    /// Where the member lives.
    #[event(pii)]
    home: Home,
    /// Where they heard of us.
    #[event(pii)]
    #[serde(default = "referrer")]
    referred_by: String,
    /// The plan chosen: not personal, its example shown.
    #[schemars(example = &"gold")]
    plan: String,
}

fn referrer() -> String {
    "Dr. John Watson".to_owned()
}

fn example_and_schema() -> (Value, Value) {
    let registry = Registry::from_descriptors([MemberJoined::descriptor()]).unwrap();
    let rendered = Catalog::from_registry(&registry).render();
    let page = rendered.get("events/member.joined.v1.md").unwrap();
    let json = page
        .split("## Example payload\n\n```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("an example block");
    let schema = rendered.get("schemas/member.joined.v1.json").unwrap();
    (
        serde_json::from_str(json).unwrap(),
        serde_json::from_str(schema).unwrap(),
    )
}

#[test]
fn pii_fields_show_no_example_a_person_wrote() {
    let (example, schema) = example_and_schema();
    let text = example.to_string();
    for written in ["sherlock", "mycroft", "Baker", "Watson"] {
        assert!(!text.contains(written), "shows `{written}`: {example:#}");
    }
    assert_eq!(example["email"], "[redacted]");
    assert_eq!(example["referred_by"], "[redacted]");
    assert_eq!(example["home"]["street"], "[redacted]");
    // Where the schema wants a format or a short string, a made-up value that fits.
    assert_eq!(example["backup_email"], "ada@example.com");
    assert_eq!(example["home"]["postal_code"], "example ");
    assert_eq!(
        example["home"]["floor"], 1,
        "not the example 3: {example:#}"
    );
    // Fields that are not personal keep the examples written for them.
    assert_eq!(example["member_id"], "m-42");
    assert_eq!(example["plan"], "gold");
    // Still a valid payload of the type.
    if let Err(error) = jsonschema::draft202012::validate(&schema, &example) {
        panic!("the example does not validate: {error}\n{example:#}");
    }
    let _: MemberJoined = serde_json::from_value(example).unwrap();
}
