//! Shutting down: no more events from outside, drain what is queued (and, on a durable bus,
//! what is stored and unread), then stop every task.

use super::EventBus;
use super::relay;
use super::routing::Routing;
use super::store_feed::{Backing, Durable};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

/// How long `shutdown` waits for the outbox relay to forward what is stored.
const RELAY_DRAIN: Duration = Duration::from_secs(5);

impl EventBus {
    /// Stops accepting events, lets every subscription finish what is queued (retries
    /// included), and returns when all are done. On a transport, each subscription stops
    /// receiving, finishes what it received, and leaves its consumer group, so that the
    /// other members take its shards at once; what is still on the broker stays there.
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Relaxed);
        // Handlers still running may publish follow-up events: wait until nothing is in
        // flight before closing the queues.
        match (&self.inner.backing, &self.inner.remote) {
            (Some(backing), None) => self.drain_store(backing).await,
            (backing, Some(_)) => {
                if let Some(backing) = backing {
                    // What is stored reaches the broker first (by this bus's relay or
                    // another's); what the broker holds stays there for the group.
                    relay::drain(backing, RELAY_DRAIN).await;
                }
                // Each feed stops receiving, waits until nothing is in flight, and leaves.
                self.inner.stop.send_replace(true);
                self.stop_feeds().await;
            }
            (None, None) => self.inner.shared.wait_idle().await,
        }
        self.inner.draining_done.store(true, Relaxed);
        self.inner.stop.send_replace(true);
        self.stop_feeds().await;
        // The lanes close once no sender is left: the routing's and each route's own.
        *self
            .inner
            .routing
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(Routing::default());
        for route in self.routes() {
            route
                .lanes
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
        }
        let tasks = std::mem::take(
            &mut *self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for task in tasks {
            // A lane task only ends by draining its queue; a panic is caught per handler.
            let _ = task.await;
        }
        for durable in self.durable_routes() {
            durable.save_checkpoint().await;
        }
        for route in self.routes() {
            let held = route.parking.as_ref().map_or(0, |p| p.parked_count());
            if held > 0 {
                let kept = if self.inner.backing.is_some() {
                    "they stay in the store and are held back again at the next start"
                } else {
                    "an in-memory bus ends with them, as with its dead letters"
                };
                tracing::warn!(subscription = %route.name, held, "shut down with events held back behind dead letters: {kept}");
            }
        }
        let mut recent = self
            .inner
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        recent.waiters.clear();
    }

    /// Waits for every feed (a store's pump, a transport's member) to end.
    async fn stop_feeds(&self) {
        let feeds = std::mem::take(
            &mut *self
                .inner
                .feeds
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for feed in feeds {
            let _ = feed.await;
        }
    }

    /// Waits until every subscription has read the store to its end and handled what it
    /// read, including what handlers published meanwhile.
    async fn drain_store(&self, backing: &Backing) {
        loop {
            let head = match backing.store.head().await {
                Ok(head) => head,
                Err(error) => {
                    tracing::error!(%error, "store not readable at shutdown; not draining it");
                    return self.inner.shared.wait_idle().await;
                }
            };
            loop {
                let behind: Vec<Arc<Durable>> = self
                    .durable_routes()
                    .into_iter()
                    .filter(|durable| !durable.caught_up(head))
                    .collect();
                if behind.is_empty() {
                    break;
                }
                // A subscription that cannot read the store (a lost database, a damaged
                // row) would keep shutdown waiting for ever: what it has not read stays
                // stored, for its next start.
                if behind.iter().all(|durable| durable.stalled()) {
                    for durable in &behind {
                        tracing::error!(
                            subscription = %durable.name,
                            "cannot read the store; shutting down without draining it: \
                             its unread events stay stored"
                        );
                    }
                    break;
                }
                backing.appended.notify_waiters();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            self.inner.shared.wait_idle().await;
            let stalled = self
                .durable_routes()
                .iter()
                .any(|durable| durable.stalled());
            if stalled || matches!(backing.store.head().await, Ok(now) if now == head) {
                return;
            }
        }
    }
}
