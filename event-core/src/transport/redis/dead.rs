//! Dead letters: one stream per topic, `{prefix}:{topic}:dead`.

use super::reply::entries;
use super::{Inner, parse_id, scripts};
use crate::bus::DeadLetter;
use crate::envelope::RawEnvelope;
use crate::transport::{EntryRef, TransportDeadLetter, TransportError};
use chrono::{DateTime, SecondsFormat, Utc};
use redis::Value;

/// Keeps a letter; with an entry, only under the entry's lease, acknowledging it.
pub(super) async fn put(
    inner: &Inner,
    letter: &DeadLetter,
    entry: Option<&EntryRef>,
) -> Result<(), TransportError> {
    let group = letter.subscription.as_str();
    let failed_at = letter
        .failed_at
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    let envelope = letter
        .envelope
        .to_json()
        .map_err(|error| TransportError::Corrupt {
            broker: inner.broker.clone(),
            key: format!("(dead letter of {})", letter.envelope.id),
            reason: format!("the envelope does not serialize: {error}"),
        })?;
    // The dead entry's fields, as field/value pairs.
    let fields = [
        ("group", group.to_owned()),
        ("error", letter.last_error.clone()),
        ("attempts", letter.attempts.to_string()),
        ("failed_at", failed_at),
        ("envelope", envelope),
    ];
    let mut conn = inner.conn();
    let Some(entry) = entry else {
        let topic = inner.topic_of(&letter.envelope.event_type);
        inner.check_topic_once(topic).await?;
        let _: String = redis::cmd("XADD")
            .arg(inner.dead_key(topic))
            .arg("*")
            .arg(&fields)
            .query_async(&mut conn)
            .await
            .map_err(inner.err("XADD"))?;
        return Ok(());
    };
    let written: i64 = scripts::DEAD_LETTER
        .key(inner.lease_key(group, entry.shard))
        .key(inner.dead_key(&entry.topic))
        .key(inner.stream_key(&entry.topic, entry.shard))
        .arg(format!("|{}", entry.token))
        .arg(group)
        .arg(&entry.id)
        .arg(&fields)
        .arg("entry")
        .arg(&entry.id)
        .invoke_async(&mut conn)
        .await
        .map_err(inner.err("dead letter"))?;
    inner.settled(group, entry);
    if written < 0 {
        return Err(TransportError::Fenced {
            broker: inner.broker.clone(),
            topic: entry.topic.clone(),
            shard: entry.shard,
            token: entry.token,
        });
    }
    Ok(())
}

/// The letters of every topic, of one group or all, oldest first.
pub(super) async fn list(
    inner: &Inner,
    group: Option<&str>,
) -> Result<Vec<TransportDeadLetter>, TransportError> {
    let mut letters = Vec::new();
    for topic in inner.all_topics().await? {
        let key = inner.dead_key(&topic);
        let reply: Value = redis::cmd("XRANGE")
            .arg(&key)
            .arg("-")
            .arg("+")
            .query_async(&mut inner.conn())
            .await
            .map_err(inner.err("XRANGE"))?;
        for entry in entries(reply) {
            let subscription = entry.text("group").unwrap_or_default();
            if group.is_some_and(|g| g != subscription) {
                continue;
            }
            let Some(bytes) = entry.field("envelope") else {
                tracing::warn!(
                    stream = %key,
                    entry = %entry.id,
                    error = entry.text("error").unwrap_or_default(),
                    "a dead entry that is not an envelope (bad input), not listed"
                );
                continue;
            };
            let envelope = match RawEnvelope::from_json(bytes) {
                Ok(envelope) => envelope,
                Err(error) => {
                    tracing::warn!(stream = %key, entry = %entry.id, %error, "a dead letter whose envelope does not parse, not listed");
                    continue;
                }
            };
            let (ms, _) = parse_id(&entry.id);
            let failed_at = entry
                .text("failed_at")
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc))
                .or_else(|| DateTime::from_timestamp_millis(i64::try_from(ms).ok()?))
                .unwrap_or_default();
            let letter = DeadLetter::from_parts(
                subscription,
                envelope,
                entry.text("error").unwrap_or_default(),
                entry
                    .text("attempts")
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(0),
                failed_at,
            );
            letters.push((
                parse_id(&entry.id),
                TransportDeadLetter {
                    id: EntryRef::new(topic.clone(), 0, entry.id, 0),
                    letter,
                },
            ));
        }
    }
    letters.sort_by_key(|(id, _)| *id);
    Ok(letters.into_iter().map(|(_, letter)| letter).collect())
}

/// Removes a letter; false when it was not there.
pub(super) async fn remove(inner: &Inner, id: &EntryRef) -> Result<bool, TransportError> {
    let removed: i64 = redis::cmd("XDEL")
        .arg(inner.dead_key(&id.topic))
        .arg(&id.id)
        .query_async(&mut inner.conn())
        .await
        .map_err(inner.err("XDEL"))?;
    Ok(removed > 0)
}
