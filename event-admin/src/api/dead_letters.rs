//! `GET /v1/dead-letters`, `GET /v1/dead-letters/{id}`,
//! `POST /v1/dead-letters/{id}/redeliver`, `DELETE /v1/dead-letters/{id}`.

use super::Shared;
use super::error::ApiError;
use super::params::{Params, page};
use super::views::{ActionView, DeadLetterPage, DeadLetterView};
use crate::auth::{Caller, Scope};
use crate::redact;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use event_core::{DeadLetter, RedeliverError, Registry};

/// A dead letter's id in the API: the event's id and the subscription that failed.
pub(crate) fn id_of(letter: &DeadLetter) -> String {
    format!("{}:{}", letter.envelope.id, letter.subscription)
}

/// How many dead letters each subscription keeps.
pub(crate) fn count_by_subscription(
    letters: impl IntoIterator<Item = DeadLetter>,
) -> std::collections::HashMap<String, u64> {
    let mut kept = std::collections::HashMap::new();
    for letter in letters {
        *kept.entry(letter.subscription).or_default() += 1;
    }
    kept
}

/// The order of the list, and its cursor: oldest first.
fn key_of(letter: &DeadLetter) -> String {
    format!(
        "{:016}:{}",
        letter.failed_at.timestamp_millis().max(0),
        id_of(letter)
    )
}

/// The dead letters the caller may see (its tenant's, for a tenant's token), oldest first.
async fn visible(state: &Shared, caller: &Caller) -> Result<Vec<DeadLetter>, ApiError> {
    let mut letters = state
        .bus
        .try_dead_letters()
        .await
        .map_err(ApiError::unavailable)?;
    letters.retain(|letter| caller.sees(letter.envelope.meta.tenant_id()));
    letters.sort_by_key(key_of);
    Ok(letters)
}

/// The dead letter `id`, if the caller may see it.
async fn find(state: &Shared, caller: &Caller, id: &str) -> Result<DeadLetter, ApiError> {
    let (event_id, _) = id.split_once(':').ok_or_else(|| {
        ApiError::bad_parameter(
            "id",
            format!("not a dead letter id ({{event id}}:{{subscription}}): {id:?}"),
        )
    })?;
    uuid::Uuid::parse_str(event_id).map_err(|_| {
        ApiError::bad_parameter("id", format!("not an event id (a UUID): {event_id:?}"))
    })?;
    visible(state, caller)
        .await?
        .into_iter()
        .find(|letter| id_of(letter) == id)
        .ok_or_else(|| ApiError::not_found(format!("no dead letter {id}")))
}

/// A dead letter as the API and the CLI show it, PII redacted (in its error too, for one
/// kept before errors were), the `erased` fields erased.
pub(crate) fn view(registry: &Registry, letter: &DeadLetter, erased: &[String]) -> DeadLetterView {
    let event = redact::envelope(registry, &letter.envelope, erased);
    let payload = serde_json::from_str(letter.envelope.payload.get()).unwrap_or_default();
    let error = event_core::privacy::redact_text(
        registry,
        &letter.envelope.event_type,
        &payload,
        &letter.last_error,
    );
    DeadLetterView {
        id: id_of(letter),
        subscription: letter.subscription.clone(),
        event_id: letter.envelope.id.to_string(),
        event_type: letter.envelope.event_type.to_string(),
        // From the redacted event: a key that is a PII field reads as redacted.
        partition_key: event
            .pointer("/meta/partition_key")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
        error,
        attempts: letter.attempts,
        failed_at: letter
            .failed_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        held_back: letter.held_back,
        event,
    }
}

/// Dead letters, oldest first, optionally of one subscription.
pub(crate) async fn list(
    State(state): State<Shared>,
    caller: Caller,
    mut params: Params,
) -> Result<Json<DeadLetterPage>, ApiError> {
    caller.require(Scope::Read)?;
    let subscription = params.text("subscription");
    let cursor = params.text("cursor");
    let limit = params.limit()?;
    params.finish()?;
    let mut letters = visible(&state, &caller).await?;
    if let Some(name) = &subscription {
        letters.retain(|letter| &letter.subscription == name);
    }
    let (letters, next_cursor) = page(letters, key_of, cursor.as_deref(), limit);
    let mut views = Vec::with_capacity(letters.len());
    for letter in &letters {
        let erased = redact::erased(state.keys(), &letter.envelope).await;
        views.push(view(&state.registry, letter, &erased));
    }
    Ok(Json(DeadLetterPage {
        dead_letters: views,
        next_cursor,
    }))
}

/// One dead letter.
pub(crate) async fn get(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    params: Params,
) -> Result<Json<DeadLetterView>, ApiError> {
    caller.require(Scope::Read)?;
    params.finish()?;
    let letter = find(&state, &caller, &id).await?;
    let erased = redact::erased(state.keys(), &letter.envelope).await;
    Ok(Json(view(&state.registry, &letter, &erased)))
}

/// Sends a dead letter's event to its subscription again.
pub(crate) async fn redeliver(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    params: Params,
) -> Result<(StatusCode, Json<ActionView>), ApiError> {
    caller.require(Scope::Operate)?;
    params.finish()?;
    let letter = find(&state, &caller, &id).await?;
    state
        .bus
        .redeliver(&letter)
        .await
        .map_err(|e| failed(&id, e))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ActionView {
            id,
            action: "redelivered".to_owned(),
        }),
    ))
}

/// Takes a dead letter off the list without handling its event.
pub(crate) async fn discard(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    params: Params,
) -> Result<Json<ActionView>, ApiError> {
    caller.require(Scope::Operate)?;
    params.finish()?;
    let letter = find(&state, &caller, &id).await?;
    state
        .bus
        .discard(&letter)
        .await
        .map_err(|e| failed(&id, e))?;
    Ok(Json(ActionView {
        id,
        action: "discarded".to_owned(),
    }))
}

fn failed(id: &str, error: RedeliverError) -> ApiError {
    match error {
        RedeliverError::NotFound(_) => ApiError::not_found(format!("no dead letter {id}")),
        error @ RedeliverError::NoSubscription(_) => ApiError::conflict(error.to_string()),
        error => ApiError::unavailable(error),
    }
}
