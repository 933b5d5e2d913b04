//! The store's statements on PostgreSQL.

use crate::store::{Encoded, Position, from_sql};
use std::collections::HashMap;
use tokio_postgres::{GenericClient, Statement};
use uuid::Uuid;

pub(super) const LOCK_HEAD: &str =
    "SELECT value FROM event_store_meta WHERE key = 'head' FOR UPDATE";
pub(super) const KNOWN: &str = "SELECT id, position FROM event_store_events WHERE id = ANY($1)";
pub(super) const INSERT: &str = "INSERT INTO event_store_events (position, id, event_type, partition_key, envelope) \
     SELECT p, i, t, k, e::json \
     FROM unnest($1::int8[], $2::uuid[], $3::text[], $4::text[], $5::text[]) \
     AS u(p, i, t, k, e)";
pub(super) const SET_HEAD: &str = "UPDATE event_store_meta SET value = $1 WHERE key = 'head'";

/// The channel on which an appending transaction notifies, at its commit, the processes
/// listening (their pumps read the store at once instead of at their next poll).
pub(crate) const APPENDED_CHANNEL: &str = "event_store_appended";
pub(super) const NOTIFY: &str = "SELECT pg_notify('event_store_appended', '')";

/// The append's statements, prepared once per connection: each later use is one message
/// instead of a prepare and an execute.
#[derive(Debug)]
pub(crate) struct AppendStatements {
    lock_head: Statement,
    known: Statement,
    insert: Statement,
    set_head: Statement,
    notify: Statement,
}

impl AppendStatements {
    /// Prepares the five statements, pipelined: one round trip.
    pub(crate) async fn prepare(
        client: &impl GenericClient,
    ) -> Result<Self, tokio_postgres::Error> {
        let ((lock_head, known, insert, set_head), notify) = futures_util::future::try_join(
            futures_util::future::try_join4(
                client.prepare(LOCK_HEAD),
                client.prepare(KNOWN),
                client.prepare(INSERT),
                client.prepare(SET_HEAD),
            ),
            client.prepare(NOTIFY),
        )
        .await?;
        Ok(AppendStatements {
            lock_head,
            known,
            insert,
            set_head,
            notify,
        })
    }
}

/// Inserts the events that are not stored yet, in order, after the head; returns every
/// event's position and whether this call stored it. Two round trips: the head lock and
/// the ids already stored, pipelined; then the insert, the new head and a `NOTIFY` on
/// [`APPENDED_CHANNEL`] (sent at commit), pipelined with `then` (the writer's COMMIT), if
/// any.
///
/// Locks the `head` row first (`FOR UPDATE`) and holds it until the transaction ends: every
/// appender waits for the previous one to commit, so positions follow commit order and a
/// reader never sees position `p + 1` before `p`. The lock is the price: appends to one
/// store are serial, which group commit amortizes; an outbox transaction holding it should
/// be short. Under `REPEATABLE READ` or `SERIALIZABLE` a concurrent append makes this fail
/// with a serialization error, to be retried. The server runs pipelined statements in the
/// order they were sent, so the ids are looked up under the lock.
pub(crate) async fn insert_events<C, F>(
    client: &C,
    statements: &AppendStatements,
    events: &[&Encoded],
    then: F,
) -> Result<(Vec<Position>, Vec<bool>), tokio_postgres::Error>
where
    C: GenericClient + Sync,
    F: Future<Output = Result<(), tokio_postgres::Error>>,
{
    let ids: Vec<Uuid> = events.iter().map(|event| event.id).collect();
    let (head, known) = futures_util::future::try_join(
        client.query_one(&statements.lock_head, &[]),
        client.query(&statements.known, &[&ids]),
    )
    .await?;
    let known = known.iter().map(|row| (row.get(0), row.get(1))).collect();
    let plan = Plan::new(head.get(0), known, events);
    if plan.ids.is_empty() {
        then.await?;
    } else {
        futures_util::future::try_join4(
            client.execute(
                &statements.insert,
                &[
                    &plan.new_positions,
                    &plan.ids,
                    &plan.types,
                    &plan.keys,
                    &plan.envelopes,
                ],
            ),
            client.execute(&statements.set_head, &[&plan.head]),
            client.execute(&statements.notify, &[]),
            then,
        )
        .await?;
    }
    Ok((plan.positions, plan.stored))
}

/// Where an append puts its events: every event's position and whether it is new, and the
/// new ones as the columns of [`INSERT`], after the locked head.
pub(super) struct Plan<'e> {
    /// Each event's position, new or already stored.
    pub(super) positions: Vec<Position>,
    /// Whether each event is new.
    pub(super) stored: Vec<bool>,
    /// The head after the new events.
    pub(super) head: i64,
    pub(super) new_positions: Vec<i64>,
    pub(super) ids: Vec<Uuid>,
    pub(super) types: Vec<&'e str>,
    pub(super) keys: Vec<Option<&'e str>>,
    pub(super) envelopes: Vec<&'e str>,
}

impl<'e> Plan<'e> {
    /// `head` is the locked head; `known` the positions of the events' ids already stored.
    /// An id twice in `events` is stored once, at its first place.
    pub(super) fn new(head: i64, mut known: HashMap<Uuid, i64>, events: &[&'e Encoded]) -> Self {
        let mut plan = Plan {
            positions: Vec::with_capacity(events.len()),
            stored: Vec::with_capacity(events.len()),
            head,
            new_positions: Vec::new(),
            ids: Vec::new(),
            types: Vec::new(),
            keys: Vec::new(),
            envelopes: Vec::new(),
        };
        for event in events {
            let mut new = false;
            let position = *known.entry(event.id).or_insert_with(|| {
                new = true;
                plan.head += 1;
                plan.new_positions.push(plan.head);
                plan.ids.push(event.id);
                plan.types.push(event.event_type.as_str());
                plan.keys.push(event.partition_key.as_deref());
                plan.envelopes.push(event.json.as_str());
                plan.head
            });
            plan.positions.push(from_sql(position));
            plan.stored.push(new);
        }
        plan
    }
}

/// Claims an event for a subscription unless claimed already (no row changed then).
pub(super) const CLAIM: &str = "INSERT INTO event_store_inbox (subscription, event_id) \
     VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// Claims an event in a subscription's inbox: true when this call did.
pub(crate) async fn claim(
    client: &impl GenericClient,
    subscription: &str,
    event_id: Uuid,
) -> Result<bool, tokio_postgres::Error> {
    let inserted = client.execute(CLAIM, &[&subscription, &event_id]).await?;
    Ok(inserted == 1)
}

pub(crate) const READ: &str = "SELECT position, envelope::text FROM event_store_events \
     WHERE position > $1 ORDER BY position LIMIT $2";

pub(crate) const HEAD: &str = "SELECT value FROM event_store_meta WHERE key = 'head'";

pub(crate) const CHECKPOINTS: &str =
    "SELECT subscription, position FROM event_store_checkpoints ORDER BY subscription";

pub(crate) const CHECKPOINT: &str =
    "SELECT position FROM event_store_checkpoints WHERE subscription = $1";

pub(crate) const SAVE_CHECKPOINT: &str = "INSERT INTO event_store_checkpoints (subscription, position) \
     VALUES ($1, $2) ON CONFLICT (subscription) \
     DO UPDATE SET position = GREATEST(event_store_checkpoints.position, excluded.position)";

pub(crate) const RESET_CHECKPOINT: &str = "INSERT INTO event_store_checkpoints (subscription, position) \
     VALUES ($1, $2) ON CONFLICT (subscription) DO UPDATE SET position = excluded.position";

pub(crate) const REMOVE_SUBSCRIPTION: &str = "WITH checkpoint AS \
     (DELETE FROM event_store_checkpoints WHERE subscription = $1) \
     DELETE FROM event_store_inbox WHERE subscription = $1";

pub(crate) const IS_CLAIMED: &str = "SELECT EXISTS \
     (SELECT 1 FROM event_store_inbox WHERE subscription = $1 AND event_id = $2)";

pub(crate) const PUT_DEAD_LETTER: &str = "INSERT INTO event_store_dead_letters \
     (subscription, envelope, last_error, attempts, failed_at) \
     VALUES ($1, $2::text::json, $3, $4, $5) RETURNING id";

pub(crate) const DEAD_LETTERS: &str = "SELECT id, subscription, envelope::text, last_error, \
     attempts, failed_at FROM event_store_dead_letters \
     WHERE $1::text IS NULL OR subscription = $1 ORDER BY id";

pub(crate) const REMOVE_DEAD_LETTER: &str = "DELETE FROM event_store_dead_letters WHERE id = $1";

pub(crate) const TIMELINE_OLDEST_FIRST: &str = "SELECT position, envelope::text \
     FROM event_store_events WHERE partition_key = $1 AND position > $2 \
     AND ($3::text IS NULL OR starts_with(event_type, $3)) \
     AND ($5::text IS NULL OR envelope->'meta'->>'tenant_id' = $5) ORDER BY position LIMIT $4";

pub(crate) const TIMELINE_NEWEST_FIRST: &str = "SELECT position, envelope::text \
     FROM event_store_events WHERE partition_key = $1 AND position < $2 \
     AND ($3::text IS NULL OR starts_with(event_type, $3)) \
     AND ($5::text IS NULL OR envelope->'meta'->>'tenant_id' = $5) \
     ORDER BY position DESC LIMIT $4";

/// One statement, so it sees one snapshot of the checkpoints: events every subscription
/// passed, appended before `$1`, and their inbox rows. The head stays in `event_store_meta`,
/// so positions are never reused.
pub(crate) const PRUNE: &str = "WITH cutoff AS \
     (SELECT MIN(position) AS position FROM event_store_checkpoints), \
     doomed AS (DELETE FROM event_store_events e USING cutoff \
     WHERE e.position <= cutoff.position AND e.appended_at < $1 RETURNING e.id), \
     inbox AS (DELETE FROM event_store_inbox WHERE event_id IN (SELECT id FROM doomed)) \
     SELECT count(*) FROM doomed";

/// Takes or renews the lease `$1` for holder `$2`, for `$3` seconds, on the database's clock;
/// returns the token, or no row while another holder's lease runs.
///
/// One statement, atomic among processes: a new lease starts at token 1; a concurrent first
/// take waits on the primary key and then takes the `DO UPDATE` path, which locks the row and
/// checks its latest version. The holder renewing a lease that still runs keeps its token; a
/// lease taken anew (by another holder, or after it ran out or was released) gets the next
/// one. `now()` is the start of the statement (it runs alone, outside any transaction): a
/// wait for the row lock only makes the lease end a little early and another's look alive a
/// little longer.
pub(crate) const LEASE: &str = "INSERT INTO event_store_leases AS l (name, holder, token, expires_at) \
     VALUES ($1, $2, 1, now() + make_interval(secs => $3::float8)) \
     ON CONFLICT (name) DO UPDATE SET \
     token = CASE WHEN l.holder = excluded.holder AND l.expires_at > now() \
     THEN l.token ELSE l.token + 1 END, \
     holder = excluded.holder, expires_at = excluded.expires_at \
     WHERE l.holder = excluded.holder OR l.expires_at <= now() \
     RETURNING l.token";

/// The leases whose name starts with `$1` that run now: name, holder, token.
pub(crate) const LEASES: &str = "SELECT name, holder, token FROM event_store_leases \
     WHERE starts_with(name, $1) AND expires_at > now() ORDER BY name";

/// Moves checkpoint `$1` forward to `$2` only while holder `$4` holds lease `$3` with
/// token `$5`: one statement, so a stale holder's save that starts after another took the
/// lease over writes nothing (no row affected). One that started just before may still land
/// (the lease row is not locked): harmless, a checkpoint only moves forward, and the new
/// owner's saves are past it.
pub(crate) const SAVE_CHECKPOINT_FENCED: &str = "INSERT INTO event_store_checkpoints (subscription, position) \
     SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM event_store_leases \
     WHERE name = $3 AND holder = $4 AND token = $5 AND expires_at > now()) \
     ON CONFLICT (subscription) \
     DO UPDATE SET position = GREATEST(event_store_checkpoints.position, excluded.position)";

/// Claims event `$2` for subscription `$1` only while holder `$4` holds lease `$3` with
/// token `$5`: whether the lease held, and whether a row was inserted.
pub(crate) const CLAIM_FENCED: &str = "WITH held AS (SELECT EXISTS (SELECT 1 FROM event_store_leases \
     WHERE name = $3 AND holder = $4 AND token = $5 AND expires_at > now()) AS ok), \
     claimed AS (INSERT INTO event_store_inbox (subscription, event_id) \
     SELECT $1, $2 FROM held WHERE ok ON CONFLICT DO NOTHING RETURNING 1) \
     SELECT (SELECT ok FROM held), (SELECT count(*) FROM claimed)";

/// Ends the lease `$1` if holder `$2` holds it: the row stays, with its token, and an expiry
/// in the past.
pub(crate) const RELEASE_LEASE: &str = "UPDATE event_store_leases \
     SET expires_at = '-infinity' WHERE name = $1 AND holder = $2 AND expires_at > now()";

/// How the search (`Store::query`) is spelled in PostgreSQL.
pub(crate) const DIALECT: crate::store::Dialect = crate::store::Dialect {
    placeholder: |n| format!("${n}"),
    correlation_id: "(envelope->>'correlation_id')",
    tenant_id: "(envelope->'meta'->>'tenant_id')",
    envelope: "envelope::text",
    time: crate::store::SqlValue::Time,
    id: crate::store::SqlValue::Id,
};
