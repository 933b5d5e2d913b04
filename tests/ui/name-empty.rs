use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "")]
struct OrderCreated {
    order_id: String,
}

fn main() {}
