//! Transports: brokers that carry events between processes and machines.
//!
//! A bus with a [`Transport`] publishes to the broker and reads back through it, so that
//! several processes share the work of a subscription. The semantics are the same on every
//! transport (each is checked by the workspace's transport conformance suite,
//! `tests/tests/transport_conformance.rs`):
//!
//! - **A subscription name is a consumer group.** Processes that subscribe with the same
//!   name share its events, each event handled by one of them; different names each get
//!   every event.
//! - **Order per partition key holds across processes.** A topic is split into a fixed
//!   number of shards by partition-key hash ([`shard_of`]). One member of a group owns a
//!   shard at a time, under a lease it renews; members that join or leave rebalance, and a
//!   dead member's shards, with its unacknowledged entries, pass to the others when its lease
//!   runs out. Each new owner of a shard gets a larger fencing token, and a write of a stale
//!   owner (an acknowledgement, a dead letter) is refused ([`TransportError::Fenced`]).
//! - **Acknowledged after the handler succeeds, or after the delivery is dead-lettered.**
//!   Retries back off in process, as on the in-memory bus.
//!
//! The trait is object safe; the bus holds an `Arc<dyn Transport>`. Implement it for another
//! broker by following the contract on each method.

mod error;
mod info;

#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "redis")]
mod redis;

pub use error::TransportError;
pub use info::{ConsumerInfo, GroupInfo, ShardInfo, TopicInfo, TransportInfo};

#[cfg(feature = "nats")]
pub use self::nats::{NatsTransport, NatsTransportBuilder};
#[cfg(feature = "redis")]
pub use self::redis::{RedisTransport, RedisTransportBuilder};

use crate::bus::DeadLetter;
use crate::envelope::RawEnvelope;
use futures_util::future::BoxFuture;
use std::time::Duration;

/// Where a new consumer group starts reading: the events published after it was created,
/// or every event still on the broker. A group that exists already goes on where it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartFrom {
    /// Only events published after the group was created (the default).
    #[default]
    Now,
    /// Every event the broker still keeps.
    Beginning,
    /// The events published at or after this time (as the broker's entry ids tell it).
    At(std::time::SystemTime),
}

/// What a member joining a consumer group asks for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GroupSpec {
    /// The group: the subscription's name.
    pub group: String,
    /// This member's name, unique within the group (by default host, pid and a random
    /// suffix: [`consumer_name`]).
    pub consumer: String,
    /// The event types the group reads, or `None` for every type (a `*` pattern).
    pub event_types: Option<Vec<String>>,
    /// Where a new group starts.
    pub start_from: StartFrom,
    /// Entries whose payload is larger are dead-lettered as oversize, not handed out.
    pub max_payload_bytes: usize,
    /// A group of one process, for the time it runs (the bus's `wait_for` listener): its
    /// member deletes it from the broker when it leaves. Its name starts with `$`, and such
    /// groups never hold back [`Transport::trim`], so one left behind by a crashed process
    /// costs nothing but its entry.
    pub ephemeral: bool,
}

impl GroupSpec {
    /// Whether the group reads `event_type` (every type without [`event_types`](Self::event_types)).
    #[cfg(any(feature = "redis", feature = "nats"))]
    pub(crate) fn reads(&self, event_type: &str) -> bool {
        self.event_types.as_ref().is_none_or(|types| {
            types
                .iter()
                .any(|pattern| type_matches(pattern, event_type))
        })
    }

    /// The topics the group reads that its types name (`main` alone unless `by_context`),
    /// and whether it reads every topic besides (a `*` where the topic is, or no types), so
    /// that the topics created later count too.
    #[cfg(any(feature = "redis", feature = "nats"))]
    pub(crate) fn topics(&self, by_context: bool) -> (std::collections::BTreeSet<String>, bool) {
        if !by_context {
            return (std::iter::once("main".to_owned()).collect(), false);
        }
        let Some(types) = &self.event_types else {
            return (std::collections::BTreeSet::new(), true);
        };
        let mut topics = std::collections::BTreeSet::new();
        let mut all = false;
        for event_type in types {
            let topic = topic_of(true, event_type);
            if topic.contains('*') {
                all = true;
            } else {
                topics.insert(topic.to_owned());
            }
        }
        (topics, all)
    }

    /// A member `consumer` of `group`, reading every event type, starting now.
    pub fn new(group: impl Into<String>, consumer: impl Into<String>) -> Self {
        GroupSpec {
            group: group.into(),
            consumer: consumer.into(),
            event_types: None,
            start_from: StartFrom::Now,
            max_payload_bytes: 1 << 20,
            ephemeral: false,
        }
    }

    /// Makes the group ephemeral (see [`ephemeral`](Self::ephemeral)).
    #[must_use]
    pub fn ephemeral(mut self) -> Self {
        self.ephemeral = true;
        self
    }

    /// Reads only these event types.
    #[must_use]
    pub fn event_types<I: IntoIterator<Item = S>, S: Into<String>>(mut self, types: I) -> Self {
        self.event_types = Some(types.into_iter().map(Into::into).collect());
        self
    }

    /// Where a new group starts.
    #[must_use]
    pub fn start_from(mut self, start_from: StartFrom) -> Self {
        self.start_from = start_from;
        self
    }

    /// The payload limit.
    #[must_use]
    pub fn max_payload_bytes(mut self, bytes: usize) -> Self {
        self.max_payload_bytes = bytes;
        self
    }
}

/// An entry a member received: where it sits on the broker, and the event.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Received {
    /// Where it sits, to acknowledge it.
    pub entry: EntryRef,
    /// How many times the broker handed it out, this time included (more than 1 after a
    /// member died holding it).
    pub deliveries: u64,
    /// The event.
    pub envelope: RawEnvelope,
}

/// Where an entry sits on the broker: topic, shard, the broker's own id of the entry, and the
/// fencing token of the lease under which it was received.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct EntryRef {
    /// The topic.
    pub topic: String,
    /// The shard within the topic.
    pub shard: u32,
    /// The broker's id of the entry (a stream entry id on Redis).
    pub id: String,
    /// The fencing token of the lease under which it was received.
    pub token: u64,
}

impl EntryRef {
    /// An entry reference; transports build them.
    pub fn new(topic: impl Into<String>, shard: u32, id: impl Into<String>, token: u64) -> Self {
        EntryRef {
            topic: topic.into(),
            shard,
            id: id.into(),
            token,
        }
    }
}

/// A dead letter as a transport keeps it, with its id there.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransportDeadLetter {
    /// Its id on the broker, to remove it.
    pub id: EntryRef,
    /// The dead letter.
    pub letter: DeadLetter,
}

/// How much of each shard a [`Transport::trim`] keeps.
///
/// ```
/// use event_core::transport::Retention;
/// use std::time::Duration;
///
/// let retention = Retention::max_age(Duration::from_secs(7 * 24 * 3600)).and_max_len(1_000_000);
/// assert!(!retention.force);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// Keep at most this many entries per shard.
    pub max_len: Option<u64>,
    /// Keep entries younger than this.
    pub max_age: Option<Duration>,
    /// Remove entries that a group has not acknowledged too.
    pub force: bool,
}

impl Retention {
    /// Keeps at most `entries` per shard.
    pub fn max_len(entries: u64) -> Self {
        Retention {
            max_len: Some(entries),
            ..Retention::default()
        }
    }

    /// Keeps entries younger than `age`.
    pub fn max_age(age: Duration) -> Self {
        Retention {
            max_age: Some(age),
            ..Retention::default()
        }
    }

    /// Also keeps at most `entries` per shard.
    #[must_use]
    pub fn and_max_len(mut self, entries: u64) -> Self {
        self.max_len = Some(entries);
        self
    }

    /// Also removes entries some group has not acknowledged: they are lost to that group.
    #[must_use]
    pub fn forced(mut self) -> Self {
        self.force = true;
        self
    }
}

/// What a [`Transport::trim`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrimReport {
    /// Entries removed, over every shard.
    pub removed: u64,
    /// Groups that kept entries the retention would have removed, because they have not
    /// acknowledged them (empty when forced).
    pub held_by: Vec<String>,
}

/// A broker: publishes events to shards of topics, and lets consumer groups read them.
///
/// Every method is cancel safe as far as the broker allows: a publish dropped midway may or
/// may not have reached the broker, and is published again by the caller if needed (the
/// event id makes duplicates detectable).
pub trait Transport: Send + Sync + std::fmt::Debug + 'static {
    /// Publishes events, in order, each to its topic's shard by partition key. Returns when
    /// the broker acknowledged every one of them.
    ///
    /// # Errors
    ///
    /// [`TransportError`] when the broker cannot be reached or refused them; then some of
    /// them may have been published, in order, and none after the first that failed.
    fn publish<'a>(
        &'a self,
        events: &'a [RawEnvelope],
    ) -> BoxFuture<'a, Result<(), TransportError>>;

    /// Joins a consumer group (creating it where needed) as a member, which takes its
    /// share of the shards.
    ///
    /// # Errors
    ///
    /// [`TransportError`] when the broker cannot be reached, or records another shard count.
    fn join<'a>(
        &'a self,
        spec: &'a GroupSpec,
    ) -> BoxFuture<'a, Result<Box<dyn Member>, TransportError>>;

    /// Keeps a dead letter of `entry`, in its topic's dead-letter stream, and acknowledges
    /// the entry in the same step; `entry` is `None` for a letter of no entry (a redelivery
    /// that failed again).
    ///
    /// # Errors
    ///
    /// [`TransportError::Fenced`] when the entry's lease passed to another member (nothing
    /// written); [`TransportError`] when the broker cannot be reached.
    fn put_dead_letter<'a>(
        &'a self,
        letter: &'a DeadLetter,
        entry: Option<&'a EntryRef>,
    ) -> BoxFuture<'a, Result<(), TransportError>>;

    /// The dead letters, oldest first, of one group or of all.
    ///
    /// # Errors
    ///
    /// [`TransportError`] when the broker cannot be reached.
    fn dead_letters<'a>(
        &'a self,
        group: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<TransportDeadLetter>, TransportError>>;

    /// Removes a dead letter; false when it was not there.
    ///
    /// # Errors
    ///
    /// [`TransportError`] when the broker cannot be reached.
    fn remove_dead_letter<'a>(
        &'a self,
        id: &'a EntryRef,
    ) -> BoxFuture<'a, Result<bool, TransportError>>;

    /// Removes old entries by `retention`, never one that a group has not acknowledged
    /// unless forced.
    ///
    /// # Errors
    ///
    /// [`TransportError`] when the broker cannot be reached.
    fn trim<'a>(
        &'a self,
        retention: &'a Retention,
    ) -> BoxFuture<'a, Result<TrimReport, TransportError>>;

    /// Per topic and shard: length, first and last entry; per group: its members, pending
    /// entries and lag.
    ///
    /// # Errors
    ///
    /// [`TransportError`] when the broker cannot be reached.
    fn info(&self) -> BoxFuture<'_, Result<TransportInfo, TransportError>>;
}

/// A member of a consumer group: receives the entries of the shards it owns, and
/// acknowledges them. Leases are renewed in the background while it lives; dropping it
/// without [`leave`](Self::leave) lets them run out.
pub trait Member: Send + Sync + std::fmt::Debug {
    /// Up to `max` entries of the shards this member owns, oldest first per shard, waiting at
    /// most `wait` when there are none. An entry that is not a valid envelope (not JSON, over
    /// the payload limit) is dead-lettered with its reason and acknowledged by the transport
    /// itself, never handed out and never dropped.
    ///
    /// # Errors
    ///
    /// [`TransportError`] when the broker cannot be reached.
    fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<Received>, TransportError>>;

    /// Acknowledges an entry: handled, or dead-lettered elsewhere.
    ///
    /// # Errors
    ///
    /// [`TransportError::Fenced`] when the entry's shard passed to another member since it
    /// was received: the caller drops what it holds of that shard; [`TransportError`] when
    /// the broker cannot be reached.
    fn ack<'a>(&'a self, entry: &'a EntryRef) -> BoxFuture<'a, Result<(), TransportError>>;

    /// Whether this member may still hand out entries received under `entry`'s lease: the
    /// lease is held with that token and is not about to run out.
    fn holds(&self, entry: &EntryRef) -> bool;

    /// Whether the lease under which `entry` was received is gone for good (taken by
    /// another member, or run out): its new owner hands the entry out again. Between
    /// [`holds`](Self::holds) and `lost` lies a lease about to run out whose renewal is
    /// late: wait, and ask again.
    fn lost(&self, entry: &EntryRef) -> bool;

    /// Gives back an entry received and not handled (its lease was lost meanwhile, as far as
    /// this process could tell): if this member still holds the shard, it hands the entry
    /// out again, before anything newer of that shard.
    fn abandon(&self, entry: &EntryRef);

    /// Leaves the group: waits (a bounded time) for the acknowledgements under way, stops
    /// renewing, and releases its leases so that the others take its shards at once.
    fn leave(&self) -> BoxFuture<'_, ()>;
}

/// The shard of a partition key among `shards`: FNV-1a of its UTF-8 bytes, modulo the count.
/// Stable across processes, platforms and releases (it decides where events are on a
/// broker); events without a key use their id's text.
///
/// ```
/// use event_core::transport::shard_of;
///
/// assert_eq!(shard_of("order-1", 8), shard_of("order-1", 8));
/// assert!(shard_of("order-1", 8) < 8);
/// ```
pub fn shard_of(key: &str, shards: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    u32::try_from(hash % u64::from(shards.max(1))).unwrap_or(0)
}

/// A member name unique enough for a consumer group: host, process id and a random suffix.
pub fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    format!(
        "{host}-{}-{:06x}",
        std::process::id(),
        fastrand::u32(..0x0100_0000)
    )
}

/// The topic of an event type: `main` for every event, or with `by_context` the first
/// dot-separated segment of its name (`order.created` goes to topic `order`).
#[cfg(any(feature = "redis", feature = "nats"))]
pub(crate) fn topic_of(by_context: bool, event_type: &str) -> &str {
    if by_context {
        event_type
            .split('.')
            .next()
            .filter(|t| !t.is_empty())
            .unwrap_or("main")
    } else {
        "main"
    }
}

/// A broker URL without credentials (each of a comma-separated list).
#[cfg(any(feature = "redis", feature = "nats"))]
pub(crate) fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|url| {
            let Some((scheme, rest)) = url.split_once("://") else {
                return url.to_owned();
            };
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => url.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether a group reading `pattern` reads `event_type` (`*` matches one dot-separated
/// segment, or every remaining one at the end).
#[cfg(any(feature = "redis", feature = "nats"))]
pub(crate) fn type_matches(pattern: &str, event_type: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == event_type;
    }
    let segments: Vec<&str> = pattern.split('.').collect();
    let mut parts = event_type.split('.');
    for (i, segment) in segments.iter().enumerate() {
        let Some(part) = parts.next() else {
            return false;
        };
        if *segment == "*" {
            if i == segments.len() - 1 {
                return true;
            }
        } else if *segment != part {
            return false;
        }
    }
    parts.next().is_none()
}

/// Runs a member's lease rounds every third of `lease` until aborted, logging when they
/// start failing (leases then run out unless renewed in time) and when they work again.
#[cfg(any(feature = "redis", feature = "nats"))]
pub(crate) async fn lease_rounds<F, R>(lease: Duration, spec: &GroupSpec, mut round: F)
where
    F: FnMut() -> R,
    R: Future<Output = Result<(), TransportError>>,
{
    let mut failing = false;
    loop {
        tokio::time::sleep(lease / 3).await;
        match round().await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!(group = %spec.group, consumer = %spec.consumer, "lease round works again");
            }
            Ok(()) => {}
            Err(error) => {
                if !failing {
                    tracing::warn!(
                        group = %spec.group,
                        consumer = %spec.consumer,
                        %error,
                        "lease round failed; leases run out unless renewed in time"
                    );
                }
                failing = true;
            }
        }
    }
}

/// How long a member waits between two attempts to reach a broker that is down, growing to
/// `max` (used by the transports' reconnect loops).
pub(crate) fn reconnect_delay(attempt: u32, max: Duration) -> Duration {
    Duration::from_millis(50u64.saturating_mul(1 << attempt.min(10))).min(max)
}

#[cfg(all(test, any(feature = "redis", feature = "nats")))]
mod tests {
    use super::{redact_url, type_matches};

    #[test]
    fn redacts_credentials() {
        assert_eq!(redact_url("redis://u:p@h:1/0"), "redis://h:1/0");
        assert_eq!(redact_url("redis://:p@h:1"), "redis://h:1");
        assert_eq!(redact_url("redis://h:1"), "redis://h:1");
        assert_eq!(
            redact_url("nats://u:p@h:1,nats://t@g:2"),
            "nats://h:1,nats://g:2"
        );
    }

    #[test]
    fn patterns() {
        assert!(type_matches("order.created", "order.created"));
        assert!(type_matches("order.*", "order.created"));
        assert!(type_matches("*", "order.created"));
        assert!(type_matches("*.created", "order.created"));
        assert!(!type_matches("*.created", "order.paid"));
        assert!(!type_matches("order.created", "order.paid"));
    }
}
