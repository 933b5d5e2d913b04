//! `GET /v1/events` (the timeline) and `GET /v1/events/{id}`.

use super::Shared;
use super::error::ApiError;
use super::params::Params;
use super::views::{EventPage, EventView};
use crate::auth::{Caller, Scope};
use crate::redact;
use axum::Json;
use axum::extract::{Path, State};
use event_core::Registry;
use event_core::store::{EventQuery, StoreError, StoredEvent};

/// The timeline: events by partition key (`key`), aggregate, type, correlation id or time
/// range (`from`, `until`: RFC 3339, when appended), newest or oldest first, with a cursor.
pub(crate) async fn list(
    State(state): State<Shared>,
    caller: Caller,
    mut params: Params,
) -> Result<Json<EventPage>, ApiError> {
    caller.require(Scope::Read)?;
    let mut query = EventQuery::new();
    if let Some(key) = params.text("key") {
        query = query.partition_key(key);
    }
    let mut types: Vec<String> = params
        .text("type")
        .map(|types| types.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    if let Some(aggregate) = params.text("aggregate") {
        let of_aggregate: Vec<String> = state
            .registry
            .iter()
            .filter(|d| d.aggregate() == Some(aggregate.as_str()))
            .map(|d| d.name().to_owned())
            .collect();
        if of_aggregate.is_empty() {
            return Err(ApiError::bad_parameter(
                "aggregate",
                format!("no event type of aggregate {aggregate:?} is known"),
            ));
        }
        types = if types.is_empty() {
            of_aggregate
        } else {
            types.retain(|t| of_aggregate.contains(t));
            if types.is_empty() {
                return Ok(Json(EventPage {
                    events: Vec::new(),
                    next_cursor: None,
                }));
            }
            types
        };
    }
    types.sort();
    types.dedup();
    query = query.event_types(types);
    if let Some(id) = params.text("correlation_id") {
        query = query.correlation_id(id);
    }
    query = query.appended(params.time("from")?, params.time("until")?);
    if let Some(cursor) = params.text("cursor") {
        query = query.cursor(cursor);
    }
    query = query.limit(params.limit()?);
    if params.newest_first(false)? {
        query = query.newest_first();
    }
    params.finish()?;
    if let Some(tenant) = &caller.tenant {
        query = query.tenant(tenant.clone());
    }
    let page = search(&state, &query).await?;
    let mut events = Vec::with_capacity(page.events.len());
    for event in &page.events {
        let erased = redact::erased(state.keys(), &event.envelope).await;
        events.push(view(&state.registry, event, &erased));
    }
    Ok(Json(EventPage {
        events,
        next_cursor: page.next_cursor,
    }))
}

/// One event by id.
pub(crate) async fn get(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    params: Params,
) -> Result<Json<EventView>, ApiError> {
    caller.require(Scope::Read)?;
    params.finish()?;
    let id = uuid::Uuid::parse_str(&id)
        .map_err(|_| ApiError::bad_parameter("id", format!("not an event id (a UUID): {id:?}")))?;
    let mut query = EventQuery::new().id(id);
    if let Some(tenant) = &caller.tenant {
        query = query.tenant(tenant.clone());
    }
    let page = search(&state, &query).await?;
    let event = page
        .events
        .first()
        .ok_or_else(|| ApiError::not_found(format!("no event {id}")))?;
    let erased = redact::erased(state.keys(), &event.envelope).await;
    Ok(Json(view(&state.registry, event, &erased)))
}

async fn search(
    state: &Shared,
    query: &EventQuery,
) -> Result<event_core::store::TimelinePage, ApiError> {
    let store = state.bus.store().ok_or_else(ApiError::no_store)?;
    store.query(query).await.map_err(|error| match error {
        StoreError::InvalidCursor { .. } => ApiError::bad_parameter("cursor", error),
        error => ApiError::unavailable(error),
    })
}

/// An event as the API and the CLI show it, PII redacted, the `erased` fields erased.
pub(crate) fn view(registry: &Registry, event: &StoredEvent, erased: &[String]) -> EventView {
    EventView {
        position: event.position,
        event: redact::envelope(registry, &event.envelope, erased),
    }
}
