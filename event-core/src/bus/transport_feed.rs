//! The bus over a transport: `publish` sends each event to the broker, and each subscription
//! is a member of its consumer group, whose feed receives the entries of the shards it owns
//! into the subscription's lanes. A lane settles each delivery on the broker: an
//! acknowledgement once handled, or a dead letter (written and acknowledged in one step).

use super::dead_letter::DeadLetter;
use super::delivery::Delivery;
use super::metrics::Metrics;
use super::published;
use super::routing::Route;
use super::shared::Shared;
use super::store_feed::sleep_or_stop;
use crate::transport::{EntryRef, GroupSpec, Member, Transport, TransportError, reconnect_delay};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::watch;

/// Entries received from the broker at a time, per subscription.
const BATCH: usize = 256;

/// How long a receive waits for entries; also how soon a feed sees that it must stop.
const RECEIVE_WAIT: Duration = Duration::from_millis(250);

/// The longest wait between two attempts to reach a broker that is down.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How often a lane asks again whether a late lease renewal went through.
const LEASE_CHECK: Duration = Duration::from_millis(5);

/// How many times a dead letter is written to the broker before it is kept in memory.
const WRITE_ATTEMPTS: u32 = 5;

/// The broker behind the bus, and this process's name as a member of its groups.
#[derive(Debug)]
pub(crate) struct Remote {
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) consumer: String,
}

/// An entry received from the broker: settled there once handled or dead-lettered.
#[derive(Debug, Clone)]
pub(crate) struct Receipt {
    pub(crate) member: Arc<dyn Member>,
    pub(crate) entry: EntryRef,
}

impl Receipt {
    /// Whether this member may hand the entry to a handler: waits while its shard's lease
    /// is about to run out and its renewal is late (the lane, and so the key's later
    /// events, wait with it), and answers false once the lease is lost: a stale owner that
    /// went on would handle the entry beside its new owner, out of order. A lost entry is
    /// given back to the member, which hands it out again if it still owns the shard.
    pub(crate) async fn current(&self) -> bool {
        loop {
            if self.member.holds(&self.entry) {
                return true;
            }
            if self.member.lost(&self.entry) {
                self.member.abandon(&self.entry);
                return false;
            }
            tokio::time::sleep(LEASE_CHECK).await;
        }
    }

    /// Acknowledges a handled entry without holding the caller (the lane goes on with its
    /// next delivery): the acknowledgement runs on a task of its own, and coalesces with
    /// the others under way. A member that leaves waits for those first.
    pub(crate) fn ack_later(&self, shared: &Arc<Shared>) {
        let (receipt, shared) = (self.clone(), Arc::clone(shared));
        tokio::spawn(async move { receipt.ack(&shared.metrics).await });
    }

    /// Acknowledges a handled entry. A refused acknowledgement (the shard passed to another
    /// member) means the entry is handled again there: at least once; it is counted in
    /// `metrics`.
    pub(crate) async fn ack(&self, metrics: &Metrics) {
        if let Err(error) = self.member.ack(&self.entry).await {
            if let TransportError::Fenced { .. } = error {
                metrics.refused.fetch_add(1, Relaxed);
            }
            log_refused(&error, "acknowledgement");
        }
    }
}

/// Writes a dead letter to the broker, acknowledging `receipt`'s entry in the same step;
/// retries a broker that is down a few times, then keeps the letter in memory and says so by
/// returning false (the entry stays unacknowledged, so the broker hands it out again).
pub(crate) async fn keep(
    transport: &dyn Transport,
    shared: &Shared,
    letter: DeadLetter,
    receipt: Option<&Receipt>,
) -> bool {
    let entry = receipt.map(|receipt| &receipt.entry);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match transport.put_dead_letter(&letter, entry).await {
            Ok(()) => return true,
            Err(error @ TransportError::Fenced { .. }) => {
                // Another member owns the shard now and handles the entry again.
                shared.metrics.refused.fetch_add(1, Relaxed);
                log_refused(&error, "dead letter");
                return true;
            }
            Err(error) if attempt >= WRITE_ATTEMPTS => {
                tracing::error!(%error, "dead letter not written to the broker: kept in memory until restart");
                shared.dead_letter(letter);
                return false;
            }
            Err(_) => tokio::time::sleep(reconnect_delay(attempt, MAX_BACKOFF)).await,
        }
    }
}

fn log_refused(error: &TransportError, what: &str) {
    if let TransportError::Fenced { .. } = error {
        tracing::warn!(%error, "{what} refused: the shard has a new owner, which handles the entry again");
    } else {
        tracing::warn!(%error, "{what} not written: the broker hands the entry out again");
    }
}

/// Joins the subscription's consumer group and feeds its lanes with what the member
/// receives, until `stop`; then, once nothing is in flight, leaves the group so that the
/// other members take its shards at once.
pub(crate) async fn feed(
    remote: Arc<Remote>,
    spec: GroupSpec,
    route: Arc<Route>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let Some(member) = join(&remote, &spec, &mut stop).await else {
        return;
    };
    let mut failures = 0;
    while !*stop.borrow() {
        let batch = match member.receive(BATCH, RECEIVE_WAIT).await {
            Ok(batch) => {
                failures = 0;
                batch
            }
            Err(error) => {
                failures += 1;
                tracing::warn!(%error, subscription = %route.name, "cannot receive from the broker, retrying");
                if sleep_or_stop(reconnect_delay(failures, MAX_BACKOFF), &mut stop).await {
                    break;
                }
                continue;
            }
        };
        for received in batch {
            let receipt = Receipt {
                member: Arc::clone(&member),
                entry: received.entry,
            };
            if !route.matcher.matches(&received.envelope.event_type) {
                receipt.ack(&shared.metrics).await;
                continue;
            }
            let Some(lane) = route.lane(&received.envelope) else {
                // The lanes are closed: shutdown. The entry stays unacknowledged.
                break;
            };
            shared.metrics.in_flight.fetch_add(1, Relaxed);
            let delivery = Delivery {
                receipt: Some(Box::new(receipt)),
                ..Delivery::in_memory(published::raw(received.envelope))
            };
            if lane.send(delivery).await.is_err() {
                shared.finished();
                break;
            }
        }
    }
    shared.wait_idle().await;
    member.leave().await;
}

/// Joins the group, retrying while the broker is down; `None` when asked to stop first.
pub(super) async fn join(
    remote: &Remote,
    spec: &GroupSpec,
    stop: &mut watch::Receiver<bool>,
) -> Option<Arc<dyn Member>> {
    let mut attempt = 0;
    loop {
        match remote.transport.join(spec).await {
            Ok(member) => return Some(Arc::from(member)),
            Err(error) => {
                attempt += 1;
                tracing::warn!(%error, subscription = %spec.group, "cannot join the consumer group, retrying");
                if sleep_or_stop(reconnect_delay(attempt, MAX_BACKOFF), stop).await {
                    return None;
                }
            }
        }
    }
}
