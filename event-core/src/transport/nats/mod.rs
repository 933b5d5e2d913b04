//! The NATS JetStream transport: a stream per topic with a subject per shard, a durable pull
//! consumer per shard of a group, shard leases in a key-value bucket per group.
//!
//! Everything lives under one prefix (`events` by default; names escaped to the characters
//! NATS allows, see [`names`]):
//!
//! | name | kind | what |
//! |------|------|------|
//! | `{prefix}__{topic}` | stream | the events of a topic, on subjects `{prefix}.{topic}.{shard}`; its description records the shard count |
//! | `{prefix}__{topic}__dead` | stream | the topic's dead letters, on subject `{prefix}.{topic}.dead` |
//! | `{group}__{shard}__{token}` | pull consumer on a topic stream | a group's position on a shard, under the lease `token` |
//! | `{prefix}__g__{group}` | key-value bucket, entries living one lease | `m.{consumer}`: a live member; `s.{shard}`: the shard's lease holder |
//!
//! **Fencing.** A lease's fencing token is the key-value revision of the write that took
//! it, which grows with every write to the bucket. A new owner deletes the shard's consumer
//! of the previous token and creates its own from the old one's acknowledgement floor: an
//! acknowledgement or a pull of the stale owner then reaches no consumer and is refused, and
//! the new owner reads again, first, everything the old one had not acknowledged.

mod admin;
mod dead;
mod lease;
mod member;
mod names;

use super::{
    EntryRef, GroupSpec, Member, Retention, Transport, TransportDeadLetter, TransportError,
    TransportInfo, TrimReport,
};
use crate::bus::DeadLetter;
use crate::envelope::RawEnvelope;
use async_nats::jetstream::{self, stream};
use futures_util::future::BoxFuture;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

/// The header that carries an entry's event type (the payload is the canonical envelope).
const TYPE_HEADER: &str = "Event-Type";

/// Events carried by NATS JetStream (server 2.9 or later, with JetStream enabled).
///
/// A topic (one named `main` for every event, or one per bounded context with
/// [`topics_by_context`](NatsTransportBuilder::topics_by_context)) is a stream, split into
/// shards, one subject each, by partition-key hash. A subscription is a consumer group: a
/// durable pull consumer per shard, owned by one member at a time under a lease kept in a
/// key-value bucket, whose entries run out unless renewed. Each entry is published with its
/// envelope id as `Nats-Msg-Id`, so the server drops a duplicate (a relay publishing again
/// after a crash) within its two-minute window.
///
/// ```no_run
/// use event_core::transport::{GroupSpec, NatsTransport, Transport, consumer_name};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let events: Vec<event_core::RawEnvelope> = Vec::new();
/// let transport = NatsTransport::builder("nats://127.0.0.1:4222")
///     .prefix("shop")
///     .shards(8)
///     .lease(Duration::from_secs(10))
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
pub struct NatsTransport {
    inner: Arc<Inner>,
}

/// Settings of a [`NatsTransport`]: [`NatsTransport::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct NatsTransportBuilder {
    url: String,
    prefix: String,
    shards: u32,
    lease: Duration,
    by_context: bool,
    max_ack_pending: i64,
}

/// What the transport and its members share.
struct Inner {
    client: async_nats::Client,
    js: jetstream::Context,
    /// The address, without credentials.
    broker: String,
    prefix: String,
    shards: u32,
    lease: Duration,
    by_context: bool,
    max_ack_pending: i64,
    /// Topics whose streams this process checked.
    checked: Mutex<HashSet<String>>,
    /// The members joined through this transport, which hold the acknowledgement handles of
    /// what they received (a dead letter of an entry acknowledges it through them).
    members: Mutex<Vec<Weak<member::Shared>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsTransport")
            .field("broker", &self.broker)
            .field("prefix", &self.prefix)
            .field("shards", &self.shards)
            .field("lease", &self.lease)
            .field("topics_by_context", &self.by_context)
            .finish_non_exhaustive()
    }
}

impl NatsTransport {
    /// Connects with the defaults: prefix `events`, 8 shards, a 10 s lease, one topic.
    ///
    /// # Errors
    ///
    /// [`TransportError`] when the URL is not a NATS URL, the server cannot be reached, or
    /// it has no JetStream.
    pub async fn connect(url: &str) -> Result<NatsTransport, TransportError> {
        NatsTransport::builder(url).connect().await
    }

    /// Settings for a transport on the server at `url` (`nats://[user:password@]host:port`,
    /// or several, comma-separated).
    pub fn builder(url: impl Into<String>) -> NatsTransportBuilder {
        NatsTransportBuilder {
            url: url.into(),
            prefix: "events".to_owned(),
            shards: 8,
            lease: Duration::from_secs(10),
            by_context: false,
            max_ack_pending: 1000,
        }
    }
}

impl NatsTransportBuilder {
    /// The prefix of every stream, subject, consumer and bucket (`events` by default). Two
    /// deployments on one server need two prefixes; so does a new shard count.
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

    /// How many entries of one shard a member holds unacknowledged at most (1000 by
    /// default): the server hands out no more until some are acknowledged.
    pub fn max_ack_pending(mut self, entries: u32) -> Self {
        self.max_ack_pending = i64::from(entries.max(1));
        self
    }

    /// Connects, and checks that the server has JetStream.
    ///
    /// # Errors
    ///
    /// [`TransportError`] when the URL is not a NATS URL, the server cannot be reached, or
    /// it has no JetStream.
    pub async fn connect(self) -> Result<NatsTransport, TransportError> {
        let broker = super::redact_url(&self.url);
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .request_timeout(Some(Duration::from_secs(5)))
            .retry_on_initial_connect()
            .max_reconnects(None)
            // Called before every attempt, the first included (with 1): no wait before it.
            .reconnect_delay_callback(|attempt| match attempt {
                0 | 1 => Duration::ZERO,
                n => super::reconnect_delay(
                    u32::try_from(n - 1).unwrap_or(u32::MAX),
                    Duration::from_millis(500),
                ),
            })
            .connect(self.url.as_str());
        let client = tokio::time::timeout(Duration::from_secs(5), client)
            .await
            .map_err(|elapsed| TransportError::Unavailable {
                broker: broker.clone(),
                source: Arc::new(elapsed),
            })?
            .map_err(|error| TransportError::Unavailable {
                broker: broker.clone(),
                source: Arc::new(error),
            })?;
        let js = jetstream::new(client.clone());
        js.query_account().await.map_err(|error| {
            fail(
                &client,
                &broker,
                "$JS.API.INFO (is JetStream enabled: -js?)",
                error,
            )
        })?;
        Ok(NatsTransport {
            inner: Arc::new(Inner {
                client,
                js,
                broker,
                prefix: self.prefix,
                shards: self.shards,
                lease: self.lease,
                by_context: self.by_context,
                max_ack_pending: self.max_ack_pending,
                checked: Mutex::new(HashSet::new()),
                members: Mutex::new(Vec::new()),
            }),
        })
    }
}

/// A client error as a transport error: the server unreachable (the connection is down, or
/// it did not answer in time), or a refusal.
fn fail<E>(client: &async_nats::Client, broker: &str, what: &str, error: E) -> TransportError
where
    E: std::error::Error + Send + Sync + 'static,
{
    let text = error.to_string();
    let down = client.connection_state() != async_nats::connection::State::Connected
        || text.contains("timed out")
        || text.contains("no responders")
        || text.contains("disconnected");
    if down {
        TransportError::Unavailable {
            broker: broker.to_owned(),
            source: Arc::new(error),
        }
    } else {
        TransportError::Refused {
            broker: broker.to_owned(),
            command: what.to_owned(),
            message: text,
        }
    }
}

/// Whether a stream lookup failed because the stream does not exist.
fn not_found(error: &jetstream::context::GetStreamError) -> bool {
    matches!(
        error.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(error)
            if error.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

/// Entries per subject of a stream, for the subjects matching `filter`.
async fn subject_counts(
    inner: &Inner,
    stream: &stream::Stream,
    filter: &str,
) -> Result<std::collections::HashMap<String, u64>, TransportError> {
    use futures_util::TryStreamExt;
    let subjects: Vec<(String, usize)> = stream
        .info_with_subjects(filter)
        .await
        .map_err(inner.err("$JS.API.STREAM.INFO"))?
        .try_collect()
        .await
        .map_err(inner.err("$JS.API.STREAM.INFO"))?;
    Ok(subjects
        .into_iter()
        .map(|(subject, count)| (subject, u64::try_from(count).unwrap_or(u64::MAX)))
        .collect())
}

impl Inner {
    fn err<E>(&self, what: &str) -> impl Fn(E) -> TransportError + '_
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let what = what.to_owned();
        move |error| fail(&self.client, &self.broker, &what, error)
    }

    fn topic_of<'t>(&self, event_type: &'t str) -> &'t str {
        super::topic_of(self.by_context, event_type)
    }

    fn stream_name(&self, topic: &str) -> String {
        names::stream(&self.prefix, topic)
    }

    fn subject(&self, topic: &str, shard: u32) -> String {
        names::subject(&self.prefix, topic, shard)
    }

    /// Every topic, sorted: the streams under the prefix that record a shard count.
    async fn all_topics(&self) -> Result<Vec<String>, TransportError> {
        use futures_util::TryStreamExt;
        let infos: Vec<stream::Info> = self
            .js
            .streams()
            .try_collect()
            .await
            .map_err(self.err("$JS.API.STREAM.LIST"))?;
        let mut topics: Vec<String> = infos
            .iter()
            .filter_map(|info| names::topic_of_stream(&self.prefix, &info.config))
            .map(|(topic, _)| topic)
            .collect();
        topics.sort();
        topics.dedup();
        Ok(topics)
    }

    /// The topic's stream, created with this process's shard count where it is new (and its
    /// dead-letter stream); the count recorded must be this process's.
    async fn topic_stream(&self, topic: &str) -> Result<stream::Stream, TransportError> {
        let name = self.stream_name(topic);
        let stream = match self.js.get_stream(&name).await {
            Ok(stream) => stream,
            Err(error) if not_found(&error) => {
                let config = stream::Config {
                    name: name.clone(),
                    description: Some(names::description(topic, self.shards)),
                    subjects: (0..self.shards).map(|s| self.subject(topic, s)).collect(),
                    storage: stream::StorageType::File,
                    retention: stream::RetentionPolicy::Limits,
                    duplicate_window: Duration::from_secs(120),
                    allow_direct: true,
                    ..stream::Config::default()
                };
                let stream = self
                    .js
                    .get_or_create_stream(config)
                    .await
                    .map_err(self.err("$JS.API.STREAM.CREATE"))?;
                self.js
                    .get_or_create_stream(stream::Config {
                        name: names::dead_stream(&self.prefix, topic),
                        description: Some(format!("typed-events dead letters of topic {topic}")),
                        subjects: vec![names::dead_subject(&self.prefix, topic)],
                        storage: stream::StorageType::File,
                        duplicate_window: Duration::from_secs(120),
                        ..stream::Config::default()
                    })
                    .await
                    .map_err(self.err("$JS.API.STREAM.CREATE"))?;
                stream
            }
            Err(error) => return Err(self.err("$JS.API.STREAM.INFO")(error)),
        };
        let recorded = names::topic_of_stream(&self.prefix, &stream.cached_info().config)
            .map(|(_, shards)| shards)
            .ok_or_else(|| TransportError::Corrupt {
                broker: self.broker.clone(),
                key: name.clone(),
                reason: "the stream's description records no shard count".to_owned(),
            })?;
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
        Ok(stream)
    }

    /// Checks a topic once per process.
    async fn check_topic_once(&self, topic: &str) -> Result<(), TransportError> {
        let checked = self
            .checked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(topic);
        if !checked {
            self.topic_stream(topic).await?;
        }
        Ok(())
    }

    async fn publish(&self, events: &[RawEnvelope]) -> Result<(), TransportError> {
        if events.is_empty() {
            return Ok(());
        }
        // While the client reconnects it would buffer the publish and wait out its whole
        // timeout for the acknowledgement: fail at once instead, as a broker that is down.
        let state = self.client.connection_state();
        if state != async_nats::connection::State::Connected {
            return Err(TransportError::Unavailable {
                broker: self.broker.clone(),
                source: Arc::new(std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    format!("the client is {state}"),
                )),
            });
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
        // Sent one after another, acknowledgements awaited after: a pipeline, in order.
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let topic = self.topic_of(&event.event_type);
            let id = event.id.to_string();
            let shard = super::shard_of(event.partition_key().unwrap_or(&id), self.shards);
            let subject = self.subject(topic, shard);
            let json = event.to_json().map_err(|error| TransportError::Corrupt {
                broker: self.broker.clone(),
                key: subject.clone(),
                reason: format!("the envelope does not serialize: {error}"),
            })?;
            let message = jetstream::message::PublishMessage::build()
                .payload(bytes::Bytes::from(json))
                .message_id(&id)
                .header(TYPE_HEADER, event.event_type.as_str());
            let ack = self
                .js
                .send_publish(subject, message)
                .await
                .map_err(self.err("PUB"))?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await.map_err(self.err("PUB"))?;
        }
        Ok(())
    }

    /// The live member of `group` in this process that holds `entry`'s lease.
    fn member_of(&self, group: &str) -> Vec<Arc<member::Shared>> {
        self.members
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|shared| shared.spec.group == group)
            .collect()
    }

    fn register(&self, shared: &Arc<member::Shared>) {
        let mut members = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        members.retain(|weak| weak.strong_count() > 0);
        members.push(Arc::downgrade(shared));
    }

    fn fenced(&self, entry: &EntryRef) -> TransportError {
        TransportError::Fenced {
            broker: self.broker.clone(),
            topic: entry.topic.clone(),
            shard: entry.shard,
            token: entry.token,
        }
    }
}

impl Transport for NatsTransport {
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
            let member = member::NatsMember::join(Arc::clone(&self.inner), spec.clone()).await?;
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
