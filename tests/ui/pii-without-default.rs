use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, JsonSchema)]
struct Address {
    street: String,
}

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
struct CustomerMoved {
    #[event(partition_key)]
    customer_id: String,
    #[event(pii)]
    address: Address,
}

fn main() {}
