//! The dead letters at the end of a run: shown with their errors, and checked against the
//! scenario (the broken upload, and nothing else).

use crate::log::Log;
use crate::roles::file_processor;
use crate::scenario::BAD_UPLOAD;
use event_core::{DeadLetter, EventBus};
use std::time::{Duration, Instant};

/// The dead letters, once there is at least one or `patience` ran out: a worker writes
/// its dead letter just after its handler gave up, so right after the gateway heard of the
/// failure it may not be there yet.
pub async fn collect(bus: &EventBus, patience: Duration) -> Vec<DeadLetter> {
    let started = Instant::now();
    loop {
        let letters = bus.dead_letters().await;
        if !letters.is_empty() || started.elapsed() >= patience {
            return letters;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Prints each letter: subscription, event, key, attempts and error.
pub fn print(log: &Log, letters: &[DeadLetter]) {
    log.line(format_args!("dead letters: {}", letters.len()));
    for letter in letters {
        log.line(format_args!(
            "  {} <- {} {} after {} attempt(s): {}",
            letter.subscription,
            letter.envelope.event_type,
            letter.envelope.partition_key().unwrap_or("-"),
            letter.attempts,
            letter.last_error
        ));
    }
}

/// Whether the letters are what the scenario makes: the broken upload, dead-lettered by
/// the file processor, once.
///
/// # Errors
///
/// What differs.
pub fn check(letters: &[DeadLetter]) -> Result<(), String> {
    let [letter] = letters else {
        return Err(format!(
            "expected one dead letter (the upload {BAD_UPLOAD}), found {}",
            letters.len()
        ));
    };
    let event = (
        letter.subscription.as_str(),
        letter.envelope.event_type.as_str(),
        letter.envelope.partition_key(),
    );
    if event == (file_processor::GROUP, "file.uploaded", Some(BAD_UPLOAD)) {
        Ok(())
    } else {
        Err(format!(
            "expected the dead letter of upload {BAD_UPLOAD} at {}, found {event:?}",
            file_processor::GROUP
        ))
    }
}
