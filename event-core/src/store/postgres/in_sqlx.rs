//! The outbox and the inbox inside an application's sqlx transaction (feature
//! `sqlx-postgres`): the store's own statements, on the caller's connection.

use super::PostgresStore;
use super::queries::{CLAIM, INSERT, KNOWN, LOCK_HEAD, NOTIFY, Plan, SET_HEAD};
use crate::envelope::RawEnvelope;
use crate::store::error::sqlx_error;
use crate::store::{Encoded, Position, StoreError};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// How errors name the database: the caller's connection is not the store's.
const DATABASE: &str = "postgres (the caller's sqlx transaction)";

impl PostgresStore {
    /// [`append_in`](Self::append_in) for an application on sqlx: appends events inside the
    /// caller's `sqlx` transaction, so they commit or roll back with its own writes. Returns
    /// their positions; an id already stored is not stored again, as with
    /// [`Store::append`](crate::store::Store::append).
    ///
    /// The same statements as the store's own appends: the transaction locks the store's
    /// head until it ends (keep it short), positions are gap-free in commit order, and the
    /// commit notifies the buses on this database (`NOTIFY`), whose pumps read it at once.
    /// Use `READ COMMITTED` (PostgreSQL's default). The store's tables must exist: open a
    /// [`PostgresStore`] (a durable bus does) on the database once before.
    ///
    /// ```no_run
    /// use event_core::store::PostgresStore;
    /// use event_core::store::sqlx::PgPool;
    /// # use event_core::RawEnvelope;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let order_created: RawEnvelope = RawEnvelope::from_json(b"")?;
    /// let pool = PgPool::connect("postgres://127.0.0.1/app").await?;
    /// let mut tx = pool.begin().await?;
    /// event_core::store::sqlx::query("INSERT INTO orders VALUES ('o-1', 1200)")
    ///     .execute(&mut *tx)
    ///     .await?;
    /// PostgresStore::append_in_sqlx(&mut tx, &[order_created]).await?;
    /// tx.commit().await?; // the order and its event, or neither
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Store::append`](crate::store::Store::append); the caller's transaction should
    /// then be rolled back (dropping it does).
    pub async fn append_in_sqlx(
        tx: &mut Transaction<'_, Postgres>,
        events: &[RawEnvelope],
    ) -> Result<Vec<Position>, StoreError> {
        let encoded = Encoded::all(events)?;
        let refs: Vec<&Encoded> = encoded.iter().collect();
        let ids: Vec<Uuid> = encoded.iter().map(|event| event.id).collect();
        let error = |e| sqlx_error(DATABASE, e);
        let head: i64 = sqlx::query_scalar(LOCK_HEAD)
            .fetch_one(&mut **tx)
            .await
            .map_err(error)?;
        let known = sqlx::query_as::<_, (Uuid, i64)>(KNOWN)
            .bind(&ids)
            .fetch_all(&mut **tx)
            .await
            .map_err(error)?;
        let plan = Plan::new(head, known.into_iter().collect(), &refs);
        if !plan.ids.is_empty() {
            sqlx::query(INSERT)
                .bind(&plan.new_positions)
                .bind(&plan.ids)
                .bind(&plan.types)
                .bind(&plan.keys)
                .bind(&plan.envelopes)
                .execute(&mut **tx)
                .await
                .map_err(error)?;
            sqlx::query(SET_HEAD)
                .bind(plan.head)
                .execute(&mut **tx)
                .await
                .map_err(error)?;
            sqlx::query(NOTIFY)
                .execute(&mut **tx)
                .await
                .map_err(error)?;
        }
        Ok(plan.positions)
    }

    /// [`claim_in`](Self::claim_in) for an application on sqlx: claims an event in a
    /// subscription's inbox inside the caller's transaction, so a handler's side effect and
    /// its claim commit or roll back together. `true` when this call claimed it; a
    /// concurrent claim of the same event waits for this transaction.
    ///
    /// # Errors
    ///
    /// A database error; the caller's transaction should then be rolled back.
    pub async fn claim_in_sqlx(
        tx: &mut Transaction<'_, Postgres>,
        subscription: &str,
        event_id: Uuid,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(CLAIM)
            .bind(subscription)
            .bind(event_id)
            .execute(&mut **tx)
            .await
            .map_err(|e| sqlx_error(DATABASE, e))?;
        Ok(done.rows_affected() == 1)
    }
}
