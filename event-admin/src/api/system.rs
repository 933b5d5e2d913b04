//! `GET /health`, `GET /v1/streams`, `GET /v1/catalog`.

use super::Shared;
use super::error::ApiError;
use super::params::Params;
use super::views::{CheckView, HealthView, StreamsView};
use crate::auth::{Caller, Scope};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;

/// Store and transport reachable, subscriptions under the lag threshold: 200, else 503
/// with every check and why it failed. Needs no token.
pub(crate) async fn health(
    State(state): State<Shared>,
    params: Params,
) -> Result<(StatusCode, Json<HealthView>), ApiError> {
    params.finish()?;
    let mut checks = Vec::new();
    if let Some(store) = state.bus.store() {
        checks.push(match store.head().await {
            Ok(head) => check("store", true, format!("reachable, head at position {head}")),
            Err(error) => {
                // The answer needs no token: the details (hosts, names) go to the log.
                tracing::warn!(%error, "health: the store is not readable");
                check(
                    "store",
                    false,
                    "not readable (see the service's log)".to_owned(),
                )
            }
        });
    }
    if state.bus.has_transport() {
        checks.push(match state.bus.transport_info().await {
            Ok(Some(_)) => check("transport", true, "reachable".to_owned()),
            Ok(None) => check("transport", false, "no transport".to_owned()),
            Err(error) => {
                tracing::warn!(%error, "health: the broker is not reachable");
                check(
                    "transport",
                    false,
                    "not reachable (see the service's log)".to_owned(),
                )
            }
        });
    }
    checks.push(if state.bus.is_closed() {
        check("bus", false, "shut down".to_owned())
    } else {
        check("bus", true, "running".to_owned())
    });
    for info in state.bus.subscriptions().await {
        if let Some(lag) = info.lag {
            let ok = lag <= state.max_lag;
            let detail = format!("lag {lag} (threshold {})", state.max_lag);
            checks.push(check(&format!("lag:{}", info.name), ok, detail));
        }
    }
    let healthy = checks.iter().all(|c| c.ok);
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let view = HealthView {
        status: if healthy { "ok" } else { "unhealthy" }.to_owned(),
        checks,
    };
    Ok((status, Json(view)))
}

fn check(name: &str, ok: bool, detail: String) -> CheckView {
    CheckView {
        name: name.to_owned(),
        ok,
        detail,
    }
}

/// The broker's topics, shards and consumer groups.
pub(crate) async fn streams(
    State(state): State<Shared>,
    caller: Caller,
    params: Params,
) -> Result<Json<StreamsView>, ApiError> {
    caller.require(Scope::Read)?;
    params.finish()?;
    let transport = state
        .bus
        .transport_info()
        .await
        .map_err(ApiError::unavailable)?;
    Ok(Json(StreamsView { transport }))
}

/// The catalog of every event this process knows, as `event-catalog` writes
/// `catalog.json`.
pub(crate) async fn catalog(
    State(state): State<Shared>,
    caller: Caller,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    params.finish()?;
    let catalog = event_catalog::Catalog::from_registry(&state.registry).to_json();
    serde_json::from_str(&catalog)
        .map(Json)
        .map_err(ApiError::unavailable)
}
