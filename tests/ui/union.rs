use event_core::DomainEvent;

#[derive(DomainEvent)]
union OrderCreated {
    order_id: u64,
}

fn main() {}
