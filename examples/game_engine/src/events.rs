//! The game engine's event catalog: facts about the story being played, and about the
//! generation queues (images in batches, text suggestions from an LLM) that serve the
//! creator's tools.
//!
//! Payloads carry ids and small values only, never whole domain objects. Events of the story
//! are partitioned by world, so a world's story is delivered in order; those of the queues by
//! batch or request.
//!
//! | type | purpose | source | partitioned by |
//! |---|---|---|---|
//! | `story.event_created` | a story event was recorded | `story-service` | `world_id` |
//! | `narrative.event_triggered` | a narrative event fired | `narrative-service` | `world_id` |
//! | `challenge.resolved` | a challenge roll was resolved | `game-server` | `world_id` |
//! | `generation.batch_queued` | an image batch entered the queue | `generation-service` | `batch_id` |
//! | `generation.batch_progress` | an image batch progressed | `generation-service` | `batch_id` |
//! | `generation.batch_completed` | an image batch finished | `generation-service` | `batch_id` |
//! | `generation.batch_failed` | an image batch failed | `generation-service` | `batch_id` |
//! | `suggestion.queued` | a text suggestion was requested | `llm-queue` | `request_id` |
//! | `suggestion.completed` | suggestions are ready | `llm-queue` | `request_id` |
//! | `suggestion.failed` | the suggestion request failed | `llm-queue` | `request_id` |
//!
//! The consumers, each an enum matched exhaustively, are in [`crate::subscribers`].

use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A story event was recorded: a line of dialogue, a scene transition, a DM marker...
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(
    name = "story.event_created",
    source = "story-service",
    aggregate = "story"
)]
pub struct StoryEventCreated {
    /// The recorded story event.
    pub story_event_id: String,
    /// The world whose story it belongs to.
    #[event(partition_key)]
    pub world_id: String,
    /// What kind of story event: `dialogue`, `scene_transition`, `dm_marker`.
    pub event_type: String,
    /// A one-line summary for the story timeline.
    pub summary: String,
}

/// A narrative event fired: a scripted beat of the story arc, whose outcome is now known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(
    name = "narrative.event_triggered",
    source = "narrative-service",
    aggregate = "narrative_event"
)]
pub struct NarrativeEventTriggered {
    /// The narrative event.
    pub event_id: String,
    /// The world it fired in.
    #[event(partition_key)]
    pub world_id: String,
    /// Its name, like `Act I: The Sunken Gate`.
    pub event_name: String,
    /// The outcome chosen, like `gate_opened`.
    pub outcome_name: String,
}

/// A challenge roll was resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(
    name = "challenge.resolved",
    source = "game-server",
    aggregate = "challenge"
)]
pub struct ChallengeResolved {
    /// The challenge.
    pub challenge_id: String,
    /// Its display name.
    pub challenge_name: String,
    /// The world it was rolled in.
    #[event(partition_key)]
    pub world_id: String,
    /// The character who rolled.
    pub character_id: String,
    /// Whether the total met the difficulty.
    pub success: bool,
    /// The die roll.
    pub roll: i32,
    /// The roll plus modifiers.
    pub total: i32,
}

/// An image generation batch entered the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(
    name = "generation.batch_queued",
    source = "generation-service",
    aggregate = "generation_batch"
)]
pub struct GenerationBatchQueued {
    /// The batch.
    #[event(partition_key)]
    pub batch_id: String,
    /// What the images are for: `character`, `location`, `item`.
    pub entity_type: String,
    /// The character, location or item.
    pub entity_id: String,
    /// The kind of asset: `portrait`, `backdrop`, `sprite`.
    pub asset_type: String,
    /// Its place in the queue, 1 for the next one.
    pub position: u32,
}

/// An image generation batch progressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(
    name = "generation.batch_progress",
    source = "generation-service",
    aggregate = "generation_batch"
)]
pub struct GenerationBatchProgress {
    /// The batch.
    #[event(partition_key)]
    pub batch_id: String,
    /// How far it is, in percent.
    pub progress: u8,
}

/// An image generation batch finished: its assets are ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(
    name = "generation.batch_completed",
    source = "generation-service",
    aggregate = "generation_batch"
)]
pub struct GenerationBatchCompleted {
    /// The batch.
    #[event(partition_key)]
    pub batch_id: String,
    /// What the images are for.
    pub entity_type: String,
    /// The character, location or item.
    pub entity_id: String,
    /// The kind of asset.
    pub asset_type: String,
    /// How many assets it produced.
    pub asset_count: u32,
}

/// An image generation batch failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(
    name = "generation.batch_failed",
    source = "generation-service",
    aggregate = "generation_batch"
)]
pub struct GenerationBatchFailed {
    /// The batch.
    #[event(partition_key)]
    pub batch_id: String,
    /// What the images were for.
    pub entity_type: String,
    /// The character, location or item.
    pub entity_id: String,
    /// The kind of asset.
    pub asset_type: String,
    /// Why it failed.
    pub error: String,
}

/// A text suggestion was requested for a field of an entity ("AI Suggest").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(
    name = "suggestion.queued",
    source = "llm-queue",
    aggregate = "suggestion"
)]
pub struct SuggestionQueued {
    /// The request.
    #[event(partition_key)]
    pub request_id: String,
    /// The field to suggest for: `name`, `description`, `backstory`...
    pub field_type: String,
    /// The entity whose field it is.
    pub entity_id: String,
}

/// The suggestions of a request are ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(
    name = "suggestion.completed",
    source = "llm-queue",
    aggregate = "suggestion"
)]
pub struct SuggestionCompleted {
    /// The request.
    #[event(partition_key)]
    pub request_id: String,
    /// The field suggested for.
    pub field_type: String,
    /// The suggestions, best first.
    pub suggestions: Vec<String>,
}

/// A suggestion request failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(
    name = "suggestion.failed",
    source = "llm-queue",
    aggregate = "suggestion"
)]
pub struct SuggestionFailed {
    /// The request.
    #[event(partition_key)]
    pub request_id: String,
    /// The field asked for.
    pub field_type: String,
    /// Why it failed.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::GenerationBatchProgress;
    use event_core::DomainEvent;

    #[test]
    fn the_catalog_is_the_ten_events_with_their_sources_and_keys() {
        let registry = event_core::registry().unwrap();
        let actual: Vec<(&str, Option<&str>, Option<&str>)> = registry
            .iter()
            .map(|d| (d.name(), d.source(), d.partition_key()))
            .collect();
        let generation = Some("generation-service");
        assert_eq!(
            actual,
            [
                ("challenge.resolved", Some("game-server"), Some("world_id")),
                ("generation.batch_completed", generation, Some("batch_id")),
                ("generation.batch_failed", generation, Some("batch_id")),
                ("generation.batch_progress", generation, Some("batch_id")),
                ("generation.batch_queued", generation, Some("batch_id")),
                (
                    "narrative.event_triggered",
                    Some("narrative-service"),
                    Some("world_id")
                ),
                (
                    "story.event_created",
                    Some("story-service"),
                    Some("world_id")
                ),
                (
                    "suggestion.completed",
                    Some("llm-queue"),
                    Some("request_id")
                ),
                ("suggestion.failed", Some("llm-queue"), Some("request_id")),
                ("suggestion.queued", Some("llm-queue"), Some("request_id")),
            ]
        );
        assert!(
            registry
                .iter()
                .all(|d| d.description().is_some_and(|text| !text.is_empty()))
        );
    }

    #[test]
    fn the_partition_key_is_the_batch() {
        let progress = GenerationBatchProgress {
            batch_id: "b-1".into(),
            progress: 40,
        };
        assert_eq!(progress.partition_key().as_deref(), Some("b-1"));
        assert_eq!(
            serde_json::to_value(&progress).unwrap(),
            serde_json::json!({"batch_id": "b-1", "progress": 40})
        );
    }
}
