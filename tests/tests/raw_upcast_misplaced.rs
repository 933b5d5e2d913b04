//! Raw upcasters that do not fit their chain make `registry()` an error that says which and
//! what to do. Its own binary: the upcasters registered here would break every other
//! registry test.

use event_core::{DomainEvent, RegistryError, register_raw_upcaster, registry};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "seat.booked", version = 1)]
struct SeatBookedV1 {
    seat: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "seat.booked", version = 2, previous = SeatBookedV1)]
struct SeatBooked {
    seat: String,
    row: u32,
}

impl From<SeatBookedV1> for SeatBooked {
    fn from(v1: SeatBookedV1) -> Self {
        SeatBooked {
            seat: v1.seat,
            row: 0,
        }
    }
}

#[allow(clippy::unnecessary_wraps, reason = "the upcaster signature")]
fn identity(payload: Value) -> Result<Value, String> {
    Ok(payload)
}

#[allow(clippy::unnecessary_wraps, reason = "the upcaster signature")]
fn other(payload: Value) -> Result<Value, String> {
    Ok(payload)
}

#[test]
fn misplaced_raw_upcasters_are_named() {
    assert!(registry().is_ok(), "a typed chain alone is whole");
    // Beside the typed step 1 → 2: two ways from one version to the next.
    register_raw_upcaster("seat.booked", 1, identity);
    // Past the newest version.
    register_raw_upcaster("seat.booked", 2, identity);
    // For an event with no type at all.
    register_raw_upcaster("table.booked", 1, identity);
    // Twice for one step, with other functions.
    register_raw_upcaster("table.booked", 1, other);
    let Err(RegistryError::RawUpcasters(problems)) = registry() else {
        panic!("misplaced upcasters accepted");
    };
    let all = problems.join("\n");
    assert!(
        all.contains("`seat.booked` goes from version 1 to 2 twice"),
        "{all}"
    );
    assert!(
        all.contains(
            "raw upcaster of `seat.booked` from version 2 writes version 3, which no type defines"
        ),
        "{all}"
    );
    assert!(
        all.contains("no version of `table.booked` is linked"),
        "{all}"
    );
    assert!(
        all.contains("`table.booked` has two raw upcasters from version 1"),
        "{all}"
    );
}
