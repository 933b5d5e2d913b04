//! The outbox relay: with a store and a transport, `publish` commits to the store (also
//! inside the caller's own transaction, `append_in`), and a relay forwards the stored events
//! to the broker in position order, recording how far it got as a checkpoint of its own.
//!
//! One relay runs per store: each bus on it tries to take the store's `relay` lease, and
//! the holder forwards while the others wait, ready to take over when its lease runs out.
//! A crash between the broker's acknowledgement and the saved position forwards a few
//! events again; consumers with a store drop them by event id (their inbox).

use super::shared::Shared;
use super::store_feed::Backing;
use super::transport_feed::Remote;
use crate::store::{Fence, Position, StoreError};
use crate::transport::reconnect_delay;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::watch;

/// The lease that makes one bus among those sharing a store the relay.
pub(crate) const LEASE: &str = "relay";

/// The relay's position, kept as a checkpoint: `prune` keeps what it has not forwarded.
pub(crate) const CHECKPOINT: &str = "$relay";

/// Events forwarded at a time.
const BATCH: usize = 256;

/// The longest wait between two attempts at a failing store or broker.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Forwards the store's events to the broker while this bus holds the relay lease, until
/// `stop`; then gives the lease up, so that another process's bus takes over at once.
pub(crate) async fn relay(
    backing: Arc<Backing>,
    remote: Arc<Remote>,
    lease: Duration,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let store = &backing.store;
    backing.watch();
    let mut failures = 0;
    loop {
        let appended = backing.appended.notified();
        tokio::pin!(appended);
        appended.as_mut().enable();
        if *stop.borrow() {
            break;
        }
        let renewing = tokio::time::Instant::now();
        let wait = match store.lease(LEASE, &remote.consumer, lease).await {
            Ok(Some(token)) => match forward(&backing, &remote, token, renewing + lease).await {
                Ok(0) => Some(backing.poll_interval.min(lease / 3)),
                Ok(_) => None,
                Err(RelayError::Fenced) => {
                    shared.metrics.refused.fetch_add(1, Relaxed);
                    tracing::warn!(
                        "outbox relay: the relay lease was lost meanwhile; another relay forwards now"
                    );
                    Some(lease / 3)
                }
                Err(error) => {
                    failures += 1;
                    tracing::warn!(%error, "outbox relay: not forwarded, retrying");
                    Some(reconnect_delay(failures, MAX_BACKOFF))
                }
            },
            // Another bus relays; be ready when its lease runs out.
            Ok(None) => Some(lease / 3),
            Err(error) => {
                failures += 1;
                tracing::warn!(%error, "outbox relay: lease not readable, retrying");
                Some(reconnect_delay(failures, MAX_BACKOFF))
            }
        };
        let Some(wait) = wait else {
            failures = 0;
            continue;
        };
        tokio::select! {
            () = &mut appended => {}
            () = tokio::time::sleep(wait) => {}
            // Err: the bus was dropped without a shutdown; stop with it.
            changed = stop.changed() => if changed.is_err() { break; }
        }
    }
    if let Err(error) = store.release_lease(LEASE, &remote.consumer).await {
        tracing::warn!(%error, "outbox relay: lease not released; another relay takes over when it runs out");
    }
}

/// Forwards one batch after the relay's position, holding the relay lease under `token`
/// until `expires` (as this process counts); how many events it forwarded.
///
/// Fenced: a relay paused past its lease (while another took over and forwarded further)
/// does not publish what it read before the pause, and its position save is refused, so
/// it never moves the relay's position over events the other relay has not forwarded.
async fn forward(
    backing: &Backing,
    remote: &Remote,
    token: u64,
    expires: tokio::time::Instant,
) -> Result<usize, RelayError> {
    let store = &backing.store;
    let after = store.checkpoint(CHECKPOINT).await?;
    let batch = store.read(after, BATCH).await?;
    let Some(last) = batch.last().map(|event| event.position) else {
        return Ok(0);
    };
    if tokio::time::Instant::now() >= expires {
        return Err(RelayError::Fenced);
    }
    let envelopes: Vec<_> = batch.into_iter().map(|event| event.envelope).collect();
    remote.transport.publish(&envelopes).await?;
    let fence = Fence::new(LEASE, &remote.consumer, token);
    if !store
        .save_checkpoint_fenced(CHECKPOINT, last, &fence)
        .await?
    {
        return Err(RelayError::Fenced);
    }
    Ok(envelopes.len())
}

/// Whether the relay has forwarded everything stored up to `head`.
pub(crate) async fn caught_up(backing: &Backing, head: Position) -> Result<bool, StoreError> {
    Ok(backing.store.checkpoint(CHECKPOINT).await? >= head)
}

/// Waits, a bounded time, until the relay (this bus's or another's) has forwarded what the
/// store holds now; says so when it has not.
pub(crate) async fn drain(backing: &Backing, limit: Duration) {
    let started = tokio::time::Instant::now();
    let head = match backing.store.head().await {
        Ok(head) => head,
        Err(error) => {
            tracing::error!(%error, "store not readable at shutdown; not waiting for the relay");
            return;
        }
    };
    loop {
        match caught_up(backing, head).await {
            Ok(true) => return,
            Ok(false) if started.elapsed() < limit => {
                backing.appended.notify_waiters();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(false) => {
                tracing::warn!(
                    "outbox relay: events up to position {head} not all forwarded at shutdown; \
                     they stay stored and the next relay forwards them"
                );
                return;
            }
            Err(error) => {
                tracing::error!(%error, "store not readable at shutdown; not waiting for the relay");
                return;
            }
        }
    }
}

/// Why a batch was not forwarded.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Transport(#[from] crate::transport::TransportError),
    /// The relay lease ran out, or passed to another relay, while this one forwarded.
    #[error("the relay lease was lost meanwhile: another relay forwards now")]
    Fenced,
}
