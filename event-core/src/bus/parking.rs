//! Ordered dead letters: once an event of a partition key is dead-lettered, the later events
//! of that key wait behind it, in order, until the dead letter is redelivered (then they
//! follow it) or discarded (then they go on without it). Other keys flow.
//!
//! Opt-in per subscription ([`SubscriptionOptions::ordered_dead_letters`]); the model is
//! Axon's sequenced dead-letter queue. On a durable bus the parked events stay unsettled, so
//! the checkpoint does not pass them and a restart reads them again; the keys are blocked
//! again at start from the stored dead letters.
//!
//! [`SubscriptionOptions::ordered_dead_letters`]: crate::SubscriptionOptions::ordered_dead_letters

use super::delivery::{Delivery, LetterAction};
use smol_str::SmolStr;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use uuid::Uuid;

/// The blocked keys of one subscription.
#[derive(Debug, Default)]
pub(crate) struct Parking {
    blocked: Mutex<HashMap<SmolStr, Blocked>>,
}

#[derive(Debug)]
struct Blocked {
    /// The event id of the dead letter holding the key.
    letter: Uuid,
    parked: VecDeque<Delivery>,
}

/// What to do with a delivery that arrives at an ordered subscription.
#[derive(Debug)]
pub(crate) enum Admit {
    /// Handle it.
    Handle,
    /// Parked behind its key's dead letter (or it is that dead letter, already kept): done
    /// for now.
    Held,
    /// The dead letter was discarded: handle what it held back, not it.
    Release,
}

impl Parking {
    fn blocked(&self) -> std::sync::MutexGuard<'_, HashMap<SmolStr, Blocked>> {
        self.blocked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides about a delivery of an event with this key; a parked delivery is kept here.
    pub(crate) fn admit(&self, key: &str, delivery: Delivery) -> (Admit, Option<Delivery>) {
        let mut blocked = self.blocked();
        let Some(entry) = blocked.get_mut(key) else {
            return match delivery.letter {
                // A discard of a letter that holds nothing back: nothing to do.
                LetterAction::Discard => (Admit::Held, None),
                _ => (Admit::Handle, Some(delivery)),
            };
        };
        let id = delivery.event.header().id;
        if id != entry.letter {
            // The discard of another letter of this key (stored before the option was on):
            // nothing to handle, and nothing it holds back.
            if delivery.letter == LetterAction::Discard {
                return (Admit::Held, None);
            }
            entry.parked.push_back(delivery);
            return (Admit::Held, None);
        }
        match delivery.letter {
            LetterAction::Redeliver => (Admit::Handle, Some(delivery)),
            LetterAction::Discard => (Admit::Release, Some(delivery)),
            // The dead letter's own event read again (a durable bus after a restart): it is
            // kept as a dead letter already.
            LetterAction::None => (Admit::Held, Some(delivery)),
        }
    }

    /// Blocks `key` behind the dead letter of event `letter`, keeping what was parked.
    pub(crate) fn block(&self, key: &str, letter: Uuid) {
        let mut blocked = self.blocked();
        match blocked.get_mut(key) {
            Some(entry) => entry.letter = letter,
            None => {
                blocked.insert(
                    key.into(),
                    Blocked {
                        letter,
                        parked: VecDeque::new(),
                    },
                );
            }
        }
    }

    /// The next parked delivery of `key`, or `None` and the key unblocked when there is none.
    pub(crate) fn next(&self, key: &str) -> Option<Delivery> {
        let mut blocked = self.blocked();
        let entry = blocked.get_mut(key)?;
        let next = entry.parked.pop_front();
        if next.is_none() {
            blocked.remove(key);
        }
        next
    }

    /// Lets go of the keys `forget` picks (those of a shard given up): their dead letters'
    /// holds and what waits behind them, which the shard's next owner reads again.
    pub(crate) fn forget(&self, forget: impl Fn(&str) -> bool) {
        self.blocked().retain(|key, _| !forget(key));
    }

    /// Whether a dead letter holds `key` back.
    pub(crate) fn is_blocked(&self, key: &str) -> bool {
        self.blocked().contains_key(key)
    }

    /// How many events the dead letter of event `letter` with this key holds back.
    pub(crate) fn held_back(&self, key: &str, letter: Uuid) -> usize {
        self.blocked()
            .get(key)
            .filter(|entry| entry.letter == letter)
            .map_or(0, |entry| entry.parked.len())
    }

    /// How many deliveries are held back, over every key.
    pub(crate) fn parked_count(&self) -> usize {
        self.blocked()
            .values()
            .map(|entry| entry.parked.len())
            .sum()
    }
}
