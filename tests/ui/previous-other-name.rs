use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.placed")]
struct OrderPlaced {
    order_id: String,
}

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.created", version = 2, previous = OrderPlaced)]
struct OrderCreated {
    order_id: String,
}

impl From<OrderPlaced> for OrderCreated {
    fn from(placed: OrderPlaced) -> Self {
        OrderCreated { order_id: placed.order_id }
    }
}

fn main() {}
