//! The PostgreSQL store: a writer connection with group commit, and a shared connection for
//! everything else.

#[cfg(feature = "sqlx-postgres")]
mod in_sqlx;
mod keys;
mod listen;
mod queries;

use crate::envelope::RawEnvelope;
use crate::store::error::Source;
use crate::store::migrations::{self, POSTGRES};
use crate::store::{
    Counters, DeadLetterId, Encoded, EventQuery, Fence, LeaseInfo, Position, SqlValue, Store,
    StoreError, StoreStats, StoredDeadLetter, StoredEvent, TimelineOrder, TimelinePage,
    TimelineQuery, clamp_limit, decode, from_sql, to_sql,
};
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls, Transaction};
use uuid::Uuid;

/// A key for `pg_advisory_xact_lock` that serializes concurrent migrations of one
/// database: `EVTSMIGR` in ASCII.
const MIGRATION_LOCK: i64 = 0x4556_5453_4d49_4752;

/// The longest lease taken: a longer `ttl` is cut to this (a century), which keeps the
/// expiry within PostgreSQL's timestamps.
const LONGEST_LEASE: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 24 * 3600);

/// At most this many `append` calls per transaction of the writer.
const MAX_BATCH: usize = 1024;

/// A [`Store`] in a PostgreSQL database, shared by any number of processes.
///
/// - **Durable**: `append` returns once its transaction committed (with the server's
///   `synchronous_commit`).
/// - **Group commit**: a writer task owns one connection; concurrent appends queue, and the
///   writer commits everything queued in one transaction, then answers each caller. If the
///   commit fails, every caller of the batch gets the error and nothing of it is written.
/// - **Positions in commit order**: each appending transaction locks the store's `head` row
///   until it commits, so appends (from every process, and [`append_in`](Self::append_in))
///   are serial. Group commit amortizes that; a caller's outbox transaction holds the lock
///   from its append to its commit, so keep those short.
/// - Everything else runs on a second, shared connection (queries are pipelined on it).
///   Connections that drop are opened again on the next call.
/// - **Wakes other processes**: each appending transaction sends a `NOTIFY` at its commit;
///   a bus on the store keeps one more connection that `LISTEN`s, so its pumps read another
///   process's events at once, with polling as the fallback (a dropped listening connection
///   is opened again, and the pumps read once it is).
/// - Migrations run at [`connect`](Self::connect), in one transaction, under an advisory
///   lock so that processes starting together migrate once; a schema newer than this build
///   is [`StoreError::SchemaTooNew`].
///
/// Connections are plain TCP or Unix sockets, without TLS.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use event_core::store::{PostgresStore, Store};
///
/// let store = PostgresStore::connect("host=127.0.0.1 user=app dbname=app").await?;
/// println!("{} events", store.head().await?);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    database: Arc<str>,
    config: Config,
    shared: Mutex<Option<Arc<Client>>>,
    writer: mpsc::UnboundedSender<AppendRequest>,
    counters: Arc<Counters>,
    /// Whether buses on this store listen for other processes' appends.
    listen: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.inner.database)
            .finish_non_exhaustive()
    }
}

type AppendResult = Result<(Vec<Position>, u64), StoreError>;

struct AppendRequest {
    events: Vec<Encoded>,
    reply: oneshot::Sender<AppendResult>,
}

impl PostgresStore {
    /// The database `config` names, as errors name it: `postgres host:port/dbname`, never
    /// with its password.
    ///
    /// ```
    /// use event_core::store::{PostgresStore, tokio_postgres::Config};
    ///
    /// let config: Config = "postgres://app:secret@db.internal:6543/orders".parse().unwrap();
    /// assert_eq!(PostgresStore::describe(&config), "postgres db.internal:6543/orders");
    /// ```
    pub fn describe(config: &Config) -> String {
        describe(config)
    }

    /// Connects to the database named by `config` (`"host=... user=... dbname=..."` or a
    /// `postgresql://` URL), creating or migrating the store's tables.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when the string does not parse or the server cannot be
    /// reached; [`StoreError::SchemaTooNew`] when a newer event-core migrated the database.
    pub async fn connect(config: &str) -> Result<PostgresStore, StoreError> {
        let parsed: Config = config.parse().map_err(|e| StoreError::Database {
            database: "postgres".to_owned(),
            source: Arc::new(e),
        })?;
        PostgresStore::connect_with(parsed).await
    }

    /// Connects with a [`Config`] built in code, as [`connect`](Self::connect).
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub async fn connect_with(config: Config) -> Result<PostgresStore, StoreError> {
        PostgresStore::start(config, true).await
    }

    /// Connects to a database the store's schema is already in, without creating or
    /// migrating anything (no DDL rights needed): what operators' tools use, so that they
    /// never change a production schema.
    ///
    /// # Errors
    ///
    /// [`StoreError::SchemaTooOld`] when the database holds no store, or an older schema
    /// (version 0: none); [`StoreError::SchemaTooNew`]; and those of
    /// [`connect`](Self::connect).
    pub async fn connect_existing(config: Config) -> Result<PostgresStore, StoreError> {
        PostgresStore::start(config, false).await
    }

    async fn start(config: Config, migrating: bool) -> Result<PostgresStore, StoreError> {
        let database: Arc<str> = describe(&config).into();
        let mut shared = open(&config, &database).await?;
        if migrating {
            migrate(&mut shared, &database).await?;
        } else {
            let found = schema_version(&shared, &database).await?;
            let latest = migrations::latest(POSTGRES);
            if found > latest {
                return Err(StoreError::SchemaTooNew {
                    database: database.to_string(),
                    found,
                    supported: latest,
                });
            }
            if found < latest {
                return Err(StoreError::SchemaTooOld {
                    database: database.to_string(),
                    found,
                    required: latest,
                });
            }
        }
        let writer_client = open(&config, &database).await?;
        let counters = Arc::new(Counters::default());
        let (writer, requests) = mpsc::unbounded_channel();
        tokio::spawn(run_writer(
            writer_client,
            config.clone(),
            Arc::clone(&database),
            requests,
            Arc::clone(&counters),
        ));
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                database,
                config,
                shared: Mutex::new(Some(Arc::new(shared))),
                writer,
                counters,
                listen: std::sync::atomic::AtomicBool::new(true),
            }),
        })
    }

    /// Buses on this store stop listening for other processes' appends (`LISTEN`): their
    /// pumps find those at their next poll instead. Appends still notify. For measuring
    /// what `NOTIFY` buys, or for a server where `LISTEN` is not allowed (a pooler in
    /// transaction mode, say).
    #[must_use]
    pub fn without_listen(self) -> Self {
        self.inner.listen.store(false, Relaxed);
        self
    }

    /// Appends events inside the caller's transaction (the transactional outbox): they
    /// commit or roll back with the caller's own writes. As [`Store::append`] otherwise.
    ///
    /// The transaction holds the store's append lock from this call to its end: keep it
    /// short. Use `READ COMMITTED` (PostgreSQL's default); under `REPEATABLE READ` or
    /// `SERIALIZABLE` a concurrent append makes this fail with a serialization error, to be
    /// retried. A durable bus finds these events by polling its store.
    ///
    /// ```no_run
    /// use event_core::store::tokio_postgres::NoTls;
    /// use event_core::store::PostgresStore;
    /// # use event_core::RawEnvelope;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let order_created: RawEnvelope = RawEnvelope::from_json(b"")?;
    /// let (mut client, connection) =
    ///     event_core::store::tokio_postgres::connect("host=127.0.0.1 dbname=app", NoTls).await?;
    /// tokio::spawn(connection);
    /// let tx = client.transaction().await?;
    /// tx.execute("INSERT INTO orders VALUES ('o-1', 1200)", &[]).await?;
    /// PostgresStore::append_in(&tx, &[order_created]).await?;
    /// tx.commit().await?; // the order and its event, or neither
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Store::append`]; the caller's transaction should then be rolled back.
    pub async fn append_in(
        tx: &Transaction<'_>,
        events: &[RawEnvelope],
    ) -> Result<Vec<Position>, StoreError> {
        let encoded = Encoded::all(events)?;
        let refs: Vec<&Encoded> = encoded.iter().collect();
        let error = |e| map_error("postgres (caller's transaction)", e);
        let statements = queries::AppendStatements::prepare(tx)
            .await
            .map_err(error)?;
        queries::insert_events(tx, &statements, &refs, async { Ok(()) })
            .await
            .map(|(positions, _)| positions)
            .map_err(error)
    }

    /// Claims an event in a subscription's inbox inside the caller's transaction: a
    /// handler's side effect and its claim commit or roll back together. `true` when this
    /// call claimed it; a concurrent claim of the same event waits for this transaction.
    ///
    /// # Errors
    ///
    /// A database error; the caller's transaction should then be rolled back.
    pub async fn claim_in(
        tx: &Transaction<'_>,
        subscription: &str,
        event_id: Uuid,
    ) -> Result<bool, StoreError> {
        queries::claim(tx, subscription, event_id)
            .await
            .map_err(|e| map_error("postgres (caller's transaction)", e))
    }

    /// The shared connection, opened again if it dropped.
    async fn client(&self) -> Result<Arc<Client>, StoreError> {
        let mut shared = self.inner.shared.lock().await;
        if let Some(client) = shared.as_ref().filter(|client| !client.is_closed()) {
            return Ok(Arc::clone(client));
        }
        let client = Arc::new(open(&self.inner.config, &self.inner.database).await?);
        *shared = Some(Arc::clone(&client));
        Ok(client)
    }

    fn error(&self, error: tokio_postgres::Error) -> StoreError {
        map_error(&self.inner.database, error)
    }

    /// Runs a write statement on the shared connection and counts it.
    async fn write(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let rows = self
            .client()
            .await?
            .execute(sql, params)
            .await
            .map_err(|e| self.error(e))?;
        self.inner.counters.write_transactions.fetch_add(1, Relaxed);
        Ok(rows)
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        self.client()
            .await?
            .query(sql, params)
            .await
            .map_err(|e| self.error(e))
    }

    fn events(&self, rows: &[tokio_postgres::Row]) -> Result<Vec<StoredEvent>, StoreError> {
        rows.iter()
            .map(|row| {
                let position = from_sql(row.try_get(0).map_err(|e| self.error(e))?);
                let json: &str = row.try_get(1).map_err(|e| self.error(e))?;
                decode(position, json)
            })
            .collect()
    }
}

impl Store for PostgresStore {
    fn append(&self, events: Vec<RawEnvelope>) -> BoxFuture<'_, Result<Vec<Position>, StoreError>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(Vec::new());
            }
            let events = Encoded::all(&events)?;
            let (reply, answer) = oneshot::channel();
            let closed = || StoreError::Closed {
                database: self.inner.database.to_string(),
            };
            self.inner
                .writer
                .send(AppendRequest { events, reply })
                .map_err(|_| closed())?;
            let (positions, new) = answer.await.map_err(|_| closed())??;
            self.inner.counters.appended(new);
            Ok(positions)
        })
    }

    fn read(
        &self,
        after: Position,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        Box::pin(async move {
            let limit = i64::try_from(clamp_limit(limit)).unwrap_or(i64::MAX);
            let rows = self.query(queries::READ, &[&to_sql(after), &limit]).await?;
            self.events(&rows)
        })
    }

    fn head(&self) -> BoxFuture<'_, Result<Position, StoreError>> {
        Box::pin(async move {
            let rows = self.query(queries::HEAD, &[]).await?;
            Ok(rows.first().map_or(0, |row| from_sql(row.get(0))))
        })
    }

    fn checkpoint<'a>(
        &'a self,
        subscription: &'a str,
    ) -> BoxFuture<'a, Result<Position, StoreError>> {
        Box::pin(async move {
            let rows = self.query(queries::CHECKPOINT, &[&subscription]).await?;
            Ok(rows.first().map_or(0, |row| from_sql(row.get(0))))
        })
    }

    fn checkpoints(&self) -> BoxFuture<'_, Result<Vec<(String, Position)>, StoreError>> {
        Box::pin(async move {
            let rows = self.query(queries::CHECKPOINTS, &[]).await?;
            Ok(rows
                .iter()
                .map(|row| (row.get(0), from_sql(row.get(1))))
                .collect())
        })
    }

    fn save_checkpoint<'a>(
        &'a self,
        subscription: &'a str,
        position: Position,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.write(
                queries::SAVE_CHECKPOINT,
                &[&subscription, &to_sql(position)],
            )
            .await
            .map(drop)
        })
    }

    fn reset_checkpoint<'a>(
        &'a self,
        subscription: &'a str,
        position: Position,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.write(
                queries::RESET_CHECKPOINT,
                &[&subscription, &to_sql(position)],
            )
            .await
            .map(drop)
        })
    }

    fn remove_subscription<'a>(
        &'a self,
        subscription: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.write(queries::REMOVE_SUBSCRIPTION, &[&subscription])
                .await
                .map(drop)
        })
    }

    fn claim<'a>(
        &'a self,
        subscription: &'a str,
        event_id: Uuid,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let claimed = queries::claim(&*client, subscription, event_id)
                .await
                .map_err(|e| self.error(e))?;
            self.inner.counters.write_transactions.fetch_add(1, Relaxed);
            Ok(claimed)
        })
    }

    fn is_claimed<'a>(
        &'a self,
        subscription: &'a str,
        event_id: Uuid,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let rows = self
                .query(queries::IS_CLAIMED, &[&subscription, &event_id])
                .await?;
            Ok(rows.first().is_some_and(|row| row.get(0)))
        })
    }

    fn put_dead_letter<'a>(
        &'a self,
        letter: &'a crate::DeadLetter,
    ) -> BoxFuture<'a, Result<DeadLetterId, StoreError>> {
        Box::pin(async move {
            let envelope = crate::store::encode(&letter.envelope)?;
            let attempts = i32::try_from(letter.attempts).unwrap_or(i32::MAX);
            let rows = self
                .query(
                    queries::PUT_DEAD_LETTER,
                    &[
                        &letter.subscription,
                        &envelope,
                        &letter.last_error,
                        &attempts,
                        &letter.failed_at,
                    ],
                )
                .await?;
            self.inner.counters.write_transactions.fetch_add(1, Relaxed);
            Ok(rows.first().map_or(0, |row| row.get(0)))
        })
    }

    fn dead_letters<'a>(
        &'a self,
        subscription: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<StoredDeadLetter>, StoreError>> {
        Box::pin(async move {
            let rows = self.query(queries::DEAD_LETTERS, &[&subscription]).await?;
            rows.iter()
                .map(|row| {
                    let json: &str = row.try_get(2).map_err(|e| self.error(e))?;
                    let attempts: i32 = row.try_get(4).map_err(|e| self.error(e))?;
                    Ok(StoredDeadLetter {
                        id: row.try_get(0).map_err(|e| self.error(e))?,
                        subscription: row.try_get(1).map_err(|e| self.error(e))?,
                        envelope: decode(0, json)?.envelope,
                        last_error: row.try_get(3).map_err(|e| self.error(e))?,
                        attempts: u32::try_from(attempts).unwrap_or(0),
                        failed_at: row.try_get(5).map_err(|e| self.error(e))?,
                    })
                })
                .collect()
        })
    }

    fn remove_dead_letter(&self, id: DeadLetterId) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            self.write(queries::REMOVE_DEAD_LETTER, &[&id])
                .await
                .map(|deleted| deleted == 1)
        })
    }

    fn timeline<'a>(
        &'a self,
        query: &'a TimelineQuery,
    ) -> BoxFuture<'a, Result<TimelinePage, StoreError>> {
        Box::pin(async move {
            let cursor = query.cursor_position()?;
            let limit = clamp_limit(query.limit);
            let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
            let (sql, bound) = match query.order {
                TimelineOrder::NewestFirst => (
                    queries::TIMELINE_NEWEST_FIRST,
                    cursor.map_or(i64::MAX, to_sql),
                ),
                TimelineOrder::OldestFirst => {
                    (queries::TIMELINE_OLDEST_FIRST, cursor.map_or(0, to_sql))
                }
            };
            let rows = self
                .query(
                    sql,
                    &[
                        &query.partition_key,
                        &bound,
                        &query.type_prefix,
                        &fetch,
                        &query.tenant_id,
                    ],
                )
                .await?;
            Ok(TimelinePage::from_rows(self.events(&rows)?, limit))
        })
    }

    fn query<'a>(
        &'a self,
        query: &'a EventQuery,
    ) -> BoxFuture<'a, Result<TimelinePage, StoreError>> {
        Box::pin(async move {
            let cursor = query.cursor_position()?;
            let limit = clamp_limit(query.limit);
            let (sql, values) = query.to_sql(&queries::DIALECT, cursor, limit + 1);
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = values
                .iter()
                .map(|value| -> &(dyn tokio_postgres::types::ToSql + Sync) {
                    match value {
                        SqlValue::Text(text) => text,
                        SqlValue::Int(int) => int,
                        SqlValue::Id(id) => id,
                        SqlValue::Time(time) => time,
                    }
                })
                .collect();
            let rows = self.query(&sql, &params).await?;
            Ok(TimelinePage::from_rows(self.events(&rows)?, limit))
        })
    }

    fn prune(&self, older_than: DateTime<Utc>) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(async move {
            let rows = self.query(queries::PRUNE, &[&older_than]).await?;
            self.inner.counters.write_transactions.fetch_add(1, Relaxed);
            let deleted: i64 = rows.first().map_or(0, |row| row.get(0));
            Ok(usize::try_from(deleted).unwrap_or(0))
        })
    }

    fn lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: std::time::Duration,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(async move {
            let seconds = ttl.min(LONGEST_LEASE).as_secs_f64();
            let rows = self
                .query(queries::LEASE, &[&name, &holder, &seconds])
                .await?;
            self.inner.counters.write_transactions.fetch_add(1, Relaxed);
            match rows.first() {
                Some(row) => Ok(Some(from_sql(row.try_get(0).map_err(|e| self.error(e))?))),
                None => Ok(None),
            }
        })
    }

    fn release_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.write(queries::RELEASE_LEASE, &[&name, &holder])
                .await
                .map(drop)
        })
    }

    fn leases<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<LeaseInfo>, StoreError>> {
        Box::pin(async move {
            let rows = self.query(queries::LEASES, &[&prefix]).await?;
            rows.iter()
                .map(|row| {
                    Ok(LeaseInfo {
                        name: row.try_get(0).map_err(|e| self.error(e))?,
                        holder: row.try_get(1).map_err(|e| self.error(e))?,
                        token: from_sql(row.try_get(2).map_err(|e| self.error(e))?),
                    })
                })
                .collect()
        })
    }

    fn save_checkpoint_fenced<'a>(
        &'a self,
        subscription: &'a str,
        position: Position,
        fence: &'a Fence,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let written = self
                .write(
                    queries::SAVE_CHECKPOINT_FENCED,
                    &[
                        &subscription,
                        &to_sql(position),
                        &fence.lease,
                        &fence.holder,
                        &to_sql(fence.token),
                    ],
                )
                .await?;
            Ok(written == 1)
        })
    }

    fn claim_fenced<'a>(
        &'a self,
        subscription: &'a str,
        event_id: Uuid,
        fence: &'a Fence,
    ) -> BoxFuture<'a, Result<Option<bool>, StoreError>> {
        Box::pin(async move {
            let rows = self
                .query(
                    queries::CLAIM_FENCED,
                    &[
                        &subscription,
                        &event_id,
                        &fence.lease,
                        &fence.holder,
                        &to_sql(fence.token),
                    ],
                )
                .await?;
            self.inner.counters.write_transactions.fetch_add(1, Relaxed);
            let Some(row) = rows.first() else {
                return Ok(None);
            };
            let held: bool = row.try_get(0).map_err(|e| self.error(e))?;
            let claimed: i64 = row.try_get(1).map_err(|e| self.error(e))?;
            Ok(held.then_some(claimed == 1))
        })
    }

    fn watch_appends(&self, wake: std::sync::Weak<tokio::sync::Notify>) {
        if self.inner.listen.load(Relaxed) {
            tokio::spawn(listen::run(
                self.inner.config.clone(),
                Arc::clone(&self.inner.database),
                wake,
            ));
        }
    }

    fn stats(&self) -> StoreStats {
        self.inner.counters.snapshot()
    }
}

/// `postgres host:port/dbname`, to name the database in errors (no password).
fn describe(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let dbname = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("postgres {host}:{port}/{dbname}")
}

/// Opens a connection and drives it on a task of its own.
async fn open(config: &Config, database: &str) -> Result<Client, StoreError> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| map_error(database, e))?;
    let database = database.to_owned();
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, %database, "event store connection closed");
        }
    });
    Ok(client)
}

/// The store's schema version in the database; 0 when it holds no store.
async fn schema_version(
    client: &impl tokio_postgres::GenericClient,
    database: &str,
) -> Result<i64, StoreError> {
    let error = |e| map_error(database, e);
    let exists: bool = client
        .query_one("SELECT to_regclass('event_store_meta') IS NOT NULL", &[])
        .await
        .map_err(error)?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_opt(
            "SELECT value FROM event_store_meta WHERE key = 'schema_version'",
            &[],
        )
        .await
        .map_err(error)?
        .map_or(0, |row| row.get(0)))
}

/// Applies the missing migrations in one transaction, under an advisory lock.
async fn migrate(client: &mut Client, database: &str) -> Result<(), StoreError> {
    let error = |e| map_error(database, e);
    let tx = client.transaction().await.map_err(error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(error)?;
    let version = schema_version(&tx, database).await?;
    let latest = migrations::latest(POSTGRES);
    if version > latest {
        return Err(StoreError::SchemaTooNew {
            database: database.to_owned(),
            found: version,
            supported: latest,
        });
    }
    for migration in migrations::pending(POSTGRES, version) {
        tx.batch_execute(migration.sql).await.map_err(error)?;
        tx.execute(
            "UPDATE event_store_meta SET value = $1 WHERE key = 'schema_version'",
            &[&migration.version],
        )
        .await
        .map_err(error)?;
    }
    tx.commit().await.map_err(error)
}

/// The writer task: waits for an append, takes whatever else is queued, commits them in one
/// transaction and answers each.
async fn run_writer(
    mut client: Client,
    config: Config,
    database: Arc<str>,
    mut requests: mpsc::UnboundedReceiver<AppendRequest>,
    counters: Arc<Counters>,
) {
    let mut batch = Vec::new();
    let mut statements = None;
    while let Some(first) = requests.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        if client.is_closed() {
            statements = None;
            match open(&config, &database).await {
                Ok(reopened) => client = reopened,
                Err(error) => {
                    for request in batch.drain(..) {
                        let _ = request.reply.send(Err(error.clone()));
                    }
                    continue;
                }
            }
        }
        let prepared = match statements.take() {
            Some(prepared) => prepared,
            None => match queries::AppendStatements::prepare(&client).await {
                Ok(prepared) => prepared,
                Err(error) => {
                    let error = map_error(&database, error);
                    for request in batch.drain(..) {
                        let _ = request.reply.send(Err(error.clone()));
                    }
                    continue;
                }
            },
        };
        let committed = commit_batch(&client, &prepared, &batch).await;
        statements = Some(prepared);
        match committed {
            Ok(results) => {
                counters.write_transactions.fetch_add(1, Relaxed);
                for (request, result) in batch.drain(..).zip(results) {
                    let _ = request.reply.send(Ok(result));
                }
            }
            Err(error) => {
                let error = map_error(&database, error);
                for request in batch.drain(..) {
                    let _ = request.reply.send(Err(error.clone()));
                }
            }
        }
    }
}

/// One transaction for every queued append: returns each one's positions and new events.
///
/// BEGIN, the statements and COMMIT are pipelined (two round trips in all): the server runs
/// them in the order sent, and after a failed statement the COMMIT ends the transaction as a
/// rollback; a ROLLBACK is sent after any error all the same.
async fn commit_batch(
    client: &Client,
    statements: &queries::AppendStatements,
    batch: &[AppendRequest],
) -> Result<Vec<(Vec<Position>, u64)>, tokio_postgres::Error> {
    let all: Vec<&Encoded> = batch.iter().flat_map(|request| &request.events).collect();
    let committed = futures_util::future::try_join(
        client.batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED"),
        queries::insert_events(client, statements, &all, client.batch_execute("COMMIT")),
    )
    .await;
    let (positions, new) = match committed {
        Ok(((), inserted)) => inserted,
        Err(error) => {
            // "No transaction in progress" is only a warning.
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(error);
        }
    };
    let mut results = Vec::with_capacity(batch.len());
    let (mut positions, mut new) = (positions.as_slice(), new.as_slice());
    for request in batch {
        let (mine, rest) = positions.split_at(request.events.len());
        let (mine_new, rest_new) = new.split_at(request.events.len());
        (positions, new) = (rest, rest_new);
        let count = mine_new.iter().filter(|&&is_new| is_new).count();
        results.push((mine.to_vec(), u64::try_from(count).unwrap_or(u64::MAX)));
    }
    Ok(results)
}

/// Sorts a PostgreSQL error into the store's kinds, naming the database.
fn map_error(database: &str, error: tokio_postgres::Error) -> StoreError {
    let database = database.to_owned();
    let code = error.code().cloned();
    let source: Source = Arc::new(error);
    match code {
        Some(SqlState::READ_ONLY_SQL_TRANSACTION) => StoreError::ReadOnly { database, source },
        Some(SqlState::DISK_FULL | SqlState::OUT_OF_MEMORY) => {
            StoreError::Full { database, source }
        }
        Some(SqlState::IO_ERROR) => StoreError::Io { database, source },
        _ => StoreError::Database { database, source },
    }
}
