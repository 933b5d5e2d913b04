//! What the broker tells of the consumer groups, through `bus.transport_info()`: whether
//! they have joined, whether they have handled everything, how many events it holds. On a
//! bus without a broker the answers come from the bus itself, so the story asks the same
//! questions on every backend.

use crate::scenario::Error;
use event_core::EventBus;
use event_core::transport::{TransportError, TransportInfo};
use std::time::Duration;
use tokio::time::Instant;

/// How often the broker is asked again.
const POLL: Duration = Duration::from_millis(20);

/// How many events were published so far: by any process, as the broker holds them (none is
/// trimmed during a run), or by this bus without one.
///
/// # Errors
///
/// [`TransportError`] when the broker cannot be reached.
pub async fn published(bus: &EventBus) -> Result<u64, TransportError> {
    Ok(match bus.transport_info().await? {
        Some(info) => info
            .topics
            .iter()
            .flat_map(|topic| &topic.shards)
            .map(|shard| shard.length)
            .sum(),
        None => bus.metrics().published,
    })
}

/// Waits until each of `groups` has members holding every shard: those subscriptions have
/// joined, and will see every event published from now on (a new group starts at the
/// broker's end, so an event published before it exists is not for it). At once without a
/// broker, where a subscription is there when `subscribe` returns.
///
/// # Errors
///
/// [`Error::Groups`] when that does not happen within `timeout`; [`Error::Transport`].
pub async fn joined(bus: &EventBus, groups: &[&str], timeout: Duration) -> Result<(), Error> {
    poll(bus, timeout, "joined", |info| {
        groups.iter().all(|name| {
            let mut held: Vec<u32> = info
                .topics
                .iter()
                .flat_map(|topic| &topic.groups)
                .filter(|group| group.group == *name)
                .flat_map(|group| &group.consumers)
                .flat_map(|consumer| consumer.shards.iter().copied())
                .collect();
            held.sort_unstable();
            held.dedup();
            !info.topics.is_empty() && held.len() == info.shards as usize
        })
    })
    .await
}

/// Waits until every consumer group (not the `wait_for` listeners, `$wait:…`) has handled
/// everything the broker holds: nothing left to hand out, nothing unacknowledged. Shutting
/// a bus down on a broker leaves what its groups have not received there, so the last
/// events are handled before. At once without a broker, where `shutdown` drains the queues
/// itself.
///
/// # Errors
///
/// [`Error::Groups`] when that does not happen within `timeout`; [`Error::Transport`].
pub async fn settled(bus: &EventBus, timeout: Duration) -> Result<(), Error> {
    poll(bus, timeout, "handled every event", |info| {
        info.topics
            .iter()
            .flat_map(|topic| &topic.groups)
            .filter(|group| !group.group.starts_with('$'))
            .all(|group| group.pending == 0 && group.lag == Some(0))
    })
    .await
}

/// Asks the broker every [`POLL`] until `done` holds; on a bus without one, returns at once.
async fn poll(
    bus: &EventBus,
    timeout: Duration,
    what: &str,
    done: impl Fn(&TransportInfo) -> bool,
) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    loop {
        let Some(info) = bus.transport_info().await? else {
            return Ok(());
        };
        if done(&info) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let groups: Vec<String> = info
                .topics
                .iter()
                .flat_map(|topic| &topic.groups)
                .filter(|group| !group.group.starts_with('$'))
                .map(|group| {
                    let members: Vec<String> = group
                        .consumers
                        .iter()
                        .map(|c| format!("{} {:?}", c.name, c.shards))
                        .collect();
                    format!(
                        "{} (members: {}; pending {}, lag {:?})",
                        group.group,
                        members.join(", "),
                        group.pending,
                        group.lag
                    )
                })
                .collect();
            return Err(Error::Groups(format!(
                "the consumer groups have not {what} within {timeout:?}; the broker shows: {}",
                if groups.is_empty() {
                    "no group".to_owned()
                } else {
                    groups.join("; ")
                }
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}
