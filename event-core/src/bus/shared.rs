//! State shared by the bus and every subscription: counters, in-memory dead letters, and
//! what is in flight.

use super::dead_letter::DeadLetter;
use super::metrics::Metrics;
use crate::privacy::FieldEncryption;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

/// State shared by the bus and every lane: counters and dead letters.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) metrics: Metrics,
    pub(crate) dead_letters: Mutex<Vec<DeadLetter>>,
    pub(crate) max_payload_bytes: usize,
    /// Field encryption, when the builder turned it on.
    pub(crate) encryption: Option<Arc<FieldEncryption>>,
    /// Signalled when the last delivery in flight finishes.
    pub(crate) idle: tokio::sync::Notify,
}

impl Shared {
    /// A delivery is over: delivered or dead-lettered.
    pub(crate) fn finished(&self) {
        if self.metrics.in_flight.fetch_sub(1, Relaxed) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Returns once no delivery is in flight.
    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.metrics.in_flight.load(Relaxed) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Keeps a dead letter in memory.
    pub(crate) fn dead_letter(&self, letter: DeadLetter) {
        self.dead_letters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(letter);
    }
}
