use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
struct OrderCreated {
    #[event(partition)]
    order_id: String,
}

fn main() {}
