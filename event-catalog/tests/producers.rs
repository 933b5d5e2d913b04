//! Producers declared in code with `event_core::produces!`, consumers from unions, and the
//! warnings `check` prints. Its own binary: registrations are global to a binary.

use event_catalog::{Catalog, Warning};
use event_core::{DomainEvent, EventUnion, Registry};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A parcel was scanned by the carrier.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "parcel.scanned", source = "shipping")]
struct ParcelScanned {
    parcel_id: String,
}

/// A parcel was lost; nobody declares that it publishes this, yet the claims desk waits for it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "parcel.lost")]
struct ParcelLost {
    parcel_id: String,
}

/// A parcel was weighed; nobody consumes it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "parcel.weighed", source = "shipping")]
struct ParcelWeighed {
    parcel_id: String,
}

/// An old event nobody consumes any more: deprecated, so no warning.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(
    name = "parcel.faxed",
    source = "shipping",
    deprecated = "nobody faxes"
)]
struct ParcelFaxed {
    parcel_id: String,
}

/// Tracking reads scans and losses.
#[derive(Debug, Clone, EventUnion)]
#[union(consumer = "tracking")]
#[allow(dead_code, reason = "decoded, not read, here")]
enum Tracking {
    Scanned(ParcelScanned),
    Lost(ParcelLost),
}

/// Claims waits for losses too.
#[derive(Debug, Clone, EventUnion)]
#[union(consumer = "claims")]
#[allow(dead_code, reason = "decoded, not read, here")]
enum Claims {
    Lost(ParcelLost),
}

event_core::produces!("carrier-webhook": ParcelScanned);
event_core::produces!("scanner-fleet": ParcelScanned, ParcelWeighed,);

fn catalog() -> Catalog {
    Catalog::from_registry(
        &Registry::from_descriptors([
            ParcelScanned::descriptor(),
            ParcelLost::descriptor(),
            ParcelWeighed::descriptor(),
            ParcelFaxed::descriptor(),
        ])
        .unwrap(),
    )
}

#[test]
fn declared_producers_are_listed_beside_the_source() {
    assert_eq!(
        event_core::producers_of("parcel.scanned", 1),
        ["carrier-webhook", "scanner-fleet"]
    );
    assert!(event_core::producers_of("parcel.scanned", 2).is_empty());
    assert!(event_core::producers_of("parcel.lost", 1).is_empty());

    let catalog = catalog();
    let scanned = catalog.get("parcel.scanned", 1).unwrap();
    assert_eq!(
        scanned.declared_producers,
        ["carrier-webhook", "scanner-fleet"]
    );
    assert_eq!(
        scanned.producers(),
        ["carrier-webhook", "scanner-fleet", "shipping"]
    );
    assert!(
        catalog
            .get("parcel.lost", 1)
            .unwrap()
            .producers()
            .is_empty()
    );
    assert_eq!(
        catalog.producers(),
        ["carrier-webhook", "scanner-fleet", "shipping"]
    );

    // catalog.json keeps them (and reads a file from before they existed).
    let json = catalog.to_json();
    assert!(
        json.contains(
            "\"producers\": [\n        \"carrier-webhook\",\n        \"scanner-fleet\"\n      ]"
        ),
        "{json}"
    );
    assert_eq!(Catalog::from_json(&json).unwrap(), catalog);
    let weighed = catalog.get("parcel.weighed", 1).unwrap();
    assert_eq!(weighed.declared_producers, ["scanner-fleet"]);
    let lost_entry = json
        .split("\"name\": \"parcel.lost\"")
        .nth(1)
        .unwrap()
        .split("\"name\":")
        .next()
        .unwrap();
    assert!(!lost_entry.contains("\"producers\""), "left out when empty");

    // Every view lists them: the page, the README and its diagram, AsyncAPI's operations.
    let rendered = catalog.render();
    assert!(
        rendered
            .get("events/parcel.scanned.v1.md")
            .unwrap()
            .contains("| Producers | carrier-webhook, scanner-fleet, shipping |")
    );
    let readme = rendered.get("README.md").unwrap();
    assert!(
        readme.contains("| carrier-webhook, scanner-fleet, shipping | tracking |"),
        "{readme}"
    );
    assert!(
        readme.contains("src_scanner_2d_fleet --> ev_parcel__weighed__v1"),
        "{readme}"
    );
    let asyncapi: serde_json::Value =
        serde_json::from_str(rendered.get("asyncapi.json").unwrap()).unwrap();
    let operation = &asyncapi["operations"]["parcel.scanned.v1.send.scanner-fleet"];
    assert_eq!(operation["action"], "send");
    assert_eq!(
        operation["title"],
        "scanner-fleet publishes parcel.scanned v1"
    );
}

#[test]
fn check_warns_about_events_nobody_consumes_and_consumers_of_events_nobody_produces() {
    assert_eq!(
        catalog().warnings(),
        [
            Warning::NotProduced {
                event: "parcel.lost".into(),
                consumers: vec!["claims".into(), "tracking".into()],
            },
            Warning::NotConsumed {
                event: "parcel.weighed".into(),
            },
        ]
    );
    assert_eq!(
        Warning::NotProduced {
            event: "parcel.lost".into(),
            consumers: vec!["claims".into(), "tracking".into()],
        }
        .to_string(),
        "`parcel.lost` is consumed by claims, tracking but nobody produces it: it has no `source` and no `event_core::produces!` names it"
    );
}
