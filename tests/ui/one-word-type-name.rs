use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
struct Created {
    order_id: String,
}

fn main() {}
