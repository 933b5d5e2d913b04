use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, JsonSchema, DomainEvent)]
struct OrderCreated {
    order_id: String,
}

fn main() {}
