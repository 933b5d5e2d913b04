//! A member of a consumer group: its leases, its reads (on a connection of its own, since a
//! blocking XREADGROUP would stall every other command on a shared one), its fenced acks.

use super::acks::Acks;
use super::reply::{self, Entry};
use super::{Inner, lease, map_error, scripts};
use crate::envelope::RawEnvelope;
use crate::transport::{
    EntryRef, GroupSpec, Member, Received, StartFrom, TransportError, reconnect_delay,
};
use futures_util::future::BoxFuture;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::task::AbortHandle;

/// What a member and its lease task share.
pub(super) struct Shared {
    pub(super) inner: Arc<Inner>,
    pub(super) spec: GroupSpec,
    /// Whether the topics read can grow (every topic, by context).
    pub(super) dynamic_topics: bool,
    state: Mutex<State>,
}

#[derive(Default)]
pub(super) struct State {
    /// The topics read, their group created.
    pub(super) topics: Vec<String>,
    /// The leases held, by shard.
    pub(super) leases: BTreeMap<u32, Lease>,
    /// Lease rounds run.
    pub(super) rounds: u64,
}

/// A lease held on a shard.
pub(super) struct Lease {
    pub(super) token: u64,
    /// When the last successful renewal (or the acquisition) was sent.
    pub(super) renewed: Instant,
    /// Another member should have it: read no more, release once nothing is unacknowledged.
    pub(super) releasing: bool,
    /// Entries handed out (or buffered) and not acknowledged: (topic, id).
    pub(super) outstanding: HashSet<(String, String)>,
    /// Reads in flight on it.
    pub(super) reading: usize,
    /// Topics whose pending entries are still to be read again, after this id.
    pub(super) backlog: HashMap<String, String>,
    /// A lane was told the lease is lost (it ran out before its renewal, as far as this
    /// process can tell): it is never renewed under this token, but released and taken
    /// again under a new one, so that what was received under it is read again in order.
    pub(super) given_up: bool,
}

impl Shared {
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of a lease key of ours.
    pub(super) fn value(&self, token: u64) -> String {
        format!("{}|{token}", self.spec.consumer)
    }

    /// Shards held, with their tokens.
    pub(super) fn held(&self) -> Vec<(u32, u64)> {
        self.state()
            .leases
            .iter()
            .map(|(shard, lease)| (*shard, lease.token))
            .collect()
    }

    /// An entry acknowledged (here or by a dead letter).
    /// Whether entries received under a lease held are still unacknowledged.
    fn unsettled(&self) -> bool {
        self.state()
            .leases
            .values()
            .any(|lease| !lease.outstanding.is_empty())
    }

    pub(super) fn settled(&self, entry: &EntryRef) {
        if let Some(lease) = self
            .state()
            .leases
            .get_mut(&entry.shard)
            .filter(|l| l.token == entry.token)
        {
            lease
                .outstanding
                .remove(&(entry.topic.clone(), entry.id.clone()));
        }
    }

    fn holds_token(&self, shard: u32, token: u64) -> bool {
        let margin = self.inner.lease / 3;
        self.state().leases.get(&shard).is_some_and(|lease| {
            lease.token == token
                && !lease.given_up
                && lease.renewed.elapsed() + margin < self.inner.lease
        })
    }

    /// The streams to read (every topic) of the shards held, not being released and not
    /// about to run out (as
    /// [`holds_token`](Self::holds_token) counts), each with how long its lease still
    /// holds. A read blocks no longer than that: a blocked `XREADGROUP` waits on the
    /// server even while this process is paused, and must not take entries for it after
    /// its lease ran out and another member took the shard.
    fn plan(&self) -> Vec<Stream> {
        let margin = self.inner.lease / 3;
        let state = self.state();
        let mut plan = Vec::new();
        for (shard, lease) in state
            .leases
            .iter()
            .filter(|(_, l)| !l.releasing && !l.given_up)
        {
            let Some(valid_for) = self
                .inner
                .lease
                .checked_sub(lease.renewed.elapsed() + margin)
                .filter(|left| !left.is_zero())
            else {
                continue;
            };
            for topic in &state.topics {
                plan.push(Stream {
                    key: self.inner.stream_key(topic, *shard),
                    topic: topic.clone(),
                    shard: *shard,
                    token: lease.token,
                    cursor: lease.backlog.get(topic).cloned(),
                    valid_for,
                });
            }
        }
        plan
    }
}

/// A stream a read covers.
struct Stream {
    key: String,
    topic: String,
    shard: u32,
    token: u64,
    /// Pending entries to read again, after this id; `None` to read new ones.
    cursor: Option<String>,
    /// How long its lease still holds, less the margin.
    valid_for: Duration,
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

/// Creates the group on every shard stream of a topic, at `start` where it is new.
pub(super) async fn create_groups(
    inner: &Inner,
    group: &str,
    topic: &str,
    start: &str,
) -> Result<(), TransportError> {
    let mut invocation = scripts::CREATE_GROUPS.prepare_invoke();
    for shard in 0..inner.shards {
        invocation.key(inner.stream_key(topic, shard));
    }
    invocation.arg(group).arg(start);
    let _: i64 = invocation
        .invoke_async(&mut inner.conn())
        .await
        .map_err(inner.err("XGROUP CREATE"))?;
    Ok(())
}

/// A read on the member's connection within `limit`: an error or a timeout marks the
/// connection lost (opened again with backoff).
async fn bounded(
    reader: &mut Reader,
    broker: &str,
    what: &'static str,
    limit: Duration,
    read: impl Future<Output = redis::RedisResult<Value>>,
) -> Result<Value, TransportError> {
    match tokio::time::timeout(limit, read).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(error)) => {
            let error = map_error(broker, what, &error);
            if error.is_unavailable() {
                reader.lost(error.clone());
            }
            Err(error)
        }
        Err(elapsed) => {
            let error = TransportError::Unavailable {
                broker: broker.to_owned(),
                source: Arc::new(elapsed),
            };
            reader.lost(error.clone());
            Err(error)
        }
    }
}

/// The dedicated connection of a member's reads, reconnecting with backoff.
#[derive(Default)]
struct Reader {
    conn: Option<MultiplexedConnection>,
    attempt: u32,
    retry_at: Option<Instant>,
    last_error: Option<TransportError>,
    /// Entries read beyond the `max` of a receive, for the next.
    buffer: VecDeque<Received>,
}

impl Reader {
    async fn connection(
        &mut self,
        inner: &Inner,
        deadline: Instant,
    ) -> Result<MultiplexedConnection, TransportError> {
        if let Some(conn) = &self.conn {
            return Ok(conn.clone());
        }
        if let Some(at) = self.retry_at {
            tokio::time::sleep_until(at.min(deadline).into()).await;
            if Instant::now() < at
                && let Some(error) = &self.last_error
            {
                return Err(error.clone());
            }
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(None);
        match inner
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(conn) => {
                self.conn = Some(conn.clone());
                self.attempt = 0;
                self.retry_at = None;
                self.last_error = None;
                Ok(conn)
            }
            Err(error) => {
                let error = map_error(&inner.broker, "connect", &error);
                self.lost(error.clone());
                Err(error)
            }
        }
    }

    fn lost(&mut self, error: TransportError) {
        self.conn = None;
        self.retry_at =
            Some(Instant::now() + reconnect_delay(self.attempt, Duration::from_secs(2)));
        self.attempt = self.attempt.saturating_add(1);
        self.last_error = Some(error);
    }
}

/// Counts a read in flight on its shards (they are not released meanwhile); a read
/// cancelled midway leaves its entries pending with this member, to be read again.
struct ReadGuard<'a> {
    shared: &'a Shared,
    streams: Vec<(u32, u64, String)>,
    done: bool,
}

impl<'a> ReadGuard<'a> {
    fn new(shared: &'a Shared, streams: &[&Stream]) -> Self {
        let streams: Vec<(u32, u64, String)> = streams
            .iter()
            .map(|s| (s.shard, s.token, s.topic.clone()))
            .collect();
        let mut state = shared.state();
        let shards: BTreeSet<(u32, u64)> = streams.iter().map(|(s, t, _)| (*s, *t)).collect();
        for (shard, token) in shards {
            if let Some(lease) = state.leases.get_mut(&shard).filter(|l| l.token == token) {
                lease.reading += 1;
            }
        }
        drop(state);
        ReadGuard {
            shared,
            streams,
            done: false,
        }
    }
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        let shards: BTreeSet<(u32, u64)> = self.streams.iter().map(|(s, t, _)| (*s, *t)).collect();
        for (shard, token) in shards {
            if let Some(lease) = state.leases.get_mut(&shard).filter(|l| l.token == token) {
                lease.reading = lease.reading.saturating_sub(1);
            }
        }
        if !self.done {
            for (shard, token, topic) in &self.streams {
                if let Some(lease) = state.leases.get_mut(shard).filter(|l| l.token == *token) {
                    lease::reread(&mut lease.backlog, topic);
                }
            }
        }
    }
}

/// A member of a consumer group on Redis.
pub(super) struct RedisMember {
    shared: Arc<Shared>,
    task: AbortHandle,
    reader: tokio::sync::Mutex<Reader>,
    acks: Acks,
}

impl std::fmt::Debug for RedisMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisMember")
            .field("broker", &self.shared.inner.broker)
            .field("group", &self.shared.spec.group)
            .field("consumer", &self.shared.spec.consumer)
            .field("shards", &self.shared.held())
            .finish_non_exhaustive()
    }
}

impl Drop for RedisMember {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RedisMember {
    pub(super) async fn join(
        inner: Arc<Inner>,
        spec: GroupSpec,
    ) -> Result<RedisMember, TransportError> {
        let topics = group_topics(&inner, &spec).await?;
        let start = match spec.start_from {
            StartFrom::Beginning => "0".to_owned(),
            StartFrom::Now => "$".to_owned(),
            StartFrom::At(time) => {
                let ms = time
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |since| {
                        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
                    });
                // Everything after the last possible entry of the millisecond before.
                format!("{}-{}", ms.saturating_sub(1), u64::MAX)
            }
        };
        for topic in &topics {
            inner.check_topic(topic).await?;
            create_groups(&inner, &spec.group, topic, &start).await?;
        }
        let shared = Arc::new(Shared {
            dynamic_topics: spec.topics(inner.by_context).1,
            inner: Arc::clone(&inner),
            spec,
            state: Mutex::new(State {
                topics,
                ..State::default()
            }),
        });
        lease::round(&shared).await?;
        inner.register(&shared);
        let task = tokio::spawn(lease::run(Arc::clone(&shared))).abort_handle();
        Ok(RedisMember {
            shared,
            task,
            reader: tokio::sync::Mutex::new(Reader::default()),
            acks: Acks::default(),
        })
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Received>, TransportError> {
        let max = max.max(1);
        let deadline = Instant::now() + wait;
        let mut reader = self.reader.lock().await;
        loop {
            let mut out = Vec::new();
            while out.len() < max
                && let Some(received) = reader.buffer.pop_front()
            {
                if self
                    .shared
                    .holds_token(received.entry.shard, received.entry.token)
                {
                    out.push(received);
                }
            }
            if !out.is_empty() {
                return Ok(out);
            }
            let plan = self.shared.plan();
            if plan.is_empty() {
                tokio::time::sleep_until(deadline.into()).await;
                return Ok(out);
            }
            let mut conn = reader.connection(&self.shared.inner, deadline).await?;
            let backlog: Vec<&Stream> = plan.iter().filter(|s| s.cursor.is_some()).collect();
            let replaying = !backlog.is_empty();
            let streams: Vec<&Stream> = if replaying {
                backlog
            } else {
                plan.iter().collect()
            };
            let remaining = streams.iter().map(|stream| stream.valid_for).fold(
                deadline.saturating_duration_since(Instant::now()),
                Duration::min,
            );
            // Read under the leases, atomically: a member whose lease ran out takes nothing.
            let group = self.shared.spec.group.as_str();
            let mut read = scripts::READ.prepare_invoke();
            read.arg(group).arg(&self.shared.spec.consumer).arg(max);
            for stream in &streams {
                read.key(self.shared.inner.lease_key(group, stream.shard))
                    .key(&stream.key)
                    .arg(self.shared.value(stream.token))
                    .arg(stream.cursor.as_deref().unwrap_or(">"));
            }
            let mut guard = ReadGuard::new(&self.shared, &streams);
            let reply = bounded(
                &mut reader,
                &self.shared.inner.broker,
                "XREADGROUP",
                Duration::from_secs(5),
                read.invoke_async::<Value>(&mut conn),
            )
            .await?;
            let reply::FencedRead { read, last } = reply::fenced_read(reply);
            let mut received = Vec::new();
            let mut replies: HashMap<String, Vec<Entry>> = read.into_iter().collect();
            for stream in &streams {
                let entries = replies.remove(&stream.key).unwrap_or_default();
                self.take(stream, entries, replaying, &mut received).await?;
            }
            guard.done = true;
            drop(guard);
            let rest = received.split_off(received.len().min(max));
            reader.buffer.extend(rest);
            if !received.is_empty() || Instant::now() >= deadline {
                return Ok(received);
            }
            // Nothing new: wait for an entry after the last of each stream, with `XREAD`,
            // which takes nothing (a blocked `XREADGROUP` would take an entry even for a
            // member paused past its lease meanwhile). Then read again under the leases.
            if !replaying && !last.is_empty() && remaining >= Duration::from_millis(1) {
                let mut wait = redis::cmd("XREAD");
                wait.arg("BLOCK")
                    .arg(lease::millis(remaining))
                    .arg("STREAMS");
                let (keys, ids): (Vec<String>, Vec<String>) = last.into_iter().unzip();
                wait.arg(keys).arg(ids);
                bounded(
                    &mut reader,
                    &self.shared.inner.broker,
                    "XREAD",
                    remaining + Duration::from_secs(5),
                    wait.query_async::<Value>(&mut conn),
                )
                .await?;
            }
        }
    }

    /// The entries read from one stream: handed out, dead-lettered (not an envelope), or
    /// acknowledged (a type the group does not read, or deleted while pending).
    async fn take(
        &self,
        stream: &Stream,
        entries: Vec<Entry>,
        replaying: bool,
        out: &mut Vec<Received>,
    ) -> Result<(), TransportError> {
        if replaying {
            let mut state = self.shared.state();
            if let Some(lease) = state
                .leases
                .get_mut(&stream.shard)
                .filter(|l| l.token == stream.token)
            {
                match entries.last() {
                    Some(last) => lease.backlog.insert(stream.topic.clone(), last.id.clone()),
                    None => lease.backlog.remove(&stream.topic),
                };
            }
        }
        if entries.is_empty() {
            return Ok(());
        }
        let deliveries = if replaying {
            self.deliveries(stream, &entries).await?
        } else {
            HashMap::new()
        };
        for entry in entries {
            let reference = EntryRef::new(&stream.topic, stream.shard, &entry.id, stream.token);
            if entry.fields.is_none() {
                self.fenced_ack(&reference).await?;
                continue;
            }
            let envelope = match self.decode(&entry) {
                Ok(envelope) => envelope,
                Err(reason) => {
                    self.reject(stream, &entry, &reason).await?;
                    continue;
                }
            };
            if !self.shared.spec.reads(&envelope.event_type) {
                self.fenced_ack(&reference).await?;
                continue;
            }
            if let Some(lease) = self
                .shared
                .state()
                .leases
                .get_mut(&stream.shard)
                .filter(|l| l.token == stream.token)
            {
                lease
                    .outstanding
                    .insert((stream.topic.clone(), entry.id.clone()));
            }
            out.push(Received {
                deliveries: deliveries.get(&entry.id).copied().unwrap_or(1),
                entry: reference,
                envelope,
            });
        }
        Ok(())
    }

    /// The envelope of an entry, or why it is not one.
    fn decode(&self, entry: &Entry) -> Result<RawEnvelope, String> {
        let Some(bytes) = entry.field("envelope") else {
            return Err("the entry has no `envelope` field".to_owned());
        };
        let envelope = RawEnvelope::from_json(bytes)
            .map_err(|error| format!("the `envelope` field is not an envelope: {error}"))?;
        let size = envelope.payload.get().len();
        if size > self.shared.spec.max_payload_bytes {
            return Err(format!(
                "oversize: the payload has {size} bytes, over the limit of {}",
                self.shared.spec.max_payload_bytes
            ));
        }
        Ok(envelope)
    }

    /// Dead-letters an entry that is not an envelope, with the reason and its bytes, and
    /// acknowledges it, under this member's lease.
    async fn reject(
        &self,
        stream: &Stream,
        entry: &Entry,
        reason: &str,
    ) -> Result<(), TransportError> {
        let inner = &self.shared.inner;
        let group = self.shared.spec.group.as_str();
        tracing::error!(
            broker = %inner.broker,
            stream = %stream.key,
            entry = %entry.id,
            group,
            reason,
            "not an envelope: dead-lettered"
        );
        let raw = entry.field("envelope").map_or_else(
            || {
                let fields: serde_json::Map<String, serde_json::Value> = entry
                    .fields
                    .iter()
                    .flatten()
                    .map(|(k, v)| {
                        (
                            String::from_utf8_lossy(k).into_owned(),
                            String::from_utf8_lossy(v).into_owned().into(),
                        )
                    })
                    .collect();
                serde_json::Value::Object(fields).to_string().into_bytes()
            },
            <[u8]>::to_vec,
        );
        let written: i64 = scripts::DEAD_LETTER
            .key(inner.lease_key(group, stream.shard))
            .key(inner.dead_key(&stream.topic))
            .key(&stream.key)
            .arg(format!("|{}", stream.token))
            .arg(group)
            .arg(&entry.id)
            .arg("group")
            .arg(group)
            .arg("error")
            .arg(reason)
            .arg("raw")
            .arg(raw)
            .arg("entry")
            .arg(&entry.id)
            .invoke_async(&mut inner.conn())
            .await
            .map_err(inner.err("dead letter"))?;
        if written < 0 {
            tracing::warn!(stream = %stream.key, entry = %entry.id, "lease lost before dead-lettering an entry; its new owner will");
        }
        Ok(())
    }

    /// How many times each entry of a replay was handed out.
    async fn deliveries(
        &self,
        stream: &Stream,
        entries: &[Entry],
    ) -> Result<HashMap<String, u64>, TransportError> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(HashMap::new());
        };
        let inner = &self.shared.inner;
        let pending: Value = redis::cmd("XPENDING")
            .arg(&stream.key)
            .arg(&self.shared.spec.group)
            .arg(&first.id)
            .arg(&last.id)
            .arg(entries.len())
            .arg(&self.shared.spec.consumer)
            .query_async(&mut inner.conn())
            .await
            .map_err(inner.err("XPENDING"))?;
        let rows: Vec<(String, String, u64, u64)> =
            redis::from_redis_value(pending).unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(|(id, _, _, count)| (id, count))
            .collect())
    }

    async fn fenced_ack(&self, entry: &EntryRef) -> Result<bool, TransportError> {
        let inner = &self.shared.inner;
        let group = self.shared.spec.group.as_str();
        let acked: i64 = scripts::ACK
            .key(inner.lease_key(group, entry.shard))
            .key(inner.stream_key(&entry.topic, entry.shard))
            .arg(self.shared.value(entry.token))
            .arg(group)
            .arg(&entry.id)
            .invoke_async(&mut inner.conn())
            .await
            .map_err(inner.err("XACK"))?;
        Ok(acked >= 0)
    }

    async fn ack(&self, entry: &EntryRef) -> Result<(), TransportError> {
        let ours = self.acks.ack(&self.shared, entry).await?;
        if ours {
            Ok(())
        } else {
            Err(TransportError::Fenced {
                broker: self.shared.inner.broker.clone(),
                topic: entry.topic.clone(),
                shard: entry.shard,
                token: entry.token,
            })
        }
    }

    async fn leave(&self) {
        // Entries read ahead and not handed out stay pending here: the next owner claims
        // them. Acknowledgements still under way go first (at most a lease): a lease
        // released before them would have them refused, and their entries handled again.
        let buffered = std::mem::take(&mut self.reader.lock().await.buffer);
        for received in &buffered {
            self.shared.settled(&received.entry);
        }
        let deadline = Instant::now() + self.shared.inner.lease;
        while Instant::now() < deadline && self.shared.unsettled() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.task.abort();
        let inner = &self.shared.inner;
        let group = self.shared.spec.group.as_str();
        let leases = std::mem::take(&mut self.shared.state().leases);
        let mut conn = inner.conn();
        for (shard, lease) in leases {
            let released: Result<i64, _> = scripts::RELEASE
                .key(inner.lease_key(group, shard))
                .arg(self.shared.value(lease.token))
                .invoke_async(&mut conn)
                .await;
            if let Err(error) = released {
                tracing::warn!(group, shard, %error, "could not release a lease on leaving; it runs out");
            }
        }
        let removed: Result<i64, _> = redis::cmd("ZREM")
            .arg(inner.members_key(group))
            .arg(&self.shared.spec.consumer)
            .query_async(&mut conn)
            .await;
        if let Err(error) = removed {
            tracing::warn!(group, %error, "could not leave the members of a group");
        }
        if self.shared.spec.ephemeral {
            self.destroy().await;
        }
    }

    /// Deletes an ephemeral group from the broker: the group on every shard stream of its
    /// topics, and its members, leases and fences.
    async fn destroy(&self) {
        let inner = &self.shared.inner;
        let group = self.shared.spec.group.as_str();
        let topics = match group_topics(inner, &self.shared.spec).await {
            Ok(topics) => topics,
            Err(error) => {
                tracing::warn!(group, %error, "could not delete an ephemeral group");
                return;
            }
        };
        let mut pipe = redis::pipe();
        for topic in &topics {
            for shard in 0..inner.shards {
                pipe.cmd("XGROUP")
                    .arg("DESTROY")
                    .arg(inner.stream_key(topic, shard))
                    .arg(group)
                    .ignore();
            }
        }
        pipe.del(inner.members_key(group)).ignore();
        for shard in 0..inner.shards {
            pipe.del(inner.lease_key(group, shard))
                .ignore()
                .del(inner.fence_key(group, shard))
                .ignore();
        }
        let deleted: Result<(), _> = pipe.query_async(&mut inner.conn()).await;
        if let Err(error) = deleted {
            tracing::warn!(group, %error, "could not delete an ephemeral group");
        }
    }
}

impl Member for RedisMember {
    fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<Received>, TransportError>> {
        Box::pin(RedisMember::receive(self, max, wait))
    }

    fn ack<'a>(&'a self, entry: &'a EntryRef) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(RedisMember::ack(self, entry))
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
            // the shard again under a new one (see `lease::renew`).
            lease.given_up = true;
        }
        lease.given_up
    }

    fn abandon(&self, entry: &EntryRef) {
        let mut state = self.shared.state();
        let Some(lease) = state
            .leases
            .get_mut(&entry.shard)
            .filter(|l| l.token == entry.token)
        else {
            return;
        };
        lease
            .outstanding
            .remove(&(entry.topic.clone(), entry.id.clone()));
        // Read the shard's pending entries again from just before this one.
        let from = super::previous_id(&entry.id);
        let cursor = lease
            .backlog
            .entry(entry.topic.clone())
            .or_insert(from.clone());
        if super::parse_id(&from) < super::parse_id(cursor) {
            *cursor = from;
        }
    }

    fn leave(&self) -> BoxFuture<'_, ()> {
        Box::pin(RedisMember::leave(self))
    }
}
