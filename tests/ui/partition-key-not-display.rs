use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, JsonSchema)]
struct OrderRef {
    id: String,
}

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
struct OrderCreated {
    #[event(partition_key)]
    order: OrderRef,
}

fn main() {}
