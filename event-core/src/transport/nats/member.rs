//! A member of a consumer group: the leases it holds (renewed by [`lease`](super::lease)), a
//! puller task per shard consumer it owns, its receives and its fenced acknowledgements.

use super::{Inner, TYPE_HEADER, lease, names};
use crate::envelope::RawEnvelope;
use crate::transport::{EntryRef, GroupSpec, Member, Received, StartFrom, TransportError};
use async_nats::Subject;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::kv;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// What a member, its lease task and its pullers share.
pub(super) struct Shared {
    pub(super) inner: Arc<Inner>,
    pub(super) spec: GroupSpec,
    /// Whether the topics read can grow (every topic, by context).
    pub(super) dynamic_topics: bool,
    /// The group's lease bucket.
    pub(super) kv: kv::Store,
    /// Where pullers put what they pulled, for [`NatsMember::receive`].
    tx: mpsc::UnboundedSender<Pulled>,
    state: Mutex<State>,
}

#[derive(Default)]
pub(super) struct State {
    /// The topics read, the group's start consumers created.
    pub(super) topics: Vec<String>,
    /// The leases held, by shard.
    pub(super) leases: BTreeMap<u32, Lease>,
}

/// A lease held on a shard.
pub(super) struct Lease {
    /// The fencing token: the bucket revision of the write that took the lease.
    pub(super) token: u64,
    /// The bucket revision of the last renewal (a renewal is conditional on it).
    pub(super) revision: u64,
    /// When the last successful renewal (or the acquisition) was sent.
    pub(super) renewed: Instant,
    /// Another member should have it: release once nothing is unacknowledged.
    pub(super) releasing: bool,
    /// The lease ran out before its renewal, as far as this process can tell, or an entry
    /// was given back: it is never renewed under this token, but released and taken again
    /// under a new one, whose consumer starts at the acknowledgement floor, so that what was
    /// received under this one is read again, in order.
    pub(super) given_up: bool,
    /// Entries pulled (handed out, or waiting in the member's queue) and not acknowledged,
    /// by topic and stream sequence, with the subject that acknowledges them.
    pub(super) outstanding: HashMap<(String, u64), Subject>,
    /// The pullers of the shard's consumers (one per topic), stopped with the lease.
    pub(super) pullers: Vec<AbortHandle>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        for puller in &self.pullers {
            puller.abort();
        }
    }
}

/// A message a puller took from a shard consumer.
struct Pulled {
    topic: String,
    shard: u32,
    token: u64,
    sequence: u64,
    deliveries: u64,
    message: async_nats::Message,
}

impl Shared {
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Shards held, with their tokens.
    pub(super) fn held(&self) -> Vec<(u32, u64)> {
        self.state()
            .leases
            .iter()
            .map(|(shard, lease)| (*shard, lease.token))
            .collect()
    }

    /// Whether entries received under a lease held are still unacknowledged.
    fn unsettled(&self) -> bool {
        self.state()
            .leases
            .values()
            .any(|lease| !lease.outstanding.is_empty())
    }

    /// Whether entries of `shard` received under `token` may still be handed out: the
    /// lease is held with that token and is not about to run out.
    fn holds_token(&self, shard: u32, token: u64) -> bool {
        let margin = self.inner.lease / 3;
        self.state().leases.get(&shard).is_some_and(|lease| {
            lease.token == token
                && !lease.given_up
                && lease.renewed.elapsed() + margin < self.inner.lease
        })
    }

    /// Takes the acknowledgement subject of an entry out of its lease, if the lease is still
    /// this member's under the entry's token (it has not run out). `Err` when it is not:
    /// the entry's shard is fenced off for this member.
    pub(super) fn settle(&self, entry: &EntryRef) -> Result<Option<Subject>, ()> {
        let sequence = entry.id.parse::<u64>().map_err(|_| ())?;
        let lease_time = self.inner.lease;
        let mut state = self.state();
        let lease = state
            .leases
            .get_mut(&entry.shard)
            .filter(|l| l.token == entry.token && !l.given_up)
            .filter(|l| l.renewed.elapsed() < lease_time)
            .ok_or(())?;
        Ok(lease.outstanding.remove(&(entry.topic.clone(), sequence)))
    }

    /// Whether this member still holds `entry`'s lease under its token (not run out).
    pub(super) fn holds_lease(&self, entry: &EntryRef) -> bool {
        let lease_time = self.inner.lease;
        self.state().leases.get(&entry.shard).is_some_and(|l| {
            l.token == entry.token && !l.given_up && l.renewed.elapsed() < lease_time
        })
    }

    /// Forgets an entry (acknowledged elsewhere, or given back).
    fn forget(&self, entry: &EntryRef) {
        let Ok(sequence) = entry.id.parse::<u64>() else {
            return;
        };
        if let Some(lease) = self
            .state()
            .leases
            .get_mut(&entry.shard)
            .filter(|l| l.token == entry.token)
        {
            lease.outstanding.remove(&(entry.topic.clone(), sequence));
        }
    }

    /// Starts pulling from a shard's consumer under a lease just taken.
    pub(super) fn start_puller(
        self: &Arc<Self>,
        consumer: PullConsumer,
        topic: String,
        shard: u32,
        token: u64,
    ) -> AbortHandle {
        tokio::spawn(pull(Arc::downgrade(self), consumer, topic, shard, token)).abort_handle()
    }
}

/// The topics a group reads, sorted.
pub(super) async fn group_topics(
    inner: &Inner,
    spec: &GroupSpec,
) -> Result<Vec<String>, TransportError> {
    let (mut topics, all) = spec.topics(inner.by_context);
    if all {
        topics.extend(inner.all_topics().await?);
    }
    Ok(topics.into_iter().collect())
}

/// The settings of a group's consumer on a shard.
pub(super) fn consumer_config(
    inner: &Inner,
    topic: &str,
    name: String,
    shard: u32,
    deliver_policy: DeliverPolicy,
    metadata: HashMap<String, String>,
) -> pull::Config {
    pull::Config {
        metadata,
        durable_name: Some(name),
        filter_subject: inner.subject(topic, shard),
        deliver_policy,
        ack_policy: AckPolicy::Explicit,
        // The bus retries in process and acknowledges once, after success or a dead letter;
        // the server hands an entry out again only after this long without an
        // acknowledgement (a member that holds it is then told it twice, and keeps one).
        ack_wait: (inner.lease * 3).max(Duration::from_secs(30)),
        max_ack_pending: inner.max_ack_pending,
        ..pull::Config::default()
    }
}

/// Creates the group's start consumers (token 0) on every shard of a topic where the group
/// has no consumer yet: where it starts reading, which the first owner of each shard takes
/// over.
pub(super) async fn create_start(
    inner: &Inner,
    group: &str,
    topic: &str,
    start: StartFrom,
) -> Result<(), TransportError> {
    let mut stream = inner.topic_stream(topic).await?;
    let existing = consumer_names(inner, &mut stream).await?;
    let deliver_policy = match start {
        StartFrom::Now => DeliverPolicy::New,
        StartFrom::Beginning => DeliverPolicy::All,
        StartFrom::At(time) => DeliverPolicy::ByStartTime {
            start_time: chrono::DateTime::<chrono::Utc>::from(time),
        },
    };
    for shard in 0..inner.shards {
        let taken = existing.iter().any(|(g, s, _)| g == group && *s == shard);
        if taken {
            continue;
        }
        let name = names::consumer(group, shard, 0);
        let config = consumer_config(inner, topic, name, shard, deliver_policy, HashMap::new());
        if let Err(error) = stream.create_consumer(config).await {
            // Another member created it meanwhile (with its own idea of "now").
            let exists = stream
                .consumer_info(names::consumer(group, shard, 0))
                .await
                .is_ok();
            if !exists {
                return Err(inner.err("$JS.API.CONSUMER.CREATE")(error));
            }
        }
    }
    Ok(())
}

/// The consumers of a topic stream that belong to groups: (group, shard, token).
pub(super) async fn consumer_names(
    inner: &Inner,
    stream: &mut async_nats::jetstream::stream::Stream,
) -> Result<Vec<(String, u32, u64)>, TransportError> {
    let mut names = Vec::new();
    let mut listing = stream.consumer_names();
    while let Some(name) = listing.next().await {
        let name = name.map_err(inner.err("$JS.API.CONSUMER.NAMES"))?;
        if let Some(parsed) = names::parse_consumer(&name) {
            names.push(parsed);
        }
    }
    Ok(names)
}

/// Pulls from a shard's consumer into the member's queue until the lease goes (the task is
/// aborted) or the consumer is deleted (a new owner took the shard).
async fn pull(member: Weak<Shared>, consumer: PullConsumer, topic: String, shard: u32, token: u64) {
    loop {
        let messages = consumer
            .stream()
            .max_messages_per_batch(256)
            .expires(Duration::from_secs(5))
            .heartbeat(Duration::from_secs(1))
            .messages()
            .await;
        let mut messages = match messages {
            Ok(messages) => messages,
            Err(error) => {
                tracing::debug!(%topic, shard, token, %error, "pull failed; trying again");
                tokio::time::sleep(Duration::from_millis(200)).await;
                if member.strong_count() == 0 {
                    return;
                }
                continue;
            }
        };
        while let Some(next) = messages.next().await {
            let message = match next {
                Ok(message) => message,
                Err(error) if error.kind() == pull::MessagesErrorKind::ConsumerDeleted => {
                    tracing::debug!(%topic, shard, token, "the consumer was deleted: the shard has another owner");
                    return;
                }
                Err(error) => {
                    tracing::debug!(%topic, shard, token, %error, "pull interrupted");
                    continue;
                }
            };
            let Some(member) = member.upgrade() else {
                return;
            };
            let Ok(info) = message.info() else {
                continue;
            };
            let (sequence, deliveries) = (
                info.stream_sequence,
                u64::try_from(info.delivered).unwrap_or(1),
            );
            let Some(reply) = message.reply.clone() else {
                continue;
            };
            let (message, _) = message.split();
            let fresh = {
                let mut state = member.state();
                let Some(lease) = state.leases.get_mut(&shard).filter(|l| l.token == token) else {
                    return;
                };
                // Handed out again by the server after its ack wait while still held here:
                // keep the newest handle, hand it out once.
                lease
                    .outstanding
                    .insert((topic.clone(), sequence), reply)
                    .is_none()
            };
            if fresh {
                let _ = member.tx.send(Pulled {
                    topic: topic.clone(),
                    shard,
                    token,
                    sequence,
                    deliveries,
                    message,
                });
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A member of a consumer group on NATS.
pub(super) struct NatsMember {
    shared: Arc<Shared>,
    task: AbortHandle,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pulled>>,
}

impl std::fmt::Debug for NatsMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsMember")
            .field("broker", &self.shared.inner.broker)
            .field("group", &self.shared.spec.group)
            .field("consumer", &self.shared.spec.consumer)
            .field("shards", &self.shared.held())
            .finish_non_exhaustive()
    }
}

impl Drop for NatsMember {
    fn drop(&mut self) {
        self.task.abort();
        self.shared.state().leases.clear();
    }
}

/// The group's lease bucket, created where it is new; its entries live one lease.
pub(super) async fn bucket(inner: &Inner, group: &str) -> Result<kv::Store, TransportError> {
    let name = names::bucket(&inner.prefix, group);
    match inner.js.get_key_value(&name).await {
        Ok(store) => Ok(store),
        Err(_) => inner
            .js
            .create_key_value(kv::Config {
                bucket: name,
                description: format!("typed-events leases of group {group}"),
                history: 1,
                max_age: inner.lease,
                storage: async_nats::jetstream::stream::StorageType::File,
                ..kv::Config::default()
            })
            .await
            .map_err(inner.err("$JS.API.STREAM.CREATE (lease bucket)")),
    }
}

impl NatsMember {
    pub(super) async fn join(
        inner: Arc<Inner>,
        spec: GroupSpec,
    ) -> Result<NatsMember, TransportError> {
        let topics = group_topics(&inner, &spec).await?;
        for topic in &topics {
            create_start(&inner, &spec.group, topic, spec.start_from).await?;
        }
        let kv = bucket(&inner, &spec.group).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            dynamic_topics: spec.topics(inner.by_context).1,
            inner: Arc::clone(&inner),
            spec,
            kv,
            tx,
            state: Mutex::new(State {
                topics,
                ..State::default()
            }),
        });
        lease::round(&shared).await?;
        inner.register(&shared);
        let task = tokio::spawn(lease::run(Arc::clone(&shared))).abort_handle();
        Ok(NatsMember {
            shared,
            task,
            rx: tokio::sync::Mutex::new(rx),
        })
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Received>, TransportError> {
        let max = max.max(1);
        let deadline = tokio::time::Instant::now() + wait;
        let mut rx = self.rx.lock().await;
        let mut out = Vec::new();
        loop {
            while out.len() < max {
                match rx.try_recv() {
                    Ok(pulled) => self.take(pulled, &mut out).await?,
                    Err(_) => break,
                }
            }
            if !out.is_empty() {
                return Ok(out);
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(pulled)) => self.take(pulled, &mut out).await?,
                Ok(None) | Err(_) => return Ok(out),
            }
        }
    }

    /// A pulled entry: handed out, dead-lettered (not an envelope), acknowledged (a type the
    /// group does not read), or dropped with its lease (no longer held).
    async fn take(&self, pulled: Pulled, out: &mut Vec<Received>) -> Result<(), TransportError> {
        let entry = EntryRef::new(
            &pulled.topic,
            pulled.shard,
            pulled.sequence.to_string(),
            pulled.token,
        );
        if !self.shared.holds_token(pulled.shard, pulled.token) {
            // Not handed out: its shard's next owner (or this member, under a new token)
            // reads it again from the acknowledgement floor, before anything newer.
            self.give_back(&entry);
            return Ok(());
        }
        let envelope = match self.decode(&pulled.message) {
            Ok(envelope) => envelope,
            Err(reason) => {
                super::dead::reject(&self.shared, &entry, &reason, &pulled.message.payload).await?;
                return Ok(());
            }
        };
        if !self.shared.spec.reads(&envelope.event_type) {
            self.ack(&entry).await.or_else(ignore_fenced)?;
            return Ok(());
        }
        out.push(Received {
            deliveries: pulled.deliveries,
            entry,
            envelope,
        });
        Ok(())
    }

    /// The envelope of a message, or why it is not one.
    fn decode(&self, message: &async_nats::Message) -> Result<RawEnvelope, String> {
        let envelope = RawEnvelope::from_json(&message.payload)
            .map_err(|error| format!("the message is not an envelope: {error}"))?;
        if let Some(declared) = message.headers.as_ref().and_then(|h| h.get(TYPE_HEADER))
            && declared.as_str() != envelope.event_type.as_str()
        {
            return Err(format!(
                "the {TYPE_HEADER} header says `{}`, the envelope `{}`",
                declared.as_str(),
                envelope.event_type
            ));
        }
        let size = envelope.payload.get().len();
        if size > self.shared.spec.max_payload_bytes {
            return Err(format!(
                "oversize: the payload has {size} bytes, over the limit of {}",
                self.shared.spec.max_payload_bytes
            ));
        }
        Ok(envelope)
    }

    /// Gives an entry back: forgotten here, and the lease it came under is never renewed
    /// again, so that the shard is taken again under a new token from the floor.
    fn give_back(&self, entry: &EntryRef) {
        self.shared.forget(entry);
        if let Some(lease) = self
            .shared
            .state()
            .leases
            .get_mut(&entry.shard)
            .filter(|l| l.token == entry.token)
        {
            lease.given_up = true;
        }
    }

    async fn ack(&self, entry: &EntryRef) -> Result<(), TransportError> {
        ack(&self.shared, entry).await
    }

    async fn leave(&self) {
        // Entries pulled and not handed out are given back with the leases (the next owner
        // reads them from the floor). Acknowledgements under way go first (at most a
        // lease): a lease released before them would have them refused, and their entries
        // handled again.
        {
            let mut rx = self.rx.lock().await;
            while let Ok(pulled) = rx.try_recv() {
                self.shared.forget(&EntryRef::new(
                    &pulled.topic,
                    pulled.shard,
                    pulled.sequence.to_string(),
                    pulled.token,
                ));
            }
        }
        let deadline = Instant::now() + self.shared.inner.lease;
        while Instant::now() < deadline && self.shared.unsettled() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.task.abort();
        let group = self.shared.spec.group.as_str();
        let leases = std::mem::take(&mut self.shared.state().leases);
        for (shard, lease) in leases {
            let released = self
                .shared
                .kv
                .delete_expect_revision(names::lease_key(shard), Some(lease.revision))
                .await;
            if let Err(error) = released {
                tracing::warn!(group, shard, %error, "could not release a lease on leaving; it runs out");
            }
        }
        if let Err(error) = self
            .shared
            .kv
            .delete(names::member_key(&self.shared.spec.consumer))
            .await
        {
            tracing::warn!(group, %error, "could not leave the members of a group");
        }
        if self.shared.spec.ephemeral {
            self.destroy().await;
        }
    }

    /// Deletes an ephemeral group from the server: its consumers on every topic, and its
    /// lease bucket.
    async fn destroy(&self) {
        let inner = &self.shared.inner;
        let group = self.shared.spec.group.as_str();
        let topics = self.shared.state().topics.clone();
        for topic in topics {
            let Ok(mut stream) = inner.topic_stream(&topic).await else {
                continue;
            };
            let Ok(consumers) = consumer_names(inner, &mut stream).await else {
                continue;
            };
            for (_, shard, token) in consumers.into_iter().filter(|(g, _, _)| g == group) {
                let _ = stream
                    .delete_consumer(&names::consumer(group, shard, token))
                    .await;
            }
        }
        if let Err(error) = inner
            .js
            .delete_key_value(names::bucket(&inner.prefix, group))
            .await
        {
            tracing::warn!(group, %error, "could not delete an ephemeral group's lease bucket");
        }
    }
}

/// Acknowledges an entry under its lease, and waits for the server to confirm it: refused
/// ([`TransportError::Fenced`]) when the lease is gone, or when no consumer answers because
/// a new owner deleted this one's meanwhile.
///
/// A request on the acknowledgement subject rather than the client's `double_ack`, which
/// takes the server's "no responders" status for a confirmation.
pub(super) async fn ack(shared: &Shared, entry: &EntryRef) -> Result<(), TransportError> {
    let inner = &shared.inner;
    let Ok(reply) = shared.settle(entry) else {
        return Err(inner.fenced(entry));
    };
    let Some(reply) = reply else {
        // Acknowledged already.
        return Ok(());
    };
    match inner.client.request(reply, "+ACK".into()).await {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == async_nats::RequestErrorKind::NoResponders => {
            tracing::debug!(topic = %entry.topic, shard = entry.shard, token = entry.token, "acknowledgement refused: the consumer is gone");
            Err(inner.fenced(entry))
        }
        Err(error) => Err(TransportError::Unavailable {
            broker: inner.broker.clone(),
            source: Arc::new(error),
        }),
    }
}

/// Takes `Fenced` as done (the entry's new owner deals with it).
fn ignore_fenced(error: TransportError) -> Result<(), TransportError> {
    match error {
        TransportError::Fenced { .. } => Ok(()),
        other => Err(other),
    }
}

impl Member for NatsMember {
    fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<Received>, TransportError>> {
        Box::pin(NatsMember::receive(self, max, wait))
    }

    fn ack<'a>(&'a self, entry: &'a EntryRef) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(NatsMember::ack(self, entry))
    }

    fn holds(&self, entry: &EntryRef) -> bool {
        self.shared.holds_token(entry.shard, entry.token)
    }

    fn lost(&self, entry: &EntryRef) -> bool {
        let mut state = self.shared.state();
        let Some(lease) = state
            .leases
            .get_mut(&entry.shard)
            .filter(|lease| lease.token == entry.token)
        else {
            return true;
        };
        if lease.renewed.elapsed() >= self.shared.inner.lease {
            // From now on this token is over: the next lease round releases it and takes
            // the shard again under a new one.
            lease.given_up = true;
        }
        lease.given_up
    }

    fn abandon(&self, entry: &EntryRef) {
        self.give_back(entry);
    }

    fn leave(&self) -> BoxFuture<'_, ()> {
        Box::pin(NatsMember::leave(self))
    }
}
