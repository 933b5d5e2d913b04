use event_core::{DomainEvent, EventUnion};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.created")]
struct OrderCreated {
    order_id: String,
}

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.paid")]
struct OrderPaid {
    order_id: String,
}

#[derive(EventUnion)]
#[union(consumer = "fulfillment", group = "orders")]
enum OrderEvents {
    Created(OrderCreated),
}

fn main() {}
