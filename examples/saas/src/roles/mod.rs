//! What the workers do: four roles, one consumer group each. Every worker process joins all
//! four groups, so the three workers share each group's shards; in memory, one process
//! holds them all. The handlers are the same either way.
//!
//! | group | handles | publishes |
//! |---|---|---|
//! | [`onboarding`] | `user.registered` | `notification.send.requested` (welcome) |
//! | [`file_processor`] | `file.uploaded` | `file.processing.started`, `file.processing.completed`, or `system.error.critical` and a dead letter |
//! | [`embedder`] | `embedding.generation.requested` | `embedding.generation.completed` |
//! | [`notifier`] | `notification.send.requested` | `notification.delivered` per channel |
//!
//! What a handler publishes carries the handled event's correlation id: the bus sets it, so
//! the gateway's `wait_for` finds the reply whichever process made it.

pub mod embedder;
pub mod file_processor;
pub mod notifier;
pub mod onboarding;

use crate::log::Log;
use event_core::transport::StartFrom;
use event_core::{EventBus, HandlerError, PublishError, SubscribeError, SubscriptionOptions};

/// The consumer groups, in the order [`subscribe_all`] joins them.
pub const GROUPS: [&str; 4] = [
    onboarding::GROUP,
    file_processor::GROUP,
    embedder::GROUP,
    notifier::GROUP,
];

/// Subscribes every role on `bus`: what a worker process runs.
///
/// # Errors
///
/// [`SubscribeError`] when a group is subscribed already or the bus is shut down.
pub fn subscribe_all(bus: &EventBus, log: &Log) -> Result<(), SubscribeError> {
    onboarding::subscribe(bus, log)?;
    file_processor::subscribe(bus, log)?;
    embedder::subscribe(bus, log)?;
    notifier::subscribe(bus, log)
}

/// Every role's settings: a group created after the gateway started still reads what was
/// published before (on Redis; in memory the subscriptions exist before any publish).
fn options() -> SubscriptionOptions {
    SubscriptionOptions::new().start_from(StartFrom::Beginning)
}

/// A publish that failed inside a handler: worth another attempt (the broker may be back).
#[allow(clippy::needless_pass_by_value)] // the shape `map_err` wants
fn retry(error: PublishError) -> HandlerError {
    HandlerError::retryable(error)
}
