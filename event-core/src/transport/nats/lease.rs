//! A member's lease round, every third of the lease: heartbeat, rebalance, renew, release,
//! acquire (taking over the shard's consumer from its previous owner).

use super::member::{Lease, Shared, consumer_config, consumer_names, create_start, group_topics};
use super::names;
use crate::transport::{StartFrom, TransportError};
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::kv;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

/// Runs rounds until aborted (on leave, or when the member is dropped).
pub(super) async fn run(member: Arc<Shared>) {
    let lease = member.inner.lease;
    crate::transport::lease_rounds(lease, &member.spec, || round(&member)).await;
}

/// One round.
pub(super) async fn round(member: &Arc<Shared>) -> Result<(), TransportError> {
    let inner = &member.inner;
    let group = member.spec.group.as_str();
    let consumer = member.spec.consumer.as_str();

    if member.dynamic_topics {
        refresh_topics(member).await?;
    }

    let started = Instant::now();
    member
        .kv
        .put(names::member_key(consumer), consumer.to_owned().into())
        .await
        .map_err(inner.err("KV PUT (member heartbeat)"))?;
    let mut members = members(member).await?;
    members.sort();
    let index = members.iter().position(|m| m == consumer).unwrap_or(0);
    let count = members.len().max(1);
    let desired: BTreeSet<u32> = (0..inner.shards)
        .filter(|shard| *shard as usize % count == index)
        .collect();

    renew(member, started).await?;

    // Release what another member should have, once nothing of it is unacknowledged.
    let mut releases = Vec::new();
    {
        let mut state = member.state();
        let shards: Vec<u32> = state.leases.keys().copied().collect();
        for shard in shards {
            let Some(lease) = state.leases.get_mut(&shard) else {
                continue;
            };
            lease.releasing = !desired.contains(&shard);
            if lease.releasing && lease.outstanding.is_empty() {
                let revision = lease.revision;
                state.leases.remove(&shard);
                releases.push((shard, revision));
            }
        }
    }
    for (shard, revision) in releases {
        release(member, shard, revision).await?;
        tracing::debug!(group, consumer, shard, "released a shard");
    }

    // Acquire what is ours and free.
    let held: HashSet<u32> = member.held().into_iter().map(|(s, _)| s).collect();
    for shard in desired.into_iter().filter(|s| !held.contains(s)) {
        let acquired_at = Instant::now();
        let token = match member
            .kv
            .create(names::lease_key(shard), consumer.to_owned().into())
            .await
        {
            Ok(revision) => revision,
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => continue,
            Err(error) => return Err(inner.err("KV CREATE (lease)")(error)),
        };
        member.state().leases.insert(
            shard,
            Lease {
                token,
                revision: token,
                renewed: acquired_at,
                releasing: false,
                given_up: false,
                outstanding: HashMap::new(),
                pullers: Vec::new(),
            },
        );
        let topics = member.state().topics.clone();
        if let Err(error) = take_over(member, shard, token, &topics).await {
            // Let it go: the next round tries again under a new token.
            let revision = member.state().leases.remove(&shard).map(|l| l.revision);
            if let Some(revision) = revision {
                let _ = release(member, shard, revision).await;
            }
            return Err(error);
        }
        tracing::debug!(group, consumer, shard, token, "acquired a shard");
    }
    Ok(())
}

/// The live members of the group: the member keys in its bucket (each lives one lease
/// unless its member renews it), this member among them.
async fn members(member: &Shared) -> Result<Vec<String>, TransportError> {
    let mut members = live_members(&member.inner, &member.kv).await?;
    if !members.contains(&member.spec.consumer) {
        members.push(member.spec.consumer.clone());
    }
    Ok(members)
}

/// The members whose key lives in a group's bucket: one request, the subjects of the bucket's
/// stream under `m.`.
pub(super) async fn live_members(
    inner: &super::Inner,
    kv: &kv::Store,
) -> Result<Vec<String>, TransportError> {
    let subjects =
        super::subject_counts(inner, &kv.stream, &format!("$KV.{}.m.>", kv.name)).await?;
    Ok(subjects
        .keys()
        .filter_map(|subject| subject.rsplit('.').next())
        .filter_map(names::unescape)
        .collect())
}

/// The shard's consumer passes to this member under `token`: the previous owners'
/// consumers are deleted (their acknowledgements and pulls are refused from then on) and a
/// new one starts at the acknowledgement floor of the last of them.
async fn take_over(
    member: &Arc<Shared>,
    shard: u32,
    token: u64,
    topics: &[String],
) -> Result<(), TransportError> {
    let inner = &member.inner;
    let group = member.spec.group.as_str();
    let mut pullers = Vec::new();
    for topic in topics.iter().cloned() {
        let mut stream = inner.topic_stream(&topic).await?;
        let mut previous: Vec<u64> = consumer_names(inner, &mut stream)
            .await?
            .into_iter()
            .filter(|(g, s, t)| g == group && *s == shard && *t < token)
            .map(|(_, _, t)| t)
            .collect();
        previous.sort_unstable();
        let (deliver_policy, metadata) = match previous.last() {
            Some(last) => {
                let info = stream
                    .consumer_info(names::consumer(group, shard, *last))
                    .await
                    .map_err(inner.err("$JS.API.CONSUMER.INFO"))?;
                let mut history = History::of(&info);
                // Never before where the last consumer started (its floor says so already;
                // this holds even if a server reported no floor for it).
                let mut start =
                    (info.ack_floor.stream_sequence + 1).max(history.start.unwrap_or(0));
                history.count(&info, &member.spec.consumer);
                if history.stalls >= MAX_STALLS {
                    if let Some(next) =
                        set_aside(member, &stream, &topic, shard, start, &history).await?
                    {
                        start = next;
                    }
                    history.stalls = 0;
                }
                (
                    DeliverPolicy::ByStartSequence {
                        start_sequence: start,
                    },
                    history.metadata(start, &member.spec.consumer),
                )
            }
            // A topic that appeared after the group joined: every entry is newer.
            None => (
                DeliverPolicy::All,
                History::default().metadata(1, &member.spec.consumer),
            ),
        };
        for old in &previous {
            let name = names::consumer(group, shard, *old);
            if let Err(error) = stream.delete_consumer(&name).await {
                let gone = stream.consumer_info(&name).await.is_err();
                if !gone {
                    return Err(inner.err("$JS.API.CONSUMER.DELETE")(error));
                }
            }
        }
        let name = names::consumer(group, shard, token);
        let config = consumer_config(inner, &topic, name, shard, deliver_policy, metadata);
        let consumer = stream
            .create_consumer(config)
            .await
            .map_err(inner.err("$JS.API.CONSUMER.CREATE"))?;
        pullers.push(member.start_puller(consumer, topic, shard, token));
    }
    let mut state = member.state();
    match state.leases.get_mut(&shard).filter(|l| l.token == token) {
        Some(lease) => lease.pullers.extend(pullers),
        None => pullers.iter().for_each(tokio::task::AbortHandle::abort),
    }
    Ok(())
}

/// How many owners in a row may stop (killed, crashed, frozen past the lease) holding the
/// same first unacknowledged entry of a shard before the next owner sets it aside as a dead
/// letter: a poison event that kills every process handling it must not stop the shard for
/// ever. (The broker's own `max_deliver` cannot count this: each owner has a consumer of its
/// own.)
const MAX_STALLS: u32 = 5;

/// What a shard's consumer records of its predecessors, in its metadata: where it started,
/// and how many owners in a row stopped holding the entry there without settling it.
#[derive(Debug, Default)]
struct History {
    start: Option<u64>,
    owner: Option<String>,
    stalls: u32,
}

impl History {
    fn of(info: &async_nats::jetstream::consumer::Info) -> History {
        let field = |name: &str| info.config.metadata.get(name);
        History {
            start: field("start").and_then(|s| s.parse().ok()),
            owner: field("owner").cloned(),
            stalls: field("stalls").and_then(|s| s.parse().ok()).unwrap_or(0),
        }
    }

    /// Counts the previous owner's end: a stall when it held entries unacknowledged and had
    /// acknowledged nothing since it started (not when it is this member, taking its own
    /// shard again after its lease ran late).
    fn count(&mut self, info: &async_nats::jetstream::consumer::Info, me: &str) {
        let held = info.num_ack_pending > 0;
        let stuck = self
            .start
            .is_some_and(|start| info.ack_floor.stream_sequence < start);
        let someone_else = self.owner.as_deref().is_some_and(|owner| owner != me);
        self.stalls = if held && stuck && someone_else {
            self.stalls + 1
        } else {
            0
        };
    }

    fn metadata(&self, start: u64, me: &str) -> HashMap<String, String> {
        HashMap::from([
            ("start".to_owned(), start.to_string()),
            ("owner".to_owned(), me.to_owned()),
            ("stalls".to_owned(), self.stalls.to_string()),
        ])
    }
}

/// Dead-letters the shard's first entry at or after `start` (the one its last owners stopped
/// on); returns where the new consumer starts instead.
async fn set_aside(
    member: &Shared,
    stream: &async_nats::jetstream::stream::Stream,
    topic: &str,
    shard: u32,
    start: u64,
    history: &History,
) -> Result<Option<u64>, TransportError> {
    let inner = &member.inner;
    let subject = inner.subject(topic, shard);
    let Ok(message) = stream
        .get_first_raw_message_by_subject(&subject, start)
        .await
    else {
        return Ok(None);
    };
    let reason = format!(
        "set aside: {} owners in a row of shard {shard} stopped (killed, crashed or frozen) \
         holding this entry without settling it",
        history.stalls
    );
    tracing::error!(group = %member.spec.group, topic, shard, entry = message.sequence, "{reason}");
    super::dead::set_aside(
        member,
        topic,
        message.sequence,
        &message.payload,
        &reason,
        history.stalls,
    )
    .await?;
    Ok(Some(message.sequence + 1))
}

/// Renews the leases held; a lease found gone or another's is dropped.
async fn renew(member: &Shared, started: Instant) -> Result<(), TransportError> {
    let inner = &member.inner;
    let group = member.spec.group.as_str();
    let consumer = member.spec.consumer.as_str();
    let leases: Vec<(u32, u64, u64)> = member
        .state()
        .leases
        .iter()
        .map(|(shard, lease)| (*shard, lease.token, lease.revision))
        .collect();
    for (shard, token, revision) in leases {
        if give_up(member, shard, token) {
            release_given_up(member, shard, token, revision).await?;
            continue;
        }
        let renewed = member
            .kv
            .update(
                names::lease_key(shard),
                consumer.to_owned().into(),
                revision,
            )
            .await;
        let given_up = {
            let mut state = member.state();
            match renewed {
                Ok(revision) => match state.leases.get_mut(&shard).filter(|l| l.token == token) {
                    // A lane was told meanwhile that the lease ran out: do not go on with it.
                    Some(lease) if lease.given_up => {
                        lease.revision = revision;
                        Some(revision)
                    }
                    Some(lease) => {
                        lease.revision = revision;
                        lease.renewed = started;
                        None
                    }
                    None => None,
                },
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    if state.leases.get(&shard).is_some_and(|l| l.token == token) {
                        state.leases.remove(&shard);
                        tracing::warn!(group, consumer, shard, token, "lost the lease on a shard");
                    }
                    None
                }
                Err(error) => return Err(inner.err("KV UPDATE (lease)")(error)),
            }
        };
        if let Some(revision) = given_up {
            release_given_up(member, shard, token, revision).await?;
        }
    }
    Ok(())
}

/// Whether the lease of `shard` under `token` ran out, as this process sees it, before its
/// renewal: then it must not be renewed (a lane may already have dropped an entry received
/// under it, and a later one must not be handled before that entry comes back).
fn give_up(member: &Shared, shard: u32, token: u64) -> bool {
    let mut state = member.state();
    let Some(lease) = state.leases.get_mut(&shard).filter(|l| l.token == token) else {
        return false;
    };
    if lease.renewed.elapsed() >= member.inner.lease {
        lease.given_up = true;
    }
    lease.given_up
}

/// Forgets a given-up lease and releases it if it is still ours, so that the acquire step
/// takes the shard again under a new token (reading from the floor again) or another member
/// takes it.
async fn release_given_up(
    member: &Shared,
    shard: u32,
    token: u64,
    revision: u64,
) -> Result<(), TransportError> {
    member.state().leases.remove(&shard);
    tracing::warn!(
        group = %member.spec.group,
        consumer = %member.spec.consumer,
        shard,
        token,
        "the lease on a shard ran out before its renewal: taken again under a new token"
    );
    release(member, shard, revision).await
}

/// Deletes a lease key if it is still at `revision` (ours).
async fn release(member: &Shared, shard: u32, revision: u64) -> Result<(), TransportError> {
    match member
        .kv
        .delete_expect_revision(names::lease_key(shard), Some(revision))
        .await
    {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == kv::DeleteErrorKind::WrongLastRevision => Ok(()),
        Err(error) => Err(member.inner.err("KV DELETE (lease)")(error)),
    }
}

/// Picks up topics created since the member joined (their group starts at the beginning:
/// every entry there is newer than the member).
async fn refresh_topics(member: &Arc<Shared>) -> Result<(), TransportError> {
    let topics = group_topics(&member.inner, &member.spec).await?;
    let known: HashSet<String> = member.state().topics.iter().cloned().collect();
    for topic in topics.into_iter().filter(|t| !known.contains(t)) {
        create_start(
            &member.inner,
            &member.spec.group,
            &topic,
            StartFrom::Beginning,
        )
        .await?;
        member.state().topics.push(topic.clone());
        // The shards held already read the new topic too, under their tokens.
        for (shard, token) in member.held() {
            take_over(member, shard, token, std::slice::from_ref(&topic)).await?;
        }
    }
    Ok(())
}
