//! `wait_for`: the recent events with a correlation id, and who waits for one.

use super::published;
use super::store_feed::{Backing, sleep_or_stop};
use super::transport_feed::{self, Remote};
use super::{Event, EventBus, WaitError};
use crate::envelope::Envelope;
use crate::event::DomainEvent;
use crate::transport::{GroupSpec, StartFrom, reconnect_delay};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use std::time::SystemTime;
use tokio::sync::oneshot;
use tokio::sync::watch;

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

impl Recent {
    /// Answers the waiters of an event with a correlation id, and keeps it among the last
    /// `window` such events.
    pub(super) fn remember(&mut self, event: &Event, window: usize) {
        let header = event.header();
        let Some(correlation_id) = &header.correlation_id else {
            return;
        };
        let waiters = std::mem::take(&mut self.waiters);
        for waiter in waiters {
            if waiter.event_type == header.event_type && waiter.correlation_id == *correlation_id {
                let _ = waiter.reply.send(Arc::clone(event));
            } else if !waiter.reply.is_closed() {
                self.waiters.push(waiter);
            }
        }
        if window > 0 {
            if self.events.len() == window {
                self.events.pop_front();
            }
            self.events.push_back(Arc::clone(event));
        }
    }
}

impl EventBus {
    /// On a transport, starts (once) this bus's listener for `wait_for`: a consumer group
    /// of its own (ephemeral, deleted when the bus shuts down) that reads every event
    /// published since the bus was built (at most the last 5 minutes) by any process, so
    /// that a reply published elsewhere is found too.
    ///
    /// On a store without a transport, the listener reads the store instead, from a window
    /// back from its head: a reply appended by another process sharing the store is found.
    fn ensure_listener(&self) {
        if self.inner.remote.is_none() && self.inner.backing.is_none()
            || self.inner.listening.swap(true, Relaxed)
        {
            return;
        }
        let Some(remote) = &self.inner.remote else {
            if let Some(backing) = &self.inner.backing {
                self.spawn_feed(listen_store(
                    Arc::clone(backing),
                    Arc::clone(&self.inner.recent),
                    self.inner.config.recent,
                    self.inner.stop.subscribe(),
                ));
            }
            return;
        };
        let since = self
            .inner
            .built_at
            .max(SystemTime::now() - LISTEN_BACK)
            .min(SystemTime::now());
        let spec = GroupSpec::new(format!("$wait:{}", remote.consumer), &remote.consumer)
            .start_from(StartFrom::At(since))
            .max_payload_bytes(self.inner.shared.max_payload_bytes)
            .ephemeral();
        self.spawn_feed(listen(
            Arc::clone(remote),
            spec,
            Arc::clone(&self.inner.recent),
            self.inner.config.recent,
            self.inner.stop.subscribe(),
        ));
    }

    /// Waits for an event of type `E` with this correlation id, published before the call
    /// (among the last `wait_window` such events) or within `timeout` after it.
    ///
    /// # Errors
    ///
    /// [`WaitError::Timeout`] when none came; [`WaitError::Decode`] when one came whose
    /// payload is not an `E`; [`WaitError::Protect`] when its sealed fields could not be
    /// opened; [`WaitError::Closed`] when the bus shut down meanwhile.
    pub async fn wait_for<E: DomainEvent>(
        &self,
        correlation_id: &str,
        timeout: Duration,
    ) -> Result<Envelope<E>, WaitError> {
        self.ensure_listener();
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
            match found {
                Some(event) => Err(Event::clone(event)),
                None if self.inner.closed.load(Relaxed) => return Err(WaitError::Closed),
                None => {
                    let (tx, rx) = oneshot::channel();
                    recent.waiters.push(Waiter {
                        event_type: E::NAME,
                        correlation_id: correlation_id.to_owned(),
                        reply: tx,
                    });
                    Ok(rx)
                }
            }
        };
        let event = match reply {
            Err(found) => found,
            Ok(reply) => match tokio::time::timeout(timeout, reply).await {
                Ok(Ok(event)) => event,
                Ok(Err(_)) => return Err(WaitError::Closed),
                Err(_) => {
                    return Err(WaitError::Timeout {
                        event_type: E::NAME,
                        correlation_id: correlation_id.to_owned(),
                        timeout,
                    });
                }
            },
        };
        // Read from a store or a broker, its personal fields may be sealed.
        let encryption = self.inner.shared.encryption.as_deref();
        let opened = published::opened(encryption, &*event).await?;
        Ok(published::decode::<E>(
            &**opened.as_ref().unwrap_or(&event),
        )?)
    }
}

/// How far back a new `wait_for` listener reads, at most.
const LISTEN_BACK: Duration = Duration::from_secs(300);

/// Keeps what the broker carries in the recent window, answering waiters, until `stop`;
/// then leaves (and so deletes) its ephemeral group.
async fn listen(
    remote: Arc<Remote>,
    spec: GroupSpec,
    recent: Arc<Mutex<Recent>>,
    window: usize,
    mut stop: watch::Receiver<bool>,
) {
    let Some(member) = transport_feed::join(&remote, &spec, &mut stop).await else {
        return;
    };
    let mut failures = 0;
    while !*stop.borrow() {
        match member.receive(256, Duration::from_millis(250)).await {
            Ok(batch) => {
                failures = 0;
                for received in batch {
                    if let Err(error) = member.ack(&received.entry).await {
                        tracing::debug!(%error, "wait_for listener: entry not acknowledged");
                    }
                    if received.envelope.correlation_id.is_some() {
                        recent
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remember(&published::raw(received.envelope), window);
                    }
                }
            }
            Err(error) => {
                failures += 1;
                tracing::warn!(%error, "wait_for listener: cannot receive from the broker, retrying");
                let pause = reconnect_delay(failures, Duration::from_secs(2));
                if sleep_or_stop(pause, &mut stop).await {
                    break;
                }
            }
        }
    }
    member.leave().await;
}

/// Keeps what the store receives from any process in the recent window, answering waiters,
/// until `stop`: from `window` events back from the head when it starts, then each append
/// (woken as the pumps are, else at each poll).
async fn listen_store(
    backing: Arc<Backing>,
    recent: Arc<Mutex<Recent>>,
    window: usize,
    mut stop: watch::Receiver<bool>,
) {
    backing.watch();
    let store = &backing.store;
    let mut after = None;
    loop {
        let appended = backing.appended.notified();
        tokio::pin!(appended);
        appended.as_mut().enable();
        if *stop.borrow() {
            return;
        }
        let read = match after {
            Some(after) => store.read(after, 256).await,
            None => match store.head().await {
                Ok(head) => {
                    after = Some(head.saturating_sub(window as u64));
                    continue;
                }
                Err(error) => Err(error),
            },
        };
        match read {
            Ok(batch) if !batch.is_empty() => {
                let mut recent = recent.lock().unwrap_or_else(PoisonError::into_inner);
                for stored in batch {
                    after = Some(stored.position);
                    let id = stored.envelope.id;
                    // This process's own publishes are in the window already.
                    let known = recent.events.iter().any(|e| e.header().id == id);
                    if stored.envelope.correlation_id.is_some() && !known {
                        recent.remember(&published::raw(stored.envelope), window);
                    }
                }
            }
            Ok(_) => {
                tokio::select! {
                    () = &mut appended => {}
                    () = tokio::time::sleep(backing.poll_interval) => {}
                    // Err: the bus was dropped without a shutdown; stop with it.
                    changed = stop.changed() => if changed.is_err() { return; }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "wait_for listener: store not readable, retrying");
                if sleep_or_stop(backing.poll_interval, &mut stop).await {
                    return;
                }
            }
        }
    }
}
