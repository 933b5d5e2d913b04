//! A circuit breaker per AI provider, driven by the AI service's call events and announcing
//! its own state changes as `ai.breaker.*` events.
//!
//! ```text
//!            N failures among the last M calls, failure rate ≥ threshold
//!   closed ───────────────────────────────────────────────────────────▶ open
//!     ▲                                                                 │  ▲
//!     │ trial call succeeds                          cool-down elapsed  │  │ trial call fails
//!     └──────────────────────────── half_open ◀─────────────────────────┘  │
//!                                       └──────────────────────────────────┘
//! ```
//!
//! [`Breaker`] is the state machine alone: no bus, no clock of its own (it is handed
//! `Instant`s), so it is tested directly. [`CircuitBreaker`] runs one `Breaker` per provider
//! behind the `ai-breaker` subscription to `ai.call.success` / `ai.call.failure`, publishes
//! `ai.breaker.open` / `ai.breaker.half_open` / `ai.breaker.closed`, and times the cool-down
//! with tokio.

use crate::events::{
    AiBreakerClosed, AiBreakerHalfOpen, AiBreakerOpen, AiCallFailure, AiCallSuccess,
};
use event_core::{
    Envelope, EventBus, EventUnion, HandlerError, PublishContext, PublishError, SubscribeError,
};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The `code` of an `ai.call.failure` the breaker refused: no provider was asked, so it says
/// nothing about the provider's health and the breaker ignores it.
pub const REFUSED: &str = "circuit_open";

/// Where a breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls flow; outcomes are counted.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// One trial call is let through; its outcome closes or reopens the breaker.
    HalfOpen,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        })
    }
}

/// When a breaker trips and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// How many of the most recent calls are counted (M), at least 1.
    pub window: u32,
    /// How many failures among them trip the breaker (N), at least 1.
    pub min_failures: u32,
    /// The failure rate among the counted calls that trips the breaker, from 0 to 1; both
    /// this and `min_failures` must be reached.
    pub failure_rate: f64,
    /// How long the breaker stays open before it lets a trial call through.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    /// 5 failures among the last 10 calls, at a rate of at least 50 %, open for 30 s.
    fn default() -> Self {
        BreakerConfig {
            window: 10,
            min_failures: 5,
            failure_rate: 0.5,
            cool_down: Duration::from_secs(30),
        }
    }
}

/// A change of state, with what the `ai.breaker.*` event for it reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transition {
    /// Tripped (from closed) or reopened (a trial call failed).
    Opened {
        /// The share of failures among the counted calls.
        failure_rate: f64,
        /// How many of the counted calls failed.
        recent_failures: u32,
    },
    /// The cool-down ended.
    HalfOpened,
    /// A trial call succeeded.
    Closed,
}

impl Transition {
    /// The state entered.
    pub fn to(&self) -> State {
        match self {
            Transition::Opened { .. } => State::Open,
            Transition::HalfOpened => State::HalfOpen,
            Transition::Closed => State::Closed,
        }
    }
}

/// The breaker's state machine for one provider.
///
/// ```
/// use chatbot::breaker::{Breaker, BreakerConfig, State, Transition};
/// use std::time::Duration;
/// use tokio::time::Instant;
///
/// let config = BreakerConfig { window: 4, min_failures: 2, failure_rate: 0.5, cool_down: Duration::from_secs(1) };
/// let mut breaker = Breaker::new(config);
/// let now = Instant::now();
/// assert_eq!(breaker.on_failure(now), None);
/// assert_eq!(
///     breaker.on_failure(now),
///     Some(Transition::Opened { failure_rate: 1.0, recent_failures: 2 })
/// );
/// assert!(!breaker.try_call());
/// assert_eq!(breaker.on_cool_down(now + Duration::from_secs(1)), Some(Transition::HalfOpened));
/// assert!(breaker.try_call()); // the trial
/// assert_eq!(breaker.on_success(), Some(Transition::Closed));
/// assert_eq!(breaker.state(), State::Closed);
/// ```
#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    state: State,
    /// The outcomes counted while closed, newest last: `true` for a failure.
    recent: VecDeque<bool>,
    /// When it last opened.
    opened_at: Option<Instant>,
    /// Whether the trial call of the half-open state was let through.
    trial_taken: bool,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        let config = BreakerConfig {
            window: config.window.max(1),
            min_failures: config.min_failures.max(1),
            ..config
        };
        Breaker {
            config,
            state: State::Closed,
            recent: VecDeque::new(),
            opened_at: None,
            trial_taken: false,
        }
    }

    /// Where it is.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether a call may go to the provider now: always when closed, never when open, and
    /// once (the trial) when half-open.
    pub fn try_call(&mut self) -> bool {
        match self.state {
            State::Closed => true,
            State::Open => false,
            State::HalfOpen => !std::mem::replace(&mut self.trial_taken, true),
        }
    }

    /// A call succeeded. Closes a half-open breaker; an open one ignores it (a call that
    /// started before it opened).
    pub fn on_success(&mut self) -> Option<Transition> {
        match self.state {
            State::Closed => {
                self.count(false);
                None
            }
            State::Open => None,
            State::HalfOpen => {
                self.enter(State::Closed);
                Some(Transition::Closed)
            }
        }
    }

    /// A call failed at `now`. Trips a closed breaker when the failures among the last
    /// `window` calls reach both `min_failures` and `failure_rate`; reopens a half-open one.
    pub fn on_failure(&mut self, now: Instant) -> Option<Transition> {
        match self.state {
            State::Closed => {
                self.count(true);
                let calls = counted(self.recent.len());
                let failures = counted(self.recent.iter().filter(|failed| **failed).count());
                let rate = f64::from(failures) / f64::from(calls);
                if failures >= self.config.min_failures && rate >= self.config.failure_rate {
                    self.open(now);
                    return Some(Transition::Opened {
                        failure_rate: rate,
                        recent_failures: failures,
                    });
                }
                None
            }
            State::Open => None,
            State::HalfOpen => {
                self.open(now);
                Some(Transition::Opened {
                    failure_rate: 1.0,
                    recent_failures: 1,
                })
            }
        }
    }

    /// When an open breaker's cool-down ends; `None` unless open.
    pub fn cool_down_ends(&self) -> Option<Instant> {
        match (self.state, self.opened_at) {
            (State::Open, Some(opened)) => Some(opened + self.config.cool_down),
            _ => None,
        }
    }

    /// Moves an open breaker to half-open if its cool-down has ended by `now`.
    pub fn on_cool_down(&mut self, now: Instant) -> Option<Transition> {
        let ends = self.cool_down_ends()?;
        if now < ends {
            return None;
        }
        self.enter(State::HalfOpen);
        Some(Transition::HalfOpened)
    }

    fn count(&mut self, failed: bool) {
        self.recent.push_back(failed);
        while self.recent.len() > self.config.window as usize {
            self.recent.pop_front();
        }
    }

    fn open(&mut self, now: Instant) {
        self.enter(State::Open);
        self.opened_at = Some(now);
    }

    /// Every state starts with a clean slate: a reset window and no trial taken.
    fn enter(&mut self, state: State) {
        self.state = state;
        self.recent.clear();
        self.trial_taken = false;
    }
}

/// A count of calls within a window, which is at most `u32::MAX` long.
fn counted(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// What the breaker listens to: the final outcome of each AI call.
#[derive(Debug, Clone, EventUnion)]
#[union(consumer = "ai-breaker")]
pub enum AiCallOutcome {
    /// The call succeeded.
    Success(AiCallSuccess),
    /// The call failed, or was refused.
    Failure(AiCallFailure),
}

/// One [`Breaker`] per provider, on the bus: fed by `ai.call.*`, announcing `ai.breaker.*`.
///
/// An `ai.breaker.open` published while handling a call's outcome carries that call's
/// correlation id, and the call's event id as causation id. The `ai.breaker.half_open` that
/// follows the cool-down is published from a timer task, outside any handler, so it is given
/// the same correlation id explicitly and the `open` event's id as causation id.
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

struct Inner {
    bus: EventBus,
    config: BreakerConfig,
    providers: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    breaker: Breaker,
    /// The pending cool-down of an open breaker.
    timer: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let providers = self
            .providers
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for timer in providers
            .values_mut()
            .filter_map(|entry| entry.timer.take())
        {
            timer.abort();
        }
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let providers = self.inner.lock();
        let states: HashMap<&str, State> = providers
            .iter()
            .map(|(name, entry)| (name.as_str(), entry.breaker.state()))
            .collect();
        f.debug_struct("CircuitBreaker")
            .field("config", &self.inner.config)
            .field("states", &states)
            .finish_non_exhaustive()
    }
}

impl CircuitBreaker {
    /// The name of its subscription.
    pub const SUBSCRIPTION: &str = "ai-breaker";

    /// Subscribes a breaker to the call outcomes on `bus`.
    ///
    /// # Errors
    ///
    /// When the subscription name is taken or the bus is shut down.
    pub fn start(bus: &EventBus, config: BreakerConfig) -> Result<Self, SubscribeError> {
        let breaker = CircuitBreaker {
            inner: Arc::new(Inner {
                bus: bus.clone(),
                config,
                providers: Mutex::new(HashMap::new()),
            }),
        };
        let handler = breaker.clone();
        bus.subscribe::<AiCallOutcome, _, _>(Self::SUBSCRIPTION, move |env| {
            let breaker = handler.clone();
            async move { breaker.handle(env).await }
        })?;
        Ok(breaker)
    }

    /// The breaker's state for `provider`; closed for a provider it has not seen.
    pub fn state(&self, provider: &str) -> State {
        self.inner
            .lock()
            .get(provider)
            .map_or(State::Closed, |entry| entry.breaker.state())
    }

    /// Whether a call to `provider` may go ahead now (see [`Breaker::try_call`]).
    pub fn try_call(&self, provider: &str) -> bool {
        self.inner
            .lock_entry(provider, |entry| entry.breaker.try_call())
    }

    async fn handle(&self, env: Envelope<AiCallOutcome>) -> Result<(), HandlerError> {
        let now = Instant::now();
        let (provider, transition) = match &env.payload {
            AiCallOutcome::Success(success) => (
                &success.provider,
                self.inner
                    .lock_entry(&success.provider, |e| e.breaker.on_success()),
            ),
            AiCallOutcome::Failure(failure) if failure.code == REFUSED => return Ok(()),
            AiCallOutcome::Failure(failure) => (
                &failure.provider,
                self.inner
                    .lock_entry(&failure.provider, |e| e.breaker.on_failure(now)),
            ),
        };
        let Some(transition) = transition else {
            return Ok(());
        };
        // Inside the handler: the announcement inherits the call's correlation id.
        let announced = self
            .inner
            .announce(PublishContext::new(), provider, transition)
            .await
            .map_err(|error| unannounced(provider, transition, &error))?;
        if let Some(open) = announced {
            self.schedule_half_open(provider, &open);
        }
        Ok(())
    }

    /// Starts the cool-down of the breaker that `open` announced.
    fn schedule_half_open(&self, provider: &str, open: &Envelope<AiBreakerOpen>) {
        let Some(ends) = self
            .inner
            .lock()
            .get(provider)
            .and_then(|entry| entry.breaker.cool_down_ends())
        else {
            return;
        };
        let mut context = PublishContext::new().causation_id(open.id.to_string());
        if let Some(correlation_id) = &open.correlation_id {
            context = context.correlation_id(correlation_id);
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let name = provider.to_owned();
        let timer = tokio::spawn(async move {
            tokio::time::sleep_until(ends).await;
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let now = Instant::now();
            let transition = inner.lock_entry(&name, |entry| {
                entry.timer = None;
                entry.breaker.on_cool_down(now)
            });
            if let Some(transition) = transition {
                // Fails only when the bus is shut down: nobody is left to tell.
                let _ = inner.announce(context, &name, transition).await;
            }
        });
        let previous = self
            .inner
            .lock_entry(provider, |entry| entry.timer.replace(timer));
        if let Some(previous) = previous {
            previous.abort();
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.providers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_entry<T>(&self, provider: &str, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut providers = self.lock();
        let entry = providers
            .entry(provider.to_owned())
            .or_insert_with(|| Entry {
                breaker: Breaker::new(self.config),
                timer: None,
            });
        f(entry)
    }

    /// Publishes the event of a transition; returns the envelope when it was an opening.
    async fn announce(
        &self,
        context: PublishContext,
        provider: &str,
        transition: Transition,
    ) -> Result<Option<Envelope<AiBreakerOpen>>, PublishError> {
        let provider = provider.to_owned();
        match transition {
            Transition::Opened {
                failure_rate,
                recent_failures,
            } => {
                let open = AiBreakerOpen {
                    provider,
                    failure_rate,
                    recent_failures,
                };
                Ok(Some(self.bus.publish_with(context, open).await?))
            }
            Transition::HalfOpened => {
                let half_open = AiBreakerHalfOpen { provider };
                self.bus.publish_with(context, half_open).await?;
                Ok(None)
            }
            Transition::Closed => {
                self.bus
                    .publish_with(context, AiBreakerClosed { provider })
                    .await?;
                Ok(None)
            }
        }
    }
}

/// The state changed but its event could not be published (the bus is shut down). Permanent:
/// a retry would count the same call twice.
fn unannounced(provider: &str, transition: Transition, error: &PublishError) -> HandlerError {
    HandlerError::permanent(format!(
        "breaker of `{provider}` is now {} but the event was not published: {error}",
        transition.to()
    ))
}

#[cfg(test)]
mod tests {
    use super::{
        AiCallOutcome, Breaker, BreakerConfig, CircuitBreaker, REFUSED, State, Transition,
    };
    use crate::events::{
        AiBreakerClosed, AiBreakerHalfOpen, AiBreakerOpen, AiCallFailure, AiCallSuccess,
    };
    use event_core::{EventBus, EventUnion, PublishContext, WaitError};
    use std::time::Duration;
    use tokio::time::Instant;

    const COOL_DOWN: Duration = Duration::from_secs(10);

    /// Trips on 3 failures among the last 5 calls, at a rate of at least 60 %.
    fn config() -> BreakerConfig {
        BreakerConfig {
            window: 5,
            min_failures: 3,
            failure_rate: 0.6,
            cool_down: COOL_DOWN,
        }
    }

    fn opened(failure_rate: f64, recent_failures: u32) -> Transition {
        Transition::Opened {
            failure_rate,
            recent_failures,
        }
    }

    #[test]
    fn trips_on_enough_failures_in_the_window() {
        let mut breaker = Breaker::new(config());
        let now = Instant::now();
        assert_eq!(breaker.on_failure(now), None);
        assert_eq!(breaker.on_success(), None);
        assert_eq!(breaker.on_failure(now), None);
        assert_eq!(breaker.state(), State::Closed);
        assert!(breaker.try_call());
        // 3 failures of 4 calls: 75 % ≥ 60 %.
        assert_eq!(breaker.on_failure(now), Some(opened(0.75, 3)));
        assert_eq!(breaker.state(), State::Open);
        assert!(!breaker.try_call(), "an open breaker refuses calls");
    }

    #[test]
    fn a_low_failure_rate_does_not_trip_it() {
        let mut breaker = Breaker::new(config());
        let now = Instant::now();
        // F S S F F: 3 failures in 5 calls is exactly 60 %, which trips it...
        for failed in [true, false, false, true] {
            let change = if failed {
                breaker.on_failure(now)
            } else {
                breaker.on_success()
            };
            assert_eq!(change, None);
        }
        assert_eq!(breaker.on_failure(now), Some(opened(0.6, 3)));

        // ...but F S S S F F: the first failure has left the window, 2 of 5 remain.
        let mut breaker = Breaker::new(config());
        assert_eq!(breaker.on_failure(now), None);
        for _ in 0..3 {
            assert_eq!(breaker.on_success(), None);
        }
        assert_eq!(breaker.on_failure(now), None);
        assert_eq!(breaker.on_failure(now), None, "2 failures of 5: not enough");
        assert_eq!(breaker.state(), State::Closed);
        // One more: S S F F F is 3 of 5.
        assert_eq!(breaker.on_failure(now), Some(opened(0.6, 3)));
    }

    #[test]
    fn the_rate_threshold_applies_as_well_as_the_count() {
        let mut breaker = Breaker::new(BreakerConfig {
            window: 10,
            min_failures: 2,
            failure_rate: 0.5,
            cool_down: COOL_DOWN,
        });
        let now = Instant::now();
        for _ in 0..4 {
            assert_eq!(breaker.on_success(), None);
        }
        assert_eq!(breaker.on_failure(now), None);
        assert_eq!(breaker.on_failure(now), None, "2 of 6 is only 33 %");
        assert_eq!(breaker.on_failure(now), None, "3 of 7 is 43 %");
        assert_eq!(breaker.on_failure(now), Some(opened(0.5, 4)));
    }

    #[test]
    fn open_waits_for_the_cool_down_then_lets_one_trial_through() {
        let mut breaker = Breaker::new(config());
        let start = Instant::now();
        for _ in 0..3 {
            breaker.on_failure(start);
        }
        assert_eq!(breaker.cool_down_ends(), Some(start + COOL_DOWN));
        // Outcomes of calls that started before it opened change nothing.
        assert_eq!(breaker.on_success(), None);
        assert_eq!(breaker.on_failure(start), None);
        assert_eq!(breaker.on_cool_down(start + COOL_DOWN / 2), None);
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(
            breaker.on_cool_down(start + COOL_DOWN),
            Some(Transition::HalfOpened)
        );
        assert_eq!(breaker.state(), State::HalfOpen);
        assert_eq!(breaker.cool_down_ends(), None);
        assert!(breaker.try_call(), "the trial");
        assert!(!breaker.try_call(), "only one trial at a time");
    }

    #[test]
    fn a_trial_success_closes_it_with_a_clean_window() {
        let mut breaker = Breaker::new(config());
        let start = Instant::now();
        for _ in 0..3 {
            breaker.on_failure(start);
        }
        breaker.on_cool_down(start + COOL_DOWN);
        assert_eq!(breaker.on_success(), Some(Transition::Closed));
        assert_eq!(breaker.state(), State::Closed);
        // The failures before it opened are forgotten: two more do not trip it.
        assert_eq!(breaker.on_failure(start), None);
        assert_eq!(breaker.on_failure(start), None);
        assert_eq!(breaker.on_failure(start), Some(opened(1.0, 3)));
    }

    #[test]
    fn a_trial_failure_reopens_it_for_another_cool_down() {
        let mut breaker = Breaker::new(config());
        let start = Instant::now();
        for _ in 0..3 {
            breaker.on_failure(start);
        }
        breaker.on_cool_down(start + COOL_DOWN);
        let later = start + COOL_DOWN + Duration::from_secs(1);
        assert_eq!(breaker.on_failure(later), Some(opened(1.0, 1)));
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(breaker.cool_down_ends(), Some(later + COOL_DOWN));
        assert_eq!(breaker.on_cool_down(start + COOL_DOWN * 2), None);
        assert_eq!(
            breaker.on_cool_down(later + COOL_DOWN),
            Some(Transition::HalfOpened)
        );
    }

    #[test]
    fn the_union_is_the_ai_breaker_consumer() {
        assert_eq!(AiCallOutcome::CONSUMER, Some("ai-breaker"));
        assert_eq!(
            AiCallOutcome::EVENTS,
            [("ai.call.success", 1), ("ai.call.failure", 1)]
        );
    }

    fn failure(code: &str) -> AiCallFailure {
        AiCallFailure {
            provider: "p".into(),
            model: "m".into(),
            code: code.into(),
            attempts: 1,
        }
    }

    /// The whole loop on a bus with a paused clock: events in, state changes out, the
    /// cool-down timed by tokio.
    #[tokio::test(start_paused = true)]
    async fn on_the_bus_it_publishes_each_transition_once_and_in_order() {
        let bus = EventBus::builder().build();
        let breaker = CircuitBreaker::start(&bus, config()).unwrap();
        let wait = Duration::from_secs(1);
        for n in 1..=3 {
            let ctx = PublishContext::new().correlation_id(format!("c-{n}"));
            bus.publish_with(ctx, failure("upstream_unavailable"))
                .await
                .unwrap();
        }
        let open = bus.wait_for::<AiBreakerOpen>("c-3", wait).await.unwrap();
        let opened_at = Instant::now();
        assert_eq!(
            open.payload,
            AiBreakerOpen {
                provider: "p".into(),
                failure_rate: 1.0,
                recent_failures: 3,
            }
        );
        assert_eq!(breaker.state("p"), State::Open);
        assert!(!breaker.try_call("p"));
        // A refused call is not a provider failure and changes nothing.
        bus.publish(failure(REFUSED)).await.unwrap();

        let half_open = bus
            .wait_for::<AiBreakerHalfOpen>("c-3", COOL_DOWN * 2)
            .await
            .unwrap();
        assert_eq!(
            opened_at.elapsed(),
            COOL_DOWN,
            "half-open exactly after the cool-down"
        );
        assert_eq!(half_open.causation_id, Some(open.id.to_string().into()));
        assert_eq!(breaker.state("p"), State::HalfOpen);
        assert!(breaker.try_call("p"), "the trial");

        let ctx = PublishContext::new().correlation_id("c-4");
        let success = AiCallSuccess {
            provider: "p".into(),
            model: "m".into(),
            latency_ms: 100,
            attempts: 1,
        };
        let trial = bus.publish_with(ctx, success).await.unwrap();
        let closed = bus.wait_for::<AiBreakerClosed>("c-4", wait).await.unwrap();
        assert_eq!(closed.causation_id, Some(trial.id.to_string().into()));
        assert_eq!(breaker.state("p"), State::Closed);
        assert_eq!(breaker.state("another"), State::Closed);

        bus.shutdown().await;
        // Exactly one event per transition: no second `open` from the refused call.
        assert_eq!(bus.metrics().published, 3 + 1 + 1 + 1 + 1 + 1);
        assert!(bus.dead_letters().await.is_empty());
        let again = bus.wait_for::<AiBreakerOpen>("c-4", wait).await;
        assert!(matches!(again, Err(WaitError::Closed)), "{again:?}");
    }
}
