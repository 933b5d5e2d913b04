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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_fails_publish_writes_nothing_and_the_writer_recovers() {
    let url = PostgresServer::shared().create_database();
    let store = PostgresStore::connect(&url).await.unwrap();
    store
        .append(vec![event_core::Envelope::new(booked(1)).to_raw().unwrap()])
        .await
        .unwrap();

    let (admin, connection) =
        event_core::store::tokio_postgres::connect(&url, event_core::store::tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let set_read_only = |on: bool| {
        let admin = &admin;
        async move {
            let db: String = admin
                .query_one("SELECT current_database()", &[])
                .await
                .unwrap()
                .get(0);
            admin
                .batch_execute(&format!(
                    "ALTER DATABASE {db} SET default_transaction_read_only = {on}"
                ))
                .await
                .unwrap();
        }
    };
    set_read_only(true).await;
    // A new connection picks the setting up; the store's writer is one.
    let read_only = PostgresStore::connect(&url).await.unwrap();
    let error = read_only
        .append(vec![event_core::Envelope::new(booked(2)).to_raw().unwrap()])
        .await
        .expect_err("read-only");
    assert!(
        matches!(error, event_core::store::StoreError::ReadOnly { .. }),
        "{error:?}"
    );
    // The failed batch ended its transaction: the next one on the same writer fails the
    // same way, not with "current transaction is aborted".
    let again = read_only
        .append(vec![event_core::Envelope::new(booked(3)).to_raw().unwrap()])
        .await
        .expect_err("still read-only");
    assert!(
        matches!(again, event_core::store::StoreError::ReadOnly { .. }),
        "{again:?}"
    );
    set_read_only(false).await;
    assert_eq!(store.head().await.unwrap(), 1, "nothing half-written");
    let positions = store
        .append(vec![event_core::Envelope::new(booked(4)).to_raw().unwrap()])
        .await
        .unwrap();
    assert_eq!(positions, [2], "positions stay gap-free");
}
