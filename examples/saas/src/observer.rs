//! What the orchestrator sees of the broker through `bus.transport_info()`: which member
//! of each consumer group holds which shards.

use crate::backend::SHARDS;
use crate::error::Error;
use crate::log::Log;
use event_core::EventBus;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Per consumer group (with its topic), the shards each member holds a lease on.
pub type Owners = BTreeMap<String, BTreeMap<String, Vec<u32>>>;

/// The shard owners now, for the worker groups (not the `$wait:` listeners of `wait_for`).
///
/// # Errors
///
/// [`Error::Transport`] when the broker cannot be reached; [`Error::Failed`] on a bus
/// without a transport.
pub async fn owners(bus: &EventBus) -> Result<Owners, Error> {
    let info = bus
        .transport_info()
        .await?
        .ok_or_else(|| Error::Failed("shard owners asked of a bus without a transport".into()))?;
    let mut owners = Owners::new();
    for topic in &info.topics {
        for group in topic.groups.iter().filter(|g| !g.group.starts_with('$')) {
            let members = owners
                .entry(format!("{} ({})", group.group, topic.topic))
                .or_default();
            for consumer in &group.consumers {
                if !consumer.shards.is_empty() {
                    members
                        .entry(consumer.name.clone())
                        .or_default()
                        .extend(&consumer.shards);
                }
            }
        }
    }
    Ok(owners)
}

/// Prints one line per group: `notifier (notification)  w1 [0 3 6]  w2 [1 4]  w3 [2 5 7]`.
pub fn print(log: &Log, owners: &Owners) {
    for (group, members) in owners {
        let members: Vec<String> = members
            .iter()
            .map(|(name, shards)| {
                let shards: Vec<String> = shards.iter().map(u32::to_string).collect();
                format!("{name} [{}]", shards.join(" "))
            })
            .collect();
        log.line(format_args!("  {group:<30} {}", members.join("  ")));
    }
}

/// Waits until each of `groups` has every shard owned, each of `members` holding at least
/// its fair share: the workers have joined and balanced.
///
/// # Errors
///
/// [`Error::Failed`] when that does not happen within `timeout`; [`Error::Transport`].
pub async fn wait_until_balanced(
    bus: &EventBus,
    groups: &[&str],
    members: &[&str],
    timeout: Duration,
) -> Result<Owners, Error> {
    let fair = SHARDS as usize / members.len().max(1);
    wait_until(bus, timeout, |owners| {
        groups.len() == owners.len()
            && owners.values().all(|held| {
                all_owned(held)
                    && members
                        .iter()
                        .all(|m| held.get(*m).is_some_and(|s| s.len() >= fair))
            })
    })
    .await
    .map_err(|last| {
        Error::Failed(format!(
            "the workers did not balance their shards within {timeout:?}: {last:?}"
        ))
    })
}

/// Waits until `member` holds no shard and every shard is owned again: its shards passed to
/// the others. Returns the owners then.
///
/// # Errors
///
/// [`Error::Failed`] when that does not happen within `timeout`; [`Error::Transport`].
pub async fn wait_until_gone(
    bus: &EventBus,
    member: &str,
    timeout: Duration,
) -> Result<Owners, Error> {
    wait_until(bus, timeout, |owners| {
        owners
            .values()
            .all(|held| !held.contains_key(member) && all_owned(held))
    })
    .await
    .map_err(|last| {
        Error::Failed(format!(
            "{member}'s shards did not pass to the others within {timeout:?}: {last:?}"
        ))
    })
}

fn all_owned(held: &BTreeMap<String, Vec<u32>>) -> bool {
    held.values().map(Vec::len).sum::<usize>() == SHARDS as usize
}

/// Polls the owners every 50 ms until `done` holds; the last owners seen on timeout.
async fn wait_until(
    bus: &EventBus,
    timeout: Duration,
    done: impl Fn(&Owners) -> bool,
) -> Result<Owners, Owners> {
    let started = Instant::now();
    let mut last = Owners::new();
    while started.elapsed() < timeout {
        if let Ok(owners) = owners(bus).await {
            if done(&owners) {
                return Ok(owners);
            }
            last = owners;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last)
}
