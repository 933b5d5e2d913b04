//! An envelope's non-domain metadata, cheap to copy per delivery.
//!
//! The partition key and the causation depth, which the bus reads for every delivery, are
//! kept beside the map of other entries; the map is shared (`Arc`) and copied only when
//! written to. The JSON form is one object with every entry, keys in sorted order, as a
//! `serde_json::Map` writes them: `{"depth":2,"partition_key":"o-1","tenant_id":"acme"}`.
//! A depth of 0 is not written.

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use smol_str::SmolStr;
use std::fmt;
use std::sync::Arc;

/// The metadata key holding the partition key.
pub const PARTITION_KEY: &str = "partition_key";
/// The metadata key holding the tenant id.
pub const TENANT_ID: &str = "tenant_id";
/// The metadata key holding the actor id.
pub const ACTOR_ID: &str = "actor_id";
/// The metadata key holding the causation depth: 0 for an event published outside a
/// handler, one more than the handled event's inside one.
pub const DEPTH: &str = "depth";

/// Non-domain metadata of an envelope: `partition_key`, `depth`, `tenant_id`, `actor_id`,
/// anything else.
///
/// Cloning it copies no string and no map: the partition key is a [`SmolStr`] (inline when
/// short, shared otherwise) and the other entries sit in a shared map, copied on write.
///
/// ```
/// use event_core::Meta;
/// use serde_json::json;
///
/// let mut meta = Meta::new();
/// meta.set_partition_key("o-1");
/// meta.insert("tenant_id".into(), "acme".into());
/// assert_eq!(meta.partition_key(), Some("o-1"));
/// assert_eq!(meta.tenant_id(), Some("acme"));
/// assert_eq!(meta.get("tenant_id"), Some(&json!("acme")));
/// assert_eq!(serde_json::to_string(&meta)?, r#"{"partition_key":"o-1","tenant_id":"acme"}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Meta {
    partition_key: Option<SmolStr>,
    depth: u32,
    /// Every other entry; `None` while there is none, so an empty `Meta` allocates nothing.
    other: Option<Arc<Map<String, Value>>>,
}

impl Meta {
    /// No metadata.
    pub const fn new() -> Self {
        Meta {
            partition_key: None,
            depth: 0,
            other: None,
        }
    }

    /// The partition key (`partition_key`), if any.
    pub fn partition_key(&self) -> Option<&str> {
        self.partition_key.as_deref()
    }

    /// Sets the partition key.
    pub fn set_partition_key(&mut self, key: impl Into<SmolStr>) {
        self.partition_key = Some(key.into());
    }

    /// The causation depth (`depth`): 0 for an event published outside a handler, one more
    /// than the handled event's inside one.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Sets the causation depth.
    pub fn set_depth(&mut self, depth: u32) {
        self.depth = depth;
    }

    /// The tenant id (`tenant_id`), if it is a string.
    pub fn tenant_id(&self) -> Option<&str> {
        self.get(TENANT_ID).and_then(Value::as_str)
    }

    /// The actor id (`actor_id`), if it is a string.
    pub fn actor_id(&self) -> Option<&str> {
        self.get(ACTOR_ID).and_then(Value::as_str)
    }

    /// Any entry that is a string, `partition_key` included.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        if key == PARTITION_KEY
            && let Some(partition_key) = self.partition_key()
        {
            return Some(partition_key);
        }
        self.get(key).and_then(Value::as_str)
    }

    /// An entry as JSON. The partition key and the depth have accessors of their own
    /// ([`partition_key`](Self::partition_key), [`depth`](Self::depth)) and are not found
    /// here unless they were given in another JSON type than theirs (a number as partition
    /// key, say), which is kept as given.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.other.as_deref().and_then(|other| other.get(key))
    }

    /// Sets an entry and returns the one it replaced, as `serde_json::Map::insert` does. A
    /// string `partition_key` and a positive integer `depth` go to their own fields.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        match (key.as_str(), &value) {
            (PARTITION_KEY, Value::String(partition_key)) => {
                let old = self.partition_key.replace(partition_key.into());
                let other = self.remove_other(PARTITION_KEY);
                old.map(|old| Value::String(old.into())).or(other)
            }
            (DEPTH, Value::Number(n))
                if n.as_u64()
                    .is_some_and(|d| (1..=u64::from(u32::MAX)).contains(&d)) =>
            {
                let old = std::mem::replace(
                    &mut self.depth,
                    u32::try_from(n.as_u64().unwrap_or(0)).unwrap_or(u32::MAX),
                );
                let other = self.remove_other(DEPTH);
                (old > 0).then(|| Value::from(old)).or(other)
            }
            _ => {
                // A partition key or depth of another JSON type replaces the typed one.
                let special = match key.as_str() {
                    PARTITION_KEY | DEPTH => self.remove(&key),
                    _ => None,
                };
                let other = Arc::make_mut(self.other.get_or_insert_with(Default::default))
                    .insert(key, value);
                special.or(other)
            }
        }
    }

    /// Removes an entry and returns it.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        match key {
            PARTITION_KEY if self.partition_key.is_some() => self
                .partition_key
                .take()
                .map(|key| Value::String(key.into())),
            DEPTH if self.depth > 0 => Some(std::mem::take(&mut self.depth).into()),
            _ => self.remove_other(key),
        }
    }

    fn remove_other(&mut self, key: &str) -> Option<Value> {
        let other = self.other.as_mut()?;
        if !other.contains_key(key) {
            return None;
        }
        Arc::make_mut(other).remove(key)
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        usize::from(self.partition_key.is_some())
            + usize::from(self.depth > 0)
            + self.other.as_deref().map_or(0, Map::len)
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry, as the JSON object the envelope writes, in key order.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut map = Map::new();
        self.for_each(|key, value| {
            map.insert(key.to_owned(), value.to_value());
        });
        map
    }

    /// Calls `f` with every entry in key order: the order the JSON object is written in.
    fn for_each<'a>(&'a self, mut f: impl FnMut(&'a str, Entry<'a>)) {
        let mut special = [
            (self.depth > 0).then_some((DEPTH, Entry::Depth(self.depth))),
            self.partition_key
                .as_deref()
                .map(|key| (PARTITION_KEY, Entry::Str(key))),
        ]
        .into_iter()
        .flatten()
        .peekable();
        for (key, value) in self.other.iter().flat_map(|other| other.iter()) {
            while let Some((name, entry)) = special.next_if(|(name, _)| *name < key.as_str()) {
                f(name, entry);
            }
            f(key, Entry::Json(value));
        }
        for (name, entry) in special {
            f(name, entry);
        }
    }
}

/// Equal when every entry is equal, whichever way the map was reached (an empty shared map
/// is no map).
impl PartialEq for Meta {
    fn eq(&self, other: &Self) -> bool {
        fn others(meta: &Meta) -> Option<&Map<String, Value>> {
            meta.other.as_deref().filter(|map| !map.is_empty())
        }
        self.partition_key == other.partition_key
            && self.depth == other.depth
            && others(self) == others(other)
    }
}

/// One entry of a [`Meta`], borrowed.
#[derive(Clone, Copy)]
enum Entry<'a> {
    Str(&'a str),
    Depth(u32),
    Json(&'a Value),
}

impl Entry<'_> {
    fn to_value(self) -> Value {
        match self {
            Entry::Str(s) => Value::String(s.to_owned()),
            Entry::Depth(depth) => Value::from(depth),
            Entry::Json(value) => value.clone(),
        }
    }
}

impl Serialize for Entry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Entry::Str(s) => serializer.serialize_str(s),
            Entry::Depth(depth) => serializer.serialize_u32(*depth),
            Entry::Json(value) => value.serialize(serializer),
        }
    }
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        self.for_each(|key, value| {
            map.entry(&key, &value.to_value());
        });
        map.finish()
    }
}

impl Serialize for Meta {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        let mut result = Ok(());
        self.for_each(|key, value| {
            if result.is_ok() {
                result = map.serialize_entry(key, &value);
            }
        });
        result?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Meta {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MetaVisitor;

        impl<'de> Visitor<'de> for MetaVisitor {
            type Value = Meta;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object of metadata")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Meta, A::Error> {
                let mut meta = Meta::new();
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    meta.insert(key, value);
                }
                Ok(meta)
            }
        }

        deserializer.deserialize_map(MetaVisitor)
    }
}

impl From<Map<String, Value>> for Meta {
    fn from(map: Map<String, Value>) -> Self {
        map.into_iter().collect()
    }
}

impl FromIterator<(String, Value)> for Meta {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(entries: I) -> Self {
        let mut meta = Meta::new();
        for (key, value) in entries {
            meta.insert(key, value);
        }
        meta
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_every_entry_in_key_order_as_a_map_would() {
        let entries = json!({
            "actor_id": "u-1", "depth": 3, "partition_key": "o-1", "region": "eu",
            "tenant_id": "t", "a": 1, "zz": [1], "partition_keys": true, "de": null
        });
        let map = entries.as_object().unwrap().clone();
        let meta = Meta::from(map.clone());
        assert_eq!(meta.partition_key(), Some("o-1"));
        assert_eq!(meta.depth(), 3);
        assert_eq!(meta.len(), map.len());
        assert_eq!(
            serde_json::to_string(&meta).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        assert_eq!(meta.to_map(), map);
        let back: Meta = serde_json::from_value(entries).unwrap();
        assert_eq!(back, meta);
    }

    #[test]
    fn an_emptied_map_equals_no_map() {
        let mut meta = Meta::new();
        meta.insert("region".into(), json!("eu"));
        meta.remove("region");
        assert_eq!(meta, Meta::new());
        assert!(meta.is_empty());
    }

    #[test]
    fn keeps_a_partition_key_or_depth_of_another_type_as_given() {
        let entries = json!({"partition_key": 42, "depth": -1});
        let meta: Meta = serde_json::from_value(entries.clone()).unwrap();
        assert_eq!(meta.partition_key(), None);
        assert_eq!(meta.depth(), 0);
        assert_eq!(meta.get("partition_key"), Some(&json!(42)));
        assert_eq!(serde_json::to_value(&meta).unwrap(), entries);
    }

    #[test]
    fn a_depth_of_zero_is_not_written() {
        let mut meta = Meta::new();
        meta.set_depth(0);
        assert_eq!(serde_json::to_string(&meta).unwrap(), "{}");
        assert!(meta.is_empty());
        meta.set_depth(1);
        assert_eq!(serde_json::to_string(&meta).unwrap(), r#"{"depth":1}"#);
    }

    #[test]
    fn insert_and_remove_return_what_was_there() {
        let mut meta = Meta::new();
        let key = || PARTITION_KEY.to_owned();
        assert_eq!(meta.insert(key(), json!("a")), None);
        assert_eq!(meta.insert(key(), json!("b")), Some(json!("a")));
        assert_eq!(meta.insert(key(), json!(7)), Some(json!("b")));
        assert_eq!(meta.partition_key(), None);
        assert_eq!(meta.insert(key(), json!("c")), Some(json!(7)));
        assert_eq!(meta.get_str(PARTITION_KEY), Some("c"));
        assert_eq!(meta.remove(PARTITION_KEY), Some(json!("c")));
        assert_eq!(meta.insert(DEPTH.to_owned(), json!(2)), None);
        assert_eq!(meta.remove(DEPTH), Some(json!(2)));
        assert!(meta.is_empty());
    }

    #[test]
    fn clones_share_the_map_until_one_writes() {
        let mut a = Meta::new();
        a.insert("tenant_id".into(), json!("t-1"));
        let mut b = a.clone();
        assert!(Arc::ptr_eq(
            a.other.as_ref().unwrap(),
            b.other.as_ref().unwrap()
        ));
        b.insert("tenant_id".into(), json!("t-2"));
        assert_eq!(a.tenant_id(), Some("t-1"));
        assert_eq!(b.tenant_id(), Some("t-2"));
    }
}
