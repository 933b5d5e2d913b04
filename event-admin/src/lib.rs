//! Operations for an [`event_core`] bus: what operators use.
//!
//! - [`router`] (or [`Admin`] for the options): an axum [`Router`] the application mounts,
//!   with the admin HTTP API under `/v1`, `GET /health`, `GET /metrics` (Prometheus), the
//!   `OpenAPI` document at `/v1/openapi.json`, and a dashboard at `GET /`.
//! - [`main`]: the ops CLI, against a store directly or a running service's API.
//!
//! Every route but `/health`, `/metrics` and the dashboard's page (which holds no data)
//! needs a bearer token ([`Token`]): of the read scope to look, of the operate scope to
//! redeliver, discard or replay; a token may be limited to one tenant's events. Payload
//! fields marked `#[event(pii)]` read `"[redacted]"` in every answer (`"[erased]"` once their
//! subject is forgotten, with field encryption). The router binds
//! nothing: the application serves it where it chooses, and [`Admin::serve`] refuses an
//! address beyond loopback unless told otherwise.
//!
//! ```
//! use event_admin::{Admin, Token};
//! use event_core::EventBus;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bus = EventBus::builder().build();
//! let admin = Admin::new(bus.clone())
//!     .token(Token::operate("s3cret"))
//!     .token(Token::read("support-token").tenant("acme"));
//! // Mount it in an application's own router...
//! let app = axum::Router::new().nest("/admin", admin.clone().router());
//! # drop(app);
//! // ...or serve it on its own, on loopback.
//! let serving = admin.serve("127.0.0.1:0".parse()?).await?;
//! println!("admin API on http://{}", serving.local_addr());
//! serving.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # The ops CLI
//!
//! [`main`] is the whole CLI; an application builds it as a three-line binary that links its
//! domain crates, so that the CLI knows their events and which fields are personal data:
//!
//! ```no_run
//! # #![allow(unused_imports)]
//! # mod my_events {}
//! use my_events as _; // link the events: a crate nothing references is not linked
//! fn main() -> std::process::ExitCode { event_admin::main() }
//! ```
//!
//! It runs `subscriptions`, `dlq list|show|redeliver|discard`, `replay NAME --from POS
//! [--wait]`, `timeline KEY`, `tail [PATTERN]` and `health` against an existing store opened
//! directly (`--store sqlite:PATH`, `--store postgres:URL`) or a running service's API
//! (`--url URL`, token from [`TOKEN_ENV`]), printing tables or `--json`. Its exit codes are
//! [`EXIT_OK`], [`EXIT_FAILED`], [`EXIT_ERROR`] and [`EXIT_UNREACHABLE`].
//!
//! # Feature flags
//!
//! None. The crate turns on event-core's `sqlite` and `postgres` features, for the CLI's
//! `--store`; a service's bus may use any store or transport.
//!
//! The routes, scopes, metric names and views in full: `docs/design.md` (section
//! "Operations") in the [repository](https://example.invalid/typed-events).
#![warn(missing_docs)]

mod api;
mod auth;
mod cli;
mod dashboard;
mod metrics;
mod openapi;
mod redact;

pub use api::error::ErrorBody;
pub use api::params::{DEFAULT_PAGE, MAX_PAGE};
pub use api::views::{
    ActionView, CheckView, DeadLetterPage, DeadLetterView, EventPage, EventView, HealthView,
    StreamsView, SubscriptionPage, SubscriptionView, TypeView,
};
pub use auth::{Scope, Token, random_secret};
pub use cli::{EXIT_ERROR, EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, main};
#[doc(hidden)]
pub use openapi::response_schema;
pub use redact::REDACTED;

use api::{dead_letters, events, subscriptions, system};
use axum::Router;
use axum::routing::{delete, get, post};
use event_core::EventBus;
use std::net::SocketAddr;
use std::sync::Arc;

/// The environment variable holding a token of the operate scope, read by [`router`] and
/// by the CLI (`--url`).
pub const TOKEN_ENV: &str = "EVENT_ADMIN_TOKEN";
/// The environment variable holding a token of the read scope, read by [`router`].
pub const READ_TOKEN_ENV: &str = "EVENT_ADMIN_READ_TOKEN";

/// The admin router of `bus`, with the tokens of the environment: [`TOKEN_ENV`] (operate)
/// and [`READ_TOKEN_ENV`] (read). With neither set, every route that needs a token answers
/// 401. See [`Admin`] to give tokens in code.
pub fn router(bus: EventBus) -> Router {
    Admin::new(bus).tokens_from_env().router()
}

/// The admin API of a bus, with its options.
#[derive(Debug, Clone)]
pub struct Admin {
    bus: EventBus,
    tokens: Vec<Token>,
    max_lag: u64,
    allow_remote: bool,
}

impl Admin {
    /// The admin API of `bus`, with no token yet (every route that needs one answers 401)
    /// and a lag threshold of 10 000 for `/health`.
    pub fn new(bus: EventBus) -> Self {
        Admin {
            bus,
            tokens: Vec::new(),
            max_lag: 10_000,
            allow_remote: false,
        }
    }

    /// Accepts `token`.
    #[must_use]
    pub fn token(mut self, token: Token) -> Self {
        self.tokens.push(token);
        self
    }

    /// Accepts the tokens in [`TOKEN_ENV`] (operate) and [`READ_TOKEN_ENV`] (read), where
    /// set and not empty.
    #[must_use]
    pub fn tokens_from_env(mut self) -> Self {
        for (name, scope) in [(TOKEN_ENV, Scope::Operate), (READ_TOKEN_ENV, Scope::Read)] {
            // Trimmed: a secret mounted from a file often ends in a newline.
            if let Some(secret) = std::env::var_os(name)
                .map(|s| s.as_encoded_bytes().trim_ascii().to_vec())
                .filter(|s| !s.is_empty())
            {
                self.tokens.push(Token::new(secret, scope));
            }
        }
        self
    }

    /// Accepts the operate token in [`TOKEN_ENV`] if set, else a fresh [`random_secret`];
    /// returns the secret too, for a development server to print.
    pub fn token_from_env_or_random(self) -> (Self, String) {
        let secret = std::env::var(TOKEN_ENV)
            .ok()
            .map(|secret| secret.trim().to_owned())
            .filter(|secret| !secret.is_empty())
            .unwrap_or_else(random_secret);
        (self.token(Token::operate(&secret)), secret)
    }

    /// `/health` answers 503 when a subscription is further behind than `max_lag`.
    #[must_use]
    pub fn max_lag(mut self, max_lag: u64) -> Self {
        self.max_lag = max_lag;
        self
    }

    /// Lets [`serve`](Self::serve) listen beyond loopback. The API then crosses a network:
    /// put TLS in front of it.
    #[must_use]
    pub fn allow_remote(mut self) -> Self {
        self.allow_remote = true;
        self
    }

    /// The router, to mount or serve.
    pub fn router(self) -> Router {
        let registry = event_core::registry().unwrap_or_else(|error| {
            tracing::error!(%error, "event registry invalid: every payload will be redacted");
            event_core::Registry::from_descriptors([]).unwrap_or_else(|_| unreachable!())
        });
        let state = Arc::new(api::State {
            bus: self.bus,
            tokens: auth::Tokens(self.tokens),
            registry,
            max_lag: self.max_lag,
        });
        Router::new()
            .route("/", get(dashboard::page))
            .route("/assets/app.js", get(dashboard::script))
            .route("/assets/style.css", get(dashboard::style))
            .route("/health", get(system::health))
            .route("/metrics", get(metrics::metrics))
            .route("/v1/openapi.json", get(openapi_document))
            .route("/v1/events", get(events::list))
            .route("/v1/events/{id}", get(events::get))
            .route("/v1/subscriptions", get(subscriptions::list))
            .route(
                "/v1/subscriptions/{name}/replay",
                post(subscriptions::replay),
            )
            .route("/v1/dead-letters", get(dead_letters::list))
            .route(
                "/v1/dead-letters/{id}",
                get(dead_letters::get).merge(delete(dead_letters::discard)),
            )
            .route(
                "/v1/dead-letters/{id}/redeliver",
                post(dead_letters::redeliver),
            )
            .route("/v1/streams", get(system::streams))
            .route("/v1/catalog", get(system::catalog))
            .with_state(state)
    }

    /// Serves the router on `addr` (port 0: any free port) until
    /// [`Serving::shutdown`].
    ///
    /// # Errors
    ///
    /// An address beyond loopback without [`allow_remote`](Self::allow_remote)
    /// (`PermissionDenied`), or the address cannot be bound.
    pub async fn serve(self, addr: SocketAddr) -> std::io::Result<Serving> {
        if !addr.ip().is_loopback() && !self.allow_remote {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "{addr} is not a loopback address: call Admin::allow_remote to serve the admin API there"
                ),
            ));
        }
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = self.router();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "the admin API stopped");
            }
        });
        Ok(Serving {
            local_addr,
            stop,
            task,
        })
    }
}

/// The admin API being served, from [`Admin::serve`].
#[derive(Debug)]
pub struct Serving {
    local_addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Serving {
    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops listening, and waits for the requests under way.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn openapi_document(
    caller: auth::Caller,
    params: api::params::Params,
) -> Result<axum::Json<serde_json::Value>, api::error::ApiError> {
    caller.require(Scope::Read)?;
    params.finish()?;
    Ok(axum::Json(openapi::document()))
}
