//! What operators ask of the transport: trimming by retention, and introspection.

use super::member::consumer_names;
use super::{Inner, names};
use crate::transport::{
    ConsumerInfo, GroupInfo, Retention, ShardInfo, TopicInfo, TransportError, TransportInfo,
    TrimReport,
};
use async_nats::jetstream::{consumer, stream};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::SystemTime;

/// The current consumer of each (group, shard) on a topic stream: the one of the largest
/// token, with its state.
async fn current_consumers(
    inner: &Inner,
    stream: &mut stream::Stream,
) -> Result<BTreeMap<(String, u32), consumer::Info>, TransportError> {
    let mut latest: BTreeMap<(String, u32), u64> = BTreeMap::new();
    for (group, shard, token) in consumer_names(inner, stream).await? {
        let slot = latest.entry((group, shard)).or_insert(token);
        *slot = (*slot).max(token);
    }
    let mut current = BTreeMap::new();
    for ((group, shard), token) in latest {
        // One deleted by a new owner between the listing and now is left out: its
        // successor is listed next time.
        if let Ok(info) = stream
            .consumer_info(names::consumer(&group, shard, token))
            .await
        {
            current.insert((group, shard), info);
        }
    }
    Ok(current)
}

/// Entries per shard subject of a topic stream.
async fn subject_counts(
    inner: &Inner,
    stream: &stream::Stream,
    topic: &str,
) -> Result<HashMap<String, u64>, TransportError> {
    let filter = format!(
        "{}.{}.*",
        names::escape(&inner.prefix),
        names::escape(topic)
    );
    super::subject_counts(inner, stream, &filter).await
}

/// The first stream sequence of `subject` at or after `cutoff`, by binary search over the
/// stream's sequences (times grow with them); `last + 1` when every entry is older.
async fn first_at_or_after(
    inner: &Inner,
    stream: &stream::Stream,
    subject: &str,
    first: u64,
    last: u64,
    cutoff: SystemTime,
) -> Result<u64, TransportError> {
    let cutoff = chrono::DateTime::<chrono::Utc>::from(cutoff);
    let (mut low, mut high) = (first, last + 1);
    while low < high {
        let mid = low + (high - low) / 2;
        match stream.get_first_raw_message_by_subject(subject, mid).await {
            Ok(message) if message.time >= cutoff => high = mid,
            Ok(message) => low = message.sequence + 1,
            // Nothing of the subject at or after `mid`.
            Err(error) if error.to_string().contains("no message found") => high = mid,
            Err(error) => return Err(inner.err("$JS.API.STREAM.MSG.GET")(error)),
        }
    }
    Ok(low)
}

/// Removes old entries by `retention`, never one that a group has not acknowledged unless
/// forced. Groups of one process (`$`…) never hold entries back.
pub(super) async fn trim(
    inner: &Inner,
    retention: &Retention,
) -> Result<TrimReport, TransportError> {
    let mut report = TrimReport::default();
    let mut held_by = BTreeSet::new();
    let cutoff = retention
        .max_age
        .and_then(|age| SystemTime::now().checked_sub(age));
    for topic in inner.all_topics().await? {
        let mut stream = inner.topic_stream(&topic).await?;
        let current = current_consumers(inner, &mut stream).await?;
        let counts = subject_counts(inner, &stream, &topic).await?;
        let state = stream
            .info()
            .await
            .map_err(inner.err("$JS.API.STREAM.INFO"))?
            .state
            .clone();
        for shard in 0..inner.shards {
            let subject = inner.subject(&topic, shard);
            // What the subject keeps, less what the age cut below removes.
            let mut count = counts.get(&subject).copied().unwrap_or(0);
            if count == 0 {
                continue;
            }
            // Every group has acknowledged what lies below `floor`; `behind` entries of the
            // slowest group lie at or above it.
            let mut floor = u64::MAX;
            let mut behind = 0;
            let mut slowest = Vec::new();
            for ((group, _), info) in current
                .iter()
                .filter(|((g, s), _)| *s == shard && !g.starts_with('$') && !retention.force)
            {
                let group_floor = info.ack_floor.stream_sequence + 1;
                let group_behind =
                    info.num_pending + u64::try_from(info.num_ack_pending).unwrap_or(u64::MAX);
                if group_floor < floor {
                    floor = group_floor;
                    behind = group_behind;
                }
                slowest.push((group.clone(), group_floor, group_behind));
            }
            if let Some(cutoff) = cutoff {
                let cut = first_at_or_after(
                    inner,
                    &stream,
                    &subject,
                    state.first_sequence,
                    state.last_sequence,
                    cutoff,
                )
                .await?;
                for (group, group_floor, _) in &slowest {
                    if *group_floor < cut {
                        held_by.insert(group.clone());
                    }
                }
                let cut = cut.min(floor);
                if cut > state.first_sequence {
                    let purged = purge(inner, &stream, &subject, Cut::Below(cut)).await?;
                    report.removed += purged;
                    count = count.saturating_sub(purged);
                }
            }
            if let Some(max_len) = retention.max_len {
                if count <= max_len {
                    continue;
                }
                for (group, _, group_behind) in &slowest {
                    if *group_behind > max_len {
                        held_by.insert(group.clone());
                    }
                }
                let cut = if behind <= max_len {
                    Cut::Keep(max_len)
                } else {
                    Cut::Below(floor)
                };
                report.removed += purge(inner, &stream, &subject, cut).await?;
            }
        }
    }
    report.held_by = held_by.into_iter().collect();
    Ok(report)
}

/// What a purge of one subject removes.
enum Cut {
    /// Every entry below this sequence.
    Below(u64),
    /// All but the last this many.
    Keep(u64),
}

async fn purge(
    inner: &Inner,
    stream: &stream::Stream,
    subject: &str,
    cut: Cut,
) -> Result<u64, TransportError> {
    let purged = match cut {
        Cut::Below(0 | 1) => return Ok(0),
        Cut::Below(u64::MAX) => stream.purge().filter(subject).await,
        Cut::Below(sequence) => stream.purge().filter(subject).sequence(sequence).await,
        Cut::Keep(keep) => stream.purge().filter(subject).keep(keep).await,
    }
    .map_err(inner.err("$JS.API.STREAM.PURGE"))?;
    Ok(purged.purged)
}

/// Per topic and shard: length, first and last entry; per group: its members, pending
/// entries and lag.
pub(super) async fn info(inner: &Inner) -> Result<TransportInfo, TransportError> {
    let mut topics = Vec::new();
    let mut owners_of: HashMap<String, (Vec<String>, BTreeMap<u32, String>)> = HashMap::new();
    for topic in inner.all_topics().await? {
        let mut stream = inner.topic_stream(&topic).await?;
        let counts = subject_counts(inner, &stream, &topic).await?;
        let mut shards = Vec::new();
        for shard in 0..inner.shards {
            let subject = inner.subject(&topic, shard);
            let length = counts.get(&subject).copied().unwrap_or(0);
            let (mut first, mut last) = (None, None);
            if length > 0 {
                first = stream
                    .get_first_raw_message_by_subject(&subject, 1)
                    .await
                    .ok()
                    .map(|m| m.sequence.to_string());
                last = stream
                    .get_last_raw_message_by_subject(&subject)
                    .await
                    .ok()
                    .map(|m| m.sequence.to_string());
            }
            shards.push(ShardInfo {
                shard,
                length,
                first,
                last,
            });
        }
        let current = current_consumers(inner, &mut stream).await?;
        let mut groups: BTreeMap<String, GroupInfo> = BTreeMap::new();
        let mut pending_by_shard: HashMap<(String, u32), u64> = HashMap::new();
        for ((group, shard), info) in &current {
            let pending = u64::try_from(info.num_ack_pending).unwrap_or(u64::MAX);
            let entry = groups.entry(group.clone()).or_insert_with(|| GroupInfo {
                group: group.clone(),
                lag: Some(0),
                ..GroupInfo::default()
            });
            entry.pending += pending;
            entry.lag = entry.lag.map(|lag| lag + info.num_pending);
            pending_by_shard.insert((group.clone(), *shard), pending);
        }
        for (name, group) in &mut groups {
            if !owners_of.contains_key(name) {
                owners_of.insert(name.clone(), owners(inner, name).await?);
            }
            let (members, leases) = &owners_of[name];
            group.consumers = members
                .iter()
                .map(|member| {
                    let shards: Vec<u32> = leases
                        .iter()
                        .filter(|(_, owner)| *owner == member)
                        .map(|(shard, _)| *shard)
                        .collect();
                    ConsumerInfo {
                        name: member.clone(),
                        pending: shards
                            .iter()
                            .filter_map(|s| pending_by_shard.get(&(name.clone(), *s)))
                            .sum(),
                        shards,
                    }
                })
                .collect();
        }
        let dead_letters = match inner
            .js
            .get_stream(names::dead_stream(&inner.prefix, &topic))
            .await
        {
            Ok(dead) => dead.cached_info().state.messages,
            Err(_) => 0,
        };
        topics.push(TopicInfo {
            topic,
            shards,
            groups: groups.into_values().collect(),
            dead_letters,
        });
    }
    Ok(TransportInfo {
        broker: inner.broker.clone(),
        prefix: inner.prefix.clone(),
        shards: inner.shards,
        topics,
    })
}

/// A group's live members, and who holds each shard's lease.
async fn owners(
    inner: &Inner,
    group: &str,
) -> Result<(Vec<String>, BTreeMap<u32, String>), TransportError> {
    let Ok(kv) = inner
        .js
        .get_key_value(names::bucket(&inner.prefix, group))
        .await
    else {
        return Ok((Vec::new(), BTreeMap::new()));
    };
    let mut leases = BTreeMap::new();
    for shard in 0..inner.shards {
        if let Some(value) = kv
            .get(names::lease_key(shard))
            .await
            .map_err(inner.err("KV GET (lease)"))?
        {
            leases.insert(shard, String::from_utf8_lossy(&value).into_owned());
        }
    }
    let mut members = super::lease::live_members(inner, &kv).await?;
    for owner in leases.values() {
        if !members.contains(owner) {
            members.push(owner.clone());
        }
    }
    members.sort();
    Ok((members, leases))
}
