//! The admin HTTP API: one file per resource, the state they share, the router.

pub(crate) mod dead_letters;
pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod params;
pub(crate) mod subscriptions;
pub(crate) mod system;
pub(crate) mod views;

use crate::auth::{Caller, Tokens};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use error::ApiError;
use event_core::{EventBus, Registry};
use std::sync::Arc;

/// What every handler reads.
pub(crate) struct State {
    pub(crate) bus: EventBus,
    pub(crate) tokens: Tokens,
    /// The events this process knows: which payload fields are PII, which types make an
    /// aggregate.
    pub(crate) registry: Registry,
    /// `/health` fails for a subscription further behind than this.
    pub(crate) max_lag: u64,
}

pub(crate) type Shared = Arc<State>;

impl State {
    /// The key store of the bus's field encryption, to tell erased fields.
    pub(crate) fn keys(&self) -> Option<&dyn event_core::privacy::KeyStore> {
        self.bus
            .field_encryption()
            .map(|fields| &**fields.key_store())
    }
}

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        state.tokens.caller(&parts.headers)
    }
}
