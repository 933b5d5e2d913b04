use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "Order.Created", version = 0, topic = "orders")]
struct OrderCreated {
    #[event(partition_key)]
    order_id: String,
    #[event(partition_key, secret)]
    customer_id: String,
}

fn main() {}
