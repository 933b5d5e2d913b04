//! Retention (`trim`) and the state report (`info`).

use super::reply::entries;
use super::{Inner, next_id, parse_id};
use crate::transport::{
    ConsumerInfo, GroupInfo, Retention, ShardInfo, TopicInfo, TransportError, TransportInfo,
    TrimReport,
};
use redis::Value;
use redis::streams::{StreamInfoConsumersReply, StreamInfoGroupsReply, StreamPendingReply};
use std::collections::{BTreeMap, BTreeSet};

/// The first and last entry ids of a stream.
async fn ends(
    inner: &Inner,
    key: &str,
) -> Result<(Option<String>, Option<String>), TransportError> {
    let mut conn = inner.conn();
    let (first, last): (Value, Value) = redis::pipe()
        .cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .cmd("XREVRANGE")
        .arg(key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut conn)
        .await
        .map_err(inner.err("XRANGE"))?;
    let id = |value| entries(value).into_iter().next().map(|e| e.id);
    Ok((id(first), id(last)))
}

async fn groups(inner: &Inner, key: &str) -> Result<StreamInfoGroupsReply, TransportError> {
    redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(key)
        .query_async(&mut inner.conn())
        .await
        .map_err(inner.err("XINFO GROUPS"))
}

/// The first entry a group still needs: its oldest pending one, or the first it has not
/// read yet.
async fn needed_from(
    inner: &Inner,
    key: &str,
    group: &str,
    last_delivered: &str,
) -> Result<String, TransportError> {
    let pending: StreamPendingReply = redis::cmd("XPENDING")
        .arg(key)
        .arg(group)
        .query_async(&mut inner.conn())
        .await
        .map_err(inner.err("XPENDING"))?;
    let unread = next_id(last_delivered);
    Ok(match pending {
        StreamPendingReply::Data(data) if parse_id(&data.start_id) < parse_id(&unread) => {
            data.start_id
        }
        _ => unread,
    })
}

pub(super) async fn trim(
    inner: &Inner,
    retention: &Retention,
) -> Result<TrimReport, TransportError> {
    let mut report = TrimReport::default();
    if retention.max_len.is_none() && retention.max_age.is_none() {
        return Ok(report);
    }
    let mut conn = inner.conn();
    let (seconds, micros): (u64, u64) = redis::cmd("TIME")
        .query_async(&mut conn)
        .await
        .map_err(inner.err("TIME"))?;
    let now_ms = seconds * 1000 + micros / 1000;
    let mut held_by = BTreeSet::new();
    for topic in inner.all_topics().await? {
        for shard in 0..inner.shards {
            let key = inner.stream_key(&topic, shard);
            let (Some(first), Some(last)) = ends(inner, &key).await? else {
                continue;
            };
            // The first entry to keep.
            let mut target: Option<String> = None;
            if let Some(max_len) = retention.max_len {
                let from = if max_len == 0 {
                    Some(next_id(&last))
                } else {
                    let newest: Value = redis::cmd("XREVRANGE")
                        .arg(&key)
                        .arg("+")
                        .arg("-")
                        .arg("COUNT")
                        .arg(max_len)
                        .query_async(&mut conn)
                        .await
                        .map_err(inner.err("XREVRANGE"))?;
                    let newest = entries(newest);
                    (newest.len() as u64 >= max_len)
                        .then(|| newest.last().map(|e| e.id.clone()))
                        .flatten()
                };
                target = from;
            }
            if let Some(max_age) = retention.max_age {
                let age = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
                let from = format!("{}-0", now_ms.saturating_sub(age));
                if target
                    .as_ref()
                    .is_none_or(|t| parse_id(&from) > parse_id(t))
                {
                    target = Some(from);
                }
            }
            let Some(mut target) = target else {
                continue;
            };
            if parse_id(&target) <= parse_id(&first) {
                continue;
            }
            if !retention.force {
                // The bus's own ephemeral groups (`wait_for`) hold nothing back.
                for group in groups(inner, &key)
                    .await?
                    .groups
                    .into_iter()
                    .filter(|group| !group.name.starts_with('$'))
                {
                    let needed =
                        needed_from(inner, &key, &group.name, &group.last_delivered_id).await?;
                    if parse_id(&needed) < parse_id(&target) {
                        target = needed;
                        held_by.insert(group.name);
                    }
                }
                if parse_id(&target) <= parse_id(&first) {
                    continue;
                }
            }
            let removed: u64 = redis::cmd("XTRIM")
                .arg(&key)
                .arg("MINID")
                .arg(&target)
                .query_async(&mut conn)
                .await
                .map_err(inner.err("XTRIM"))?;
            report.removed += removed;
        }
    }
    report.held_by = held_by.into_iter().collect();
    Ok(report)
}

/// Per group over a topic's shards.
#[derive(Default)]
struct GroupTotals {
    pending: u64,
    /// `None` once a shard could not tell.
    lag: Option<u64>,
    consumers: BTreeMap<String, ConsumerInfo>,
}

/// Adds the groups of one shard stream to the topic's totals.
async fn add_groups(
    inner: &Inner,
    key: &str,
    totals: &mut BTreeMap<String, GroupTotals>,
) -> Result<(), TransportError> {
    let mut conn = inner.conn();
    for group in groups(inner, key).await?.groups {
        let totals = totals
            .entry(group.name.clone())
            .or_insert_with(|| GroupTotals {
                lag: Some(0),
                ..GroupTotals::default()
            });
        totals.pending += group.pending as u64;
        totals.lag = totals.lag.zip(group.lag).map(|(sum, lag)| sum + lag as u64);
        let consumers: StreamInfoConsumersReply = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(key)
            .arg(&group.name)
            .query_async(&mut conn)
            .await
            .map_err(inner.err("XINFO CONSUMERS"))?;
        for consumer in consumers.consumers {
            let info = totals
                .consumers
                .entry(consumer.name.clone())
                .or_insert_with(|| ConsumerInfo {
                    name: consumer.name.clone(),
                    ..ConsumerInfo::default()
                });
            info.pending += consumer.pending as u64;
        }
    }
    Ok(())
}

pub(super) async fn info(inner: &Inner) -> Result<TransportInfo, TransportError> {
    let mut conn = inner.conn();
    let mut topics = Vec::new();
    for topic in inner.all_topics().await? {
        let mut shards = Vec::new();
        let mut totals: BTreeMap<String, GroupTotals> = BTreeMap::new();
        for shard in 0..inner.shards {
            let key = inner.stream_key(&topic, shard);
            let length: u64 = redis::cmd("XLEN")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .map_err(inner.err("XLEN"))?;
            let (first, last) = ends(inner, &key).await?;
            shards.push(ShardInfo {
                shard,
                length,
                first,
                last,
            });
            let exists: bool = redis::cmd("EXISTS")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .map_err(inner.err("EXISTS"))?;
            if !exists {
                continue;
            }
            add_groups(inner, &key, &mut totals).await?;
        }
        let mut groups = Vec::new();
        for (name, mut totals) in totals {
            let live: BTreeSet<String> = redis::cmd("ZRANGE")
                .arg(inner.members_key(&name))
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .map_err(inner.err("ZRANGE"))?;
            for shard in 0..inner.shards {
                let holder: Option<String> = redis::cmd("GET")
                    .arg(inner.lease_key(&name, shard))
                    .query_async(&mut conn)
                    .await
                    .map_err(inner.err("GET"))?;
                let Some(holder) = holder else { continue };
                let consumer = holder.rsplit_once('|').map_or(holder.as_str(), |(c, _)| c);
                totals
                    .consumers
                    .entry(consumer.to_owned())
                    .or_insert_with(|| ConsumerInfo {
                        name: consumer.to_owned(),
                        ..ConsumerInfo::default()
                    })
                    .shards
                    .push(shard);
            }
            for member in &live {
                totals
                    .consumers
                    .entry(member.clone())
                    .or_insert_with(|| ConsumerInfo {
                        name: member.clone(),
                        ..ConsumerInfo::default()
                    });
            }
            groups.push(GroupInfo {
                group: name,
                consumers: totals
                    .consumers
                    .into_values()
                    .filter(|c| c.pending > 0 || !c.shards.is_empty() || live.contains(&c.name))
                    .collect(),
                pending: totals.pending,
                lag: totals.lag,
            });
        }
        let dead_letters: u64 = redis::cmd("XLEN")
            .arg(inner.dead_key(&topic))
            .query_async(&mut conn)
            .await
            .map_err(inner.err("XLEN"))?;
        topics.push(TopicInfo {
            topic,
            shards,
            groups,
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
