//! The durable bus over PostgreSQL (a server this test starts itself): two processes' worth
//! of buses on one database share the work of publishing, a restarted bus resumes where it
//! left off, and an event read again after a lost checkpoint is not handled twice.

use event_core::store::{PostgresStore, Store};
use event_core::{DomainEvent, EventBus};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tests::postgres_server::PostgresServer;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "seat.booked", source = "booking")]
struct SeatBooked {
    #[event(partition_key)]
    flight: String,
    seat: u32,
}

async fn bus(url: &str) -> EventBus {
    EventBus::builder()
        .store(PostgresStore::connect(url).await.expect("connects"))
        .poll_interval(Duration::from_millis(20))
        .build()
}

fn recording(bus: &EventBus, name: &str) -> Arc<Mutex<Vec<u32>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    bus.subscribe_event::<SeatBooked, _, _>(name, move |env| {
        sink.lock().unwrap().push(env.payload.seat);
        async { Ok(()) }
    })
    .expect("subscribes");
    seen
}

fn booked(seat: u32) -> SeatBooked {
    SeatBooked {
        flight: format!("F-{}", seat % 2),
        seat,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_bus_on_postgres_resumes_and_dedupes() {
    let url = PostgresServer::shared().create_database();

    // A publisher that is not subscribed: another process, say.
    let publisher = bus(&url).await;
    for seat in 1..=5 {
        publisher.publish(booked(seat)).await.unwrap();
    }

    // The consumer reads what was published elsewhere by polling.
    let consumer = bus(&url).await;
    let seats = recording(&consumer, "seating");
    consumer.shutdown().await;
    assert_eq!(*seats.lock().unwrap(), [1, 2, 3, 4, 5]);

    for seat in 6..=8 {
        publisher.publish(booked(seat)).await.unwrap();
    }
    publisher.shutdown().await;

    // Restarted, with its checkpoint lost: resumes, and the inbox skips the first five.
    let store = PostgresStore::connect(&url).await.unwrap();
    store.reset_checkpoint("seating", 0).await.unwrap();
    let consumer = bus(&url).await;
    let seats = recording(&consumer, "seating");
    consumer.shutdown().await;
    assert_eq!(*seats.lock().unwrap(), [6, 7, 8]);
    let metrics = consumer.metrics();
    assert_eq!((metrics.delivered, metrics.deduplicated), (3, 5));
    assert_eq!(store.checkpoint("seating").await.unwrap(), 8);
}
