//! The Redis Streams transport: a stream per shard of a topic, a consumer group per
//! subscription, shard leases with fencing tokens kept in plain keys.
//!
//! Everything lives under one prefix (`events` by default):
//!
//! | key | type | what |
//! |-----|------|------|
//! | `{prefix}:{topic}:{shard}` | stream | the events of a shard: fields `id`, `type`, `envelope` |
//! | `{prefix}:{topic}:dead` | stream | the topic's dead letters |
//! | `{prefix}:{topic}:meta` | hash | `shards`: the topic's shard count |
//! | `{prefix}:topics` | set | every topic |
//! | `{prefix}:group:{group}:members` | sorted set | live members, scored by lease expiry (ms) |
//! | `{prefix}:group:{group}:lease:{shard}` | string | `{consumer}\|{token}`, expiring with the lease |
//! | `{prefix}:group:{group}:fence:{shard}` | counter | the last fencing token handed out |

mod acks;
mod admin;
mod dead;
mod lease;
mod member;
mod reply;
mod scripts;

use super::{
    EntryRef, GroupSpec, Member, Retention, Transport, TransportDeadLetter, TransportError,
    TransportInfo, TrimReport,
};
use crate::bus::DeadLetter;
use crate::envelope::RawEnvelope;
use futures_util::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, ServerErrorKind};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

/// Events carried by Redis Streams (5.0 or later; 7.0 or later for the group lag in
/// [`info`](Transport::info)).
///
/// A topic (one named `main` for every event, or one per bounded context with
/// [`topics_by_context`](RedisTransportBuilder::topics_by_context)) is split into shards,
/// one stream each, by partition-key hash. A subscription is a consumer group on every shard
/// stream of the topics it reads; its members split the shards between them under leases
/// they renew in the background, and a shard's new owner takes over the unacknowledged
/// entries of the old one. Writes of a stale owner are refused by a fencing token.
///
/// ```no_run
/// use event_core::transport::{GroupSpec, RedisTransport, Transport, consumer_name};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let events: Vec<event_core::RawEnvelope> = Vec::new();
/// let transport = RedisTransport::builder("redis://127.0.0.1:6379")
///     .prefix("shop")
///     .shards(8)
///     .lease(Duration::from_secs(10))
///     .topics_by_context()
///     .connect()
///     .await?;
/// transport.publish(&events).await?;
///
/// let member = transport.join(&GroupSpec::new("billing", consumer_name())).await?;
/// for received in member.receive(100, Duration::from_secs(1)).await? {
///     // handle received.envelope, then:
///     member.ack(&received.entry).await?;
/// }
/// member.leave().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RedisTransport {
    inner: Arc<Inner>,
}

/// Settings of a [`RedisTransport`]: [`RedisTransport::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisTransportBuilder {
    url: String,
    prefix: String,
    shards: u32,
    lease: Duration,
    by_context: bool,
}

/// What the transport and its members share.
struct Inner {
    client: redis::Client,
    conn: ConnectionManager,
    /// The address, without credentials.
    broker: String,
    prefix: String,
    shards: u32,
    lease: Duration,
    by_context: bool,
    /// Topics whose shard count this process checked.
    checked: Mutex<HashSet<String>>,
    /// The members joined through this transport, told of entries dead-lettered here.
    members: Mutex<Vec<Weak<member::Shared>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTransport")
            .field("broker", &self.broker)
            .field("prefix", &self.prefix)
            .field("shards", &self.shards)
            .field("lease", &self.lease)
            .field("topics_by_context", &self.by_context)
            .finish_non_exhaustive()
    }
}

impl RedisTransport {
    /// Connects with the defaults: prefix `events`, 8 shards, a 10 s lease, one topic.
    ///
    /// # Errors
    ///
    /// [`TransportError`] when the URL is not a Redis URL or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<RedisTransport, TransportError> {
        RedisTransport::builder(url).connect().await
    }

    /// Settings for a transport on the server at `url` (`redis://[user:password@]host:port[/db]`).
    pub fn builder(url: impl Into<String>) -> RedisTransportBuilder {
        RedisTransportBuilder {
            url: url.into(),
            prefix: "events".to_owned(),
            shards: 8,
            lease: Duration::from_secs(10),
            by_context: false,
        }
    }
}

impl RedisTransportBuilder {
    /// The prefix of every key (`events` by default). Two deployments on one server need two
    /// prefixes; so does a new shard count.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Shards per topic (8 by default, at least 1): the most members of a group that work
    /// at once. Fixed for a topic once it is used.
    pub fn shards(mut self, shards: u32) -> Self {
        self.shards = shards.max(1);
        self
    }

    /// How long a member's lease on a shard lasts without renewal (10 s by default): how
    /// long the shards of a member that died wait for another. Renewed every third of it.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// A topic per bounded context: the first dot-separated segment of the event type
    /// (`order.created` goes to topic `order`), rather than one topic `main` for all.
    pub fn topics_by_context(mut self) -> Self {
        self.by_context = true;
        self
    }

    /// Connects.
    ///
    /// # Errors
    ///
    /// [`TransportError`] when the URL is not a Redis URL or the server cannot be reached.
    pub async fn connect(self) -> Result<RedisTransport, TransportError> {
        let broker = super::redact_url(&self.url);
        let client = redis::Client::open(self.url.as_str())
            .map_err(|error| map_error(&broker, "connect", &error))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|error| map_error(&broker, "connect", &error))?;
        Ok(RedisTransport {
            inner: Arc::new(Inner {
                client,
                conn,
                broker,
                prefix: self.prefix,
                shards: self.shards,
                lease: self.lease,
                by_context: self.by_context,
                checked: Mutex::new(HashSet::new()),
                members: Mutex::new(Vec::new()),
            }),
        })
    }
}

impl Inner {
    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    fn err(&self, command: &str) -> impl Fn(RedisError) -> TransportError + '_ {
        let command = command.to_owned();
        move |error| map_error(&self.broker, &command, &error)
    }

    /// The topic of an event type.
    fn topic_of<'t>(&self, event_type: &'t str) -> &'t str {
        super::topic_of(self.by_context, event_type)
    }

    fn stream_key(&self, topic: &str, shard: u32) -> String {
        format!("{}:{topic}:{shard}", self.prefix)
    }

    fn dead_key(&self, topic: &str) -> String {
        format!("{}:{topic}:dead", self.prefix)
    }

    fn meta_key(&self, topic: &str) -> String {
        format!("{}:{topic}:meta", self.prefix)
    }

    fn topics_key(&self) -> String {
        format!("{}:topics", self.prefix)
    }

    fn members_key(&self, group: &str) -> String {
        format!("{}:group:{group}:members", self.prefix)
    }

    fn lease_key(&self, group: &str, shard: u32) -> String {
        format!("{}:group:{group}:lease:{shard}", self.prefix)
    }

    fn fence_key(&self, group: &str, shard: u32) -> String {
        format!("{}:group:{group}:fence:{shard}", self.prefix)
    }

    /// Every topic, sorted.
    async fn all_topics(&self) -> Result<Vec<String>, TransportError> {
        let mut topics: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.topics_key())
            .query_async(&mut self.conn())
            .await
            .map_err(self.err("SMEMBERS"))?;
        topics.sort();
        Ok(topics)
    }

    /// Records the topic and its shard count (the first use wins), and checks the count.
    async fn check_topic(&self, topic: &str) -> Result<(), TransportError> {
        let meta = self.meta_key(topic);
        let (recorded,): (Option<String>,) = redis::pipe()
            .atomic()
            .cmd("HSETNX")
            .arg(&meta)
            .arg("shards")
            .arg(self.shards)
            .ignore()
            .cmd("SADD")
            .arg(self.topics_key())
            .arg(topic)
            .ignore()
            .cmd("HGET")
            .arg(&meta)
            .arg("shards")
            .query_async(&mut self.conn())
            .await
            .map_err(self.err("HSETNX"))?;
        let recorded = recorded.unwrap_or_default();
        let Ok(recorded) = recorded.parse::<u32>() else {
            return Err(TransportError::Corrupt {
                broker: self.broker.clone(),
                key: meta,
                reason: format!("`shards` is {recorded:?}, not a count"),
            });
        };
        if recorded != self.shards {
            return Err(TransportError::ShardCount {
                broker: self.broker.clone(),
                topic: topic.to_owned(),
                configured: self.shards,
                recorded,
            });
        }
        self.checked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.to_owned());
        Ok(())
    }

    /// Checks a topic once per process.
    async fn check_topic_once(&self, topic: &str) -> Result<(), TransportError> {
        let checked = self
            .checked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(topic);
        if checked {
            Ok(())
        } else {
            self.check_topic(topic).await
        }
    }

    async fn publish(&self, events: &[RawEnvelope]) -> Result<(), TransportError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut topics: Vec<&str> = events
            .iter()
            .map(|event| self.topic_of(&event.event_type))
            .collect();
        topics.sort_unstable();
        topics.dedup();
        for topic in topics {
            self.check_topic_once(topic).await?;
        }
        let mut pipe = redis::pipe();
        for event in events {
            let topic = self.topic_of(&event.event_type);
            let id = event.id.to_string();
            let shard = super::shard_of(event.partition_key().unwrap_or(&id), self.shards);
            let key = self.stream_key(topic, shard);
            let json = event.to_json().map_err(|error| TransportError::Corrupt {
                broker: self.broker.clone(),
                key: key.clone(),
                reason: format!("the envelope does not serialize: {error}"),
            })?;
            pipe.cmd("XADD")
                .arg(key)
                .arg("*")
                .arg("id")
                .arg(id)
                .arg("type")
                .arg(event.event_type.as_str())
                .arg("envelope")
                .arg(json)
                .ignore();
        }
        pipe.query_async::<()>(&mut self.conn())
            .await
            .map_err(self.err("XADD"))
    }

    /// Tells the member holding `entry` that it was acknowledged elsewhere.
    fn settled(&self, group: &str, entry: &EntryRef) {
        let members = self
            .members
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for shared in members.iter().filter_map(Weak::upgrade) {
            if shared.spec.group == group {
                shared.settled(entry);
            }
        }
    }

    fn register(&self, shared: &Arc<member::Shared>) {
        let mut members = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        members.retain(|weak| weak.strong_count() > 0);
        members.push(Arc::downgrade(shared));
    }
}

impl Transport for RedisTransport {
    fn publish<'a>(
        &'a self,
        events: &'a [RawEnvelope],
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(self.inner.publish(events))
    }

    fn join<'a>(
        &'a self,
        spec: &'a GroupSpec,
    ) -> BoxFuture<'a, Result<Box<dyn Member>, TransportError>> {
        Box::pin(async move {
            let member = member::RedisMember::join(Arc::clone(&self.inner), spec.clone()).await?;
            Ok(Box::new(member) as Box<dyn Member>)
        })
    }

    fn put_dead_letter<'a>(
        &'a self,
        letter: &'a DeadLetter,
        entry: Option<&'a EntryRef>,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(dead::put(&self.inner, letter, entry))
    }

    fn dead_letters<'a>(
        &'a self,
        group: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<TransportDeadLetter>, TransportError>> {
        Box::pin(dead::list(&self.inner, group))
    }

    fn remove_dead_letter<'a>(
        &'a self,
        id: &'a EntryRef,
    ) -> BoxFuture<'a, Result<bool, TransportError>> {
        Box::pin(dead::remove(&self.inner, id))
    }

    fn trim<'a>(
        &'a self,
        retention: &'a Retention,
    ) -> BoxFuture<'a, Result<TrimReport, TransportError>> {
        Box::pin(admin::trim(&self.inner, retention))
    }

    fn info(&self) -> BoxFuture<'_, Result<TransportInfo, TransportError>> {
        Box::pin(admin::info(&self.inner))
    }
}

/// A Redis error as a transport error: the server unreachable or busy, or a refusal.
fn map_error(broker: &str, command: &str, error: &RedisError) -> TransportError {
    let kind = error.kind();
    let unavailable = error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || matches!(
            kind,
            ErrorKind::Client
                | ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ClusterDown
                )
        );
    if unavailable {
        TransportError::Unavailable {
            broker: broker.to_owned(),
            source: Arc::new(error.clone()),
        }
    } else if matches!(kind, ErrorKind::Parse | ErrorKind::UnexpectedReturnType) {
        TransportError::Corrupt {
            broker: broker.to_owned(),
            key: format!("(reply to {command})"),
            reason: error.to_string(),
        }
    } else {
        TransportError::Refused {
            broker: broker.to_owned(),
            command: command.to_owned(),
            message: error.to_string(),
        }
    }
}

/// A stream entry id as numbers, to compare ids.
fn parse_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// The smallest id after `id`.
fn next_id(id: &str) -> String {
    let (ms, seq) = parse_id(id);
    match seq.checked_add(1) {
        Some(seq) => format!("{ms}-{seq}"),
        None => format!("{}-0", ms.saturating_add(1)),
    }
}

/// The largest id before `id` (`0-0` for the first).
fn previous_id(id: &str) -> String {
    match parse_id(id) {
        (0, 0) => "0-0".to_owned(),
        (ms, 0) => format!("{}-{}", ms - 1, u64::MAX),
        (ms, seq) => format!("{ms}-{}", seq - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::{next_id, previous_id};

    #[test]
    fn ids_step() {
        assert_eq!(next_id("5-1"), "5-2");
        assert_eq!(previous_id("5-1"), "5-0");
        assert_eq!(previous_id("5-0"), format!("4-{}", u64::MAX));
        assert_eq!(next_id(&format!("4-{}", u64::MAX)), "5-0");
    }
}
