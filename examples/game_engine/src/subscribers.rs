//! The engine's three consumers, each a durable subscription with its own way of handling an
//! event once although the bus delivers it at least once:
//!
//! | subscription | handles | effect | handled once by |
//! |---|---|---|---|
//! | `narrator` | story events, challenges | a `narrative.event_triggered` follow-up | its follow-up and its inbox claim in one transaction (`append_in` + `claim_in`) |
//! | `generation-tracker` | image batches | the [`projection`] | its rows and its inbox claim in one transaction (`claim_in`) |
//! | `suggestion-worker` | suggestion requests | `suggestion.completed` or `.failed` | the bus's automatic claim, and a look at the request's timeline before answering |
//!
//! The first two claim the event themselves, on their own connection to the store's file,
//! and skip it when the claim says it was claimed before: a replay, or a delivery racing
//! one from before a restart, then changes nothing. The bus's own claim after the handler
//! returns finds the claim already there.
//!
//! The worker's effect is an event published through the bus, which the bus claims after
//! the handler returns; a crash between the two would deliver the request again, so the
//! worker first looks for an answer it already published.

use crate::events::{
    ChallengeResolved, GenerationBatchCompleted, GenerationBatchFailed, GenerationBatchProgress,
    GenerationBatchQueued, NarrativeEventTriggered, StoryEventCreated, SuggestionCompleted,
    SuggestionFailed, SuggestionQueued,
};
use crate::{Error, projection};
use event_core::store::rusqlite::{Connection, Transaction, TransactionBehavior};
use event_core::store::{SqliteStore, Store, TimelineQuery};
use event_core::{Envelope, EventBus, EventUnion, HandlerError};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use uuid::Uuid;

/// The narrator's subscription name.
pub const NARRATOR: &str = "narrator";
/// The generation tracker's subscription name.
pub const GENERATION_TRACKER: &str = "generation-tracker";
/// The suggestion worker's subscription name.
pub const SUGGESTION_WORKER: &str = "suggestion-worker";

/// Every subscription, with the `(type, version)` pairs it handles, in the order they are
/// reported.
pub const SUBSCRIPTIONS: [(&str, &[(&str, u32)]); 3] = [
    (NARRATOR, NarratorEvents::EVENTS),
    (GENERATION_TRACKER, GenerationEvents::EVENTS),
    (SUGGESTION_WORKER, SuggestionRequests::EVENTS),
];

/// What the narrator reacts to: the story as it is played.
#[derive(Debug, Clone, PartialEq, Eq, EventUnion)]
#[union(consumer = "narrator")]
pub enum NarratorEvents {
    /// A story event; scene transitions open a narrative beat.
    Story(StoryEventCreated),
    /// A challenge; its outcome is a narrative beat.
    Challenge(ChallengeResolved),
}

/// What the generation tracker projects: the image batches.
#[derive(Debug, Clone, PartialEq, Eq, EventUnion)]
#[union(consumer = "generation-tracker")]
pub enum GenerationEvents {
    /// Entered the queue.
    Queued(GenerationBatchQueued),
    /// Progressed.
    Progress(GenerationBatchProgress),
    /// Finished.
    Completed(GenerationBatchCompleted),
    /// Failed.
    Failed(GenerationBatchFailed),
}

/// What the suggestion worker answers: requests for text suggestions.
#[derive(Debug, Clone, PartialEq, Eq, EventUnion)]
#[union(consumer = "suggestion-worker")]
pub enum SuggestionRequests {
    /// A request.
    Queued(SuggestionQueued),
}

/// The narrative beat an event opens, if any: scene transitions and every challenge do;
/// dialogue and DM markers do not.
pub fn narrative_for(event: &NarratorEvents) -> Option<NarrativeEventTriggered> {
    match event {
        NarratorEvents::Story(story) if story.event_type == "scene_transition" => {
            Some(NarrativeEventTriggered {
                event_id: format!("ne-{}", story.story_event_id),
                world_id: story.world_id.clone(),
                event_name: format!("Scene: {}", story.summary),
                outcome_name: "scene_opened".to_owned(),
            })
        }
        NarratorEvents::Story(_) => None,
        NarratorEvents::Challenge(challenge) => Some(NarrativeEventTriggered {
            event_id: format!("ne-{}", challenge.challenge_id),
            world_id: challenge.world_id.clone(),
            event_name: challenge.challenge_name.clone(),
            outcome_name: if challenge.success {
                "overcome"
            } else {
                "setback"
            }
            .to_owned(),
        }),
    }
}

/// The simulated LLM's answer to a request: suggestions, or why there are none. Backstories
/// time out; everything else gets three suggestions.
///
/// # Errors
///
/// The failure the worker reports as `suggestion.failed`.
pub fn answer(request: &SuggestionQueued) -> Result<Vec<String>, String> {
    if request.field_type == "backstory" {
        return Err("the model timed out after 30 s".to_owned());
    }
    Ok((1..=3)
        .map(|n| format!("{} {} #{n}", request.entity_id, request.field_type))
        .collect())
}

/// What one subscriber did in this process.
#[derive(Debug, Default)]
pub struct Counters {
    handled: AtomicU64,
    skipped: AtomicU64,
}

impl Counters {
    /// Events handled: their effect applied, and claimed.
    pub fn handled(&self) -> u64 {
        self.handled.load(Relaxed)
    }

    /// Deliveries whose effect was skipped because it had happened before: a claim that
    /// was already there, or an answer already published.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Relaxed)
    }
}

/// The counters of the three subscribers, in the order of [`SUBSCRIPTIONS`].
#[derive(Debug, Clone, Default)]
pub struct Subscribers {
    /// The narrator's.
    pub narrator: Arc<Counters>,
    /// The generation tracker's.
    pub generation_tracker: Arc<Counters>,
    /// The suggestion worker's.
    pub suggestion_worker: Arc<Counters>,
}

impl Subscribers {
    /// The counters of the subscription `name`.
    pub fn get(&self, name: &str) -> Option<&Counters> {
        match name {
            NARRATOR => Some(&self.narrator),
            GENERATION_TRACKER => Some(&self.generation_tracker),
            SUGGESTION_WORKER => Some(&self.suggestion_worker),
            _ => None,
        }
    }
}

/// Subscribes the three consumers to a durable bus over `store`. The worker takes
/// `thinking` to answer each request.
///
/// # Errors
///
/// [`Error`] when a connection to the store's file cannot be opened or a subscription is
/// refused.
pub fn subscribe(
    bus: &EventBus,
    store: &SqliteStore,
    thinking: Duration,
) -> Result<Subscribers, Error> {
    let counters = Subscribers::default();
    narrator(bus, store, Arc::clone(&counters.narrator))?;
    generation_tracker(bus, store, Arc::clone(&counters.generation_tracker))?;
    suggestion_worker(
        bus,
        store,
        thinking,
        Arc::clone(&counters.suggestion_worker),
    )?;
    Ok(counters)
}

/// A connection of a handler's own, used by one blocking task at a time.
type Shared = Arc<Mutex<Connection>>;

/// Runs `work` in a transaction that first claims the event for `subscription`: commits
/// when the claim is new and `work` succeeds; returns `false`, writing nothing, when the
/// event was claimed before.
async fn claim_and<F>(
    conn: &Shared,
    subscription: &'static str,
    event_id: Uuid,
    work: F,
) -> Result<bool, HandlerError>
where
    F: FnOnce(&Transaction<'_>) -> Result<(), Error> + Send + 'static,
{
    let conn = Arc::clone(conn);
    let claimed = tokio::task::spawn_blocking(move || -> Result<bool, Error> {
        let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
        // Immediate: take the write lock first, so the claim never fails halfway for a
        // writer that came in between.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !SqliteStore::claim_in(&tx, subscription, event_id)? {
            return Ok(false); // dropping `tx` rolls it back
        }
        work(&tx)?;
        tx.commit()?;
        Ok(true)
    })
    .await??;
    Ok(claimed)
}

fn count(counters: &Counters, claimed: bool) {
    let counter = if claimed {
        &counters.handled
    } else {
        &counters.skipped
    };
    counter.fetch_add(1, Relaxed);
}

/// The narrator: writes the narrative beat an event opens into the store (the
/// transactional outbox) together with its claim. The bus finds the follow-ups by polling.
fn narrator(bus: &EventBus, store: &SqliteStore, counters: Arc<Counters>) -> Result<(), Error> {
    let conn: Shared = Arc::new(Mutex::new(store.connection()?));
    bus.subscribe::<NarratorEvents, _, _>(NARRATOR, move |env| {
        let conn = Arc::clone(&conn);
        let counters = Arc::clone(&counters);
        async move {
            let follow_up = match narrative_for(&env.payload) {
                Some(beat) => {
                    let mut follow_up = Envelope::new(beat);
                    follow_up.correlation_id.clone_from(&env.correlation_id);
                    follow_up.causation_id = Some(env.id.to_string().into());
                    Some(follow_up.to_raw()?)
                }
                None => None,
            };
            let claimed = claim_and(&conn, NARRATOR, env.id, move |tx| {
                if let Some(follow_up) = follow_up {
                    SqliteStore::append_in(tx, &[follow_up])?;
                }
                Ok(())
            })
            .await?;
            count(&counters, claimed);
            Ok(())
        }
    })?;
    Ok(())
}

/// The generation tracker: applies each batch event to the [`projection`] together with
/// its claim.
fn generation_tracker(
    bus: &EventBus,
    store: &SqliteStore,
    counters: Arc<Counters>,
) -> Result<(), Error> {
    let conn: Shared = Arc::new(Mutex::new(store.connection()?));
    bus.subscribe::<GenerationEvents, _, _>(GENERATION_TRACKER, move |env| {
        let conn = Arc::clone(&conn);
        let counters = Arc::clone(&counters);
        async move {
            let event_id = env.id;
            let now = now_millis();
            let claimed = claim_and(&conn, GENERATION_TRACKER, event_id, move |tx| {
                Ok(projection::apply(
                    tx,
                    &event_id.to_string(),
                    &env.payload,
                    now,
                )?)
            })
            .await?;
            count(&counters, claimed);
            Ok(())
        }
    })?;
    Ok(())
}

/// The suggestion worker: "thinks", then publishes the answer through the bus, unless the
/// request's timeline already holds an answer to this very event.
fn suggestion_worker(
    bus: &EventBus,
    store: &SqliteStore,
    thinking: Duration,
    counters: Arc<Counters>,
) -> Result<(), Error> {
    let publisher = bus.clone();
    let store = store.clone();
    bus.subscribe::<SuggestionRequests, _, _>(SUGGESTION_WORKER, move |env| {
        let bus = publisher.clone();
        let store = store.clone();
        let counters = Arc::clone(&counters);
        async move {
            let SuggestionRequests::Queued(request) = &env.payload;
            if answered(&store, &request.request_id, env.id).await? {
                counters.skipped.fetch_add(1, Relaxed);
            } else {
                tokio::time::sleep(thinking).await;
                // Inside a handler, publish sets the causation id to the request's event.
                match answer(request) {
                    Ok(suggestions) => {
                        bus.publish(SuggestionCompleted {
                            request_id: request.request_id.clone(),
                            field_type: request.field_type.clone(),
                            suggestions,
                        })
                        .await?;
                    }
                    Err(error) => {
                        bus.publish(SuggestionFailed {
                            request_id: request.request_id.clone(),
                            field_type: request.field_type.clone(),
                            error,
                        })
                        .await?;
                    }
                }
            }
            counters.handled.fetch_add(1, Relaxed);
            Ok(())
        }
    })?;
    Ok(())
}

/// Whether the request's timeline holds an answer caused by the event `cause`.
async fn answered(store: &SqliteStore, request_id: &str, cause: Uuid) -> Result<bool, Error> {
    let cause = cause.to_string();
    let mut query = TimelineQuery::partition(request_id).type_prefix("suggestion.");
    loop {
        let page = store.timeline(&query).await?;
        if page
            .events
            .iter()
            .any(|event| event.envelope.causation_id.as_deref() == Some(cause.as_str()))
        {
            return Ok(true);
        }
        match page.next_cursor {
            Some(cursor) => query = query.cursor(cursor),
            None => return Ok(false),
        }
    }
}

/// Now, in Unix milliseconds.
fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::{NarratorEvents, answer, narrative_for};
    use crate::events::{ChallengeResolved, StoryEventCreated, SuggestionQueued};

    fn story(event_type: &str) -> NarratorEvents {
        NarratorEvents::Story(StoryEventCreated {
            story_event_id: "se-1".into(),
            world_id: "w-1".into(),
            event_type: event_type.into(),
            summary: "The gate".into(),
        })
    }

    #[test]
    fn scene_transitions_and_challenges_open_a_beat() {
        let beat = narrative_for(&story("scene_transition")).unwrap();
        assert_eq!(
            (beat.event_id.as_str(), beat.event_name.as_str()),
            ("ne-se-1", "Scene: The gate")
        );
        assert_eq!(narrative_for(&story("dialogue")), None);
        let challenge = NarratorEvents::Challenge(ChallengeResolved {
            challenge_id: "c-1".into(),
            challenge_name: "Pick the lock".into(),
            world_id: "w-1".into(),
            character_id: "ch-1".into(),
            success: false,
            roll: 3,
            total: 5,
        });
        assert_eq!(narrative_for(&challenge).unwrap().outcome_name, "setback");
    }

    #[test]
    fn backstories_time_out() {
        let request = |field: &str| SuggestionQueued {
            request_id: "s-1".into(),
            field_type: field.into(),
            entity_id: "npc-1".into(),
        };
        assert!(answer(&request("backstory")).is_err());
        assert_eq!(answer(&request("name")).unwrap()[0], "npc-1 name #1");
    }
}
