use event_core::DomainEvent;

struct OrderCreated {
    order_id: String,
}

fn name_of<E: DomainEvent>() -> &'static str {
    E::NAME
}

fn main() {
    let _ = name_of::<OrderCreated>();
}
