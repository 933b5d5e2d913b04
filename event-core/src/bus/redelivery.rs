//! Dead letters as operators handle them: list (with how many events each holds back),
//! redeliver, discard.

use super::delivery::Delivery;
use super::delivery::LetterAction;
use super::published;
use super::routing::Route;
use super::{DeadLetter, EventBus, RedeliverError};
use crate::store::StoredDeadLetter;
use crate::transport::TransportDeadLetter;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, PoisonError};

impl EventBus {
    /// Every dead letter, oldest first (on a durable bus, those in the store first), with
    /// how many events each holds back (ordered dead letters). Those the store or broker
    /// keeps are left out, and the failure logged, when they cannot be read: see
    /// [`try_dead_letters`](Self::try_dead_letters) to be told.
    pub async fn dead_letters(&self) -> Vec<DeadLetter> {
        match self.try_dead_letters().await {
            Ok(letters) => letters,
            Err(error) => {
                tracing::error!(%error, "kept dead letters not readable; listing those in memory");
                self.with_held_back(self.memory_letters())
            }
        }
    }

    /// [`dead_letters`](Self::dead_letters), failing when the store's or the broker's
    /// cannot be read rather than leaving them out.
    ///
    /// # Errors
    ///
    /// [`RedeliverError::Store`] or [`RedeliverError::Transport`] when the dead letters kept
    /// there cannot be read.
    pub async fn try_dead_letters(&self) -> Result<Vec<DeadLetter>, RedeliverError> {
        let mut letters = Vec::new();
        if let Some(remote) = &self.inner.remote {
            let kept = remote
                .transport
                .dead_letters(None)
                .await
                .map_err(RedeliverError::Transport)?;
            letters.extend(kept.into_iter().map(|kept| kept.letter));
        } else if let Some(backing) = &self.inner.backing {
            let stored = backing
                .store
                .dead_letters(None)
                .await
                .map_err(RedeliverError::Store)?;
            letters.extend(stored.into_iter().map(DeadLetter::from));
        }
        letters.extend(self.memory_letters());
        Ok(self.with_held_back(letters))
    }

    /// The dead letters kept in memory.
    fn memory_letters(&self) -> Vec<DeadLetter> {
        self.inner
            .shared
            .dead_letters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sets how many events each letter holds back (ordered dead letters).
    fn with_held_back(&self, mut letters: Vec<DeadLetter>) -> Vec<DeadLetter> {
        let routes = self
            .inner
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        for letter in &mut letters {
            let parking = routes
                .iter()
                .find(|route| route.name == letter.subscription)
                .and_then(|route| route.parking.as_ref());
            if let (Some(parking), Some(key)) = (parking, letter.envelope.partition_key()) {
                letter.held_back = parking.held_back(key, letter.envelope.id);
            }
        }
        letters
    }

    /// Takes a dead letter off the list for good, without handling its event. With ordered
    /// dead letters, the events it held back are handled then, in order. A letter whose
    /// subscription no longer exists can be discarded too.
    ///
    /// # Errors
    ///
    /// [`RedeliverError`] when the letter is not in the list, the store fails, or the bus is
    /// shut down; the letter then stays in the list.
    pub async fn discard(&self, letter: &DeadLetter) -> Result<(), RedeliverError> {
        if self.inner.closed.load(Relaxed) {
            return Err(RedeliverError::Closed);
        }
        let route = self.route(&letter.subscription);
        let remote = self.remote_letter(letter).await?;
        let stored = self.stored_letter(letter).await?;
        let event = if let (Some(kept), Some(remote)) = (remote, &self.inner.remote) {
            remote
                .transport
                .remove_dead_letter(&kept.id)
                .await
                .map_err(RedeliverError::Transport)?;
            published::raw(kept.letter.envelope)
        } else if let (Some(stored), Some(backing)) = (stored, &self.inner.backing) {
            backing
                .store
                .remove_dead_letter(stored.id)
                .await
                .map_err(RedeliverError::Store)?;
            published::raw(stored.envelope)
        } else {
            let taken = self.take_dead_letter(letter)?;
            taken
                .event
                .unwrap_or_else(|| published::raw(taken.envelope))
        };
        // What it held back follows, through its lane, in order. Once the lanes are closed
        // (shutdown) there is nothing left to release it to.
        if let Some(route) = route.filter(|route| route.parking.is_some()) {
            let discard = Delivery {
                letter: LetterAction::Discard,
                ..Delivery::in_memory(event)
            };
            let _ = self.hand_to(&route, discard).await;
        }
        Ok(())
    }

    /// Takes a dead letter off the list and sends its event to its subscription again, with
    /// a fresh count of attempts. On a durable bus the stored letter is removed once the
    /// event is handled, or replaced by a new one if it fails again.
    ///
    /// # Errors
    ///
    /// [`RedeliverError`] when the letter is not in the list, its subscription is gone, the
    /// store fails, or the bus is shut down; the letter then stays in the list.
    pub async fn redeliver(&self, letter: &DeadLetter) -> Result<(), RedeliverError> {
        if self.inner.closed.load(Relaxed) {
            return Err(RedeliverError::Closed);
        }
        let route = self
            .route(&letter.subscription)
            .ok_or_else(|| RedeliverError::NoSubscription(letter.subscription.clone()))?;
        let remote = self.remote_letter(letter).await?;
        let stored = self.stored_letter(letter).await?;
        let (delivery, taken) = if let Some(kept) = remote {
            let delivery = Delivery {
                redelivers_remote: Some(Box::new(kept.id)),
                letter: LetterAction::Redeliver,
                ..Delivery::in_memory(published::raw(kept.letter.envelope))
            };
            (delivery, None)
        } else if let Some(stored) = stored {
            let delivery = Delivery {
                redelivers: Some(stored.id),
                letter: LetterAction::Redeliver,
                ..Delivery::in_memory(published::raw(stored.envelope))
            };
            (delivery, None)
        } else {
            let taken = self.take_dead_letter(letter)?;
            let event = taken
                .event
                .clone()
                .unwrap_or_else(|| published::raw(taken.envelope.clone()));
            let delivery = Delivery {
                letter: LetterAction::Redeliver,
                ..Delivery::in_memory(event)
            };
            (delivery, Some(taken))
        };
        if self.hand_to(&route, delivery).await.is_ok() {
            Ok(())
        } else {
            if let Some(taken) = taken {
                self.inner
                    .shared
                    .dead_letters
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(taken);
            }
            Err(RedeliverError::Closed)
        }
    }

    /// Sends a delivery to its lane of `route`, counted in flight before the lane can finish
    /// it; gives it back when the lanes are closed.
    async fn hand_to(&self, route: &Route, delivery: Delivery) -> Result<(), Delivery> {
        let Some(lane) = route.lane(delivery.event.header()) else {
            return Err(delivery);
        };
        match lane.reserve_owned().await {
            Ok(permit) => {
                self.inner.shared.metrics.in_flight.fetch_add(1, Relaxed);
                permit.send(delivery);
                Ok(())
            }
            Err(_) => Err(delivery),
        }
    }

    /// The subscription named `name`.
    fn route(&self, name: &str) -> Option<Arc<Route>> {
        self.inner
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|route| route.name == name)
            .cloned()
    }

    /// A dead letter as the broker keeps it, on a bus with a transport.
    async fn remote_letter(
        &self,
        letter: &DeadLetter,
    ) -> Result<Option<TransportDeadLetter>, RedeliverError> {
        let Some(remote) = &self.inner.remote else {
            return Ok(None);
        };
        Ok(remote
            .transport
            .dead_letters(Some(&letter.subscription))
            .await
            .map_err(RedeliverError::Transport)?
            .into_iter()
            .find(|kept| kept.letter.envelope.id == letter.envelope.id))
    }

    /// The stored form of a dead letter, on a durable bus that has it.
    async fn stored_letter(
        &self,
        letter: &DeadLetter,
    ) -> Result<Option<StoredDeadLetter>, RedeliverError> {
        let Some(backing) = &self.inner.backing else {
            return Ok(None);
        };
        Ok(backing
            .store
            .dead_letters(Some(&letter.subscription))
            .await
            .map_err(RedeliverError::Store)?
            .into_iter()
            .find(|stored| stored.envelope.id == letter.envelope.id))
    }

    /// Removes a dead letter from the in-memory list.
    fn take_dead_letter(&self, letter: &DeadLetter) -> Result<DeadLetter, RedeliverError> {
        let mut letters = self
            .inner
            .shared
            .dead_letters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let index = letters
            .iter()
            .position(|l| {
                l.subscription == letter.subscription && l.envelope.id == letter.envelope.id
            })
            .ok_or(RedeliverError::NotFound(letter.envelope.id))?;
        Ok(letters.remove(index))
    }
}
