//! `orders --http ADDR`: the storefront's HTTP API in front of the same durable bus, an
//! axum application on sqlx as a user would write one.
//!
//! - `POST /orders` takes a new order as JSON, and writes its row in the `orders` table and
//!   its `order.created` event in **one sqlx transaction** on the store's SQLite file (the
//!   transactional outbox): both or neither. The request's correlation id
//!   (`x-correlation-id`, else `x-request-id`, else a new one; echoed in the response) is
//!   the event's, and billing's `invoice.issued` follow-up carries it on. Answers `201` with
//!   the order id, the event id and the correlation id; `409` when the order id exists;
//!   `422` for an order that cannot be (no line, a quantity of 0, a bad currency).
//! - `GET /orders/{id}/events`: the order's timeline as the store holds it, oldest first:
//!   its own events, and those its creation set off under the same correlation id (billing's
//!   invoice); personal fields redacted. `404` for an order that does not exist.
//!
//! Three lines tie the toolkit in: the request context layer on the router, and in the
//! handler [`EventBus::prepare`] then [`SqliteStore::append_in_sqlx`] inside the
//! transaction (with [`EventBus::wake`] after the commit).

use super::Error;
use super::services::{Mailer, Services, timestamp};
use crate::order::{Address, LineItem, OrderCreated};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use event_core::http::RequestContextLayer;
use event_core::privacy::redact_envelope;
use event_core::store::sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use event_core::store::sqlx::{self, Connection as _};
use event_core::store::{EventQuery, Position, SqliteStore, Store, StoredEvent, TimelineQuery};
use event_core::{DomainEvent as _, EventBus, PublishError, Registry};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The table of the application's own rows, beside the store's tables in the same file.
const ORDERS_TABLE: &str = "CREATE TABLE IF NOT EXISTS orders (\
     id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, total_cents INTEGER NOT NULL, \
     currency TEXT NOT NULL, created_at TEXT NOT NULL)";

/// A flat shipping fee, in cents.
const SHIPPING_CENTS: u64 = 495;

/// The tax rate included in the total, in percent.
const TAX_PERCENT: u64 = 19;

/// Events of one order returned at most (an order has a dozen).
const TIMELINE_LIMIT: usize = 200;

/// What the API's handlers share: the bus, its store, and a sqlx pool on the store's file.
#[derive(Debug, Clone)]
pub struct Shop {
    bus: EventBus,
    store: SqliteStore,
    pool: SqlitePool,
    registry: Arc<Registry>,
}

impl Shop {
    /// The shop on a durable bus over `store`: connects a sqlx pool to the store's file and
    /// creates the `orders` table.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] for a store in memory (the pool needs its file); [`Error::Database`]
    /// when the pool cannot connect or create the table; [`Error::Registry`] for an
    /// inconsistent registry.
    pub async fn open(bus: EventBus, store: SqliteStore) -> Result<Self, Error> {
        let path = store
            .path()
            .ok_or_else(|| Error::Io(std::io::Error::other("the shop needs a store in a file")))?
            .to_owned();
        let options = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePool::connect_with(options).await?;
        sqlx::query(ORDERS_TABLE).execute(&pool).await?;
        Ok(Shop {
            bus,
            store,
            pool,
            registry: Arc::new(event_core::registry()?),
        })
    }

    /// The API's routes, with the request context layer that gives each request's events
    /// its correlation id.
    pub fn router(self) -> Router {
        Router::new()
            .route("/orders", post(create_order))
            .route("/orders/{id}/events", get(order_events))
            .layer(RequestContextLayer::new())
            .with_state(self)
    }
}

/// Runs the API on `addr` over a durable bus on the new SQLite file `path`, with billing,
/// fulfillment and notifications subscribed (their lines go to `out`), until Ctrl-C; then
/// drains the bus.
///
/// # Errors
///
/// [`Error::Exists`] when `path` exists; [`Error::Io`] when `addr` cannot be bound; those
/// of [`Shop::open`] and of subscribing.
pub async fn serve(
    path: &std::path::Path,
    addr: SocketAddr,
    out: impl std::io::Write + Send + 'static,
) -> Result<(), Error> {
    if path.exists() {
        return Err(Error::Exists(path.to_owned()));
    }
    let store = SqliteStore::open(path)?;
    let bus = EventBus::builder().store(store.clone()).build();
    let mailer = Mailer::new(out);
    Services::subscribe(
        &bus,
        Arc::new(store.clone()),
        Duration::from_secs(5),
        mailer.clone(),
    )?;
    let shop = Shop::open(bus.clone(), store).await?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    mailer.line(format_args!(
        "orders API on http://{}: POST /orders, GET /orders/{{id}}/events; Ctrl-C to stop",
        listener.local_addr()?
    ))?;
    axum::serve(listener, shop.router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    bus.shutdown().await;
    mailer.line(format_args!("stopped; the bus drained"))?;
    Ok(())
}

/// The body of `POST /orders`: the order as the storefront knows it; the shop computes the
/// totals.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrder {
    /// The order's id; a new one when absent.
    order_id: Option<String>,
    customer_id: String,
    customer_email: String,
    customer_name: String,
    line_items: Vec<LineItem>,
    currency: String,
    shipping_address: Address,
}

/// The answer to `POST /orders`: the ids a client keeps.
#[derive(Debug, Serialize)]
#[expect(
    clippy::struct_field_names,
    reason = "the JSON keys of the API's answer"
)]
struct Created {
    order_id: String,
    event_id: String,
    correlation_id: Option<String>,
}

/// Why a request failed, as the status and a JSON `{"error": "..."}`.
#[derive(Debug)]
enum ApiError {
    BadJson(JsonRejection),
    Invalid(String),
    Exists(String),
    NotFound(String),
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::BadJson(rejection) => (rejection.status(), rejection.body_text()),
            ApiError::Invalid(message) => (StatusCode::UNPROCESSABLE_ENTITY, message),
            ApiError::Exists(id) => (StatusCode::CONFLICT, format!("order {id} exists already")),
            ApiError::NotFound(id) => (StatusCode::NOT_FOUND, format!("no order {id}")),
            ApiError::Internal(message) => (StatusCode::INTERNAL_SERVER_ERROR, message),
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::Internal(format!("database: {error}"))
    }
}

impl From<event_core::store::StoreError> for ApiError {
    fn from(error: event_core::store::StoreError) -> Self {
        ApiError::Internal(format!("event store: {error}"))
    }
}

impl From<PublishError> for ApiError {
    fn from(error: PublishError) -> Self {
        ApiError::Internal(format!("event: {error}"))
    }
}

/// `POST /orders`: the order row and its `order.created`, in one transaction.
async fn create_order(
    State(shop): State<Shop>,
    body: Result<Json<NewOrder>, JsonRejection>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let Json(order) = body.map_err(ApiError::BadJson)?;
    let created = order_created(order)?;
    // The envelope as `publish` would make it, with the request's correlation id.
    let (envelope, json) = shop.bus.prepare(created).await?;
    let order = &envelope.payload;

    let mut conn = shop.pool.acquire().await?;
    // IMMEDIATE: the write lock first, so no other writer slips in between.
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let inserted = sqlx::query(
        "INSERT INTO orders (id, customer_id, total_cents, currency, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&order.order_id)
    .bind(&order.customer_id)
    .bind(i64::try_from(order.total_cents).unwrap_or(i64::MAX))
    .bind(&order.currency)
    .bind(&order.created_at)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(ApiError::Exists(order.order_id.clone()));
    }
    SqliteStore::append_in_sqlx(&mut tx, &[json]).await?;
    tx.commit().await?;
    // The subscriptions read the store now rather than at their next poll.
    shop.bus.wake();

    Ok((
        StatusCode::CREATED,
        Json(Created {
            order_id: order.order_id.clone(),
            event_id: envelope.id.to_string(),
            correlation_id: envelope.correlation_id.as_deref().map(str::to_owned),
        }),
    ))
}

/// The `order.created` of a new order, its totals computed; refused when the order cannot be.
fn order_created(order: NewOrder) -> Result<OrderCreated, ApiError> {
    if order.line_items.is_empty() {
        return Err(ApiError::Invalid("an order needs at least one line".into()));
    }
    if let Some(line) = order.line_items.iter().find(|line| line.quantity == 0) {
        return Err(ApiError::Invalid(format!(
            "line {}: the quantity must be at least 1",
            line.sku
        )));
    }
    if order.currency.len() != 3 || !order.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::Invalid(format!(
            "currency {:?}: an ISO 4217 code, like EUR",
            order.currency
        )));
    }
    let subtotal_cents = order
        .line_items
        .iter()
        .try_fold(0_u64, |sum, line| {
            line.unit_price_cents
                .checked_mul(u64::from(line.quantity))
                .and_then(|amount| sum.checked_add(amount))
        })
        .filter(|sum| *sum < u64::MAX / 100)
        .ok_or_else(|| ApiError::Invalid("the order's amount is too large".into()))?;
    let tax_cents = (subtotal_cents + SHIPPING_CENTS) * TAX_PERCENT / 100;
    let order_id = order
        .order_id
        .unwrap_or_else(|| format!("ord_{}", uuid::Uuid::now_v7().simple()));
    if order_id.is_empty() || order_id.chars().any(char::is_control) {
        return Err(ApiError::Invalid(format!(
            "order id {order_id:?}: not empty, no control characters"
        )));
    }
    Ok(OrderCreated {
        order_id,
        customer_id: order.customer_id,
        customer_email: order.customer_email,
        customer_name: order.customer_name,
        line_items: order.line_items,
        subtotal_cents,
        shipping_cents: SHIPPING_CENTS,
        tax_cents,
        total_cents: subtotal_cents + SHIPPING_CENTS + tax_cents,
        currency: order.currency,
        shipping_address: order.shipping_address,
        created_at: timestamp(Utc::now()),
    })
}

/// `GET /orders/{id}/events`: the order's timeline, oldest first, personal fields redacted.
/// Up to 200 events of each kind, plenty for one order.
async fn order_events(
    State(shop): State<Shop>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let exists: Option<String> = sqlx::query_scalar("SELECT id FROM orders WHERE id = ?1")
        .bind(&id)
        .fetch_optional(&shop.pool)
        .await?;
    if exists.is_none() {
        return Err(ApiError::NotFound(id));
    }
    // The order's own events (its partition), and what its creation set off under the same
    // correlation id in other partitions (billing's invoice), in store order.
    let own = shop
        .store
        .timeline(&TimelineQuery::partition(&id).limit(TIMELINE_LIMIT))
        .await?
        .events;
    let correlation_id = own
        .iter()
        .find(|stored| stored.envelope.event_type == OrderCreated::NAME)
        .and_then(|stored| stored.envelope.correlation_id.clone());
    let mut timeline: BTreeMap<Position, StoredEvent> = own
        .into_iter()
        .map(|stored| (stored.position, stored))
        .collect();
    if let Some(correlation_id) = correlation_id {
        let query = EventQuery::new()
            .correlation_id(correlation_id.as_str())
            .limit(TIMELINE_LIMIT);
        for stored in shop.store.query(&query).await?.events {
            timeline.entry(stored.position).or_insert(stored);
        }
    }
    let events: Vec<Value> = timeline
        .values()
        .map(|stored| {
            let mut view = redact_envelope(&shop.registry, &stored.envelope);
            view["position"] = stored.position.into();
            view
        })
        .collect();
    Ok(Json(json!({ "order_id": id, "events": events })))
}
