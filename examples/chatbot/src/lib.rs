//! A chat bot's events on the in-process bus: guild presence from Discord, AI calls, and a
//! circuit breaker that watches the calls and announces its own state.
//!
//! - [`events`]: the seven events of the bot's catalog, camelCase on the wire.
//! - [`breaker`]: the circuit breaker, a state machine per provider fed by `ai.call.*` and
//!   publishing `ai.breaker.*`.
//! - [`ai`]: a deterministic simulated provider, and the greeter that asks it to welcome
//!   each new guild.
//! - [`json_log`]: the `*` subscriber writing one PII-free JSON line per event.
//! - [`scenario`]: the demo that `cargo run -p chatbot` runs, as a library function.
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
pub mod breaker;
pub mod events;
pub mod json_log;
pub mod scenario;

pub use scenario::{Config, Error, Summary, run, run_with};
