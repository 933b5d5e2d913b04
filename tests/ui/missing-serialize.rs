use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Clone, Deserialize, JsonSchema, DomainEvent)]
struct OrderCreated {
    order_id: String,
}

fn main() {}
