use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::Serialize;

#[derive(Clone, Serialize, JsonSchema, DomainEvent)]
struct OrderCreated {
    order_id: String,
}

fn main() {}
