use event_core::DomainEvent;

#[derive(Clone, DomainEvent)]
union OrderCreated {
    order_id: u64,
}

fn main() {}
