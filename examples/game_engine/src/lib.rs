//! A story game's engine on a durable event bus in one SQLite file, killed halfway through a
//! session and restarted: its subscribers resume from their checkpoints and handle every
//! event once.
//!
//! The domain is a narrative game's: story events, narrative beats and challenge rolls
//! while the players play; image batches and text suggestions in the creator's generation
//! queues.
//!
//! - [`events`]: the ten events of the engine's catalog.
//! - [`session`]: the scripted session, 24 steps.
//! - [`subscribers`]: the narrator, the generation tracker and the suggestion worker, each
//!   handling an event once in its own way (`claim_in` in a transaction of its own, or the
//!   bus's automatic claim).
//! - [`projection`]: the generation tracker's tables.
//! - [`scenario`]: the two phases over one file, a snapshot of the file, the verification.
//! - [`app`]: what `cargo run -p game-engine` does: phase 1 in a child process killed with
//!   SIGKILL, phase 2 in the parent, the report.
//!
//! ```no_run
//! # fn main() -> Result<(), game_engine::Error> {
//! let dir = tempfile::tempdir()?;
//! let exe = std::env::current_exe()?; // a binary that runs `phase_1` given `CHILD_FLAG`
//! let path = dir.path().join("game.db");
//! let config = game_engine::RunConfig::default();
//! let verification = game_engine::run(&exe, &path, &config, &mut std::io::stdout())?;
//! assert!(verification.passed());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod app;
mod error;
pub mod events;
pub mod projection;
pub mod scenario;
pub mod session;
pub mod subscribers;

pub use app::{CHILD_FLAG, RunConfig, run};
pub use error::Error;
pub use scenario::{Config, Verification, phase_1};
