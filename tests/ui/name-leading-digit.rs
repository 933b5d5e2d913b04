use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.2fa_enabled")]
struct Order2faEnabled {
    order_id: String,
}

fn main() {}
