//! The two lives of the engine over one SQLite file, and what the file says about them.
//!
//! - [`phase_1`] publishes the [`session`] slowly, with the three
//!   [`subscribers`] handling it as it goes, until its process is killed.
//! - [`snapshot`] reads what the file holds: the events, and each subscription's checkpoint
//!   and inbox claims.
//! - [`phase_2`] reopens the file: the subscribers resume from their checkpoints, the
//!   session continues from where the stored events end, the generation tracker is replayed
//!   from the start to show that a second delivery changes nothing, and the bus drains.
//! - [`verify`] checks that every event was handled by every subscriber that matches it,
//!   once.

use crate::session::{self, Step};
use crate::subscribers::{
    self, GENERATION_TRACKER, GenerationEvents, NarratorEvents, SUBSCRIPTIONS, Subscribers,
    SuggestionRequests,
};
use crate::{Error, projection};
use event_core::store::{Position, SqliteStore, Store, StoredEvent};
use event_core::{DeadLetter, EventBus, EventUnion, MetricsSnapshot};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// The pace of the example.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The pause between two steps of the session in phase 1, so that it can be killed
    /// halfway (phase 2 does not pause).
    pub step_delay: Duration,
    /// How long the suggestion worker thinks about each request.
    pub thinking: Duration,
    /// How often the bus looks for events appended outside it (the narrator's follow-ups).
    pub poll_interval: Duration,
    /// How long to wait for a subscriber to catch up before giving up.
    pub patience: Duration,
    /// Phase 2 serves the admin API and dashboard (`event-admin`) here while its bus runs,
    /// and waits for Ctrl-C before shutting the bus down.
    pub admin: Option<SocketAddr>,
}

impl Default for Config {
    /// 40 ms between steps, 30 ms per suggestion, polling every 20 ms, 10 s of patience.
    fn default() -> Self {
        Config {
            step_delay: Duration::from_millis(40),
            thinking: Duration::from_millis(30),
            poll_interval: Duration::from_millis(20),
            patience: Duration::from_secs(10),
            admin: None,
        }
    }
}

/// A durable bus over the store in one file, with the three subscribers.
#[derive(Debug)]
pub struct Engine {
    /// The bus.
    pub bus: EventBus,
    /// The store behind it.
    pub store: SqliteStore,
    /// What each subscriber did in this process.
    pub subscribers: Subscribers,
}

impl Engine {
    /// Opens (or creates) the store at `path`, creates the projection's tables if missing,
    /// and subscribes the three consumers, which start reading from their checkpoints.
    /// Call it inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// When the store cannot be opened or a subscription is refused.
    pub fn open(path: &Path, config: &Config) -> Result<Engine, Error> {
        let store = create(path)?;
        let bus = EventBus::builder()
            .store(store.clone())
            .poll_interval(config.poll_interval)
            .build();
        let subscribers = subscribers::subscribe(&bus, &store, config.thinking)?;
        Ok(Engine {
            bus,
            store,
            subscribers,
        })
    }
}

/// Opens (or creates) the store at `path` with the projection's tables.
///
/// # Errors
///
/// When the store cannot be opened or the tables created.
pub fn create(path: &Path) -> Result<SqliteStore, Error> {
    let store = SqliteStore::open(path)?;
    projection::create(&store.connection()?)?;
    Ok(store)
}

/// Phase 1: publishes the session from its first step, pausing `step_delay` after each, and
/// writes `published <n>/<total> <label>` to `out` once each step is stored. Stops after
/// `stop_after` steps if given, leaving the bus running (a test's stand-in for a kill);
/// otherwise publishes all and shuts down. Returns how many steps it published.
///
/// # Errors
///
/// When the engine cannot start, a step cannot be published or `out` fails.
pub async fn phase_1(
    path: &Path,
    config: &Config,
    stop_after: Option<usize>,
    out: &mut (dyn Write + Send),
) -> Result<usize, Error> {
    let engine = Engine::open(path, config)?;
    let script = session::script();
    for (index, step) in script.iter().enumerate() {
        step.publish(&engine.bus).await?;
        writeln!(
            out,
            "published {}/{} {}",
            index + 1,
            script.len(),
            step.label()
        )?;
        out.flush()?;
        if stop_after == Some(index + 1) {
            return Ok(index + 1);
        }
        tokio::time::sleep(config.step_delay).await;
    }
    engine.bus.shutdown().await;
    Ok(script.len())
}

/// What the file holds at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The last position.
    pub head: Position,
    /// Every stored event, in position order.
    pub events: Vec<StoredEvent>,
    /// The steps of the session among them, in order.
    pub steps: Vec<Step>,
    /// Each subscription's progress, in the order of [`SUBSCRIPTIONS`].
    pub subscriptions: Vec<Progress>,
}

impl Snapshot {
    /// The progress of the subscription `name`.
    pub fn progress(&self, name: &str) -> Option<&Progress> {
        self.subscriptions.iter().find(|p| p.name == name)
    }

    /// How many stored events handlers published (not steps of the session).
    pub fn follow_ups(&self) -> usize {
        self.events.len() - self.steps.len()
    }
}

/// One subscription's place in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The subscription.
    pub name: &'static str,
    /// Its checkpoint: everything up to here is handled.
    pub checkpoint: Position,
    /// Stored events it handles.
    pub matching: usize,
    /// Of those, the ones claimed in its inbox (handled).
    pub claimed: usize,
    /// Claimed events after the checkpoint: a restart delivers them again, and the inbox
    /// turns them away.
    pub claimed_after_checkpoint: usize,
}

/// Reads every stored event, and each subscription's checkpoint and claims.
///
/// # Errors
///
/// When the store cannot be read.
pub async fn snapshot(store: &SqliteStore) -> Result<Snapshot, Error> {
    let head = store.head().await?;
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let batch = store.read(after, 1000).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        events.extend(batch);
    }
    let steps = events
        .iter()
        .filter_map(|event| Step::from_stored(&event.envelope))
        .collect();
    let mut subscriptions = Vec::new();
    for (name, handles) in SUBSCRIPTIONS {
        let checkpoint = store.checkpoint(name).await?;
        let mut progress = Progress {
            name,
            checkpoint,
            matching: 0,
            claimed: 0,
            claimed_after_checkpoint: 0,
        };
        for event in events.iter().filter(|e| matches(handles, e)) {
            progress.matching += 1;
            if store.is_claimed(name, event.envelope.id).await? {
                progress.claimed += 1;
                if event.position > checkpoint {
                    progress.claimed_after_checkpoint += 1;
                }
            }
        }
        subscriptions.push(progress);
    }
    Ok(Snapshot {
        head,
        events,
        steps,
        subscriptions,
    })
}

fn matches(handles: &[(&str, u32)], event: &StoredEvent) -> bool {
    handles.iter().any(|&(name, version)| {
        event.envelope.event_type == name && event.envelope.version == version
    })
}

/// What phase 2 did.
#[derive(Debug)]
#[non_exhaustive]
pub struct Resumed {
    /// How many steps of the session the store held when phase 2 began.
    pub steps_stored: usize,
    /// How many steps phase 2 published.
    pub published: usize,
    /// How many events the generation tracker's replay delivered a second time (each
    /// skipped by its claim).
    pub replayed: usize,
    /// What each subscriber did in phase 2, replay included.
    pub subscribers: Subscribers,
    /// The bus's counters after shutdown.
    pub metrics: MetricsSnapshot,
    /// The dead letters after shutdown.
    pub dead_letters: Vec<DeadLetter>,
}

/// Phase 2: reopens the store at `path`; the subscribers resume from their checkpoints.
/// Finds how far the session got from the stored events, publishes the rest, replays the
/// generation tracker from the start, and shuts the bus down (which drains every
/// subscription). Narrates on `out`.
///
/// # Errors
///
/// When the engine cannot start, the stored events are not a beginning of the session, a
/// step cannot be published, a subscriber does not catch up within `patience`, or `out`
/// fails.
pub async fn phase_2(
    path: &Path,
    config: &Config,
    out: &mut (dyn Write + Send),
) -> Result<Resumed, Error> {
    let engine = Engine::open(path, config)?;
    let admin = match config.admin {
        Some(addr) => {
            let (admin, secret) =
                event_admin::Admin::new(engine.bus.clone()).token_from_env_or_random();
            let serving = admin.serve(addr).await?;
            let addr = serving.local_addr();
            writeln!(
                out,
                "admin API and dashboard: http://{addr} (token {secret})"
            )?;
            // Listening for Ctrl-C from now on: one pressed meanwhile ends the wait below.
            Some((serving, tokio::spawn(tokio::signal::ctrl_c())))
        }
        None => None,
    };
    let script = session::script();
    let stored = snapshot(&engine.store).await?;
    let steps_stored = stored.steps.len();
    if stored.steps[..] != script[..steps_stored.min(script.len())] {
        return Err(Error::Unexpected(
            "the stored steps are not the beginning of the session".to_owned(),
        ));
    }
    match script.get(steps_stored) {
        Some(next) => writeln!(
            out,
            "the store holds steps 1-{steps_stored} of {}: continuing with step {} ({})",
            script.len(),
            steps_stored + 1,
            next.label()
        )?,
        None => writeln!(out, "the store holds the whole session")?,
    }
    for step in &script[steps_stored..] {
        step.publish(&engine.bus).await?;
    }
    let published = script.len() - steps_stored;
    writeln!(out, "published steps {}-{}", steps_stored + 1, script.len())?;

    let replayed = replay_tracker(&engine, &stored, config).await?;
    writeln!(
        out,
        "replayed {GENERATION_TRACKER} from the start: {replayed} events delivered again, {replayed} skipped by claim_in"
    )?;

    if let Some((serving, interrupted)) = admin {
        writeln!(
            out,
            "phase 2 is done; the admin API still serves it: Ctrl-C to stop"
        )?;
        interrupted.await.map_err(std::io::Error::other)??;
        serving.shutdown().await;
    }
    engine.bus.shutdown().await;
    writeln!(out, "shut down: every subscription drained")?;
    Ok(Resumed {
        steps_stored,
        published,
        replayed,
        subscribers: engine.subscribers.clone(),
        metrics: engine.bus.metrics(),
        dead_letters: engine.bus.dead_letters().await,
    })
}

/// Waits until the tracker handled every batch event, replays it from position 0, and waits
/// until each replayed delivery was skipped; returns how many there were.
async fn replay_tracker(
    engine: &Engine,
    before: &Snapshot,
    config: &Config,
) -> Result<usize, Error> {
    let tracker = &engine.subscribers.generation_tracker;
    let claimed_before = before.progress(GENERATION_TRACKER).map_or(0, |p| p.claimed);
    let total = session::script()
        .iter()
        .filter(|step| GenerationEvents::EVENTS.contains(&step.event()))
        .count();
    let deadline = Instant::now() + config.patience;
    let handled_all = || claimed_before + as_usize(tracker.handled()) >= total;
    wait_until(deadline, handled_all, "the generation tracker to catch up").await?;
    engine.bus.replay(GENERATION_TRACKER, 0).await?;
    let skipped_all = || as_usize(tracker.skipped()) >= total;
    wait_until(deadline, skipped_all, "the generation tracker's replay").await?;
    Ok(as_usize(tracker.skipped()))
}

async fn wait_until(deadline: Instant, done: impl Fn() -> bool, what: &str) -> Result<(), Error> {
    while !done() {
        if Instant::now() > deadline {
            return Err(Error::Unexpected(format!("gave up waiting for {what}")));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

fn as_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// One check of the verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Whether it passed.
    pub ok: bool,
    /// What was checked: a subscription, `projection`, `session`...
    pub subject: String,
    /// What was found.
    pub detail: String,
}

/// The checks of [`verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    /// Each check, in the order made.
    pub checks: Vec<Check>,
}

impl Verification {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|check| check.ok)
    }

    fn check(&mut self, ok: bool, subject: &str, detail: String) {
        self.checks.push(Check {
            ok,
            subject: subject.to_owned(),
            detail,
        });
    }
}

/// Checks the file after phase 2 against the snapshot taken at the kill and what phase 2
/// did: the whole session stored once; every stored event handled by every subscriber that
/// matches it, once (claims at the kill plus handled in phase 2); checkpoints at the head;
/// the projection has each batch event's effect exactly once; one narrative beat per
/// trigger and one answer per suggestion request; redeliveries deduplicated; no dead
/// letters. Returns the snapshot after phase 2 too.
///
/// # Errors
///
/// When the store or the projection cannot be read.
pub async fn verify(
    store: &SqliteStore,
    at_kill: &Snapshot,
    resumed: &Resumed,
) -> Result<(Snapshot, Verification), Error> {
    let after = snapshot(store).await?;
    let mut verification = Verification::default();
    let script = session::script();
    verification.check(
        after.steps == script,
        "session",
        format!(
            "{} of {} steps stored, once each, in order",
            after.steps.len(),
            script.len()
        ),
    );
    for progress in &after.subscriptions {
        let before = at_kill.progress(progress.name).map_or(0, |p| p.claimed);
        let handled = resumed
            .subscribers
            .get(progress.name)
            .map_or(0, |c| as_usize(c.handled()));
        verification.check(
            progress.claimed == progress.matching
                && before + handled == progress.matching
                && progress.checkpoint == after.head,
            progress.name,
            format!(
                "{}/{} matching events handled ({before} in phase 1 + {handled} in phase 2), checkpoint {} of head {}",
                progress.claimed, progress.matching, progress.checkpoint, after.head
            ),
        );
    }
    check_projection(store, &after, &mut verification)?;
    check_follow_ups(&after, &mut verification);
    let redelivered: usize = at_kill
        .subscriptions
        .iter()
        .map(|p| p.claimed_after_checkpoint)
        .sum();
    verification.check(
        resumed.metrics.deduplicated == redelivered as u64,
        "redeliveries",
        format!(
            "{redelivered} handled before the kill but after a checkpoint, {} deduplicated by the inbox",
            resumed.metrics.deduplicated
        ),
    );
    verification.check(
        resumed.dead_letters.is_empty(),
        "dead letters",
        format!("{}", resumed.dead_letters.len()),
    );
    Ok((after, verification))
}

/// The projection holds one row per stored batch event (count of rows = count of distinct
/// event ids = count of stored events), none missing, and each batch's event count.
fn check_projection(
    store: &SqliteStore,
    after: &Snapshot,
    verification: &mut Verification,
) -> Result<(), Error> {
    let conn = store.connection()?;
    let applied = projection::applied(&conn)?;
    let rows = projection::rows(&conn)?;
    let batch_events: Vec<&StoredEvent> = after
        .events
        .iter()
        .filter(|e| matches(GenerationEvents::EVENTS, e))
        .collect();
    let missing = batch_events
        .iter()
        .filter(|e| !applied.contains_key(&e.envelope.id.to_string()))
        .count();
    let twice = applied.values().filter(|&&n| n > 1).count();
    verification.check(
        rows == applied.len() as u64 && applied.len() == batch_events.len() && missing == 0,
        "projection",
        format!(
            "{rows} rows, {} distinct event ids, {} batch events stored, {missing} missing, {twice} applied twice",
            applied.len(),
            batch_events.len()
        ),
    );
    let mut per_batch: BTreeMap<String, u64> = BTreeMap::new();
    for event in &batch_events {
        if let Some(key) = event.envelope.partition_key() {
            *per_batch.entry(key.to_owned()).or_default() += 1;
        }
    }
    let batches = projection::batches(&conn)?;
    let states: Vec<String> = batches
        .iter()
        .map(|b| format!("{} {} {}%", b.batch_id, b.status, b.progress))
        .collect();
    let counted: BTreeMap<String, u64> = batches
        .iter()
        .map(|b| (b.batch_id.clone(), b.events))
        .collect();
    verification.check(
        counted == per_batch,
        "batches",
        format!("{} (event counts match the store)", states.join(", ")),
    );
    Ok(())
}

/// One narrative beat per trigger, one answer per suggestion request, each caused by it.
fn check_follow_ups(after: &Snapshot, verification: &mut Verification) {
    let mut caused: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for event in &after.events {
        if let Some(cause) = &event.envelope.causation_id {
            caused
                .entry(cause.as_str())
                .or_default()
                .push(event.envelope.event_type.as_str());
        }
    }
    // (events expected to cause one, events whose effects are not exactly what is expected)
    let mut beats = (0, 0);
    let mut answers = (0, 0);
    let mut triggers = BTreeSet::new();
    for event in &after.events {
        let id = event.envelope.id.to_string();
        let effects = caused.get(id.as_str()).map_or(&[][..], Vec::as_slice);
        if let Ok(env) = event.envelope.decode::<NarratorEvents>() {
            let expected = usize::from(subscribers::narrative_for(&env.payload).is_some());
            beats.0 += expected;
            beats.1 += usize::from(*effects != ["narrative.event_triggered"][..expected]);
            triggers.insert(id);
        } else if event.envelope.decode::<SuggestionRequests>().is_ok() {
            answers.0 += 1;
            answers.1 += usize::from(!matches!(
                effects,
                ["suggestion.completed" | "suggestion.failed"]
            ));
            triggers.insert(id);
        }
    }
    let stray = caused.keys().filter(|c| !triggers.contains(**c)).count();
    verification.check(
        beats.1 == 0 && stray == 0,
        "narrative beats",
        format!(
            "{} triggers, {} without exactly one narrative.event_triggered, {stray} follow-ups of nothing",
            beats.0, beats.1
        ),
    );
    verification.check(
        answers.1 == 0 && stray == 0,
        "suggestion answers",
        format!(
            "{} requests, {} without exactly one answer",
            answers.0, answers.1
        ),
    );
}
