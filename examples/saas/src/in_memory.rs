//! The whole flow in one process, on an in-memory bus: every role subscribed on one bus,
//! the gateway's sagas on it, then the dead letters. No worker to kill here.

use crate::backend::Backend;
use crate::error::Error;
use crate::gateway::{self, Report};
use crate::log::Log;
use crate::{dead_letters, roles};
use event_core::DeadLetter;
use std::time::Duration;

/// How long a saga's step waits for its reply.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// What a run ended with.
#[derive(Debug)]
pub struct Summary {
    /// Every saga.
    pub report: Report,
    /// Every dead letter.
    pub dead_letters: Vec<DeadLetter>,
}

impl Summary {
    /// Whether the run went as the scenario says.
    ///
    /// # Errors
    ///
    /// What went otherwise.
    pub fn check(&self) -> Result<(), String> {
        let unexpected = self.report.unexpected();
        if !unexpected.is_empty() {
            let names: Vec<&str> = unexpected.iter().map(|s| s.name.as_str()).collect();
            return Err(format!("sagas not as expected: {}", names.join(", ")));
        }
        dead_letters::check(&self.dead_letters)
    }
}

/// Runs the flow in memory, printing what happens.
///
/// # Errors
///
/// [`Error`] when a role cannot subscribe.
pub async fn run() -> Result<Summary, Error> {
    let bus = Backend::InMemory.bus("local").await?;
    roles::subscribe_all(&bus, &Log::named("local"))?;
    let log = Log::named("gateway");
    let report = gateway::run(&bus, &log, STEP_TIMEOUT).await;
    report.print(&log);
    let letters = dead_letters::collect(&bus, Duration::from_secs(2)).await;
    dead_letters::print(&Log::named("main"), &letters);
    bus.shutdown().await;
    Ok(Summary {
        report,
        dead_letters: letters,
    })
}
