//! Names on the server. Streams, consumers and buckets allow only letters, digits, `-` and
//! `_`, and subject tokens no `.`, `*`, `>` or spaces, so every user-given part (prefix,
//! topic, group, consumer) is escaped: ASCII letters, digits and `-` stay, any other byte
//! becomes `_` and two hex digits. Parts are joined by `__`, which an escaped part never
//! contains (its `_` is always followed by a hex digit).

use async_nats::jetstream::stream;
use std::fmt::Write as _;

/// A user-given part, escaped (reversible by [`unescape`]).
pub(super) fn escape(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for byte in part.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "_{byte:02x}");
        }
    }
    out
}

/// The part an [`escape`]d name stands for, or `None` when it is not one.
pub(super) fn unescape(name: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(name.len());
    let mut rest = name.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'_' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// A topic's stream.
pub(super) fn stream(prefix: &str, topic: &str) -> String {
    format!("{}__{}", escape(prefix), escape(topic))
}

/// A topic's dead-letter stream.
pub(super) fn dead_stream(prefix: &str, topic: &str) -> String {
    format!("{}__{}__dead", escape(prefix), escape(topic))
}

/// The subject of a shard.
pub(super) fn subject(prefix: &str, topic: &str, shard: u32) -> String {
    format!("{}.{}.{shard}", escape(prefix), escape(topic))
}

/// The subject of a topic's dead letters.
pub(super) fn dead_subject(prefix: &str, topic: &str) -> String {
    format!("{}.{}.dead", escape(prefix), escape(topic))
}

/// The key-value bucket of a group's leases.
pub(super) fn bucket(prefix: &str, group: &str) -> String {
    format!("{}__g__{}", escape(prefix), escape(group))
}

/// A group's consumer on a shard, under the lease `token` (0: the group's start, created
/// when it joins, read by no one).
pub(super) fn consumer(group: &str, shard: u32, token: u64) -> String {
    format!("{}__{shard}__{token}", escape(group))
}

/// The group, shard and token of a consumer name.
pub(super) fn parse_consumer(name: &str) -> Option<(String, u32, u64)> {
    let mut parts = name.rsplitn(3, "__");
    let token = parts.next()?.parse().ok()?;
    let shard = parts.next()?.parse().ok()?;
    let group = unescape(parts.next()?)?;
    Some((group, shard, token))
}

/// A member's key in its group's bucket.
pub(super) fn member_key(consumer: &str) -> String {
    format!("m.{}", escape(consumer))
}

/// A shard's lease key in its group's bucket.
pub(super) fn lease_key(shard: u32) -> String {
    format!("s.{shard}")
}

/// A topic stream's description, which records its topic and shard count.
pub(super) fn description(topic: &str, shards: u32) -> String {
    format!("typed-events topic={} shards={shards}", escape(topic))
}

/// The topic and shard count of one of our topic streams (under `prefix`), from its
/// description.
pub(super) fn topic_of_stream(prefix: &str, config: &stream::Config) -> Option<(String, u32)> {
    let description = config.description.as_deref()?;
    let rest = description.strip_prefix("typed-events topic=")?;
    let (topic, shards) = rest.split_once(" shards=")?;
    let topic = unescape(topic)?;
    (config.name == stream(prefix, &topic)).then_some(())?;
    Some((topic, shards.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::{consumer, escape, parse_consumer, unescape};

    #[test]
    fn escapes_reversibly() {
        for part in [
            "billing",
            "order-projector",
            "billing_v2",
            "$wait-a.b",
            "naïve *>",
        ] {
            let escaped = escape(part);
            assert!(
                escaped
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{escaped}"
            );
            assert!(!escaped.contains("__"), "{escaped}");
            assert_eq!(unescape(&escaped).as_deref(), Some(part));
        }
        assert_eq!(escape("billing_v2"), "billing_5fv2");
        assert_eq!(unescape("bad_z1"), None);
    }

    #[test]
    fn consumer_names_parse() {
        let name = consumer("a_b__c", 3, 42);
        assert_eq!(parse_consumer(&name), Some(("a_b__c".to_owned(), 3, 42)));
        assert_eq!(parse_consumer("nope"), None);
    }
}
