//! `GET /v1/subscriptions` and `POST /v1/subscriptions/{name}/replay`.

use super::Shared;
use super::dead_letters;
use super::error::ApiError;
use super::params::{Params, page};
use super::views::{ActionView, SubscriptionPage, SubscriptionView, TypeView};
use crate::auth::{Caller, Scope};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use event_core::{LatencyHistogram, ReplayError, SubscriptionInfo};

/// Every subscription, by name, with its checkpoint, lag, in-flight count and counters.
pub(crate) async fn list(
    State(state): State<Shared>,
    caller: Caller,
    mut params: Params,
) -> Result<Json<SubscriptionPage>, ApiError> {
    caller.require(Scope::Read)?;
    let cursor = params.text("cursor");
    let limit = params.limit()?;
    params.finish()?;
    let letters = state
        .bus
        .try_dead_letters()
        .await
        .map_err(ApiError::unavailable)?;
    // A tenant's token counts its tenant's dead letters only (the other counters are the
    // subscription's, all tenants together).
    let kept = dead_letters::count_by_subscription(
        letters
            .into_iter()
            .filter(|letter| caller.sees(letter.envelope.meta.tenant_id())),
    );
    let mut infos = state.bus.subscriptions().await;
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    let (infos, next_cursor) = page(infos, |i| i.name.clone(), cursor.as_deref(), limit);
    Ok(Json(SubscriptionPage {
        subscriptions: infos
            .into_iter()
            .map(|info| {
                let dead_letters = kept.get(&info.name).copied().unwrap_or(0);
                view(info, dead_letters)
            })
            .collect(),
        next_cursor,
    }))
}

/// Reads a subscription's events again from store position `from` (exclusive; 0: from the
/// start). Needs the operate scope and a token for every tenant.
pub(crate) async fn replay(
    State(state): State<Shared>,
    caller: Caller,
    Path(name): Path<String>,
    mut params: Params,
) -> Result<(StatusCode, Json<ActionView>), ApiError> {
    caller.require(Scope::Operate)?;
    caller.require_all_tenants()?;
    let from = params.number("from")?.unwrap_or(0);
    params.finish()?;
    if state.bus.has_transport() {
        return Err(ApiError::conflict(
            "replay reads a subscription's events again from its store; on a bus with a transport its subscriptions read the broker",
        ));
    }
    let store = state.bus.store().ok_or_else(ApiError::no_store)?;
    let head = store.head().await.map_err(ApiError::unavailable)?;
    if from > head {
        return Err(ApiError::bad_parameter(
            "from",
            format!("{from} is past the store's head (position {head}): events would be skipped"),
        ));
    }
    match state.bus.replay(&name, from).await {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            Json(ActionView {
                id: name,
                action: "replaying".to_owned(),
            }),
        )),
        Err(ReplayError::NoSubscription(_)) => {
            Err(ApiError::not_found(format!("no subscription {name:?}")))
        }
        Err(ReplayError::InMemory) => Err(ApiError::no_store()),
        Err(error @ ReplayError::ConsumerGroup(_)) => Err(ApiError::conflict(error.to_string())),
        Err(error) => Err(ApiError::unavailable(error)),
    }
}

pub(crate) fn view(info: SubscriptionInfo, dead_letters: u64) -> SubscriptionView {
    SubscriptionView {
        feed: info.feed.as_str().to_owned(),
        delivered: info.delivered(),
        retried: info.retried(),
        dead_lettered: info.dead_lettered(),
        dead_letters,
        by_type: info
            .by_type
            .iter()
            .map(|t| TypeView {
                event_type: t.event_type.clone(),
                delivered: t.delivered,
                retried: t.retried,
                dead_lettered: t.dead_lettered,
                latency_p50_ms: percentile_ms(&t.latency, 0.50),
                latency_p99_ms: percentile_ms(&t.latency, 0.99),
            })
            .collect(),
        name: info.name,
        events: info.events,
        lanes: info.lanes,
        in_flight: info.in_flight,
        checkpoint: info.checkpoint,
        lag: info.lag,
    }
}

/// The `p` quantile's bucket bound, in milliseconds.
fn percentile_ms(latency: &LatencyHistogram, p: f64) -> Option<f64> {
    latency
        .percentile(p)
        .map(|bound| bound.as_secs_f64() * 1000.0)
}
