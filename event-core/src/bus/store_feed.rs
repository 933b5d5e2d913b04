//! The bus over a store: `publish` appends, and a pump per subscription feeds its lanes from
//! the store. Checkpoints make delivery at-least-once across restarts; the inbox (a claim per
//! subscription and event id) makes handling once.

use super::dead_letter::DeadLetter;
use super::delivery::Delivery;
use super::published;
use super::routing::Route;
use super::shared::Shared;
use super::store_group::{ShardLease, StoreGroups};
use super::{EventBus, ReplayError};
use crate::store::{Position, Store, StoreError, StoredEvent};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Events read from the store at a time, per subscription.
const BATCH: usize = 256;

/// How many times a dead letter or an inbox claim is written before giving up on the store.
const STORE_ATTEMPTS: u32 = 5;

/// The store behind a durable bus, and what wakes its pumps.
#[derive(Debug)]
pub(crate) struct Backing {
    pub(crate) store: Arc<dyn Store>,
    /// Signalled after each append by this process, and where the store can tell (see
    /// [`Store::watch_appends`]) after another's; otherwise those are found by polling.
    pub(crate) appended: Arc<Notify>,
    pub(crate) poll_interval: Duration,
    /// The store was asked to watch for other processes' appends.
    watching: AtomicBool,
    /// Subscriptions are consumer groups shared by the processes on the store.
    pub(crate) groups: Option<StoreGroups>,
    /// This process's name as a member of those groups.
    pub(crate) consumer: String,
}

impl Backing {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        poll_interval: Duration,
        groups: Option<StoreGroups>,
        consumer: String,
    ) -> Self {
        Backing {
            store,
            appended: Arc::new(Notify::new()),
            poll_interval,
            watching: AtomicBool::new(false),
            groups,
            consumer,
        }
    }

    /// Asks the store, once, to wake the pumps when another process appends.
    pub(crate) fn watch(&self) {
        if !self.watching.swap(true, Relaxed) && tokio::runtime::Handle::try_current().is_ok() {
            self.store.watch_appends(Arc::downgrade(&self.appended));
        }
    }
}

/// One subscription's place in the store: of all its events, or of one shard of them
/// (a consumer group's, see `store_group`).
#[derive(Debug)]
pub(crate) struct Durable {
    pub(crate) backing: Arc<Backing>,
    /// The subscription: its inbox and dead letters.
    pub(crate) name: String,
    /// Its checkpoint's name: the subscription's, or its shard's.
    checkpoint: String,
    /// The shard it reads and the lease it holds it under, in a consumer group.
    pub(crate) shard: Option<Arc<ShardLease>>,
    progress: Mutex<Progress>,
}

#[derive(Debug, Default)]
struct Progress {
    /// The checkpoint was read from the store and the pump runs.
    started: bool,
    /// The last position the pump read: dispatched to a lane or not matched.
    read_up_to: Position,
    /// Dispatched and not yet handled or dead-lettered, with how many deliveries of each
    /// (a replay can queue an event again while its first delivery still runs).
    in_flight: BTreeMap<Position, u32>,
    /// The last checkpoint written.
    saved: Position,
    /// Events up to here are handled again even if already claimed (a replay).
    replay_until: Position,
    /// A replay asked for: read again after this position.
    rewind: Option<Position>,
    /// The last attempt to read the store failed (a lost database, a damaged row).
    stalled: bool,
}

impl Progress {
    /// Every event up to here is handled or dead-lettered: the checkpoint.
    fn low_water(&self) -> Position {
        match self.in_flight.first_key_value() {
            Some((first, _)) => self.read_up_to.min(first - 1),
            None => self.read_up_to,
        }
    }

    fn dispatched(&mut self, position: Position) {
        *self.in_flight.entry(position).or_insert(0) += 1;
        self.read_up_to = position;
    }

    fn settled(&mut self, position: Position) {
        if let Some(count) = self.in_flight.get_mut(&position) {
            *count -= 1;
            if *count == 0 {
                self.in_flight.remove(&position);
            }
        }
    }
}

impl Durable {
    pub(crate) fn new(backing: Arc<Backing>, name: String) -> Self {
        Durable {
            backing,
            checkpoint: name.clone(),
            name,
            shard: None,
            progress: Mutex::new(Progress::default()),
        }
    }

    /// One shard of a consumer group's subscription, read under `lease`.
    pub(crate) fn shard(backing: Arc<Backing>, name: String, lease: Arc<ShardLease>) -> Self {
        Durable {
            backing,
            checkpoint: lease.checkpoint_name(&name),
            name,
            shard: Some(lease),
            progress: Mutex::new(Progress::default()),
        }
    }

    /// The checkpoint in the store. A shard's that was never saved starts from the
    /// subscription's own, if it has one: a subscription that becomes a consumer group goes
    /// on where it was instead of reading everything again.
    async fn stored_checkpoint(&self) -> Result<Position, StoreError> {
        let store = &self.backing.store;
        match store.checkpoint(&self.checkpoint).await? {
            0 if self.shard.is_some() => store.checkpoint(&self.name).await,
            position => Ok(position),
        }
    }

    /// Nothing dispatched is left unsettled.
    pub(crate) fn idle(&self) -> bool {
        self.progress().in_flight.is_empty()
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The pump has read everything up to `head`, and has no replay left to start.
    pub(crate) fn caught_up(&self, head: Position) -> bool {
        let progress = self.progress();
        progress.started && progress.rewind.is_none() && progress.read_up_to >= head
    }

    /// The pump cannot read the store: its last attempt failed.
    pub(crate) fn stalled(&self) -> bool {
        self.progress().stalled
    }

    fn set_stalled(&self, stalled: bool) {
        self.progress().stalled = stalled;
    }

    /// Reads again after `position`; events already handled are handled again.
    pub(crate) fn rewind(&self, position: Position, head: Position) {
        let mut progress = self.progress();
        progress.rewind = Some(position);
        progress.replay_until = head;
    }

    /// The event at `position` needs nothing more (a dead letter already stored).
    pub(crate) fn settle_position(&self, position: Position) {
        self.progress().settled(position);
    }

    /// Whether the subscription handled this event before (its inbox has a claim), and so
    /// only settles it. A redelivered dead letter is checked too: the event may have been
    /// handled since (read again after a restart), and the letter is then only stale.
    pub(crate) async fn handled_before(&self, delivery: &Delivery) -> bool {
        if delivery.replay {
            return false;
        }
        let id = delivery.event.header().id;
        match self.backing.store.is_claimed(&self.name, id).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "inbox not readable; handling the event anyway");
                false
            }
        }
    }

    /// Settles a delivery once its outcome is recorded: removes the dead letter it
    /// redelivered, and lets the checkpoint pass it. A dead letter the store would not take
    /// (`settled` false) keeps the checkpoint before its event, so the event comes back
    /// after a restart rather than being lost.
    pub(crate) async fn finish(&self, delivery: &Delivery, settled: bool) {
        if let Some(old) = delivery.redelivers.filter(|_| settled)
            && let Err(error) = self.backing.store.remove_dead_letter(old).await
        {
            tracing::warn!(%error, "redelivered dead letter stays in the store");
        }
        if let (Some(position), true) = (delivery.position, settled) {
            self.progress().settled(position);
        }
    }

    /// Writes the inbox claim of a handled event, retrying a failing store a few times. A
    /// claim that cannot be written means the event may be handled again after a restart.
    ///
    /// In a consumer group, the claim is fenced by the shard's lease: a member that lost
    /// the shard meanwhile has its claim refused (counted), and the shard's new owner
    /// handles the event again.
    pub(crate) async fn claim(&self, delivery: &Delivery) {
        let id = delivery.event.header().id;
        let store = &self.backing.store;
        let written = match delivery.lease() {
            Some(lease) => {
                match with_retries(|| store.claim_fenced(&self.name, id, &lease.fence)).await {
                    Ok(None) => {
                        lease.refused(&self.name, "inbox claim");
                        Ok(())
                    }
                    Ok(Some(_)) => Ok(()),
                    Err(error) => Err(error),
                }
            }
            None => with_retries(|| store.claim(&self.name, id)).await.map(drop),
        };
        if let Err(error) = written {
            tracing::error!(%error, "inbox claim not written: the event may be handled again");
        }
    }

    /// Stores a dead letter; if the store keeps failing, keeps it in memory and says so by
    /// returning false.
    pub(crate) async fn keep(&self, shared: &Shared, letter: DeadLetter) -> bool {
        match with_retries(|| self.backing.store.put_dead_letter(&letter)).await {
            Ok(_) => true,
            Err(error) => {
                tracing::error!(%error, "dead letter not stored: kept in memory until restart");
                shared.dead_letter(letter);
                false
            }
        }
    }

    /// Writes the checkpoint if it moved. Not while a replay waits to be taken: that
    /// would move the checkpoint the replay just set back to where the pump was.
    pub(crate) async fn save_checkpoint(&self) {
        let (position, moved) = {
            let progress = self.progress();
            let position = progress.low_water();
            let moved = progress.started && progress.rewind.is_none() && position > progress.saved;
            (position, moved)
        };
        if !moved {
            return;
        }
        match self.write_checkpoint(position).await {
            Ok(true) => {
                let mut progress = self.progress();
                progress.saved = progress.saved.max(position);
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, subscription = %self.name, "checkpoint not saved"),
        }
    }

    /// Writes the checkpoint; in a consumer group, only while the shard's lease holds
    /// (false when refused: the lease is then lost).
    async fn write_checkpoint(&self, position: Position) -> Result<bool, StoreError> {
        let store = &self.backing.store;
        let Some(shard) = &self.shard else {
            return store
                .save_checkpoint(&self.checkpoint, position)
                .await
                .map(|()| true);
        };
        let written = store
            .save_checkpoint_fenced(&self.checkpoint, position, &shard.fence)
            .await?;
        if !written {
            shard.refused(&self.name, "checkpoint");
        }
        Ok(written)
    }
}

/// Runs a store write up to `STORE_ATTEMPTS` times, backing off between attempts; the last
/// error when none succeeded.
async fn with_retries<T, F>(mut write: impl FnMut() -> F) -> Result<T, StoreError>
where
    F: Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 1;
    loop {
        match write().await {
            Err(_) if attempt < STORE_ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(10 << attempt.min(6))).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Feeds a subscription's lanes from the store, from its checkpoint on, until `stop`.
pub(crate) async fn pump(
    durable: Arc<Durable>,
    route: Arc<Route>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let backing = Arc::clone(&durable.backing);
    backing.watch();
    let Some(mut after) = start(&durable, &route, &mut stop).await else {
        return;
    };
    loop {
        let appended = backing.appended.notified();
        tokio::pin!(appended);
        appended.as_mut().enable();
        if *stop.borrow() {
            return;
        }
        let read = match take_rewind(&durable).await {
            Ok(rewound) => {
                after = rewound.unwrap_or(after);
                read_after(&*backing.store, after).await
            }
            Err(error) => Err(error),
        };
        durable.set_stalled(read.is_err());
        let (batch, head) = match read {
            Ok(read) => read,
            Err(error) => {
                tracing::warn!(%error, subscription = %durable.name, "store not readable, retrying");
                if sleep_or_stop(backing.poll_interval, &mut stop).await {
                    return;
                }
                continue;
            }
        };
        if batch.is_empty() {
            if let Some(head) = head.filter(|&head| head > after) {
                // Pruned: nothing left to read up to the head.
                after = head;
                let mut progress = durable.progress();
                progress.read_up_to = progress.read_up_to.max(head);
            }
            durable.save_checkpoint().await;
            tokio::select! {
                () = &mut appended => {}
                () = tokio::time::sleep(backing.poll_interval) => {}
                // Err: the bus was dropped without a shutdown; stop with it.
                changed = stop.changed() => if changed.is_err() { return; }
            }
            continue;
        }
        match dispatch(&durable, &route, &shared, batch).await {
            Some(last) => after = last,
            None => return,
        }
        durable.save_checkpoint().await;
    }
}

/// Reads the subscription's checkpoint, and saves it once: the first save registers the
/// subscription, so that `prune` keeps what it has not read. With ordered dead letters,
/// blocks the keys of its stored dead letters again. `None` when asked to stop.
async fn start(
    durable: &Durable,
    route: &Route,
    stop: &mut watch::Receiver<bool>,
) -> Option<Position> {
    let store = &durable.backing.store;
    let after = loop {
        let letters = match &route.parking {
            Some(_) => store.dead_letters(Some(&durable.name)).await.map(Some),
            None => Ok(None),
        };
        if let (Some(parking), Ok(Some(letters))) = (&route.parking, &letters) {
            for letter in letters {
                if let Some(key) = letter.envelope.partition_key() {
                    parking.block(key, letter.envelope.id);
                }
            }
        }
        let loaded = match letters {
            Err(error) => Err(error),
            Ok(_) => durable.stored_checkpoint().await,
        };
        let loaded = match loaded {
            Ok(position) => durable.write_checkpoint(position).await.map(|_| position),
            Err(error) => Err(error),
        };
        durable.set_stalled(loaded.is_err());
        match loaded {
            Ok(position) => break position,
            Err(error) => {
                tracing::warn!(%error, subscription = %durable.name, "checkpoint not readable, retrying");
                if sleep_or_stop(durable.backing.poll_interval, stop).await {
                    return None;
                }
            }
        }
    };
    let mut progress = durable.progress();
    progress.read_up_to = after;
    progress.saved = after;
    progress.started = true;
    Some(after)
}

/// Takes a replay asked for, if any: where to read after from now on.
async fn take_rewind(durable: &Durable) -> Result<Option<Position>, StoreError> {
    let Some(position) = durable.progress().rewind else {
        return Ok(None);
    };
    // Set again now that no save of the old position can follow: one that was under way
    // when `replay` set it may have landed after it.
    durable
        .backing
        .store
        .reset_checkpoint(&durable.checkpoint, position)
        .await?;
    let mut progress = durable.progress();
    // A later replay asked meanwhile is taken on the next turn.
    if progress.rewind == Some(position) {
        progress.rewind = None;
    }
    progress.read_up_to = position;
    progress.saved = position;
    Ok(Some(position))
}

/// A batch after `after`; when there is none, the head too, read between two reads: a
/// second empty read then means every position up to the head was read or pruned, and the
/// pump has caught up with it. Busy pumps pay one query a batch, idle ones three a poll.
async fn read_after(
    store: &dyn Store,
    after: Position,
) -> Result<(Vec<StoredEvent>, Option<Position>), StoreError> {
    let batch = store.read(after, BATCH).await?;
    if !batch.is_empty() {
        return Ok((batch, None));
    }
    let head = store.head().await?;
    Ok((store.read(after, BATCH).await?, Some(head)))
}

/// Sends a batch to the subscription's lanes, waiting for room; returns the last position
/// read, or `None` when the lanes are closed (shutdown).
async fn dispatch(
    durable: &Arc<Durable>,
    route: &Route,
    shared: &Shared,
    batch: Vec<StoredEvent>,
) -> Option<Position> {
    let replay_until = durable.progress().replay_until;
    let mut last = None;
    for event in batch {
        let position = event.position;
        let theirs = durable
            .shard
            .as_ref()
            .is_some_and(|shard| !shard.covers(&event.envelope));
        if theirs || !route.matcher.matches(&event.envelope.event_type) {
            last = Some(position);
            durable.progress().read_up_to = position;
            continue;
        }
        // A shard whose lease ran out (this process was paused, say) is dispatched no
        // further: its member drops it, and its new owner reads it.
        if let Some(shard) = durable.shard.as_ref().filter(|shard| !shard.holds()) {
            shard.lose();
            return None;
        }
        last = Some(position);
        let lane = route.lane(&event.envelope)?;
        // Room first: a pump stopped while it waits (a consumer group's shard lost) has
        // counted nothing. Counted before the pump says it read this far, for
        // `shutdown`'s check.
        let permit = lane.reserve().await.ok()?;
        shared.metrics.in_flight.fetch_add(1, Relaxed);
        durable.progress().dispatched(position);
        permit.send(Delivery {
            position: Some(position),
            replay: position <= replay_until,
            shard: durable.shard.is_some().then(|| Arc::clone(durable)),
            ..Delivery::in_memory(published::raw(event.envelope))
        });
    }
    last
}

/// Sleeps, or returns true early when asked to stop.
pub(super) async fn sleep_or_stop(duration: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

impl EventBus {
    /// Tells the subscriptions of a durable bus to read the store now, rather than at their
    /// next poll: call it after committing events appended in your own transaction
    /// (`SqliteStore::append_in` or `append_in_sqlx`; on PostgreSQL the commit's `NOTIFY`
    /// wakes every bus on the database already). Does nothing on an in-memory bus.
    pub fn wake(&self) {
        if let Some(backing) = &self.inner.backing {
            backing.appended.notify_waiters();
        }
    }

    /// Handles a subscription's events again, from the first after `after` (0: from the
    /// beginning), including those it already handled. Durable bus only.
    ///
    /// # Errors
    ///
    /// [`ReplayError`] when the bus has no store, the subscription does not exist, or the
    /// store fails.
    pub async fn replay(&self, subscription: &str, after: Position) -> Result<(), ReplayError> {
        let backing = self.inner.backing.as_ref().ok_or(ReplayError::InMemory)?;
        if backing.groups.is_some() && self.routes().iter().any(|r| r.name == subscription) {
            return Err(ReplayError::ConsumerGroup(subscription.to_owned()));
        }
        let durable = self
            .durable_routes()
            .into_iter()
            .find(|durable| durable.name == subscription)
            .ok_or_else(|| ReplayError::NoSubscription(subscription.to_owned()))?;
        let head = backing.store.head().await.map_err(ReplayError::Store)?;
        backing
            .store
            .reset_checkpoint(subscription, after)
            .await
            .map_err(ReplayError::Store)?;
        durable.rewind(after, head);
        backing.appended.notify_waiters();
        Ok(())
    }
}
