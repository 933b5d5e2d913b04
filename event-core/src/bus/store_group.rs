//! Consumer groups on a store shared by several processes, without a broker: the processes
//! that subscribe with one name share its events, in order per partition key.
//!
//! The events are split into shards by partition-key hash ([`shard_of`]). Each process's
//! bus is a member of the group: it holds a member lease in the store (its heartbeat), and
//! a lease per shard it owns. Every third of the lease time it renews its leases, lists the
//! live members, and moves towards its share (shard `i` goes to the `i mod n`-th member by
//! name): it gives up a shard once it has settled what it read of it, and takes free ones.
//! A dead member's leases run out and the others take its shards, reading each from the
//! shard's checkpoint: what the dead member had not settled is handled again (the inbox
//! drops what it had handled).
//!
//! Each shard has a pump reading the store from the shard's checkpoint
//! (`<subscription>#<shard>/<shards>`), passing over the other shards' events. Every new
//! owner of a shard gets a larger fencing token; the shard's checkpoint and the inbox claims
//! of its events are written only under the owner's token, in the same atomic write
//! ([`Store::save_checkpoint_fenced`], [`Store::claim_fenced`]), a pump reads a shard only
//! while its lease holds, and a lane hands a delivery to its handler only while the lease
//! holds: a member paused past its lease does not hand its successor's events to a handler,
//! mark them handled or move the shard's checkpoint. (A handler already running when the
//! lease runs out runs on beside the successor: nothing can stop it midway; its claim is
//! refused, so the successor handles that event again.)
//!
//! [`Store::save_checkpoint_fenced`]: crate::store::Store::save_checkpoint_fenced
//! [`Store::claim_fenced`]: crate::store::Store::claim_fenced

use super::routing::Route;
use super::shared::Shared;
use super::store_feed::{self, Backing, Durable};
use crate::envelope::Envelope;
use crate::store::{Fence, StoreError};
use crate::transport::shard_of;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How often a lane asks again whether a late lease renewal came.
const LEASE_CHECK: Duration = Duration::from_millis(10);

/// Consumer groups on a store shared by several processes: see
/// [`EventBusBuilder::consumer_groups`](crate::EventBusBuilder::consumer_groups).
///
/// ```
/// use event_core::StoreGroups;
/// use std::time::Duration;
///
/// let groups = StoreGroups::new().shards(16).lease(Duration::from_secs(5));
/// # let _ = groups;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreGroups {
    pub(crate) shards: u32,
    pub(crate) lease: Duration,
}

impl Default for StoreGroups {
    fn default() -> Self {
        StoreGroups {
            shards: 8,
            lease: Duration::from_secs(10),
        }
    }
}

impl StoreGroups {
    /// 8 shards, leases of 10 s.
    pub fn new() -> Self {
        StoreGroups::default()
    }

    /// How many shards the events are split into (default 8, at least 1): at most this
    /// many processes share a subscription's work. Every process of a group must use the
    /// same count; a member that sees another count takes no shard and says so.
    #[must_use]
    pub fn shards(mut self, shards: u32) -> Self {
        self.shards = shards.max(1);
        self
    }

    /// How long a lease runs without renewal (default 10 s; at least 30 ms, at most a
    /// day): a dead member's shards pass to the others within this time. Renewed every
    /// third of it.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.clamp(Duration::from_millis(30), Duration::from_secs(24 * 3600));
        self
    }
}

/// A shard held under a lease: what the pump filters on, what the lanes check before each
/// handler call, and the condition of the shard's checkpoint writes.
#[derive(Debug)]
pub(crate) struct ShardLease {
    shard: u32,
    shards: u32,
    /// The store's condition for this owner's writes.
    pub(crate) fence: Fence,
    /// When the lease runs out as this process counts: from the start of its last renewal.
    expires: Mutex<Instant>,
    lease: Duration,
    /// Gone for good: taken by another member, run out, or given up.
    lost: AtomicBool,
    shared: Arc<Shared>,
}

impl ShardLease {
    /// Whether the event is of this shard.
    pub(crate) fn covers<P>(&self, envelope: &Envelope<P>) -> bool {
        match envelope.partition_key() {
            Some(key) => self.covers_key(key),
            None => self.covers_key(&envelope.id.to_string()),
        }
    }

    /// Whether events with this partition key are of this shard.
    pub(crate) fn covers_key(&self, key: &str) -> bool {
        shard_of(key, self.shards) == self.shard
    }

    /// The name of the shard's checkpoint for `subscription`.
    pub(crate) fn checkpoint_name(&self, subscription: &str) -> String {
        format!("{subscription}#{}/{}", self.shard, self.shards)
    }

    fn expires(&self) -> Instant {
        *self.expires.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a lane may hand a delivery of this shard to its handler: waits while the
    /// lease is about to run out (less than a third of it left) and its renewal is late, so
    /// the key's later events wait with it; false once the lease is lost, or has run out as
    /// this process counts (its successor may be handling the shard).
    pub(crate) async fn current(&self) -> bool {
        loop {
            if self.lost.load(Relaxed) {
                return false;
            }
            let now = Instant::now();
            let expires = self.expires();
            if now >= expires {
                self.lose();
                return false;
            }
            if expires - now > self.lease / 3 {
                return true;
            }
            tokio::time::sleep(LEASE_CHECK).await;
        }
    }

    /// Whether the lease holds now, without waiting.
    pub(crate) fn holds(&self) -> bool {
        !self.lost.load(Relaxed) && Instant::now() < self.expires()
    }

    /// Marks the lease gone for good: the lanes drop what they hold of the shard.
    pub(crate) fn lose(&self) {
        self.lost.store(true, Relaxed);
    }

    /// A write of this shard was refused: another member owns it now.
    pub(crate) fn refused(&self, subscription: &str, what: &str) {
        self.shared.metrics.refused.fetch_add(1, Relaxed);
        tracing::warn!(
            subscription,
            shard = self.shard,
            token = self.fence.token,
            "shard lease lost: {what} refused; its new owner handles the shard"
        );
        self.lose();
    }
}

/// A shard this member owns.
struct Owned {
    lease: Arc<ShardLease>,
    durable: Arc<Durable>,
    stop: watch::Sender<bool>,
    pump: JoinHandle<()>,
    /// Given up at this time: its pump stops; released once what it read is settled, or
    /// after a lease at most (what a dead letter holds back of it is then let go: the new
    /// owner reads it again and holds it back behind the stored letter).
    leaving: Option<Instant>,
}

/// One member of the consumer group `route.name`, until `stop`: keeps its leases, runs a
/// pump per shard it owns, and at the end settles, saves and releases everything.
pub(crate) async fn run(
    backing: Arc<Backing>,
    groups: StoreGroups,
    consumer: String,
    route: Arc<Route>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    backing.watch();
    let mut member = Member {
        backing,
        groups,
        consumer,
        route,
        shared,
        owned: BTreeMap::new(),
        failing: false,
    };
    loop {
        member.round().await;
        let tick = tokio::time::sleep(groups.lease / 3);
        tokio::select! {
            () = tick => {}
            // Err: the bus was dropped without a shutdown; stop with it.
            changed = stop.changed() => if changed.is_err() { break; }
        }
        if *stop.borrow() {
            break;
        }
    }
    member.leave().await;
}

struct Member {
    backing: Arc<Backing>,
    groups: StoreGroups,
    consumer: String,
    route: Arc<Route>,
    shared: Arc<Shared>,
    owned: BTreeMap<u32, Owned>,
    /// The last round failed (logged once until one works again).
    failing: bool,
}

impl Member {
    fn prefix(&self) -> String {
        format!("group/{}/", self.route.name)
    }

    fn shard_lease(&self, shard: u32) -> String {
        format!("{}shard/{shard}", self.prefix())
    }

    /// The member lease's holder: this member's name and its shard count, so that members
    /// configured with different counts notice.
    fn holder(&self) -> String {
        format!("{} shards={}", self.consumer, self.groups.shards)
    }

    async fn round(&mut self) {
        match self.try_round().await {
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!(group = %self.route.name, "consumer group lease round works again");
            }
            Ok(()) => {}
            Err(error) => {
                if !self.failing {
                    tracing::warn!(group = %self.route.name, %error, "consumer group lease round failed; leases run out unless renewed in time");
                }
                self.failing = true;
                // A lease the store could not renew is lost once it ran out.
                let expired: Vec<u32> = self
                    .owned
                    .iter()
                    .filter(|(_, owned)| !owned.lease.holds())
                    .map(|(shard, _)| *shard)
                    .collect();
                for shard in expired {
                    self.drop_lost(shard);
                }
            }
        }
    }

    async fn try_round(&mut self) -> Result<(), StoreError> {
        let store = Arc::clone(&self.backing.store);
        let lease = self.groups.lease;
        let started = Instant::now();
        let member_lease = format!("{}member/{}", self.prefix(), self.consumer);
        store.lease(&member_lease, &self.holder(), lease).await?;
        let members = store.leases(&format!("{}member/", self.prefix())).await?;
        let desired = self.desired(&members);

        // Renew what is owned; what was lost meanwhile is dropped unsettled.
        let shards: Vec<u32> = self.owned.keys().copied().collect();
        for shard in shards {
            let name = self.shard_lease(shard);
            let renewed = store.lease(&name, &self.consumer, lease).await?;
            let Some(owned) = self.owned.get(&shard) else {
                continue;
            };
            if renewed == Some(owned.lease.fence.token) && owned.lease.holds() {
                *owned
                    .lease
                    .expires
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = started + lease;
            } else {
                self.drop_lost(shard);
            }
        }

        // A pump that ended by itself found its lease run out: the shard is lost.
        let ended: Vec<u32> = self
            .owned
            .iter()
            .filter(|(_, owned)| owned.leaving.is_none() && owned.pump.is_finished())
            .map(|(shard, _)| *shard)
            .collect();
        for shard in ended {
            self.drop_lost(shard);
        }

        // Give up what is no longer ours, once what was read of it is settled.
        for (shard, owned) in &mut self.owned {
            if !desired.contains(shard) && owned.leaving.is_none() {
                owned.leaving = Some(started);
                owned.stop.send_replace(true);
            }
        }
        let leaving: Vec<u32> = self
            .owned
            .iter()
            .filter(|(_, owned)| {
                owned.leaving.is_some_and(|since| {
                    owned.pump.is_finished() && (owned.durable.idle() || since.elapsed() >= lease)
                })
            })
            .map(|(shard, _)| *shard)
            .collect();
        for shard in leaving {
            if let Some(owned) = self.owned.remove(&shard) {
                self.give_up(shard, &owned).await?;
            }
        }

        // Take what is ours and free.
        for shard in desired {
            if self.owned.contains_key(&shard) {
                continue;
            }
            let name = self.shard_lease(shard);
            if let Some(token) = store.lease(&name, &self.consumer, lease).await? {
                self.own(shard, name, token, started + lease);
            }
        }
        Ok(())
    }

    /// This member's share of the shards among the live `members`; none when they
    /// disagree on the shard count.
    fn desired(&self, members: &[crate::store::LeaseInfo]) -> Vec<u32> {
        let prefix = format!("{}member/", self.prefix());
        let mut names: Vec<&str> = Vec::with_capacity(members.len());
        for member in members {
            let Some((name, shards)) = member.holder.rsplit_once(" shards=") else {
                continue;
            };
            // Only this group's members: not those of a group whose name starts with
            // this one's and `/member/`.
            if member.name.strip_prefix(&prefix) != Some(name) {
                continue;
            }
            if shards != self.groups.shards.to_string() {
                tracing::error!(
                    group = %self.route.name,
                    member = name,
                    theirs = shards,
                    ours = self.groups.shards,
                    "members of the group use different shard counts: taking no shard until they agree"
                );
                return Vec::new();
            }
            names.push(name);
        }
        if !names.contains(&self.consumer.as_str()) {
            names.push(&self.consumer);
        }
        names.sort_unstable();
        names.dedup();
        let index = names
            .iter()
            .position(|name| *name == self.consumer)
            .unwrap_or(0);
        (0..self.groups.shards)
            .filter(|shard| *shard as usize % names.len() == index)
            .collect()
    }

    /// Starts the pump of a shard just leased.
    fn own(&mut self, shard: u32, lease_name: String, token: u64, expires: Instant) {
        let lease = Arc::new(ShardLease {
            shard,
            shards: self.groups.shards,
            fence: Fence::new(lease_name, &self.consumer, token),
            expires: Mutex::new(expires),
            lease: self.groups.lease,
            lost: AtomicBool::new(false),
            shared: Arc::clone(&self.shared),
        });
        let durable = Arc::new(Durable::shard(
            Arc::clone(&self.backing),
            self.route.name.clone(),
            Arc::clone(&lease),
        ));
        let (stop, stopped) = watch::channel(false);
        let pump = tokio::spawn(store_feed::pump(
            Arc::clone(&durable),
            Arc::clone(&self.route),
            Arc::clone(&self.shared),
            stopped,
        ));
        tracing::debug!(group = %self.route.name, shard, token, "shard taken");
        self.owned.insert(
            shard,
            Owned {
                lease,
                durable,
                stop,
                pump,
                leaving: None,
            },
        );
    }

    /// Drops a shard whose lease is lost: its pump stops, and what the lanes still hold of
    /// it is dropped unhandled (its new owner reads it again from the shard's checkpoint).
    fn drop_lost(&mut self, shard: u32) {
        if let Some(owned) = self.owned.remove(&shard) {
            owned.lease.lose();
            owned.pump.abort();
            tracing::warn!(group = %self.route.name, shard, "shard lease lost; its new owner handles the shard");
        }
    }

    /// Saves a shard's checkpoint and releases its lease, letting go of what a dead letter
    /// holds back of it (its new owner reads that again).
    async fn give_up(&self, shard: u32, owned: &Owned) -> Result<(), StoreError> {
        owned.durable.save_checkpoint().await;
        owned.lease.lose();
        if let Some(parking) = &self.route.parking {
            parking.forget(|key| owned.lease.covers_key(key));
        }
        self.backing
            .store
            .release_lease(&self.shard_lease(shard), &self.consumer)
            .await
    }

    /// Renews the leases held, as a round does, while the member drains at `leave`.
    async fn renew(&mut self) {
        let store = Arc::clone(&self.backing.store);
        let started = Instant::now();
        for (shard, owned) in &self.owned {
            match store
                .lease(&self.shard_lease(*shard), &self.consumer, self.groups.lease)
                .await
            {
                Ok(Some(token)) if token == owned.lease.fence.token => {
                    *owned
                        .lease
                        .expires
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = started + self.groups.lease;
                }
                Ok(_) => owned.lease.lose(),
                Err(error) => {
                    tracing::warn!(%error, shard, "shard lease not renewed while leaving");
                }
            }
        }
    }

    /// Leaves the group: stops the pumps, waits until nothing is in flight (renewing the
    /// leases meanwhile), saves each shard's checkpoint and releases the leases, so that the
    /// others take over at once.
    async fn leave(mut self) {
        for owned in self.owned.values() {
            owned.stop.send_replace(true);
        }
        for owned in self.owned.values_mut() {
            let _ = (&mut owned.pump).await;
        }
        let idle = Arc::clone(&self.shared);
        let idle = idle.wait_idle();
        tokio::pin!(idle);
        loop {
            tokio::select! {
                () = &mut idle => break,
                () = tokio::time::sleep(self.groups.lease / 3) => self.renew().await,
            }
        }
        for (shard, owned) in std::mem::take(&mut self.owned) {
            if let Err(error) = self.give_up(shard, &owned).await {
                tracing::warn!(%error, shard, "shard lease not released; it runs out instead");
            }
        }
        let member_lease = format!("{}member/{}", self.prefix(), self.consumer);
        if let Err(error) = self
            .backing
            .store
            .release_lease(&member_lease, &self.holder())
            .await
        {
            tracing::warn!(%error, "member lease not released; it runs out instead");
        }
    }
}
