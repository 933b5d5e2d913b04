//! What each subscription did, per event type: deliveries, retries, dead letters and
//! handler latency; and what it has waiting. Read by [`EventBus::subscriptions`].

use super::EventBus;
use super::metrics::Histogram;
use super::routing::{Matcher, Route};
use crate::store::Position;
use smol_str::SmolStr;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// One subscription's counters, shared by its route (read) and its lanes (written).
#[derive(Debug, Default)]
pub(crate) struct SubscriptionStats {
    /// Deliveries a lane is handling now.
    pub(crate) running: AtomicU64,
    by_type: RwLock<HashMap<SmolStr, Arc<TypeCounters>>>,
}

/// The counters of one event type at one subscription.
#[derive(Debug, Default)]
pub(crate) struct TypeCounters {
    pub(crate) delivered: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) latency: Histogram,
}

impl SubscriptionStats {
    /// The counters of `event_type`, made on its first event.
    pub(crate) fn of(&self, event_type: &SmolStr) -> Arc<TypeCounters> {
        if let Some(counters) = self
            .by_type
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(event_type)
        {
            return Arc::clone(counters);
        }
        Arc::clone(
            self.by_type
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(event_type.clone())
                .or_default(),
        )
    }

    fn snapshot(&self) -> Vec<TypeStats> {
        let mut rows: Vec<TypeStats> = self
            .by_type
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(event_type, counters)| TypeStats {
                event_type: event_type.to_string(),
                delivered: counters.delivered.load(Relaxed),
                retried: counters.retried.load(Relaxed),
                dead_lettered: counters.dead_lettered.load(Relaxed),
                latency: counters.latency.snapshot(),
            })
            .collect();
        rows.sort_by(|a, b| a.event_type.cmp(&b.event_type));
        rows
    }
}

/// Where a subscription's events come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedKind {
    /// Straight from `publish`, in this process.
    Memory,
    /// Read from the store from its checkpoint.
    Store,
    /// A consumer group on a store shared by several processes: a pump per shard leased.
    StoreGroup,
    /// A member of the broker's consumer group.
    Transport,
}

impl FeedKind {
    /// `memory`, `store`, `store-group` or `transport`.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedKind::Memory => "memory",
            FeedKind::Store => "store",
            FeedKind::StoreGroup => "store-group",
            FeedKind::Transport => "transport",
        }
    }
}

/// One subscription as it is now: what it receives, what it has done per event type, what
/// waits for it.
///
/// ```
/// use event_core::{DomainEvent, EventBus};
/// use schemars::JsonSchema;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
/// struct OrderPaid { #[event(partition_key)] order_id: String }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let bus = EventBus::builder().build();
/// bus.subscribe_event::<OrderPaid, _, _>("billing", |_| async { Ok(()) })?;
/// bus.publish(OrderPaid { order_id: "o-1".into() }).await?;
/// bus.shutdown().await;
/// let billing = &bus.subscriptions().await[0];
/// assert_eq!((billing.name.as_str(), billing.delivered()), ("billing", 1));
/// assert_eq!(billing.by_type[0].event_type, "order.paid");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SubscriptionInfo {
    /// Its name.
    pub name: String,
    /// The event types it receives, or the one pattern it was subscribed with.
    pub events: Vec<String>,
    /// Where its events come from.
    pub feed: FeedKind,
    /// Its lanes (handlers running side by side, one key's events always in one lane).
    pub lanes: usize,
    /// Deliveries queued in its lanes or being handled now.
    pub in_flight: u64,
    /// Everything up to this store position is handled (a subscription reading a store on
    /// its own); `None` otherwise, or when the store could not be read.
    pub checkpoint: Option<Position>,
    /// How far behind it is: store positions after its checkpoint (on a store), entries
    /// its consumer group has not yet read or acknowledged (on a transport), deliveries
    /// queued (in memory). `None` when unknown: a consumer group on a store, or the store
    /// or broker could not be read.
    pub lag: Option<u64>,
    /// Its counters per event type, by type name.
    pub by_type: Vec<TypeStats>,
}

impl SubscriptionInfo {
    /// Deliveries its handler completed, all types together.
    pub fn delivered(&self) -> u64 {
        self.by_type.iter().map(|t| t.delivered).sum()
    }

    /// Failed attempts that were retried, all types together.
    pub fn retried(&self) -> u64 {
        self.by_type.iter().map(|t| t.retried).sum()
    }

    /// Deliveries moved to the dead letters, all types together (since the process
    /// started; the dead letters kept now are [`EventBus::dead_letters`]).
    pub fn dead_lettered(&self) -> u64 {
        self.by_type.iter().map(|t| t.dead_lettered).sum()
    }
}

/// A subscription's counters for one event type, since the process started.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TypeStats {
    /// The event type.
    pub event_type: String,
    /// Deliveries the handler completed.
    pub delivered: u64,
    /// Failed attempts that were retried.
    pub retried: u64,
    /// Deliveries dead-lettered.
    pub dead_lettered: u64,
    /// Handler latency of the calls sampled.
    pub latency: LatencyHistogram,
}

/// Handler latency as a histogram of power-of-two buckets of microseconds. Latency is
/// sampled: one handler call in 8 per subscription is timed (its first call included), and
/// only those are counted here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyHistogram {
    pub(crate) counts: Vec<u64>,
    pub(crate) sum_micros: u64,
}

impl LatencyHistogram {
    /// Each bucket's upper bound (exclusive: `2^i` microseconds) with the number of
    /// calls that took less than it and at least the previous bound; the last bucket
    /// also holds everything longer.
    pub fn buckets(&self) -> impl Iterator<Item = (Duration, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .map(|(i, &count)| (Duration::from_micros(1u64 << i), count))
    }

    /// Calls timed.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Their total time.
    pub fn sum(&self) -> Duration {
        Duration::from_micros(self.sum_micros)
    }

    /// The `p` quantile (`0.5` for the median) as the upper bound of its bucket: at most
    /// 2× the true value. `None` before any call was timed.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let rank = ((self.count() as f64) * p).ceil().max(1.0) as u64;
        let mut seen = 0;
        self.buckets().find_map(|(bound, count)| {
            seen += count;
            (seen >= rank).then_some(bound)
        })
    }
}

impl EventBus {
    /// Every subscription as it is now, in the order they were made: what each receives,
    /// its counters per event type, its checkpoint, lag and deliveries in flight.
    ///
    /// Reads the store's head and checkpoints, or the broker's group state, once per call;
    /// a store or broker that cannot be read leaves `checkpoint` and `lag` unknown (and
    /// logs why) rather than failing the whole view.
    pub async fn subscriptions(&self) -> Vec<SubscriptionInfo> {
        let routes = self.routes();
        let head = match &self.inner.backing {
            Some(backing) if self.inner.remote.is_none() => match backing.store.head().await {
                Ok(head) => Some(head),
                Err(error) => {
                    tracing::warn!(%error, "store head not readable: lag unknown");
                    None
                }
            },
            _ => None,
        };
        let groups = match self.transport_info().await {
            Ok(info) => info.map(|info| {
                info.topics
                    .into_iter()
                    .flat_map(|topic| topic.groups)
                    .collect::<Vec<_>>()
            }),
            Err(error) => {
                tracing::warn!(%error, "broker not readable: lag unknown");
                None
            }
        };
        let mut infos = Vec::with_capacity(routes.len());
        for route in routes {
            let (lanes, queued) = queued(&route);
            let feed = self.feed_kind();
            let (checkpoint, lag) = match feed {
                FeedKind::Memory => (None, Some(queued)),
                FeedKind::StoreGroup => (None, None),
                FeedKind::Transport => (
                    None,
                    groups.as_ref().and_then(|groups| {
                        let mine: Vec<Option<u64>> = groups
                            .iter()
                            .filter(|group| group.group == route.name)
                            .map(|group| group.lag)
                            .collect();
                        // No group on the broker yet: unknown, not 0.
                        if mine.is_empty() {
                            None
                        } else {
                            mine.into_iter().sum::<Option<u64>>()
                        }
                    }),
                ),
                FeedKind::Store => self.store_lag(&route.name, head).await,
            };
            infos.push(SubscriptionInfo {
                name: route.name.clone(),
                events: match &route.matcher {
                    Matcher::Names(names) => names.iter().map(|n| (*n).to_owned()).collect(),
                    Matcher::Pattern(pattern) => vec![pattern.text()],
                },
                feed,
                lanes,
                in_flight: queued + route.stats.running.load(Relaxed),
                checkpoint,
                lag,
                by_type: route.stats.snapshot(),
            });
        }
        infos
    }

    fn feed_kind(&self) -> FeedKind {
        match (&self.inner.backing, &self.inner.remote) {
            (_, Some(_)) => FeedKind::Transport,
            (Some(backing), None) if backing.groups.is_some() => FeedKind::StoreGroup,
            (Some(_), None) => FeedKind::Store,
            (None, None) => FeedKind::Memory,
        }
    }

    /// A store subscription's checkpoint, and how many positions the head is beyond it.
    async fn store_lag(
        &self,
        name: &str,
        head: Option<Position>,
    ) -> (Option<Position>, Option<u64>) {
        let Some(backing) = &self.inner.backing else {
            return (None, None);
        };
        match backing.store.checkpoint(name).await {
            Ok(checkpoint) => (
                Some(checkpoint),
                head.map(|head| head.saturating_sub(checkpoint)),
            ),
            Err(error) => {
                tracing::warn!(%error, subscription = name, "checkpoint not readable");
                (None, None)
            }
        }
    }
}

/// A route's lane count, and the deliveries queued in its lanes.
fn queued(route: &Route) -> (usize, u64) {
    let lanes = route.lanes.read().unwrap_or_else(PoisonError::into_inner);
    let queued = lanes
        .iter()
        .map(|lane| (lane.max_capacity() - lane.capacity()) as u64)
        .sum();
    (lanes.len(), queued)
}
