//! Dead letters: one stream per topic, `{prefix}__{topic}__dead`, each message a JSON
//! document (the group, the error, the attempts, when, and the envelope, or the raw bytes
//! of an entry that was not one).

use super::member::{self, Shared};
use super::{Inner, names};
use crate::bus::DeadLetter;
use crate::envelope::RawEnvelope;
use crate::transport::{EntryRef, TransportDeadLetter, TransportError};
use async_nats::jetstream::{self, stream};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A dead letter as it is kept.
#[derive(Serialize, Deserialize)]
struct Kept {
    group: String,
    error: String,
    attempts: u32,
    failed_at: DateTime<Utc>,
    /// The event, as its canonical JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    envelope: Option<Box<RawValue>>,
    /// An entry that was not an envelope: its bytes, as lossy UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    raw: Option<String>,
    /// The stream sequence of the entry it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entry: Option<String>,
}

/// Publishes a kept letter to the topic's dead-letter stream and waits for the server;
/// `id` dedupes a letter written twice (by a member, then by the next owner).
async fn write(inner: &Inner, topic: &str, kept: &Kept, id: &str) -> Result<(), TransportError> {
    inner.check_topic_once(topic).await?;
    let json = serde_json::to_vec(kept).map_err(|error| TransportError::Corrupt {
        broker: inner.broker.clone(),
        key: names::dead_stream(&inner.prefix, topic),
        reason: format!("the dead letter does not serialize: {error}"),
    })?;
    let message = jetstream::message::PublishMessage::build()
        .payload(json.into())
        .message_id(id);
    inner
        .js
        .send_publish(names::dead_subject(&inner.prefix, topic), message)
        .await
        .map_err(inner.err("PUB (dead letter)"))?
        .await
        .map_err(inner.err("PUB (dead letter)"))?;
    Ok(())
}

/// Keeps a letter; with an entry, only under the entry's lease, acknowledging it.
pub(super) async fn put(
    inner: &Inner,
    letter: &DeadLetter,
    entry: Option<&EntryRef>,
) -> Result<(), TransportError> {
    let group = letter.subscription.as_str();
    let envelope = letter
        .envelope
        .to_json()
        .ok()
        .and_then(|json| RawValue::from_string(json).ok())
        .ok_or_else(|| TransportError::Corrupt {
            broker: inner.broker.clone(),
            key: format!("(dead letter of {})", letter.envelope.id),
            reason: "the envelope does not serialize".to_owned(),
        })?;
    let kept = Kept {
        group: group.to_owned(),
        error: letter.last_error.clone(),
        attempts: letter.attempts,
        failed_at: letter.failed_at,
        envelope: Some(envelope),
        raw: None,
        entry: entry.map(|e| e.id.clone()),
    };
    let Some(entry) = entry else {
        let topic = inner.topic_of(&letter.envelope.event_type);
        let id = format!(
            "dead:{group}:{}:{}",
            letter.envelope.id,
            uuid::Uuid::now_v7()
        );
        return write(inner, topic, &kept, &id).await;
    };
    // Only the member holding the entry's lease writes it, then acknowledges the entry.
    let holder = inner
        .member_of(group)
        .into_iter()
        .find(|shared| shared.holds_lease(entry));
    let Some(holder) = holder else {
        return Err(inner.fenced(entry));
    };
    let id = format!("dead:{group}:{}:{}", entry.topic, entry.id);
    write(inner, &entry.topic, &kept, &id).await?;
    member::ack(&holder, entry).await
}

/// Dead-letters an entry that is not an envelope, with the reason and its bytes, and
/// acknowledges it, under the member's lease.
pub(super) async fn reject(
    shared: &Shared,
    entry: &EntryRef,
    reason: &str,
    bytes: &[u8],
) -> Result<(), TransportError> {
    let group = shared.spec.group.as_str();
    tracing::error!(
        broker = %shared.inner.broker,
        topic = %entry.topic,
        shard = entry.shard,
        entry = %entry.id,
        group,
        reason,
        "not an envelope: dead-lettered"
    );
    let kept = Kept {
        group: group.to_owned(),
        error: reason.to_owned(),
        attempts: 0,
        failed_at: Utc::now(),
        envelope: None,
        raw: Some(String::from_utf8_lossy(bytes).into_owned()),
        entry: Some(entry.id.clone()),
    };
    let id = format!("dead:{group}:{}:{}", entry.topic, entry.id);
    write(&shared.inner, &entry.topic, &kept, &id).await?;
    match member::ack(shared, entry).await {
        Err(TransportError::Fenced { .. }) => {
            tracing::warn!(topic = %entry.topic, entry = %entry.id, "lease lost before acknowledging a rejected entry; its new owner will");
            Ok(())
        }
        other => other,
    }
}

/// Dead-letters an entry that stalled its shard (see `lease::MAX_STALLS`): as an event when
/// it is an envelope (so it is listed and can be redelivered), else with its raw bytes.
pub(super) async fn set_aside(
    shared: &Shared,
    topic: &str,
    sequence: u64,
    bytes: &[u8],
    reason: &str,
    attempts: u32,
) -> Result<(), TransportError> {
    let group = shared.spec.group.as_str();
    let envelope = std::str::from_utf8(bytes)
        .ok()
        .filter(|text| RawEnvelope::from_json(text.as_bytes()).is_ok())
        .and_then(|text| RawValue::from_string(text.to_owned()).ok());
    let kept = Kept {
        group: group.to_owned(),
        error: reason.to_owned(),
        attempts,
        failed_at: Utc::now(),
        raw: envelope
            .is_none()
            .then(|| String::from_utf8_lossy(bytes).into_owned()),
        envelope,
        entry: Some(sequence.to_string()),
    };
    let id = format!("dead:{group}:{topic}:{sequence}");
    write(&shared.inner, topic, &kept, &id).await
}

/// The dead-letter stream of a topic, if it exists.
async fn dead_stream(inner: &Inner, topic: &str) -> Result<Option<stream::Stream>, TransportError> {
    match inner
        .js
        .get_stream(names::dead_stream(&inner.prefix, topic))
        .await
    {
        Ok(stream) => Ok(Some(stream)),
        Err(error) if super::not_found(&error) => Ok(None),
        Err(error) => Err(inner.err("$JS.API.STREAM.INFO")(error)),
    }
}

/// The letters of every topic, of one group or all, oldest first.
pub(super) async fn list(
    inner: &Inner,
    group: Option<&str>,
) -> Result<Vec<TransportDeadLetter>, TransportError> {
    let mut letters = Vec::new();
    for topic in inner.all_topics().await? {
        let Some(mut stream) = dead_stream(inner, &topic).await? else {
            continue;
        };
        let state = stream
            .info()
            .await
            .map_err(inner.err("$JS.API.STREAM.INFO"))?
            .state
            .clone();
        if state.messages == 0 {
            continue;
        }
        for sequence in state.first_sequence..=state.last_sequence {
            let message = match stream.get_raw_message(sequence).await {
                Ok(message) => message,
                Err(error)
                    if error.kind() == jetstream::stream::RawMessageErrorKind::NoMessageFound =>
                {
                    continue;
                }
                Err(error) => return Err(inner.err("$JS.API.STREAM.MSG.GET")(error)),
            };
            let kept: Kept = match serde_json::from_slice(&message.payload) {
                Ok(kept) => kept,
                Err(error) => {
                    tracing::warn!(topic, sequence, %error, "a dead letter that does not parse, not listed");
                    continue;
                }
            };
            if group.is_some_and(|g| g != kept.group) {
                continue;
            }
            let Some(json) = kept.envelope else {
                tracing::warn!(
                    topic,
                    sequence,
                    error = kept.error,
                    "a dead entry that is not an envelope (bad input), not listed"
                );
                continue;
            };
            let envelope = match RawEnvelope::from_json(json.get().as_bytes()) {
                Ok(envelope) => envelope,
                Err(error) => {
                    tracing::warn!(topic, sequence, %error, "a dead letter whose envelope does not parse, not listed");
                    continue;
                }
            };
            let letter = DeadLetter::from_parts(
                kept.group,
                envelope,
                kept.error,
                kept.attempts,
                kept.failed_at,
            );
            letters.push((
                letter.failed_at,
                TransportDeadLetter {
                    id: EntryRef::new(topic.clone(), 0, sequence.to_string(), 0),
                    letter,
                },
            ));
        }
    }
    letters.sort_by_key(|(at, _)| *at);
    Ok(letters.into_iter().map(|(_, letter)| letter).collect())
}

/// Removes a letter; false when it was not there.
pub(super) async fn remove(inner: &Inner, id: &EntryRef) -> Result<bool, TransportError> {
    let Ok(sequence) = id.id.parse::<u64>() else {
        return Ok(false);
    };
    let Some(stream) = dead_stream(inner, &id.topic).await? else {
        return Ok(false);
    };
    match stream.delete_message(sequence).await {
        Ok(deleted) => Ok(deleted),
        Err(error) if error.to_string().contains("no message found") => Ok(false),
        Err(error) => Err(inner.err("$JS.API.STREAM.MSG.DELETE")(error)),
    }
}
