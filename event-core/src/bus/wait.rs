//! `wait_for`: the recent events with a correlation id, and who waits for one.

use super::published;
use super::{Event, EventBus, WaitError};
use crate::envelope::Envelope;
use crate::event::DomainEvent;
use std::collections::VecDeque;
use std::sync::PoisonError;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::oneshot;

/// Recently published events with a correlation id, and who waits for one.
#[derive(Default)]
pub(super) struct Recent {
    pub(super) events: VecDeque<Event>,
    pub(super) waiters: Vec<Waiter>,
}

pub(super) struct Waiter {
    pub(super) event_type: &'static str,
    pub(super) correlation_id: String,
    pub(super) reply: oneshot::Sender<Event>,
}

impl EventBus {
    /// Waits for an event of type `E` with this correlation id, published before the call
    /// (among the last `wait_window` such events) or within `timeout` after it.
    ///
    /// # Errors
    ///
    /// [`WaitError::Timeout`] when none came; [`WaitError::Decode`] when one came whose
    /// payload is not an `E`; [`WaitError::Closed`] when the bus shut down meanwhile.
    pub async fn wait_for<E: DomainEvent>(
        &self,
        correlation_id: &str,
        timeout: Duration,
    ) -> Result<Envelope<E>, WaitError> {
        let reply = {
            let mut recent = self
                .inner
                .recent
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let found = recent.events.iter().rev().find(|event| {
                let header = event.header();
                header.event_type == E::NAME
                    && header.correlation_id.as_deref() == Some(correlation_id)
            });
            if let Some(event) = found {
                return Ok(published::decode::<E>(&**event)?);
            }
            if self.inner.closed.load(Relaxed) {
                return Err(WaitError::Closed);
            }
            let (tx, rx) = oneshot::channel();
            recent.waiters.push(Waiter {
                event_type: E::NAME,
                correlation_id: correlation_id.to_owned(),
                reply: tx,
            });
            rx
        };
        match tokio::time::timeout(timeout, reply).await {
            Ok(Ok(event)) => Ok(published::decode::<E>(&*event)?),
            Ok(Err(_)) => Err(WaitError::Closed),
            Err(_) => Err(WaitError::Timeout {
                event_type: E::NAME,
                correlation_id: correlation_id.to_owned(),
                timeout,
            }),
        }
    }
}
