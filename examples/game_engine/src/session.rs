//! The scripted game session: what the players, the DM and the creator's tools do, as the
//! 24 events the engine's services publish, in order.
//!
//! In the world `w-1` the party crosses the Sunken Archive: three scenes, four challenges,
//! two image batches (one completes, one fails) and four suggestion requests (one fails).
//! The narrator and the suggestion worker answer some of these with events of their own;
//! those are not steps of the script.

use crate::events::{
    ChallengeResolved, GenerationBatchCompleted, GenerationBatchFailed, GenerationBatchProgress,
    GenerationBatchQueued, StoryEventCreated, SuggestionQueued,
};
use event_core::{
    DomainEvent, Envelope, EventBus, EventUnion, PublishContext, PublishError, RawEnvelope,
};

/// The world the session is played in.
pub const WORLD: &str = "w-1";

/// The correlation id of every event of the session, follow-ups included.
pub const CORRELATION_ID: &str = "session-w-1";

/// One step of the script: an event a service of the engine publishes.
#[derive(Debug, Clone, PartialEq, Eq, EventUnion)]
pub enum Step {
    /// The story service recorded a story event.
    Story(StoryEventCreated),
    /// The game server resolved a challenge roll.
    Challenge(ChallengeResolved),
    /// The generation service queued an image batch.
    BatchQueued(GenerationBatchQueued),
    /// The generation service reported progress.
    BatchProgress(GenerationBatchProgress),
    /// A batch finished.
    BatchCompleted(GenerationBatchCompleted),
    /// A batch failed.
    BatchFailed(GenerationBatchFailed),
    /// The creator asked for suggestions.
    SuggestionQueued(SuggestionQueued),
}

impl Step {
    /// Publishes the step's event with the session's correlation id.
    ///
    /// # Errors
    ///
    /// As [`EventBus::publish_with`].
    pub async fn publish(&self, bus: &EventBus) -> Result<(), PublishError> {
        let context = PublishContext::new().correlation_id(CORRELATION_ID);
        match self.clone() {
            Step::Story(event) => publish(bus, context, event).await,
            Step::Challenge(event) => publish(bus, context, event).await,
            Step::BatchQueued(event) => publish(bus, context, event).await,
            Step::BatchProgress(event) => publish(bus, context, event).await,
            Step::BatchCompleted(event) => publish(bus, context, event).await,
            Step::BatchFailed(event) => publish(bus, context, event).await,
            Step::SuggestionQueued(event) => publish(bus, context, event).await,
        }
    }

    /// A few words: the event type and its subject, like `challenge.resolved c-2 (setback)`.
    pub fn label(&self) -> String {
        let (name, _) = self.event();
        let subject = match self {
            Step::Story(e) => format!("{} ({})", e.story_event_id, e.event_type),
            Step::Challenge(e) => {
                let outcome = if e.success { "success" } else { "failure" };
                format!("{} ({outcome})", e.challenge_id)
            }
            Step::BatchQueued(e) => format!("{} ({} {})", e.batch_id, e.entity_id, e.asset_type),
            Step::BatchProgress(e) => format!("{} ({}%)", e.batch_id, e.progress),
            Step::BatchCompleted(e) => format!("{} ({} assets)", e.batch_id, e.asset_count),
            Step::BatchFailed(e) => e.batch_id.clone(),
            Step::SuggestionQueued(e) => {
                format!("{} ({} of {})", e.request_id, e.field_type, e.entity_id)
            }
        };
        format!("{name} {subject}")
    }

    /// Whether a stored event is a step of the script: published by a service, not by a
    /// handler (which would have set its causation id).
    pub fn is_step(envelope: &RawEnvelope) -> bool {
        envelope.causation_id.is_none()
            && envelope.correlation_id.as_deref() == Some(CORRELATION_ID)
    }

    /// The step a stored event is, when it is one.
    pub fn from_stored(envelope: &RawEnvelope) -> Option<Step> {
        if !Step::is_step(envelope) {
            return None;
        }
        envelope
            .decode::<Step>()
            .ok()
            .map(|env: Envelope<Step>| env.payload)
    }
}

async fn publish<E: DomainEvent>(
    bus: &EventBus,
    context: PublishContext,
    event: E,
) -> Result<(), PublishError> {
    bus.publish_with(context, event).await.map(|_| ())
}

fn story(n: u32, event_type: &str, summary: &str) -> Step {
    Step::Story(StoryEventCreated {
        story_event_id: format!("se-{n}"),
        world_id: WORLD.to_owned(),
        event_type: event_type.to_owned(),
        summary: summary.to_owned(),
    })
}

fn challenge(n: u32, name: &str, character: &str, roll: i32, total: i32) -> Step {
    Step::Challenge(ChallengeResolved {
        challenge_id: format!("c-{n}"),
        challenge_name: name.to_owned(),
        world_id: WORLD.to_owned(),
        character_id: character.to_owned(),
        success: total >= 15,
        roll,
        total,
    })
}

fn queued(batch: &str, entity_type: &str, entity: &str, asset: &str, position: u32) -> Step {
    Step::BatchQueued(GenerationBatchQueued {
        batch_id: batch.to_owned(),
        entity_type: entity_type.to_owned(),
        entity_id: entity.to_owned(),
        asset_type: asset.to_owned(),
        position,
    })
}

fn progress(batch: &str, progress: u8) -> Step {
    Step::BatchProgress(GenerationBatchProgress {
        batch_id: batch.to_owned(),
        progress,
    })
}

fn suggestion(n: u32, field: &str, entity: &str) -> Step {
    Step::SuggestionQueued(SuggestionQueued {
        request_id: format!("s-{n}"),
        field_type: field.to_owned(),
        entity_id: entity.to_owned(),
    })
}

/// The session, step by step.
pub fn script() -> Vec<Step> {
    vec![
        story(1, "scene_transition", "The party reaches the Sunken Gate"),
        queued("b-1", "character", "npc-archivist", "portrait", 1),
        story(2, "dialogue", "The archivist warns of the tide"),
        suggestion(1, "name", "npc-archivist"),
        progress("b-1", 25),
        challenge(1, "Pick the gate lock", "ch-rin", 14, 17),
        progress("b-1", 50),
        story(3, "dialogue", "Rin slips through the gate"),
        queued("b-2", "location", "loc-archive", "backdrop", 2),
        suggestion(2, "description", "loc-archive"),
        progress("b-1", 75),
        challenge(2, "Decipher the runes", "ch-oda", 6, 8),
        progress("b-2", 30),
        story(4, "scene_transition", "The flooded reading room"),
        Step::BatchCompleted(GenerationBatchCompleted {
            batch_id: "b-1".to_owned(),
            entity_type: "character".to_owned(),
            entity_id: "npc-archivist".to_owned(),
            asset_type: "portrait".to_owned(),
            asset_count: 4,
        }),
        suggestion(3, "backstory", "npc-archivist"),
        progress("b-2", 60),
        challenge(3, "Hold your breath", "ch-rin", 18, 20),
        Step::BatchFailed(GenerationBatchFailed {
            batch_id: "b-2".to_owned(),
            entity_type: "location".to_owned(),
            entity_id: "loc-archive".to_owned(),
            asset_type: "backdrop".to_owned(),
            error: "the image worker ran out of memory".to_owned(),
        }),
        story(5, "dm_marker", "DM: the tide turns in three rounds"),
        suggestion(4, "name", "item-lantern"),
        challenge(4, "Outrun the tide", "ch-oda", 12, 15),
        story(6, "dialogue", "The archivist thanks the party"),
        story(7, "scene_transition", "Back on the shore"),
    ]
}

#[cfg(test)]
mod tests {
    use super::{Step, script};
    use crate::subscribers::{NarratorEvents, narrative_for};
    use event_core::Envelope;

    #[test]
    fn the_script_has_24_steps_and_7_narrative_beats() {
        let steps = script();
        assert_eq!(steps.len(), 24);
        let beats = steps
            .iter()
            .filter_map(|step| match step {
                Step::Story(e) => narrative_for(&NarratorEvents::Story(e.clone())),
                Step::Challenge(e) => narrative_for(&NarratorEvents::Challenge(e.clone())),
                _ => None,
            })
            .count();
        assert_eq!(beats, 7);
    }

    #[test]
    fn a_stored_step_reads_back_as_the_step() {
        let step = script().swap_remove(5);
        let Step::Challenge(event) = step.clone() else {
            panic!("step 6 is a challenge");
        };
        let mut envelope = Envelope::new(event);
        envelope.correlation_id = Some(super::CORRELATION_ID.into());
        let raw = envelope.to_raw().unwrap();
        assert_eq!(Step::from_stored(&raw), Some(step.clone()));
        assert_eq!(step.label(), "challenge.resolved c-1 (success)");
        envelope.causation_id = Some("a handler".into());
        assert_eq!(Step::from_stored(&envelope.to_raw().unwrap()), None);
    }
}
