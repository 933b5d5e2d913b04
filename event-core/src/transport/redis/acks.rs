//! Acknowledgements, coalesced: the entries acknowledged while a flush runs go together in
//! the next, one fenced `XACK` per shard stream and lease (`scripts::ACK`, with every id),
//! instead of one script call per entry.

use super::member::Shared;
use super::scripts;
use crate::transport::{EntryRef, TransportError};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use tokio::sync::oneshot;

/// How long an acknowledgement waits for another's flush before it flushes itself.
const RETRY_FLUSH: std::time::Duration = std::time::Duration::from_millis(100);

/// Whether an entry's acknowledgement was taken (`false`: fenced, the lease is another's).
type Outcome = Result<bool, TransportError>;

/// An entry waiting for its acknowledgement, and who waits.
type Waiting = (EntryRef, oneshot::Sender<Outcome>);

/// The acknowledgements waiting for a flush.
#[derive(Default)]
pub(super) struct Acks {
    queue: Mutex<Vec<Waiting>>,
    /// A flush runs.
    flushing: AtomicBool,
}

/// Clears `flushing` however the flush ends (also when its future is dropped midway: the
/// entries it took are then not acknowledged, and their callers see an error).
struct Flushing<'a>(&'a AtomicBool);

impl Drop for Flushing<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Acks {
    /// Acknowledges `entry` under its lease, with whatever else is waiting: `Ok(false)`
    /// when the lease passed to another member.
    pub(super) async fn ack(&self, shared: &Shared, entry: &EntryRef) -> Outcome {
        let (tx, mut rx) = oneshot::channel();
        self.queue().push((entry.clone(), tx));
        loop {
            self.flush(shared).await;
            // Another flush took it, or will: wait for it, and flush again now and then in
            // case that flush was cancelled before it took this entry.
            tokio::select! {
                outcome = &mut rx => {
                    return outcome.unwrap_or_else(|_| {
                        Err(TransportError::Unavailable {
                            broker: shared.inner.broker.clone(),
                            source: std::sync::Arc::new(std::io::Error::other(
                                "the acknowledgement's flush was cancelled",
                            )),
                        })
                    });
                }
                () = tokio::time::sleep(RETRY_FLUSH) => {}
            }
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Flushes until nothing waits, unless another flush runs (it takes what waits).
    async fn flush(&self, shared: &Shared) {
        loop {
            if self.flushing.swap(true, Ordering::AcqRel) {
                return;
            }
            let flushing = Flushing(&self.flushing);
            let batch = std::mem::take(&mut *self.queue());
            if batch.is_empty() {
                drop(flushing);
                // Something queued between the take and the clear is flushed by this loop.
                if self.queue().is_empty() {
                    return;
                }
                continue;
            }
            send(shared, batch).await;
            drop(flushing);
        }
    }
}

/// One fenced `XACK` per stream and lease, pipelined on the shared connection.
async fn send(shared: &Shared, batch: Vec<Waiting>) {
    let inner = &shared.inner;
    let group = shared.spec.group.as_str();
    let mut by_lease: BTreeMap<(String, u32, u64), Vec<Waiting>> = BTreeMap::new();
    for (entry, tx) in batch {
        by_lease
            .entry((entry.topic.clone(), entry.shard, entry.token))
            .or_default()
            .push((entry, tx));
    }
    let calls = by_lease
        .into_iter()
        .map(|((topic, shard, token), entries)| async move {
            let mut ack = scripts::ACK.prepare_invoke();
            ack.key(inner.lease_key(group, shard))
                .key(inner.stream_key(&topic, shard))
                .arg(shared.value(token))
                .arg(group);
            for (entry, _) in &entries {
                ack.arg(&entry.id);
            }
            let acked: Result<i64, _> = ack.invoke_async(&mut inner.conn()).await;
            let outcome = acked.map(|n| n >= 0).map_err(inner.err("XACK"));
            for (entry, tx) in entries {
                shared.settled(&entry);
                let _ = tx.send(outcome.clone());
            }
        });
    futures_util::future::join_all(calls).await;
}
