//! The SQLite store: one file in WAL mode, a writer thread with group commit, readers on
//! their own connections.

mod error;
#[cfg(feature = "sqlx-sqlite")]
mod in_sqlx;
mod keys;
mod queries;
mod schema;
mod writer;

use crate::envelope::RawEnvelope;
use crate::store::error::message;
use crate::store::{
    Counters, DeadLetterId, Encoded, EventQuery, Fence, LeaseInfo, Position, Store, StoreError,
    StoreStats, StoredDeadLetter, StoredEvent, TimelineOrder, TimelinePage, TimelineQuery,
    clamp_limit, decode,
};
use chrono::{DateTime, Utc};
use error::map_error;
use futures_util::future::BoxFuture;
use rusqlite::{Connection, OpenFlags, Transaction};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use uuid::Uuid;
use writer::{Writer, WriterOptions};

/// How hard SQLite works to keep a commit through a power cut (`PRAGMA synchronous`).
///
/// Either way, a process crash loses nothing that `append` returned; the two differ only
/// when the machine itself stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Synchronous {
    /// `FULL` (the default): each commit is on disk (an fsync of the WAL) before `append`
    /// returns. Survives a power cut.
    #[default]
    Full,
    /// `NORMAL`: the WAL is synced at checkpoints, not at each commit. Much faster; a power
    /// cut can lose the last commits (never corrupt the file).
    Normal,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// How to open an [`SqliteStore`].
///
/// ```
/// use event_core::store::{SqliteOptions, Synchronous};
/// use std::time::Duration;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("events.db");
/// let store = SqliteOptions::new()
///     .synchronous(Synchronous::Normal)
///     .busy_timeout(Duration::from_secs(10))
///     .open(&path)?;
/// # drop(store);
/// // A second, read-only store on the same file, for a reporting process:
/// let reader = SqliteOptions::new().read_only(true).open(&path)?;
/// # drop(reader);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    synchronous: Synchronous,
    busy_timeout: Duration,
    read_only: bool,
    adopt: bool,
    pragmas: Vec<(String, String)>,
    max_batch: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            read_only: false,
            adopt: false,
            pragmas: Vec::new(),
            max_batch: 1024,
        }
    }
}

impl SqliteOptions {
    /// The defaults: `synchronous = FULL`, a 5 s busy timeout, read-write.
    pub fn new() -> Self {
        SqliteOptions::default()
    }

    /// `PRAGMA synchronous` of the writer (default [`Synchronous::Full`]).
    #[must_use]
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// How long a statement waits for a lock held by another connection (another
    /// process, or your own transaction on the same file) before failing (default 5 s).
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Opens read-only: every write fails with [`StoreError::ReadOnly`]. The database
    /// must exist and be migrated already.
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Adds the store's tables to a database that already has tables of its own (an
    /// application database, for the transactional outbox). Without it such a database is
    /// refused as [`StoreError::Foreign`], so that a wrong path never gets written to.
    #[must_use]
    pub fn adopt(mut self, adopt: bool) -> Self {
        self.adopt = adopt;
        self
    }

    /// Runs `PRAGMA name = value` on every connection the store opens, after its own
    /// settings: `cache_size`, `mmap_size`, `max_page_count`...
    #[must_use]
    pub fn pragma(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.pragmas.push((name.into(), value.into()));
        self
    }

    /// At most this many writes per transaction of the writer (default 1024).
    #[must_use]
    pub fn max_batch(mut self, writes: usize) -> Self {
        self.max_batch = writes.max(1);
        self
    }

    /// Opens (or creates) the store in the file at `path`, see [`SqliteStore::open`].
    ///
    /// # Errors
    ///
    /// As [`SqliteStore::open`].
    pub fn open(&self, path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(Some(path.as_ref()), self)
    }

    /// Opens a store in memory, see [`SqliteStore::open_in_memory`].
    ///
    /// # Errors
    ///
    /// As [`SqliteStore::open_in_memory`].
    pub fn open_in_memory(&self) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(None, self)
    }
}

/// A [`Store`] in one SQLite file: the embedded default for a durable bus.
///
/// - **Durable**: `append` returns once its transaction committed, in WAL mode with
///   `synchronous = FULL` by default (see [`Synchronous`]).
/// - **Group commit**: one thread owns the write connection. Concurrent writes queue, and
///   the thread commits everything queued in one transaction (one fsync), then answers each
///   caller. A write that fails is taken out of its batch and the rest commit without it; a
///   commit that fails fails every write of its batch, and nothing of them is written. With
///   [`Synchronous::Normal`] (a commit without fsync), an `append` that finds the writer idle
///   commits alone on the caller's thread instead, saving the two thread hand-offs; it never
///   waits there (a busy connection or file sends it to the queue, checkpoints stay on the
///   writer thread).
/// - **Reads** run on their own connections (WAL readers, on tokio's blocking pool), so
///   they do not wait for the writer, and see only committed events.
/// - **Checked at open**: a file that is not SQLite, or another application's database, is
///   refused and left untouched; the store's tables are migrated in one transaction; a
///   schema newer than this build is [`StoreError::SchemaTooNew`].
///
/// Cloning is cheap and shares the store. Reads need a tokio runtime; opening does not.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use event_core::store::{SqliteStore, Store};
///
/// let dir = tempfile::tempdir()?;
/// let store = SqliteStore::open(dir.path().join("events.db"))?;
/// assert_eq!(store.head().await?, 0);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    database: Arc<str>,
    path: Option<PathBuf>,
    read_only: bool,
    busy_timeout: Duration,
    writer: Writer,
    /// Reader connections; None in memory, where reads go through the writer thread.
    readers: Option<Arc<ReadPool>>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("database", &self.inner.database)
            .field("read_only", &self.inner.read_only)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the store in the file at `path`, creating the file if needed, with the
    /// default [`SqliteOptions`].
    ///
    /// # Errors
    ///
    /// - [`StoreError::Corrupt`]: the file is not an SQLite database, or is damaged;
    /// - [`StoreError::Foreign`]: it is another application's database;
    /// - [`StoreError::SchemaTooNew`]: a newer event-core migrated it;
    /// - [`StoreError::Io`] or [`StoreError::Database`]: it cannot be opened or migrated.
    ///
    /// In the first three cases the file is left untouched.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteOptions::new().open(path)
    }

    /// A store in memory, gone when the store is dropped: for tests. Reads go through the
    /// writer thread, between its transactions.
    ///
    /// # Errors
    ///
    /// When SQLite cannot allocate the database or start the writer thread.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        SqliteOptions::new().open_in_memory()
    }

    /// Options to open a store with: synchronous mode, busy timeout, read-only...
    pub fn options() -> SqliteOptions {
        SqliteOptions::new()
    }

    fn open_with(path: Option<&Path>, options: &SqliteOptions) -> Result<SqliteStore, StoreError> {
        let database: Arc<str> = match path {
            Some(path) => path.display().to_string().into(),
            None => ":memory:".into(),
        };
        let flags = if options.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let mut conn = match path {
            Some(path) => Connection::open_with_flags(path, flags),
            None => Connection::open_in_memory_with_flags(flags),
        }
        .map_err(|e| map_error(&database, e))?;
        configure(&conn, options, &database)?;
        if options.read_only {
            schema::check_read_only(&conn, &database, options)?;
        } else {
            schema::prepare(&mut conn, &database, options, path.is_some())?;
        }
        conn.pragma_update(None, "synchronous", options.synchronous.pragma())
            .map_err(|e| map_error(&database, e))?;
        // Deleted content is overwritten with zeros, always: see the `KeyStore` impl (keys).
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(|e| map_error(&database, e))?;
        let counters = Arc::new(Counters::default());
        let writer = Writer::spawn(
            conn,
            Arc::clone(&database),
            Arc::clone(&counters),
            &WriterOptions {
                max_batch: options.max_batch,
                // A commit that does not wait for the disk may run on the caller's thread.
                lead: options.synchronous == Synchronous::Normal && !options.read_only,
                busy_timeout: options.busy_timeout,
            },
        )?;
        let readers = path.map(|path| {
            Arc::new(ReadPool {
                path: path.to_owned(),
                database: Arc::clone(&database),
                options: options.clone(),
                idle: Mutex::new(Vec::new()),
            })
        });
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                database,
                path: path.map(Path::to_owned),
                read_only: options.read_only,
                busy_timeout: options.busy_timeout,
                writer,
                readers,
                counters,
            }),
        })
    }

    /// The database file; None in memory.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// A new connection to the store's file, with the store's busy timeout, for your own
    /// transactions: see [`append_in`](Self::append_in).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] for a store in memory (no other connection can reach it),
    /// or when the file cannot be opened.
    pub fn connection(&self) -> Result<Connection, StoreError> {
        let Some(path) = &self.inner.path else {
            return Err(StoreError::Database {
                database: self.inner.database.to_string(),
                source: message("a store in memory has no other connection; use a file"),
            });
        };
        let conn = Connection::open(path).map_err(|e| map_error(&self.inner.database, e))?;
        conn.busy_timeout(self.inner.busy_timeout)
            .map_err(|e| map_error(&self.inner.database, e))?;
        Ok(conn)
    }

    /// Appends events inside the caller's transaction (the transactional outbox): they
    /// commit or roll back with the caller's own writes. Returns their positions; an id
    /// already stored is not stored again, as with [`Store::append`].
    ///
    /// Open the transaction with [`TransactionBehavior::Immediate`](rusqlite::TransactionBehavior::Immediate):
    /// a deferred transaction that read before this write fails with "database is locked"
    /// when another connection wrote in between. Keep it short: SQLite has one writer at a
    /// time, so the store's own appends wait for it (up to the busy timeout). A durable bus
    /// finds these events by polling its store.
    ///
    /// ```
    /// use event_core::store::rusqlite::TransactionBehavior;
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
    /// let store = SqliteStore::open(dir.path().join("app.db"))?;
    /// let mut conn = store.connection()?;
    /// conn.execute_batch("CREATE TABLE orders (id TEXT PRIMARY KEY, total INTEGER)")?;
    ///
    /// let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    /// tx.execute("INSERT INTO orders VALUES ('o-1', 1200)", [])?;
    /// SqliteStore::append_in(&tx, &[order_created])?;
    /// tx.commit()?; // the order and its event, or neither
    ///
    /// assert_eq!(store.head().await?, 1);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Store::append`]; the caller's transaction should then be rolled back.
    pub fn append_in(
        tx: &Transaction<'_>,
        events: &[RawEnvelope],
    ) -> Result<Vec<Position>, StoreError> {
        let encoded = Encoded::all(events)?;
        queries::insert_events(tx, &encoded, Utc::now().timestamp_millis())
            .map(|(positions, _)| positions)
            .map_err(|e| map_error(tx.path().unwrap_or(":memory:"), e))
    }

    /// Claims an event in a subscription's inbox inside the caller's transaction: a
    /// handler's side effect and its claim commit or roll back together, so the effect
    /// happens once. `true` when this call claimed it, `false` when it was claimed before.
    ///
    /// # Errors
    ///
    /// A database error; the caller's transaction should then be rolled back.
    pub fn claim_in(
        tx: &Transaction<'_>,
        subscription: &str,
        event_id: Uuid,
    ) -> Result<bool, StoreError> {
        queries::claim(tx, subscription, event_id, Utc::now().timestamp_millis())
            .map_err(|e| map_error(tx.path().unwrap_or(":memory:"), e))
    }

    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.inner.writer.write(work).await
    }

    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let database = Arc::clone(&self.inner.database);
        let Some(pool) = &self.inner.readers else {
            return self
                .inner
                .writer
                .read(move |conn| work(conn).map_err(|e| map_error(&database, e)))
                .await;
        };
        let pool = Arc::clone(pool);
        tokio::task::spawn_blocking(move || {
            let conn = pool.connection()?;
            let result = work(&conn).map_err(|e| map_error(&database, e));
            pool.give_back(conn);
            result
        })
        .await
        .map_err(|_| StoreError::Closed {
            database: self.inner.database.to_string(),
        })?
    }
}

/// Applies the store's settings and the caller's pragmas to a new connection.
fn configure(conn: &Connection, options: &SqliteOptions, database: &str) -> Result<(), StoreError> {
    conn.busy_timeout(options.busy_timeout)
        .map_err(|e| map_error(database, e))?;
    for (name, value) in &options.pragmas {
        conn.pragma_update(None, name, value)
            .map_err(|e| map_error(database, e))?;
    }
    Ok(())
}

/// Idle reader connections to a file, reused across reads.
struct ReadPool {
    path: PathBuf,
    database: Arc<str>,
    options: SqliteOptions,
    idle: Mutex<Vec<Connection>>,
}

/// Idle reader connections kept open.
const IDLE_READERS: usize = 4;

impl ReadPool {
    fn connection(&self) -> Result<Connection, StoreError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        if let Some(conn) = idle {
            return Ok(conn);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)
            .map_err(|e| map_error(&self.database, e))?;
        configure(&conn, &self.options, &self.database)?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
    }
}

fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

impl Store for SqliteStore {
    fn append(&self, events: Vec<RawEnvelope>) -> BoxFuture<'_, Result<Vec<Position>, StoreError>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(Vec::new());
            }
            let encoded = Encoded::all(&events)?;
            let now = Utc::now().timestamp_millis();
            let (positions, new) = self
                .inner
                .writer
                .write_or_lead(move |conn| queries::insert_events(conn, &encoded, now))
                .await?;
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
            let limit = clamp_limit(limit);
            let rows = self
                .read(move |conn| queries::read(conn, after, limit))
                .await?;
            rows.iter()
                .map(|(position, json)| decode(*position, json))
                .collect()
        })
    }

    fn head(&self) -> BoxFuture<'_, Result<Position, StoreError>> {
        Box::pin(self.read(queries::head))
    }

    fn checkpoint<'a>(
        &'a self,
        subscription: &'a str,
    ) -> BoxFuture<'a, Result<Position, StoreError>> {
        let subscription = subscription.to_owned();
        Box::pin(self.read(move |conn| queries::checkpoint(conn, &subscription)))
    }

    fn checkpoints(&self) -> BoxFuture<'_, Result<Vec<(String, Position)>, StoreError>> {
        Box::pin(self.read(queries::checkpoints))
    }

    fn save_checkpoint<'a>(
        &'a self,
        subscription: &'a str,
        position: Position,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let subscription = subscription.to_owned();
        Box::pin(
            self.write(move |conn| queries::save_checkpoint(conn, &subscription, position, true)),
        )
    }

    fn reset_checkpoint<'a>(
        &'a self,
        subscription: &'a str,
        position: Position,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let subscription = subscription.to_owned();
        Box::pin(
            self.write(move |conn| queries::save_checkpoint(conn, &subscription, position, false)),
        )
    }

    fn remove_subscription<'a>(
        &'a self,
        subscription: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let subscription = subscription.to_owned();
        Box::pin(self.write(move |conn| queries::remove_subscription(conn, &subscription)))
    }

    fn claim<'a>(
        &'a self,
        subscription: &'a str,
        event_id: Uuid,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let subscription = subscription.to_owned();
        let now = Utc::now().timestamp_millis();
        Box::pin(self.write(move |conn| queries::claim(conn, &subscription, event_id, now)))
    }

    fn is_claimed<'a>(
        &'a self,
        subscription: &'a str,
        event_id: Uuid,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let subscription = subscription.to_owned();
        Box::pin(self.read(move |conn| queries::is_claimed(conn, &subscription, event_id)))
    }

    fn put_dead_letter<'a>(
        &'a self,
        letter: &'a crate::DeadLetter,
    ) -> BoxFuture<'a, Result<DeadLetterId, StoreError>> {
        Box::pin(async move {
            let row = queries::DeadLetterRow {
                id: 0,
                subscription: letter.subscription.clone(),
                envelope: crate::store::encode(&letter.envelope)?,
                last_error: letter.last_error.clone(),
                attempts: i64::from(letter.attempts),
                failed_at: millis(letter.failed_at),
            };
            self.write(move |conn| queries::put_dead_letter(conn, &row))
                .await
        })
    }

    fn dead_letters<'a>(
        &'a self,
        subscription: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<StoredDeadLetter>, StoreError>> {
        let subscription = subscription.map(str::to_owned);
        Box::pin(async move {
            let rows = self
                .read(move |conn| queries::dead_letters(conn, subscription.as_deref()))
                .await?;
            rows.into_iter().map(dead_letter).collect()
        })
    }

    fn remove_dead_letter(&self, id: DeadLetterId) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.write(move |conn| queries::remove_dead_letter(conn, id)))
    }

    fn timeline<'a>(
        &'a self,
        query: &'a TimelineQuery,
    ) -> BoxFuture<'a, Result<TimelinePage, StoreError>> {
        Box::pin(async move {
            let cursor = query.cursor_position()?;
            let limit = clamp_limit(query.limit);
            let partition_key = query.partition_key.clone();
            let type_prefix = query.type_prefix.clone();
            let tenant_id = query.tenant_id.clone();
            let newest_first = query.order == TimelineOrder::NewestFirst;
            let rows = self
                .read(move |conn| {
                    queries::timeline(
                        conn,
                        &partition_key,
                        type_prefix.as_deref(),
                        tenant_id.as_deref(),
                        cursor,
                        limit + 1,
                        newest_first,
                    )
                })
                .await?;
            let events = rows
                .iter()
                .map(|(position, json)| decode(*position, json))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(TimelinePage::from_rows(events, limit))
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
            let rows = self
                .read(move |conn| queries::search(conn, &sql, &values))
                .await?;
            let events = rows
                .iter()
                .map(|(position, json)| decode(*position, json))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(TimelinePage::from_rows(events, limit))
        })
    }

    fn prune(&self, older_than: DateTime<Utc>) -> BoxFuture<'_, Result<usize, StoreError>> {
        let older_than = millis(older_than);
        Box::pin(self.write(move |conn| queries::prune(conn, older_than)))
    }

    fn lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        // Whole milliseconds, rounded up: a lease of a few microseconds still runs.
        let ttl = i64::try_from(ttl.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX);
        Box::pin(self.write(move |conn| {
            // Read when the write runs, not when it was queued: the lease runs at least
            // `ttl` from the call, as its holder counts.
            let now = Utc::now().timestamp_millis();
            queries::lease(conn, &name, &holder, now, now.saturating_add(ttl))
        }))
    }

    fn release_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        Box::pin(self.write(move |conn| queries::release_lease(conn, &name, &holder)))
    }

    fn leases<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<LeaseInfo>, StoreError>> {
        let prefix = prefix.to_owned();
        Box::pin(async move {
            let now = Utc::now().timestamp_millis();
            let rows = self
                .read(move |conn| queries::leases(conn, &prefix, now))
                .await?;
            Ok(rows
                .into_iter()
                .map(|(name, holder, token)| LeaseInfo {
                    name,
                    holder,
                    token,
                })
                .collect())
        })
    }

    fn claim_fenced<'a>(
        &'a self,
        subscription: &'a str,
        event_id: Uuid,
        fence: &'a Fence,
    ) -> BoxFuture<'a, Result<Option<bool>, StoreError>> {
        let (subscription, fence) = (subscription.to_owned(), fence.clone());
        Box::pin(self.write(move |conn| {
            let now = Utc::now().timestamp_millis();
            queries::claim_fenced(conn, &subscription, event_id, &fence, now)
        }))
    }

    fn save_checkpoint_fenced<'a>(
        &'a self,
        subscription: &'a str,
        position: Position,
        fence: &'a Fence,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let (subscription, fence) = (subscription.to_owned(), fence.clone());
        Box::pin(self.write(move |conn| {
            let now = Utc::now().timestamp_millis();
            queries::save_checkpoint_fenced(conn, &subscription, position, &fence, now)
        }))
    }

    fn stats(&self) -> StoreStats {
        self.inner.counters.snapshot()
    }
}

/// A stored dead letter row as the public type.
fn dead_letter(row: queries::DeadLetterRow) -> Result<StoredDeadLetter, StoreError> {
    let event = decode(0, &row.envelope)?;
    Ok(StoredDeadLetter {
        id: row.id,
        subscription: row.subscription,
        envelope: event.envelope,
        last_error: row.last_error,
        attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
        failed_at: DateTime::from_timestamp_millis(row.failed_at).unwrap_or_default(),
    })
}
