use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
struct CustomerRegistered {
    #[event(subject, pii)]
    email: String,
    #[event(subject)]
    customer_id: String,
}

fn main() {}
