//! The demo: guilds connect while the AI provider is down, the breaker trips, refuses a call,
//! cools down, lets a trial through and closes again.
//!
//! Every step is sequenced by events, not sleeps: the scenario publishes a guild event with a
//! correlation id of its own and awaits, with `wait_for`, the event that ends the step. The
//! only wait on the clock is the breaker's cool-down, which the breaker times itself.
//!
//! Two sides take part, each subscribed on a bus of its own or on a shared one:
//! [`AiService`] (the circuit breaker, the greeter and the provider) and [`Gateway`] (the
//! Discord side: it publishes the guilds' presence, awaits the AI's replies, and hosts the
//! JSON log and the ops dashboard). [`run`] puts both on one in-memory bus; `chatbot
//! --transport redis|nats` puts each in a process of its own on a broker
//! ([`crate::processes`]), and the story reaches the AI service's memory (the greeting it
//! wrote, its counters) through an [`AiLink`].

use crate::ai::{Greeter, SimulatedProvider};
use crate::breaker::{BreakerConfig, CircuitBreaker, State};
use crate::events::{
    AiBreakerClosed, AiBreakerHalfOpen, AiBreakerOpen, AiCallFailure, AiCallSuccess,
    GuildConnected, GuildDisconnected,
};
use crate::groups;
use crate::json_log::{JsonLog, Output};
use event_core::transport::TransportError;
use event_core::{
    DeadLetter, DomainEvent, Envelope, EventBus, EventUnion, MetricsSnapshot, PublishContext,
    PublishError, SubscribeError, WaitError,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::Future;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The provider every call goes to.
pub const PROVIDER: &str = "sim-llm";
/// Its model.
pub const MODEL: &str = "sim-1";

/// The knobs of the scenario. The defaults tell the story the module describes; other
/// values may tell another, or fail with [`Error::Unexpected`].
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The breaker's thresholds and cool-down.
    pub breaker: BreakerConfig,
    /// How many calls the simulated provider fails before it recovers.
    pub provider_failures: u32,
    /// How many attempts the greeter makes per call.
    pub max_attempts: u32,
    /// How long to wait for an event that is expected to come.
    pub reply_timeout: Duration,
    /// How long to wait for the reply that is expected not to come.
    pub refused_timeout: Duration,
}

impl Default for Config {
    /// A breaker tripping on 3 failures among the last 5 calls (rate ≥ 50 %) and cooling down
    /// for 500 ms; a provider failing its first 7 calls; 2 attempts per call.
    fn default() -> Self {
        Config {
            breaker: BreakerConfig {
                window: 5,
                min_failures: 3,
                failure_rate: 0.5,
                cool_down: Duration::from_millis(500),
            },
            provider_failures: 7,
            max_attempts: 2,
            reply_timeout: Duration::from_secs(5),
            refused_timeout: Duration::from_millis(200),
        }
    }
}

/// What happened.
#[derive(Debug)]
#[non_exhaustive]
pub struct Summary {
    /// The breaker's states as an `ai.breaker.*` consumer saw them, starting from closed.
    pub breaker_states: Vec<State>,
    /// The `ai.call.success` the trial request waited for.
    pub reply: Envelope<AiCallSuccess>,
    /// The greeting the trial call wrote.
    pub greeting: String,
    /// The correlation id whose `wait_for` timed out, with the refusal that explains why.
    pub timed_out: (String, Envelope<AiCallFailure>),
    /// How many calls reached the provider.
    pub provider_calls: u32,
    /// How many JSON lines the log wrote.
    pub log_lines: u64,
    /// The counters after shutdown, of every bus of the run: this process's, plus the AI
    /// service's when it ran in a process of its own (then each latency bound is the larger
    /// of the two processes').
    pub metrics: MetricsSnapshot,
    /// The dead letters after shutdown.
    pub dead_letters: Vec<DeadLetter>,
}

/// Why the scenario stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A subscription could not be added.
    Subscribe(SubscribeError),
    /// An event could not be published.
    Publish(PublishError),
    /// An awaited event did not come.
    Wait(WaitError),
    /// The broker could not be reached.
    Transport(TransportError),
    /// The broker's consumer groups did not join, or did not handle every event, in time.
    Groups(String),
    /// The AI service's process failed, or did not answer as expected.
    AiService(String),
    /// The output could not be written.
    Output(io::Error),
    /// The JSON log fell behind the events published.
    LogBehind {
        /// Lines written.
        written: u64,
        /// Events published.
        published: u64,
    },
    /// Something happened that the story does not allow.
    Unexpected(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Subscribe(error) => write!(f, "cannot subscribe: {error}"),
            Error::Publish(error) => write!(f, "cannot publish: {error}"),
            Error::Wait(error) => write!(f, "an awaited event did not come: {error}"),
            Error::Transport(error) => write!(f, "the broker: {error}"),
            Error::Groups(what) => f.write_str(what),
            Error::AiService(what) => write!(f, "the AI service: {what}"),
            Error::Output(error) => write!(f, "cannot write the output: {error}"),
            Error::LogBehind { written, published } => write!(
                f,
                "the JSON log wrote {written} lines for {published} events published"
            ),
            Error::Unexpected(what) => write!(f, "unexpected: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Subscribe(error) => Some(error),
            Error::Publish(error) => Some(error),
            Error::Wait(error) => Some(error),
            Error::Transport(error) => Some(error),
            Error::Output(error) => Some(error),
            Error::Groups(_)
            | Error::AiService(_)
            | Error::LogBehind { .. }
            | Error::Unexpected(_) => None,
        }
    }
}

impl From<SubscribeError> for Error {
    fn from(error: SubscribeError) -> Self {
        Error::Subscribe(error)
    }
}

impl From<PublishError> for Error {
    fn from(error: PublishError) -> Self {
        Error::Publish(error)
    }
}

impl From<WaitError> for Error {
    fn from(error: WaitError) -> Self {
        Error::Wait(error)
    }
}

impl From<TransportError> for Error {
    fn from(error: TransportError) -> Self {
        Error::Transport(error)
    }
}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Self {
        Error::Output(error)
    }
}

/// The breaker's announcements, for a consumer that only watches them.
#[derive(Debug, Clone, EventUnion)]
#[union(consumer = "ops-dashboard")]
pub enum BreakerEvents {
    /// Tripped.
    Open(AiBreakerOpen),
    /// Trial state entered.
    HalfOpen(AiBreakerHalfOpen),
    /// Reset.
    Closed(AiBreakerClosed),
}

/// The name of the consumer that watches the breaker's announcements.
pub const DASHBOARD: &str = "ops-dashboard";

/// The AI service: the circuit breaker, and the greeter asking the simulated provider,
/// subscribed on a bus.
#[derive(Debug)]
pub struct AiService {
    breaker: CircuitBreaker,
    greeter: Greeter,
    provider: Arc<SimulatedProvider>,
}

impl AiService {
    /// Its subscriptions: the consumer groups it joins on a broker.
    pub const GROUPS: [&str; 2] = [CircuitBreaker::SUBSCRIPTION, Greeter::SUBSCRIPTION];

    /// Subscribes the breaker and the greeter on `bus`, with `config`'s breaker, provider
    /// and attempts.
    ///
    /// # Errors
    ///
    /// When a subscription name is taken or the bus is shut down.
    pub fn start(bus: &EventBus, config: &Config) -> Result<Self, SubscribeError> {
        let breaker = CircuitBreaker::start(bus, config.breaker)?;
        let provider = Arc::new(SimulatedProvider::new(
            PROVIDER,
            MODEL,
            config.provider_failures,
        ));
        let greeter = Greeter::start(
            bus,
            breaker.clone(),
            Arc::clone(&provider),
            config.max_attempts,
        )?;
        Ok(AiService {
            breaker,
            greeter,
            provider,
        })
    }

    /// The greeting written for the request with this correlation id.
    pub fn greeting(&self, correlation_id: &str) -> Option<String> {
        self.greeter.greeting(correlation_id)
    }

    /// The provider's calls and the breaker's state now; no counters (see
    /// [`AiReport::counters`]).
    pub fn report(&self) -> AiReport {
        AiReport {
            provider_calls: self.provider.calls(),
            breaker: self.breaker.state(PROVIDER),
            counters: None,
        }
    }
}

/// What the AI service tells at the end of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct AiReport {
    /// How many calls reached the provider.
    pub provider_calls: u32,
    /// The breaker's state for [`PROVIDER`].
    pub breaker: State,
    /// Its bus's counters, when that is not the gateway's bus (the AI service ran in a
    /// process of its own).
    pub counters: Option<Counters>,
}

/// A bus's counters, as one process hands them to another (see [`MetricsSnapshot`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Events accepted by `publish`.
    pub published: u64,
    /// Deliveries handled successfully.
    pub delivered: u64,
    /// Attempts that failed and were retried.
    pub retried: u64,
    /// Deliveries moved to the dead letters.
    pub dead_lettered: u64,
    /// Deliveries skipped as already handled.
    pub deduplicated: u64,
    /// Deliveries left to a shard's new owner.
    pub fenced: u64,
    /// Writes refused because their lease had passed on.
    pub refused: u64,
    /// Deliveries not yet settled.
    pub in_flight: u64,
    /// Median handler latency bound, in microseconds.
    pub latency_p50_us: Option<u64>,
    /// 90th percentile handler latency bound, in microseconds.
    pub latency_p90_us: Option<u64>,
    /// 99th percentile handler latency bound, in microseconds.
    pub latency_p99_us: Option<u64>,
}

impl From<MetricsSnapshot> for Counters {
    fn from(m: MetricsSnapshot) -> Self {
        let micros = |latency: Option<Duration>| {
            latency.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        };
        Counters {
            published: m.published,
            delivered: m.delivered,
            retried: m.retried,
            dead_lettered: m.dead_lettered,
            deduplicated: m.deduplicated,
            fenced: m.fenced,
            refused: m.refused,
            in_flight: m.in_flight,
            latency_p50_us: micros(m.latency_p50),
            latency_p90_us: micros(m.latency_p90),
            latency_p99_us: micros(m.latency_p99),
        }
    }
}

impl Counters {
    /// Adds these counters to `metrics`; each latency bound becomes the larger of the two.
    pub fn add_to(&self, metrics: &mut MetricsSnapshot) {
        metrics.published += self.published;
        metrics.delivered += self.delivered;
        metrics.retried += self.retried;
        metrics.dead_lettered += self.dead_lettered;
        metrics.deduplicated += self.deduplicated;
        metrics.fenced += self.fenced;
        metrics.refused += self.refused;
        metrics.in_flight += self.in_flight;
        let larger = |mine: Option<Duration>, theirs: Option<u64>| {
            mine.max(theirs.map(Duration::from_micros))
        };
        metrics.latency_p50 = larger(metrics.latency_p50, self.latency_p50_us);
        metrics.latency_p90 = larger(metrics.latency_p90, self.latency_p90_us);
        metrics.latency_p99 = larger(metrics.latency_p99, self.latency_p99_us);
    }
}

/// The AI service as the story reaches it besides the bus: the greeting it wrote, and its
/// report at the end. [`AiService`] itself when it shares the gateway's process;
/// [`AiProcess`](crate::processes::AiProcess) when it runs in another.
pub trait AiLink {
    /// The greeting written for the request with this correlation id.
    fn greeting(
        &mut self,
        correlation_id: &str,
    ) -> impl Future<Output = Result<Option<String>, Error>> + Send;

    /// Called once the flow is over and every event handled: stops the AI service (its
    /// process shuts its bus down), and returns its report.
    fn finish(self) -> impl Future<Output = Result<AiReport, Error>> + Send;
}

impl AiLink for AiService {
    async fn greeting(&mut self, correlation_id: &str) -> Result<Option<String>, Error> {
        Ok(AiService::greeting(self, correlation_id))
    }

    async fn finish(self) -> Result<AiReport, Error> {
        Ok(self.report())
    }
}

/// The gateway's side: the JSON log and the ops dashboard subscribed on a bus, and the story
/// that publishes the guilds' presence and awaits the AI's replies.
#[derive(Debug)]
pub struct Gateway {
    bus: EventBus,
    out: Output,
    log: JsonLog,
    states: Arc<Mutex<Vec<State>>>,
}

impl Gateway {
    /// Its subscriptions: the consumer groups it joins on a broker.
    pub const GROUPS: [&str; 2] = [JsonLog::SUBSCRIPTION, DASHBOARD];

    /// Subscribes the JSON log, writing to `out`, and the ops dashboard on `bus`.
    ///
    /// # Errors
    ///
    /// When a subscription name is taken or the bus is shut down.
    pub fn start(bus: &EventBus, out: Output) -> Result<Self, SubscribeError> {
        let log = JsonLog::start(bus, out.clone())?;
        let states = watch_breaker(bus)?;
        Ok(Gateway {
            bus: bus.clone(),
            out,
            log,
            states,
        })
    }

    /// Runs the story against the AI service reached through `ai`, shuts the bus down, and
    /// writes the summary. The AI service must be subscribed (on a broker: joined) before.
    ///
    /// # Errors
    ///
    /// As [`run`].
    pub async fn run(self, config: &Config, mut ai: impl AiLink) -> Result<Summary, Error> {
        let Gateway {
            bus,
            out,
            log,
            states,
        } = self;
        let story = Story {
            bus: bus.clone(),
            out,
            log,
            config: config.clone(),
        };

        // Each step is narrated once its whole cascade is published and logged, so the
        // lines come out in the same order on every run.
        story.provider_down().await?;
        let timed_out = story.refused().await?;
        story.cool_down().await?;
        let (reply, greeting) = story.trial(&mut ai).await?;
        story.wind_down().await?;
        let report = ai.finish().await?;

        let dead_letters = bus.dead_letters().await;
        let breaker_states = states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut metrics = bus.metrics();
        if let Some(counters) = &report.counters {
            counters.add_to(&mut metrics);
        }
        let summary = Summary {
            breaker_states,
            reply,
            greeting,
            timed_out,
            provider_calls: report.provider_calls,
            log_lines: story.log.written(),
            metrics,
            dead_letters,
        };
        story.summarize(&summary)?;
        if report.breaker != State::Closed {
            return Err(Error::Unexpected("the breaker did not end closed".into()));
        }
        Ok(summary)
    }
}

/// Runs the scenario with the default [`Config`], writing the JSON log and a narration to
/// `out`, and shuts the bus down.
///
/// # Errors
///
/// [`Error`] when the bus refuses something, an awaited event does not come, the output
/// fails, or the story goes otherwise than told.
pub async fn run(out: impl Write + Send + 'static) -> Result<Summary, Error> {
    run_with(out, &Config::default()).await
}

/// [`run`] with another configuration.
///
/// # Errors
///
/// As [`run`].
pub async fn run_with(out: impl Write + Send + 'static, config: &Config) -> Result<Summary, Error> {
    // One in-memory bus for both sides: over a broker, each would build its own from
    // `Backend::bus`, and nothing else would change.
    let bus = EventBus::builder().build();
    let gateway = Gateway::start(&bus, Output::new(out))?;
    let ai = AiService::start(&bus, config)?;
    gateway.run(config, ai).await
}

/// Subscribes the `ops-dashboard` consumer, which records the breaker's states as announced,
/// starting from closed.
fn watch_breaker(bus: &EventBus) -> Result<Arc<Mutex<Vec<State>>>, SubscribeError> {
    let states = Arc::new(Mutex::new(vec![State::Closed]));
    let watched = Arc::clone(&states);
    bus.subscribe::<BreakerEvents, _, _>(DASHBOARD, move |env| {
        let watched = Arc::clone(&watched);
        async move {
            let state = match env.payload {
                BreakerEvents::Open(_) => State::Open,
                BreakerEvents::HalfOpen(_) => State::HalfOpen,
                BreakerEvents::Closed(_) => State::Closed,
            };
            watched
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(state);
            Ok(())
        }
    })?;
    Ok(states)
}

/// The scenario's helpers: publishing, awaiting and narrating in step with the log.
struct Story {
    bus: EventBus,
    out: Output,
    log: JsonLog,
    config: Config,
}

impl Story {
    /// Step 1: three guilds connect while the provider is down; the third failure trips the
    /// breaker.
    async fn provider_down(&self) -> Result<(), Error> {
        self.section("1. The AI provider is down: three guilds connect, every greeting fails")?;
        for (id, name) in [
            ("g-1", "Rustaceans"),
            ("g-2", "Tokio Town"),
            ("g-3", "Serde Society"),
        ] {
            let request = self.connect(id, name).await?;
            let failure = self.wait::<AiCallFailure>(&request).await?;
            // The third failure trips the breaker while the breaker handles it.
            let open = if id == "g-3" {
                Some(self.wait::<AiBreakerOpen>(&request).await?)
            } else {
                None
            };
            self.say(&format!(
                "{request}: ai.call.failure code={} attempts={}",
                failure.payload.code, failure.payload.attempts
            ))?;
            if let Some(open) = open {
                self.say(&format!(
                    "breaker {PROVIDER}: closed -> open (failureRate {:.2}, recentFailures {})",
                    open.payload.failure_rate, open.payload.recent_failures
                ))?;
            }
        }
        Ok(())
    }

    /// Step 2: the open breaker refuses a call, so waiting for its reply times out; returns
    /// the request and the refusal.
    async fn refused(&self) -> Result<(String, Envelope<AiCallFailure>), Error> {
        self.section("2. The breaker is open: a fourth guild's greeting is refused")?;
        let request = self.connect("g-4", "Cargo Club").await?;
        let timeout = self.config.refused_timeout;
        match self.bus.wait_for::<AiCallSuccess>(&request, timeout).await {
            Err(WaitError::Timeout { .. }) => {}
            Ok(reply) => {
                return Err(Error::Unexpected(format!(
                    "{request} got a reply while the breaker was open: {:?}",
                    reply.payload
                )));
            }
            Err(error) => return Err(error.into()),
        }
        let refused = self.wait::<AiCallFailure>(&request).await?;
        self.say(&format!(
            "TIMEOUT (expected): no ai.call.success for {request} within {timeout:?}"
        ))?;
        self.say(&format!(
            "{request}: ai.call.failure code={} attempts={} (the breaker refused the call; the provider was not asked)",
            refused.payload.code, refused.payload.attempts
        ))?;
        Ok((request, refused))
    }

    /// Step 3: the breaker's cool-down ends.
    async fn cool_down(&self) -> Result<(), Error> {
        let cool_down = self.config.breaker.cool_down;
        self.section(&format!("3. The breaker cools down ({cool_down:?})"))?;
        // Published by the breaker's timer with the correlation id of the call that tripped
        // it.
        self.bus
            .wait_for::<AiBreakerHalfOpen>("req-g-3", cool_down + self.config.reply_timeout)
            .await?;
        self.caught_up().await?;
        self.say(&format!("breaker {PROVIDER}: open -> half_open"))
    }

    /// Step 4: the trial call succeeds and closes the breaker; returns the reply and the
    /// greeting.
    async fn trial(
        &self,
        ai: &mut impl AiLink,
    ) -> Result<(Envelope<AiCallSuccess>, String), Error> {
        self.section("4. A fifth guild's greeting is the trial call")?;
        let request = self.connect("g-5", "Clippy Club").await?;
        let reply = self.wait::<AiCallSuccess>(&request).await?;
        // The trial's success closes the breaker.
        self.wait::<AiBreakerClosed>(&request).await?;
        let greeting = ai
            .greeting(&request)
            .await?
            .ok_or_else(|| Error::Unexpected(format!("no greeting stored for {request}")))?;
        self.say(&format!(
            "reply to {request}: {greeting:?} ({}/{}, attempts={}, latencyMs={})",
            reply.payload.provider,
            reply.payload.model,
            reply.payload.attempts,
            reply.payload.latency_ms
        ))?;
        self.say(&format!("breaker {PROVIDER}: half_open -> closed"))?;
        Ok((reply, greeting))
    }

    /// Step 5: a known guild refreshes its presence, one leaves, and the bus shuts down once
    /// every event is handled and logged.
    async fn wind_down(&self) -> Result<(), Error> {
        self.section("5. g-2 refreshes its presence (known: no AI call), g-1 leaves, shutdown")?;
        self.connect_as("req-g-2-refresh", "g-2", "Tokio Town")
            .await?;
        self.bus
            .publish_with(
                PublishContext::new().correlation_id("req-leave-g-1"),
                GuildDisconnected { id: "g-1".into() },
            )
            .await?;
        // On a broker, a bus that shuts down leaves what its groups have not received
        // there: first wait until every group, in every process, has handled everything.
        // In memory this returns at once, and `shutdown` drains the queues.
        groups::settled(&self.bus, self.config.reply_timeout).await?;
        self.caught_up().await?;
        self.bus.shutdown().await;
        Ok(())
    }

    /// Connects a guild in a request of its own, `req-<guild id>`; returns that
    /// correlation id.
    async fn connect(&self, id: &str, name: &str) -> Result<String, Error> {
        let request = format!("req-{id}");
        self.connect_as(&request, id, name).await?;
        Ok(request)
    }

    /// Connects a guild in the request `request`.
    async fn connect_as(&self, request: &str, id: &str, name: &str) -> Result<(), Error> {
        let guild = GuildConnected {
            id: id.to_owned(),
            name: name.to_owned(),
            member_count: 100 + u32::try_from(name.len()).unwrap_or(0),
        };
        let context = PublishContext::new().correlation_id(request);
        self.bus.publish_with(context, guild).await?;
        Ok(())
    }

    /// Awaits the event `E` of a request, then lets the log catch up.
    async fn wait<E: DomainEvent>(&self, request: &str) -> Result<Envelope<E>, Error> {
        let event = self
            .bus
            .wait_for::<E>(request, self.config.reply_timeout)
            .await?;
        self.caught_up().await?;
        Ok(event)
    }

    /// Waits until every event published so far, by any process, is in the log, so what
    /// is said next is printed after their lines.
    async fn caught_up(&self) -> Result<(), Error> {
        let published = groups::published(&self.bus).await?;
        self.log
            .caught_up(published, self.config.reply_timeout)
            .await
            .map_err(|written| Error::LogBehind { written, published })
    }

    fn section(&self, title: &str) -> Result<(), Error> {
        Ok(self.out.line(&format!("== {title}"))?)
    }

    fn say(&self, text: &str) -> Result<(), Error> {
        Ok(self.out.line(&format!("> {text}"))?)
    }

    fn summarize(&self, summary: &Summary) -> Result<(), Error> {
        let m = &summary.metrics;
        self.section("Summary")?;
        let states: Vec<String> = summary
            .breaker_states
            .iter()
            .map(ToString::to_string)
            .collect();
        self.say(&format!("breaker states: {}", states.join(" -> ")))?;
        self.say(&format!(
            "provider calls: {}, JSON log lines: {}",
            summary.provider_calls, summary.log_lines
        ))?;
        self.say(&format!(
            "metrics: published={} delivered={} retried={} dead_lettered={} in_flight={}",
            m.published, m.delivered, m.retried, m.dead_lettered, m.in_flight
        ))?;
        let bound =
            |latency: Option<Duration>| latency.map_or("-".to_owned(), |d| format!("{d:?}"));
        self.say(&format!(
            "handler latency (bucket upper bounds): p50={} p90={} p99={}",
            bound(m.latency_p50),
            bound(m.latency_p90),
            bound(m.latency_p99)
        ))?;
        if summary.dead_letters.is_empty() {
            self.say("dead letters: none")?;
        }
        for letter in &summary.dead_letters {
            self.say(&format!(
                "dead letter: subscription={} type={} attempts={} error={}",
                letter.subscription, letter.envelope.event_type, letter.attempts, letter.last_error
            ))?;
        }
        Ok(())
    }
}
