//! The AI side of the bot: a simulated provider, and the greeter that asks it to welcome
//! each new guild, reporting every call as `ai.call.success` or `ai.call.failure`.

use crate::breaker::{CircuitBreaker, REFUSED};
use crate::events::{AiCallFailure, AiCallSuccess, GuildConnected, GuildDisconnected};
use event_core::{DomainEvent, Envelope, EventBus, EventUnion, HandlerError, SubscribeError};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError};

/// The provider's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// What the model wrote.
    pub text: String,
    /// How long the provider took, in milliseconds.
    pub latency_ms: u64,
}

/// The provider's failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    /// A machine-readable reason, like `upstream_unavailable`.
    pub code: &'static str,
    /// How long the provider took to fail, in milliseconds.
    pub latency_ms: u64,
}

/// A stand-in for an AI provider, deterministic: the first `fail_first` calls fail with
/// `upstream_unavailable` after 30 ms, every later one succeeds after 120 ms. The latencies
/// are reported, not slept.
#[derive(Debug)]
pub struct SimulatedProvider {
    name: String,
    model: String,
    fail_first: u32,
    calls: AtomicU32,
}

impl SimulatedProvider {
    /// Simulated latency of a failing call, in milliseconds.
    pub const FAILURE_LATENCY_MS: u64 = 30;
    /// Simulated latency of a successful call, in milliseconds.
    pub const SUCCESS_LATENCY_MS: u64 = 120;

    /// A provider that fails its first `fail_first` calls.
    pub fn new(name: &str, model: &str, fail_first: u32) -> Self {
        SimulatedProvider {
            name: name.to_owned(),
            model: model.to_owned(),
            fail_first,
            calls: AtomicU32::new(0),
        }
    }

    /// The provider's name, as in the events.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The model it answers with.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// How many calls it received.
    pub fn calls(&self) -> u32 {
        self.calls.load(SeqCst)
    }

    /// Asks the model for a one-sentence welcome to a guild.
    ///
    /// # Errors
    ///
    /// `upstream_unavailable` for the first `fail_first` calls.
    pub fn write_greeting(&self, guild_name: &str) -> Result<Completion, ProviderError> {
        let call = self.calls.fetch_add(1, SeqCst) + 1;
        if call <= self.fail_first {
            return Err(ProviderError {
                code: "upstream_unavailable",
                latency_ms: Self::FAILURE_LATENCY_MS,
            });
        }
        Ok(Completion {
            text: format!("Hello, {guild_name}! I'm here to help: just mention me."),
            latency_ms: Self::SUCCESS_LATENCY_MS,
        })
    }
}

/// What the greeter listens to: guild presence.
#[derive(Debug, Clone, EventUnion)]
#[union(consumer = "greeter")]
pub enum GuildEvents {
    /// A guild connected: greet it if it is new.
    Connected(GuildConnected),
    /// A guild left: forget it, so it is greeted again if it comes back.
    Disconnected(GuildDisconnected),
}

/// Greets each new guild with a message written by the AI provider, through the circuit
/// breaker, retrying a failed call up to `max_attempts` times in all.
///
/// Every call ends in one event, published inside the `guild.connected` handler, so it
/// carries the guild event's correlation id: `ai.call.success`, or `ai.call.failure` with
/// the last error's code (`circuit_open` and 0 attempts when the breaker refused the call).
/// A failed greeting is final: the event says so, and the handler succeeds.
#[derive(Clone)]
pub struct Greeter {
    inner: Arc<Inner>,
}

struct Inner {
    bus: EventBus,
    breaker: CircuitBreaker,
    provider: Arc<SimulatedProvider>,
    max_attempts: u32,
    /// Guilds connected and not disconnected since.
    known: Mutex<HashSet<String>>,
    /// The greetings written, by correlation id of the request.
    greetings: Mutex<HashMap<String, String>>,
}

impl fmt::Debug for Greeter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Greeter")
            .field("provider", &self.inner.provider)
            .field("max_attempts", &self.inner.max_attempts)
            .finish_non_exhaustive()
    }
}

impl Greeter {
    /// The name of its subscription.
    pub const SUBSCRIPTION: &str = "greeter";

    /// Subscribes a greeter to guild events on `bus`.
    ///
    /// # Errors
    ///
    /// When the subscription name is taken or the bus is shut down.
    pub fn start(
        bus: &EventBus,
        breaker: CircuitBreaker,
        provider: Arc<SimulatedProvider>,
        max_attempts: u32,
    ) -> Result<Self, SubscribeError> {
        let greeter = Greeter {
            inner: Arc::new(Inner {
                bus: bus.clone(),
                breaker,
                provider,
                max_attempts: max_attempts.max(1),
                known: Mutex::new(HashSet::new()),
                greetings: Mutex::new(HashMap::new()),
            }),
        };
        let handler = greeter.clone();
        bus.subscribe::<GuildEvents, _, _>(Self::SUBSCRIPTION, move |env| {
            let greeter = handler.clone();
            async move { greeter.handle(env).await }
        })?;
        Ok(greeter)
    }

    /// The greeting written for the request with this correlation id. Stored before its
    /// `ai.call.success` is published, so it is there once that event is.
    pub fn greeting(&self, correlation_id: &str) -> Option<String> {
        self.inner
            .greetings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(correlation_id)
            .cloned()
    }

    async fn handle(&self, env: Envelope<GuildEvents>) -> Result<(), HandlerError> {
        let known = || {
            self.inner
                .known
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        match env.payload {
            GuildEvents::Connected(guild) => {
                if known().insert(guild.id.clone()) {
                    self.greet(&guild, env.correlation_id.as_deref()).await?;
                }
            }
            GuildEvents::Disconnected(guild) => {
                known().remove(&guild.id);
            }
        }
        Ok(())
    }

    async fn greet(
        &self,
        guild: &GuildConnected,
        correlation_id: Option<&str>,
    ) -> Result<(), HandlerError> {
        let inner = &self.inner;
        let (provider, model) = (inner.provider.name(), inner.provider.model());
        if !inner.breaker.try_call(provider) {
            return self
                .report(AiCallFailure {
                    provider: provider.to_owned(),
                    model: model.to_owned(),
                    code: REFUSED.to_owned(),
                    attempts: 0,
                })
                .await;
        }
        let mut latency_ms = 0;
        let mut code = "";
        for attempt in 1..=inner.max_attempts {
            match inner.provider.write_greeting(&guild.name) {
                Ok(completion) => {
                    latency_ms += completion.latency_ms;
                    if let Some(id) = correlation_id {
                        inner
                            .greetings
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(id.to_owned(), completion.text);
                    }
                    return self
                        .report(AiCallSuccess {
                            provider: provider.to_owned(),
                            model: model.to_owned(),
                            latency_ms,
                            attempts: attempt,
                        })
                        .await;
                }
                Err(error) => {
                    latency_ms += error.latency_ms;
                    code = error.code;
                }
            }
        }
        self.report(AiCallFailure {
            provider: provider.to_owned(),
            model: model.to_owned(),
            code: code.to_owned(),
            attempts: inner.max_attempts,
        })
        .await
    }

    /// Publishes a call's outcome. Not publishing is permanent: a retry would call the
    /// provider again for a call that is over.
    async fn report<E: DomainEvent>(&self, outcome: E) -> Result<(), HandlerError> {
        self.inner.bus.publish(outcome).await.map_err(|error| {
            HandlerError::permanent(format!("`{}` not published: {error}", E::NAME))
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Greeter, SimulatedProvider};
    use crate::breaker::{BreakerConfig, CircuitBreaker};
    use crate::events::{AiCallFailure, AiCallSuccess, GuildConnected, GuildDisconnected};
    use event_core::testing::HandlerTest;
    use event_core::{EventBus, PublishContext};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn the_provider_fails_exactly_its_first_calls() {
        let provider = SimulatedProvider::new("p", "m", 2);
        let outcomes: Vec<bool> = (0..4)
            .map(|_| provider.write_greeting("G").is_ok())
            .collect();
        assert_eq!(outcomes, [false, false, true, true]);
        assert_eq!(provider.calls(), 4);
    }

    fn guild(id: &str) -> GuildConnected {
        GuildConnected {
            id: id.into(),
            name: format!("Guild {id}"),
            member_count: 10,
        }
    }

    #[tokio::test]
    async fn a_success_after_a_retry_reports_both_attempts_and_their_latency() {
        let test = HandlerTest::new();
        let bus = test.bus();
        let breaker = CircuitBreaker::start(&bus, BreakerConfig::default()).unwrap();
        let provider = Arc::new(SimulatedProvider::new("p", "m", 1));
        let greeter = Greeter::start(&bus, breaker, provider, 2).unwrap();
        let outcome = test
            .when(guild("g-1"), |env| {
                greeter.handle(env.with_payload(env.payload.clone().into()))
            })
            .await;
        outcome.assert_published(&[AiCallSuccess {
            provider: "p".into(),
            model: "m".into(),
            latency_ms: 30 + 120,
            attempts: 2,
        }]);
        let correlation_id = outcome.trigger.correlation_id.as_deref().unwrap();
        assert_eq!(
            greeter.greeting(correlation_id).as_deref(),
            Some("Hello, Guild g-1! I'm here to help: just mention me.")
        );
    }

    #[tokio::test]
    async fn only_new_guilds_are_greeted() {
        let bus = EventBus::builder().build();
        let breaker = CircuitBreaker::start(&bus, BreakerConfig::default()).unwrap();
        let provider = Arc::new(SimulatedProvider::new("p", "m", 0));
        let _greeter = Greeter::start(&bus, breaker, Arc::clone(&provider), 2).unwrap();
        let wait = Duration::from_secs(5);
        let ctx = |id: &str| PublishContext::new().correlation_id(id);
        bus.publish_with(ctx("c-1"), guild("g-1")).await.unwrap();
        bus.publish_with(ctx("c-2"), guild("g-1")).await.unwrap(); // a presence refresh
        bus.publish(GuildDisconnected { id: "g-1".into() })
            .await
            .unwrap();
        bus.publish_with(ctx("c-3"), guild("g-1")).await.unwrap(); // back again
        bus.wait_for::<AiCallSuccess>("c-3", wait).await.unwrap();
        bus.shutdown().await;
        assert_eq!(
            provider.calls(),
            2,
            "greeted on first contact and on return"
        );
        assert!(
            bus.wait_for::<AiCallSuccess>("c-2", wait).await.is_err(),
            "no call for a guild already known"
        );
    }

    #[tokio::test]
    async fn every_attempt_failing_reports_the_last_code() {
        let test = HandlerTest::new();
        let bus = test.bus();
        let breaker = CircuitBreaker::start(&bus, BreakerConfig::default()).unwrap();
        let provider = Arc::new(SimulatedProvider::new("p", "m", 5));
        let greeter = Greeter::start(&bus, breaker, provider, 3).unwrap();
        let outcome = test
            .when(guild("g-1"), |env| {
                greeter.handle(env.with_payload(env.payload.clone().into()))
            })
            .await;
        outcome.assert_published(&[AiCallFailure {
            provider: "p".into(),
            model: "m".into(),
            code: "upstream_unavailable".into(),
            attempts: 3,
        }]);
    }
}
