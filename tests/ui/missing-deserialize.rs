use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::Serialize;

#[derive(Serialize, JsonSchema, DomainEvent)]
struct OrderCreated {
    order_id: String,
}

fn main() {}
