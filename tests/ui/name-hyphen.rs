use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.checkout-sent")]
struct OrderCheckoutSent {
    order_id: String,
}

fn main() {}
