//! The chat bot's event catalog: guild presence from the Discord gateway, and the AI
//! service's calls and circuit breaker.
//!
//! Payload keys are camelCase on the wire (`memberCount`, `latencyMs`, `failureRate`,
//! `recentFailures`), as the bot's existing JavaScript consumers read them.
//!
//! | type | purpose | source | partitioned by |
//! |---|---|---|---|
//! | `guild.connected` | guild presence updated | `discord-service` | `id` |
//! | `guild.disconnected` | guild removed | `discord-service` | `id` |
//! | `ai.call.success` | successful AI call | `ai-service` | `provider` |
//! | `ai.call.failure` | failed AI call (final) | `ai-service` | `provider` |
//! | `ai.breaker.open` | circuit breaker tripped | `ai-service` | `provider` |
//! | `ai.breaker.half_open` | trial state entered | `ai-service` | `provider` |
//! | `ai.breaker.closed` | breaker reset | `ai-service` | `provider` |

use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Guild presence updated: the bot joined a guild or refreshed what it knows about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[serde(rename_all = "camelCase")]
#[event(
    name = "guild.connected",
    source = "discord-service",
    aggregate = "guild"
)]
pub struct GuildConnected {
    /// The guild's Discord snowflake id.
    #[event(partition_key)]
    pub id: String,
    /// The guild's display name.
    pub name: String,
    /// How many members the guild has.
    pub member_count: u32,
}

/// Guild removed: the bot left the guild or was kicked from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[serde(rename_all = "camelCase")]
#[event(
    name = "guild.disconnected",
    source = "discord-service",
    aggregate = "guild"
)]
pub struct GuildDisconnected {
    /// The guild's Discord snowflake id.
    #[event(partition_key)]
    pub id: String,
}

/// Successful AI call: the provider answered, possibly after retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[serde(rename_all = "camelCase")]
#[event(name = "ai.call.success", source = "ai-service")]
pub struct AiCallSuccess {
    /// The AI provider called, like `openrouter`.
    #[event(partition_key)]
    pub provider: String,
    /// The model that answered.
    pub model: String,
    /// The provider's time across every attempt of the call, in milliseconds.
    pub latency_ms: u64,
    /// How many attempts the call took, at least 1.
    pub attempts: u32,
}

/// Failed AI call (final): every attempt failed, or the circuit breaker refused the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[serde(rename_all = "camelCase")]
#[event(name = "ai.call.failure", source = "ai-service")]
pub struct AiCallFailure {
    /// The AI provider called.
    #[event(partition_key)]
    pub provider: String,
    /// The model asked for.
    pub model: String,
    /// Why the last attempt failed, like `upstream_unavailable`; `circuit_open` when the
    /// breaker refused the call without asking the provider.
    pub code: String,
    /// How many attempts were made; 0 when the breaker refused the call.
    pub attempts: u32,
}

/// Circuit breaker tripped: calls to the provider are refused until the cool-down ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[serde(rename_all = "camelCase")]
#[event(name = "ai.breaker.open", source = "ai-service")]
pub struct AiBreakerOpen {
    /// The provider whose calls are refused.
    #[event(partition_key)]
    pub provider: String,
    /// The share of failed calls among the recent ones that tripped it, from 0 to 1.
    pub failure_rate: f64,
    /// How many of the recent calls failed.
    pub recent_failures: u32,
}

/// Trial state entered: the cool-down ended and the next call to the provider is a trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[serde(rename_all = "camelCase")]
#[event(name = "ai.breaker.half_open", source = "ai-service")]
pub struct AiBreakerHalfOpen {
    /// The provider on trial.
    #[event(partition_key)]
    pub provider: String,
}

/// Breaker reset: a trial call succeeded and calls to the provider flow again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[serde(rename_all = "camelCase")]
#[event(name = "ai.breaker.closed", source = "ai-service")]
pub struct AiBreakerClosed {
    /// The provider whose calls flow again.
    #[event(partition_key)]
    pub provider: String,
}

#[cfg(test)]
mod tests {
    use super::{AiBreakerOpen, AiCallSuccess, GuildConnected};
    use event_core::DomainEvent;

    #[test]
    fn the_catalog_is_the_seven_events_with_their_sources() {
        let registry = event_core::registry().unwrap();
        let actual: Vec<(&str, Option<&str>, Option<&str>)> = registry
            .iter()
            .map(|d| (d.name(), d.source(), d.partition_key()))
            .collect();
        assert_eq!(
            actual,
            [
                ("ai.breaker.closed", Some("ai-service"), Some("provider")),
                ("ai.breaker.half_open", Some("ai-service"), Some("provider")),
                ("ai.breaker.open", Some("ai-service"), Some("provider")),
                ("ai.call.failure", Some("ai-service"), Some("provider")),
                ("ai.call.success", Some("ai-service"), Some("provider")),
                ("guild.connected", Some("discord-service"), Some("id")),
                ("guild.disconnected", Some("discord-service"), Some("id")),
            ]
        );
        assert!(
            registry
                .iter()
                .all(|d| d.description().is_some_and(|text| !text.is_empty()))
        );
    }

    #[test]
    fn payload_keys_are_camel_case_as_in_the_seed() {
        let guild = GuildConnected {
            id: "g-1".into(),
            name: "Rustaceans".into(),
            member_count: 42,
        };
        assert_eq!(
            serde_json::to_value(&guild).unwrap(),
            serde_json::json!({"id": "g-1", "name": "Rustaceans", "memberCount": 42})
        );
        let success = AiCallSuccess {
            provider: "p".into(),
            model: "m".into(),
            latency_ms: 120,
            attempts: 1,
        };
        assert_eq!(serde_json::to_value(&success).unwrap()["latencyMs"], 120);
        let open = AiBreakerOpen {
            provider: "p".into(),
            failure_rate: 0.75,
            recent_failures: 3,
        };
        let json = serde_json::to_value(&open).unwrap();
        assert_eq!(
            (
                json["failureRate"].as_f64(),
                json["recentFailures"].as_u64()
            ),
            (Some(0.75), Some(3))
        );
        assert_eq!(open.partition_key().as_deref(), Some("p"));
    }
}
