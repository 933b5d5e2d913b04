//! A member's lease round, every third of the lease: heartbeat, rebalance, renew, release,
//! acquire (taking over the old owner's unacknowledged entries).

use super::member::{Lease, Shared, group_topics};
use super::{Inner, previous_id, scripts};
use crate::transport::TransportError;
use redis::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many rounds between two sweeps for entries stuck with another consumer.
const SWEEP_EVERY: u64 = 5;

pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Runs rounds until aborted (on leave, or when the member is dropped).
pub(super) async fn run(shared: Arc<Shared>) {
    let lease = shared.inner.lease;
    crate::transport::lease_rounds(lease, &shared.spec, || round(&shared)).await;
}

/// One round.
pub(super) async fn round(shared: &Shared) -> Result<(), TransportError> {
    let inner = &shared.inner;
    let group = shared.spec.group.as_str();
    let consumer = shared.spec.consumer.as_str();
    let lease_ms = millis(inner.lease);
    let mut conn = inner.conn();

    if shared.dynamic_topics {
        refresh_topics(shared).await?;
    }

    let started = Instant::now();
    let mut members: Vec<String> = scripts::HEARTBEAT
        .key(inner.members_key(group))
        .arg(consumer)
        .arg(lease_ms)
        .invoke_async(&mut conn)
        .await
        .map_err(inner.err("heartbeat"))?;
    members.sort();
    let index = members.iter().position(|m| m == consumer).unwrap_or(0);
    let count = members.len().max(1);
    let desired: BTreeSet<u32> = (0..inner.shards)
        .filter(|shard| *shard as usize % count == index)
        .collect();

    renew(shared, started).await?;

    // Release what another member should have, once nothing of it is unacknowledged.
    for (shard, token) in shared.held() {
        let release = {
            let mut state = shared.state();
            let Some(lease) = state.leases.get_mut(&shard) else {
                continue;
            };
            lease.releasing = !desired.contains(&shard);
            let idle = lease.outstanding.is_empty() && lease.reading == 0;
            if lease.releasing && idle {
                state.leases.remove(&shard);
                true
            } else {
                false
            }
        };
        if release {
            let _: i64 = scripts::RELEASE
                .key(inner.lease_key(group, shard))
                .arg(shared.value(token))
                .invoke_async(&mut conn)
                .await
                .map_err(inner.err("release"))?;
            tracing::debug!(group, consumer, shard, "released a shard");
        }
    }

    // Acquire what is ours and free.
    let held: HashSet<u32> = shared.held().into_iter().map(|(s, _)| s).collect();
    for shard in desired.into_iter().filter(|s| !held.contains(s)) {
        let acquired_at = Instant::now();
        let token: u64 = scripts::ACQUIRE
            .key(inner.lease_key(group, shard))
            .key(inner.fence_key(group, shard))
            .arg(consumer)
            .arg(lease_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(inner.err("acquire"))?;
        if token == 0 {
            continue;
        }
        let topics = shared.state().topics.clone();
        for topic in &topics {
            claim(inner, group, consumer, &inner.stream_key(topic, shard), 0).await?;
        }
        shared.state().leases.insert(
            shard,
            Lease {
                token,
                renewed: acquired_at,
                releasing: false,
                outstanding: HashSet::new(),
                reading: 0,
                backlog: topics.into_iter().map(|t| (t, "0".to_owned())).collect(),
                given_up: false,
            },
        );
        tracing::debug!(group, consumer, shard, token, "acquired a shard");
    }

    let sweep = {
        let mut state = shared.state();
        state.rounds += 1;
        state.rounds.is_multiple_of(SWEEP_EVERY)
    };
    if sweep {
        sweep_stuck(shared).await?;
    }
    Ok(())
}

/// Renews the leases held; a lease found gone or another's is dropped.
async fn renew(shared: &Shared, started: Instant) -> Result<(), TransportError> {
    let inner = &shared.inner;
    let group = shared.spec.group.as_str();
    let consumer = shared.spec.consumer.as_str();
    let lease_ms = millis(inner.lease);
    let mut conn = inner.conn();
    for (shard, token) in shared.held() {
        if give_up(shared, shard, token) {
            release_given_up(shared, shard, token).await?;
            continue;
        }
        let renewed: i64 = scripts::RENEW
            .key(inner.lease_key(group, shard))
            .arg(shared.value(token))
            .arg(lease_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(inner.err("renew"))?;
        let given_up = {
            let mut state = shared.state();
            if renewed == 1 {
                match state.leases.get_mut(&shard).filter(|l| l.token == token) {
                    // A lane was told meanwhile that the lease ran out: do not go on with it.
                    Some(lease) if lease.given_up => true,
                    Some(lease) => {
                        lease.renewed = started;
                        false
                    }
                    None => false,
                }
            } else {
                if state.leases.get(&shard).is_some_and(|l| l.token == token) {
                    state.leases.remove(&shard);
                    tracing::warn!(group, consumer, shard, token, "lost the lease on a shard");
                }
                false
            }
        };
        if given_up {
            release_given_up(shared, shard, token).await?;
        }
    }
    Ok(())
}

/// Whether the lease of `shard` under `token` ran out, as this process sees it, before its
/// renewal: then it must not be renewed (a lane may already have dropped an entry received
/// under it, and a later one must not be handled before that entry comes back).
fn give_up(shared: &Shared, index: u32, token: u64) -> bool {
    let mut state = shared.state();
    let Some(lease) = state.leases.get_mut(&index).filter(|l| l.token == token) else {
        return false;
    };
    if lease.renewed.elapsed() >= shared.inner.lease {
        lease.given_up = true;
    }
    lease.given_up
}

/// Forgets a given-up lease and releases it on the broker if it is still ours, so that the
/// acquire step takes the shard again under a new token (reading its pending entries again,
/// oldest first) or another member takes it.
async fn release_given_up(shared: &Shared, index: u32, token: u64) -> Result<(), TransportError> {
    let inner = &shared.inner;
    let group = shared.spec.group.as_str();
    shared.state().leases.remove(&index);
    tracing::warn!(
        group,
        consumer = %shared.spec.consumer,
        shard = index,
        token,
        "the lease on a shard ran out before its renewal: taken again under a new token"
    );
    let _: i64 = scripts::RELEASE
        .key(inner.lease_key(group, index))
        .arg(shared.value(token))
        .invoke_async(&mut inner.conn())
        .await
        .map_err(inner.err("release"))?;
    Ok(())
}

/// Picks up topics created since the member joined (their group starts at the beginning:
/// every entry there is newer than the member).
async fn refresh_topics(shared: &Shared) -> Result<(), TransportError> {
    let topics = group_topics(&shared.inner, &shared.spec).await?;
    let known: HashSet<String> = shared.state().topics.iter().cloned().collect();
    for topic in topics.into_iter().filter(|t| !known.contains(t)) {
        shared.inner.check_topic(&topic).await?;
        super::member::create_groups(&shared.inner, &shared.spec.group, &topic, "0").await?;
        shared.state().topics.push(topic);
    }
    Ok(())
}

/// Entries of held shards pending with another consumer for two leases: left behind by a
/// read that finished after its lease ran out. Claimed, and read again from the oldest.
async fn sweep_stuck(shared: &Shared) -> Result<(), TransportError> {
    let inner = &shared.inner;
    let group = shared.spec.group.as_str();
    let min_idle = millis(inner.lease) * 2;
    let topics = shared.state().topics.clone();
    for (shard, token) in shared.held() {
        for topic in &topics {
            let key = inner.stream_key(topic, shard);
            let claimed = claim(inner, group, &shared.spec.consumer, &key, min_idle).await?;
            let mut state = shared.state();
            let Some(lease) = state.leases.get_mut(&shard).filter(|l| l.token == token) else {
                continue;
            };
            let oldest = claimed
                .iter()
                .filter(|id| !lease.outstanding.contains(&(topic.clone(), (*id).clone())))
                .min_by_key(|id| super::parse_id(id));
            if let Some(oldest) = oldest {
                let from = previous_id(oldest);
                let cursor = lease.backlog.entry(topic.clone()).or_insert(from.clone());
                if super::parse_id(&from) < super::parse_id(cursor) {
                    *cursor = from;
                }
            }
        }
    }
    Ok(())
}

/// XAUTOCLAIM of every entry of `key` idle for `min_idle` ms to `consumer`, ids only (the
/// delivery count is left as it is: the next read counts). Returns the ids claimed.
async fn claim(
    inner: &Inner,
    group: &str,
    consumer: &str,
    key: &str,
    min_idle: u64,
) -> Result<Vec<String>, TransportError> {
    let mut conn = inner.conn();
    let mut cursor = "0-0".to_owned();
    let mut claimed = Vec::new();
    loop {
        let reply: Value = redis::cmd("XAUTOCLAIM")
            .arg(key)
            .arg(group)
            .arg(consumer)
            .arg(min_idle)
            .arg(&cursor)
            .arg("COUNT")
            .arg(1000)
            .arg("JUSTID")
            .query_async(&mut conn)
            .await
            .map_err(inner.err("XAUTOCLAIM"))?;
        let Value::Array(mut parts) = reply else {
            break;
        };
        if parts.len() < 2 {
            break;
        }
        let ids = parts.swap_remove(1);
        let next: String = redis::from_redis_value(parts.swap_remove(0)).unwrap_or_default();
        let ids: Vec<String> = redis::from_redis_value(ids).unwrap_or_default();
        claimed.extend(ids);
        if next.is_empty() || next == "0-0" {
            break;
        }
        cursor = next;
    }
    Ok(claimed)
}

/// The backlog cursors after a read that was cancelled midway: its entries are pending
/// with this member, so read them again from the start.
pub(super) fn reread(backlog: &mut HashMap<String, String>, topic: &str) {
    backlog.insert(topic.to_owned(), "0".to_owned());
}
