//! What each member of a consumer group handled: the tests of several buses (standing for
//! several processes) record each event's partition key and sequence number by member, then
//! check that every event was handled once, in order per key, by one member per key.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Mutex, PoisonError};

/// The events handled, as (key, sequence number), by member.
#[derive(Debug, Default)]
pub struct Handled {
    by_member: Mutex<BTreeMap<String, Vec<(String, u64)>>>,
    count: AtomicU64,
}

impl Handled {
    /// Records that `member` handled the event `seq` of `key`.
    pub fn record(&self, member: &str, key: &str, seq: u64) {
        self.by_member
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(member.to_owned())
            .or_default()
            .push((key.to_owned(), seq));
        self.count.fetch_add(1, SeqCst);
    }

    /// How many events were handled, repeats included.
    pub fn count(&self) -> u64 {
        self.count.load(SeqCst)
    }

    /// What each member handled, in the order it handled it.
    pub fn by_member(&self) -> BTreeMap<String, Vec<(String, u64)>> {
        self.by_member
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Everything handled, member after member.
    pub fn all(&self) -> Vec<(String, u64)> {
        self.by_member().into_values().flatten().collect()
    }

    /// Asserts that `events` events were handled, each once, each key's in order and by
    /// one member only.
    ///
    /// # Panics
    ///
    /// When one of those does not hold, saying which.
    pub fn assert_in_order_once(&self, events: usize) {
        let all = self.all();
        let distinct: HashSet<&(String, u64)> = all.iter().collect();
        assert_eq!(all.len(), events, "each event handled once");
        assert_eq!(distinct.len(), events);
        let mut owner_of: HashMap<String, String> = HashMap::new();
        for (member, handled) in self.by_member() {
            let mut last: HashMap<&str, u64> = HashMap::new();
            for (key, seq) in &handled {
                if let Some(previous) = last.insert(key, *seq) {
                    assert!(*seq > previous, "key {key}: {seq} handled after {previous}");
                }
                let owner = owner_of.entry(key.clone()).or_insert(member.clone());
                assert_eq!(*owner, member, "key {key} handled by two members");
            }
        }
    }
}
