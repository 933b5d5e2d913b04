//! The registry rejects versions of an event that do not form one chain: a missing version
//! between two linked ones, or a newer version that does not name the older as `previous`.

use event_core::{DomainEvent, Registry, RegistryError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "ticket.opened", version = 1)]
struct TicketOpenedV1 {
    id: String,
}

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "ticket.opened", version = 2, previous = TicketOpenedV1)]
struct TicketOpenedV2 {
    id: String,
    queue: String,
}

impl From<TicketOpenedV1> for TicketOpenedV2 {
    fn from(v1: TicketOpenedV1) -> Self {
        TicketOpenedV2 {
            id: v1.id,
            queue: "default".into(),
        }
    }
}

/// Version 3, not linked to version 2.
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "ticket.opened", version = 3)]
struct TicketOpenedV3 {
    id: String,
    queue: String,
    priority: u8,
}

fn build(descriptors: &[&'static event_core::EventDescriptor]) -> Result<Registry, RegistryError> {
    Registry::from_descriptors(descriptors.iter().copied())
}

#[test]
fn a_linked_chain_is_accepted_and_an_old_version_alone_too() {
    let registry = build(&[TicketOpenedV1::descriptor(), TicketOpenedV2::descriptor()]).unwrap();
    assert_eq!(registry.versions("ticket.opened").count(), 2);
    // The old types may be gone altogether: the newest alone is a chain of one.
    build(&[TicketOpenedV3::descriptor()]).unwrap();
}

#[test]
fn a_newer_version_without_previous_is_rejected_with_the_fix() {
    let error = build(&[TicketOpenedV2::descriptor(), TicketOpenedV3::descriptor()]).unwrap_err();
    let RegistryError::BrokenChains(broken) = &error else {
        panic!("expected BrokenChains, got {error:?}");
    };
    assert_eq!(broken.len(), 1);
    assert_eq!(broken[0].name(), "ticket.opened");
    assert_eq!(broken[0].older().version(), 2);
    assert_eq!(broken[0].newer().version(), 3);
    let message = error.to_string();
    assert!(
        message.contains(
            "version 3 (`registry_chains::TicketOpenedV3` at tests/tests/registry_chains.rs:"
        ),
        "{message}"
    );
    assert!(
        message.contains(
            "add `previous = TicketOpenedV2` and `impl From<TicketOpenedV2> for TicketOpenedV3`"
        ),
        "{message}"
    );
}

#[test]
fn a_missing_version_between_two_is_rejected() {
    let error = build(&[TicketOpenedV1::descriptor(), TicketOpenedV3::descriptor()]).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("has versions 1 (`registry_chains::TicketOpenedV1`"),
        "{message}"
    );
    assert!(
        message.contains("and 3 (`registry_chains::TicketOpenedV3`"),
        "{message}"
    );
    assert!(message.contains("but none between"), "{message}");
}

#[test]
fn the_linked_registry_reports_the_broken_chain() {
    // All three are linked into this binary: 2 → 3 is broken.
    let error = event_core::registry().unwrap_err();
    assert!(
        matches!(error, RegistryError::BrokenChains(ref b) if b.len() == 1),
        "{error}"
    );
}
