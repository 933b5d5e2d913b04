//! Which subscriptions an event goes to, and which of a subscription's lanes: by partition
//! key, so that one key's events stay in order.

use super::delivery::Delivery;
use super::parking::Parking;
use super::pattern::Pattern;
use super::stats::SubscriptionStats;
use crate::envelope::Envelope;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use tokio::sync::mpsc;

/// The queue of one lane of a subscription.
pub(crate) type Lane = mpsc::Sender<Delivery>;

/// Which events a subscription receives.
#[derive(Debug)]
pub(crate) enum Matcher {
    /// Every event whose type is one of these names, at any version: a version the union
    /// does not know is dead-lettered, not skipped.
    Names(Vec<&'static str>),
    /// Every event whose type matches.
    Pattern(Pattern),
}

impl Matcher {
    /// The event types of the union `U`.
    pub(crate) fn of_union<U: crate::union::EventUnion>() -> Self {
        let mut names: Vec<&'static str> = U::EVENTS.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        Matcher::Names(names)
    }

    pub(crate) fn matches(&self, event_type: &str) -> bool {
        match self {
            Matcher::Names(names) => names.contains(&event_type),
            Matcher::Pattern(pattern) => pattern.matches(event_type),
        }
    }

    /// Whether the subscription's handler takes the event's JSON.
    pub(crate) fn takes_json(&self) -> bool {
        matches!(self, Matcher::Pattern(_))
    }
}

/// The routing side of a subscription, held by the bus.
pub(crate) struct Route {
    pub(crate) name: String,
    pub(crate) matcher: Matcher,
    /// One queue per lane; emptied at shutdown, which ends the lanes once drained.
    pub(crate) lanes: std::sync::RwLock<Vec<Lane>>,
    /// The keys held back by dead letters, with ordered dead letters.
    pub(crate) parking: Option<Arc<Parking>>,
    /// What it did, per event type; what it is handling now.
    pub(crate) stats: Arc<SubscriptionStats>,
}

impl Route {
    /// The lane of an event (see [`pick`]), as an owned sender.
    pub(crate) fn lane<P>(&self, envelope: &Envelope<P>) -> Option<Lane> {
        let lanes = self
            .lanes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pick(&lanes, envelope).cloned()
    }
}

/// The lane of an event among a subscription's: by partition key, so one key's events stay
/// in order; events without a key spread by id. `None` once the lanes are closed.
pub(crate) fn pick<'a, P>(lanes: &'a [Lane], envelope: &Envelope<P>) -> Option<&'a Lane> {
    match lanes.len() {
        0 => return None,
        1 => return lanes.first(),
        _ => {}
    }
    let mut hasher = std::hash::DefaultHasher::new();
    match envelope.partition_key() {
        Some(key) => key.hash(&mut hasher),
        None => envelope.id.hash(&mut hasher),
    }
    let index = usize::try_from(hasher.finish() % lanes.len() as u64).unwrap_or(0);
    lanes.get(index)
}

/// Every subscription with its lanes, as a publish reads them.
#[derive(Clone, Default)]
pub(super) struct Routing {
    pub(super) routes: Vec<(Arc<Route>, Box<[Lane]>)>,
}

/// The lane of each subscription an event goes to: a list only when there are several.
pub(super) enum Targets<'r> {
    None,
    One((&'r Route, &'r Lane)),
    Many(Vec<(&'r Route, &'r Lane)>),
}

impl<'r> Targets<'r> {
    pub(super) fn lanes(&self) -> &[(&'r Route, &'r Lane)] {
        match self {
            Targets::None => &[],
            Targets::One(lane) => std::slice::from_ref(lane),
            Targets::Many(lanes) => lanes,
        }
    }
}
