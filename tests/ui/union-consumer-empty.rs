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
#[union(consumer = "")]
enum OrderEvents {
    Created(OrderCreated),
}

// The failed derive still leaves an impl and the `From` impls behind: uses of the union add
// no second wave of errors.
fn main() {
    let event = OrderEvents::from(OrderCreated {
        order_id: "o-1".into(),
    });
    let _ = event.event();
    let _ = <OrderEvents as EventUnion>::EVENTS;
}
