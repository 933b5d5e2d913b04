use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.created")]
struct OrderCreatedV1 {
    order_id: String,
}

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.created", version = 3, previous = OrderCreatedV1)]
struct OrderCreated {
    order_id: String,
}

impl From<OrderCreatedV1> for OrderCreated {
    fn from(v1: OrderCreatedV1) -> Self {
        OrderCreated { order_id: v1.order_id }
    }
}

fn main() {}
