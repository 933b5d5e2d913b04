//! The outbox and the inbox inside an application's sqlx transaction (feature
//! `sqlx-sqlite`): the store's own statements, on the caller's connection.

use super::SqliteStore;
use super::queries::{CLAIM, HEAD, INSERT_EVENT, POSITION_OF};
use crate::envelope::RawEnvelope;
use crate::store::error::sqlx_error;
use crate::store::{Encoded, Position, StoreError, from_sql};
use chrono::Utc;
use sqlx::{Sqlite, Transaction};
use uuid::Uuid;

/// How errors name the database: the caller's connection is not the store's.
const DATABASE: &str = "sqlite (the caller's sqlx transaction)";

impl SqliteStore {
    /// [`append_in`](Self::append_in) for an application on sqlx: appends events inside the
    /// caller's `sqlx` transaction on the store's file, so they commit or roll back with its
    /// own writes. Returns their positions; an id already stored is not stored again, as
    /// with [`Store::append`](crate::store::Store::append).
    ///
    /// Begin the transaction with `BEGIN IMMEDIATE`
    /// (`conn.begin_with("BEGIN IMMEDIATE")`), or make a write its first statement: a
    /// deferred transaction that read first fails with "database is locked" when another
    /// connection wrote in between. SQLite has one writer at a time, so keep it short: the
    /// store's own appends wait for it. Positions are gap-free in commit order. After the
    /// commit, [`EventBus::wake`](crate::EventBus::wake) makes the bus's subscriptions read
    /// the store at once instead of at their next poll.
    ///
    /// ```
    /// use event_core::store::sqlx::sqlite::SqlitePoolOptions;
    /// use event_core::store::sqlx::{self, Connection};
    /// use event_core::store::{SqliteStore, Store};
    /// # use event_core::RawEnvelope;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let json = r#"{"id":"0193a5b0-7e2a-7c3d-8f00-000000000001","type":"order.created",
    /// #   "version":1,"occurred_at":"2026-11-23T10:00:00.123Z","source":null,
    /// #   "correlation_id":null,"causation_id":null,"trace_id":null,
    /// #   "payload":{"order_id":"o-1"},"meta":{"partition_key":"o-1"}}"#;
    /// # let order_created = RawEnvelope::from_json(json.as_bytes())?;
    /// let path = dir.path().join("app.db");
    /// let store = SqliteStore::open(&path)?; // creates the store's tables
    /// let pool = SqlitePoolOptions::new()
    ///     .connect(&format!("sqlite://{}", path.display()))
    ///     .await?;
    /// sqlx::query("CREATE TABLE orders (id TEXT PRIMARY KEY, total INTEGER)")
    ///     .execute(&pool)
    ///     .await?;
    ///
    /// let mut conn = pool.acquire().await?;
    /// let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    /// sqlx::query("INSERT INTO orders VALUES ('o-1', 1200)")
    ///     .execute(&mut *tx)
    ///     .await?;
    /// SqliteStore::append_in_sqlx(&mut tx, &[order_created]).await?;
    /// tx.commit().await?; // the order and its event, or neither
    ///
    /// assert_eq!(store.head().await?, 1);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Store::append`](crate::store::Store::append); the caller's transaction should
    /// then be rolled back (dropping it does).
    pub async fn append_in_sqlx(
        tx: &mut Transaction<'_, Sqlite>,
        events: &[RawEnvelope],
    ) -> Result<Vec<Position>, StoreError> {
        let encoded = Encoded::all(events)?;
        let appended_at = Utc::now().timestamp_millis();
        let error = |e| sqlx_error(DATABASE, e);
        let mut head: i64 = sqlx::query_scalar(HEAD)
            .fetch_one(&mut **tx)
            .await
            .map_err(error)?;
        let mut positions = Vec::with_capacity(encoded.len());
        for event in &encoded {
            let id = event.id.to_string();
            let inserted = sqlx::query(INSERT_EVENT)
                .bind(head + 1)
                .bind(&id)
                .bind(&event.event_type)
                .bind(event.partition_key.as_deref())
                .bind(appended_at)
                .bind(&event.json)
                .execute(&mut **tx)
                .await
                .map_err(error)?;
            let position = if inserted.rows_affected() == 1 {
                head += 1;
                head
            } else {
                sqlx::query_scalar(POSITION_OF)
                    .bind(&id)
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(error)?
            };
            positions.push(from_sql(position));
        }
        Ok(positions)
    }

    /// [`claim_in`](Self::claim_in) for an application on sqlx: claims an event in a
    /// subscription's inbox inside the caller's transaction, so a handler's side effect and
    /// its claim commit or roll back together. `true` when this call claimed it, `false`
    /// when it was claimed before.
    ///
    /// # Errors
    ///
    /// A database error; the caller's transaction should then be rolled back.
    pub async fn claim_in_sqlx(
        tx: &mut Transaction<'_, Sqlite>,
        subscription: &str,
        event_id: Uuid,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(CLAIM)
            .bind(subscription)
            .bind(event_id.to_string())
            .bind(Utc::now().timestamp_millis())
            .execute(&mut **tx)
            .await
            .map_err(|e| sqlx_error(DATABASE, e))?;
        Ok(done.rows_affected() == 1)
    }
}
