use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
struct OrderCreated {
    #[event(partition_key)]
    order_id: String,
    #[event(partition_key)]
    customer_id: String,
}

fn main() {}
