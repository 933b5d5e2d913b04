//! What a subscription's lane queue carries: an event, and where it came from.

use super::published::Event;
use super::store_feed::Durable;
use super::store_group::ShardLease;
use super::transport_feed::Receipt;
use crate::transport::EntryRef;
use std::sync::Arc;

/// What a lane's queue carries.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) event: Event,
    /// Where the event sits in the store, on a durable bus: its subscription's checkpoint
    /// passes it once it is handled or dead-lettered.
    pub(crate) position: Option<u64>,
    /// Handled even if the subscription already handled it (a replay).
    pub(crate) replay: bool,
    /// The stored dead letter this delivery retries, removed once it is settled.
    pub(crate) redelivers: Option<crate::store::DeadLetterId>,
    /// Whether it redelivers or discards a dead letter, for ordered dead letters.
    pub(crate) letter: LetterAction,
    /// The broker's entry, on a bus with a transport: acknowledged once handled. Boxed,
    /// like the next field, so that an in-memory delivery stays small to move.
    pub(crate) receipt: Option<Box<Receipt>>,
    /// The dead letter on the broker this delivery retries, removed once it is settled.
    pub(crate) redelivers_remote: Option<Box<EntryRef>>,
    /// The shard it was read from, in a consumer group on a shared store: its checkpoint
    /// passes the event once settled, and the event is handled only while the shard's
    /// lease holds.
    pub(crate) shard: Option<Arc<Durable>>,
}

impl Delivery {
    /// The lease of the shard it was read from, in a consumer group on a shared store.
    pub(crate) fn lease(&self) -> Option<&ShardLease> {
        self.shard
            .as_deref()
            .and_then(|durable| durable.shard.as_deref())
    }

    /// Whether this process may still hand it to a handler: the lease of the shard it came
    /// from (on a transport, or in a consumer group on a store) still holds. Waits while the
    /// lease is about to run out and its renewal is late; true for a delivery of no shard.
    pub(crate) async fn current(&self) -> bool {
        if let Some(receipt) = &self.receipt
            && !receipt.current().await
        {
            return false;
        }
        match self.lease() {
            Some(lease) => lease.current().await,
            None => true,
        }
    }

    /// Where it is settled in the store: its shard's place, or else the subscription's.
    pub(crate) fn place<'a>(&'a self, subscription: &'a Durable) -> &'a Durable {
        self.shard.as_deref().unwrap_or(subscription)
    }

    /// An event that is not (or not yet) in a store.
    pub(crate) fn in_memory(event: Event) -> Self {
        Delivery {
            event,
            position: None,
            replay: false,
            redelivers: None,
            letter: LetterAction::None,
            receipt: None,
            redelivers_remote: None,
            shard: None,
        }
    }
}

/// What a delivery of a dead letter's event asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum LetterAction {
    /// An ordinary delivery.
    #[default]
    None,
    /// `redeliver`: handle it, then the events parked behind it.
    Redeliver,
    /// `discard`: do not handle it; release the events parked behind it.
    Discard,
}
