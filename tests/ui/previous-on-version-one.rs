use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.created")]
struct OrderCreatedV1 {
    order_id: String,
}

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.created", previous = OrderCreatedV1)]
struct OrderCreated {
    order_id: String,
}

fn main() {}
