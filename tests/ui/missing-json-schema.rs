use event_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, DomainEvent)]
struct OrderCreated {
    order_id: String,
}

fn main() {}
