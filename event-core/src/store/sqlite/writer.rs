//! Group commit: one thread owns the write connection; writes queue on a channel and the
//! thread commits everything queued in one transaction, then answers each caller.
//!
//! A caller is answered only after the commit: `Ok` once its write is durable, or the
//! commit's error, in which case nothing of the batch was written. When one write of a
//! batch fails, the transaction is rolled back, that write's caller gets the error, and the
//! others run again in a new transaction (a write is a closure that can run again): so a
//! failure never leaves half of anything written, and never sinks writes that fit (after a
//! full disk refused a large one, the small ones still commit). The common path has no
//! savepoints: `BEGIN IMMEDIATE`, the writes, `COMMIT`.
//!
//! With `synchronous = NORMAL` a commit does not wait for the disk, so the two thread
//! hand-offs (caller → writer thread → caller) cost more than the commit itself. There an
//! append may lead instead ([`Writer::write_or_lead`]): when nothing is queued and the
//! connection is free, the caller commits its own write on its own thread, in a transaction
//! of its own. It never waits there: not for the connection (`try_lock`), not for another
//! connection's write lock (the busy timeout is 0 meanwhile; on `SQLITE_BUSY` it queues as
//! usual), and not for a checkpoint (automatic checkpoints are off for its commits; the
//! writer thread runs them). With `FULL` every write queues: a commit waits for an fsync,
//! which must not block the caller's runtime.

use super::error::map_error;
use crate::store::{Counters, StoreError};
use rusqlite::{Connection, ErrorCode};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::Duration;
use tokio::sync::oneshot;

/// One write of a batch.
trait WriteJob: Send {
    /// Does the work, inside the batch's transaction; again if that transaction was rolled
    /// back because of another write.
    fn run(&mut self, conn: &Connection) -> rusqlite::Result<()>;
    /// Tells the caller how it ended: `Ok` once committed.
    fn answer(self: Box<Self>, outcome: Result<(), StoreError>);
}

/// A closure and where its result goes.
struct Job<T, F> {
    work: F,
    value: Option<T>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> WriteJob for Job<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> rusqlite::Result<T> + Send,
{
    fn run(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        self.value = Some((self.work)(conn)?);
        Ok(())
    }

    fn answer(self: Box<Self>, outcome: Result<(), StoreError>) {
        let result = match (outcome, self.value) {
            (Ok(()), Some(value)) => Ok(value),
            (Err(error), _) => Err(error),
            // Not reachable: a job is answered `Ok` only after it ran.
            (Ok(()), None) => return,
        };
        // The caller may have stopped waiting; the write stands either way.
        let _ = self.reply.send(result);
    }
}

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

enum Command {
    Write(Box<dyn WriteJob>),
    /// Runs between batches, on committed data (stores without a reader pool: in memory).
    Read(ReadJob),
    /// Leaders committed about a checkpoint's worth of pages: checkpoint the WAL.
    Checkpoint,
}

/// How the writer works: see [`Writer::spawn`].
pub(super) struct WriterOptions {
    pub(super) max_batch: usize,
    /// Callers may commit their own append when the writer is idle (`synchronous = NORMAL`).
    pub(super) lead: bool,
    /// The connection's busy timeout, put back after a leader's attempt.
    pub(super) busy_timeout: Duration,
}

/// What the writer thread and leading callers share.
struct Shared {
    conn: Mutex<Connection>,
    database: Arc<str>,
    counters: Arc<Counters>,
    /// Commands sent and not yet done by the thread: a caller leads only when it is 0.
    queued: AtomicUsize,
    lead: bool,
    busy_timeout: Duration,
    /// `wal_autocheckpoint` of the connection (pages), 0 when off; applied to the thread's
    /// commits only.
    autocheckpoint: i64,
    /// Leaders' commits since the last checkpoint.
    led_commits: AtomicU64,
    /// The thread's last batch held more than one write: appends come concurrently, and
    /// group commit serves them better than leaders committing one at a time.
    concurrent: AtomicBool,
}

impl Shared {
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn error(&self, error: rusqlite::Error) -> StoreError {
        map_error(&self.database, error)
    }
}

/// Pages a one-event commit writes to the WAL, about: the table's leaf, the id index's and
/// the timeline index's. Leaders ask for a checkpoint every `autocheckpoint / 4` commits.
const PAGES_PER_LED_COMMIT: i64 = 4;

/// The handle to the writer thread. Dropping the last one ends the thread once it has
/// answered what is queued.
pub(super) struct Writer {
    sender: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(super) fn spawn(
        conn: Connection,
        database: Arc<str>,
        counters: Arc<Counters>,
        options: &WriterOptions,
    ) -> Result<Writer, StoreError> {
        let error = |e| map_error(&database, e);
        let mut autocheckpoint = 0;
        if options.lead {
            // Leaders' commits never checkpoint: the thread does, see `commit_batch`.
            autocheckpoint = conn
                .pragma_query_value(None, "wal_autocheckpoint", |row| row.get(0))
                .map_err(error)?;
            conn.pragma_update(None, "wal_autocheckpoint", 0)
                .map_err(error)?;
        }
        let shared = Arc::new(Shared {
            conn: Mutex::new(conn),
            database,
            counters,
            queued: AtomicUsize::new(0),
            lead: options.lead,
            busy_timeout: options.busy_timeout,
            autocheckpoint,
            led_commits: AtomicU64::new(0),
            concurrent: AtomicBool::new(false),
        });
        let (sender, receiver) = mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        let max_batch = options.max_batch;
        std::thread::Builder::new()
            .name("event-store-sqlite-writer".to_owned())
            .spawn(move || run(&thread_shared, &receiver, max_batch))
            .map_err(|error| StoreError::Io {
                database: shared.database.to_string(),
                source: Arc::new(error),
            })?;
        Ok(Writer { sender, shared })
    }

    fn send(&self, command: Command) -> Result<(), StoreError> {
        self.shared.queued.fetch_add(1, Relaxed);
        self.sender.send(command).map_err(|_| {
            self.shared.queued.fetch_sub(1, Relaxed);
            self.closed()
        })
    }

    /// As [`write`](Self::write), but when leading is on and the writer is idle, commits
    /// `work` alone on the caller's thread, without waiting for anything (see the module
    /// docs); otherwise queues it.
    pub(super) async fn write_or_lead<T, F>(&self, mut work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let shared = &*self.shared;
        let idle = shared.queued.load(Relaxed) == 0 && !shared.concurrent.load(Relaxed);
        if shared.lead
            && idle
            && let Some(outcome) = self.lead(&mut work)
        {
            return outcome;
        }
        self.write(work).await
    }

    /// Commits `work` in a transaction of its own on this thread; None when the connection
    /// or the database's write lock is taken (nothing was done).
    fn lead<T>(
        &self,
        work: &mut impl FnMut(&Connection) -> rusqlite::Result<T>,
    ) -> Option<Result<T, StoreError>> {
        let shared = &*self.shared;
        let conn = match shared.conn.try_lock() {
            Ok(conn) => conn,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        if !conn.is_autocommit() {
            // A write that panicked left its transaction open: let the thread sort it out.
            return None;
        }
        // Another connection's write lock (a caller's outbox transaction) is not waited for.
        if let Err(e) = conn.busy_timeout(Duration::ZERO) {
            return Some(Err(shared.error(e)));
        }
        let begun = execute(&conn, "BEGIN IMMEDIATE");
        let restored = conn.busy_timeout(shared.busy_timeout);
        match begun {
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => return None,
            Err(e) => return Some(Err(shared.error(e))),
            Ok(()) => {}
        }
        let outcome = restored
            .and_then(|()| work(&conn))
            .and_then(|value| execute(&conn, "COMMIT").map(|()| value));
        if outcome.is_err() && !conn.is_autocommit() {
            let _ = execute(&conn, "ROLLBACK");
        }
        drop(conn);
        if outcome.is_ok() {
            shared.counters.write_transactions.fetch_add(1, Relaxed);
            let every = (shared.autocheckpoint / PAGES_PER_LED_COMMIT).max(1);
            let every = u64::try_from(every).unwrap_or(u64::MAX);
            if shared.autocheckpoint > 0 && shared.led_commits.fetch_add(1, Relaxed) + 1 >= every {
                shared.led_commits.store(0, Relaxed);
                // If the thread is gone, so is the store: nothing to checkpoint for.
                let _ = self.send(Command::Checkpoint);
            }
        }
        Some(outcome.map_err(|e| shared.error(e)))
    }

    /// Runs `work` in the next batch (more than once if another write of the batch fails);
    /// resolves once the batch committed.
    pub(super) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            work,
            value: None,
            reply,
        };
        self.send(Command::Write(Box::new(job)))?;
        answer.await.map_err(|_| self.closed())?
    }

    /// Runs `work` on the writer's connection between batches.
    pub(super) async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = reply.send(work(conn));
        });
        self.send(Command::Read(job))?;
        answer.await.map_err(|_| self.closed())?
    }

    fn closed(&self) -> StoreError {
        StoreError::Closed {
            database: self.shared.database.to_string(),
        }
    }
}

/// The writer thread: waits for a command, takes whatever else is queued (up to
/// `max_batch` writes), commits the writes together, then runs the reads.
fn run(shared: &Shared, receiver: &mpsc::Receiver<Command>, max_batch: usize) {
    let mut writes: Vec<Box<dyn WriteJob>> = Vec::new();
    let mut reads: Vec<ReadJob> = Vec::new();
    let mut checkpoint = false;
    while let Ok(first) = receiver.recv() {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(command) = next {
            taken += 1;
            match command {
                Command::Write(job) => writes.push(job),
                Command::Read(job) => reads.push(job),
                Command::Checkpoint => checkpoint = true,
            }
            next = if writes.len() < max_batch {
                receiver.try_recv().ok()
            } else {
                None
            };
        }
        let conn = shared.conn();
        if !conn.is_autocommit() {
            // A leader's write panicked inside its transaction.
            let _ = execute(&conn, "ROLLBACK");
        }
        if !writes.is_empty() {
            shared.concurrent.store(writes.len() > 1, Relaxed);
            commit_batch(&conn, std::mem::take(&mut writes), shared);
        }
        for read in reads.drain(..) {
            read(&conn);
        }
        if std::mem::take(&mut checkpoint) {
            // PASSIVE: never waits for readers; what it cannot copy now, a later one will.
            let _ = pragma(&conn, "PRAGMA wal_checkpoint(PASSIVE)");
        }
        drop(conn);
        // Only now may callers lead again: those woken by this batch, or arriving while it
        // ran, queue for the next one, so group commit keeps its batches.
        shared.queued.fetch_sub(taken, Relaxed);
    }
}

/// Runs a batch of writes in one transaction and answers each.
fn commit_batch(conn: &Connection, mut jobs: Vec<Box<dyn WriteJob>>, shared: &Shared) {
    let database = &*shared.database;
    let counters = &*shared.counters;
    let error = |error| map_error(database, error);
    while !jobs.is_empty() {
        if let Err(e) = execute(conn, "BEGIN IMMEDIATE") {
            let e = error(e);
            for job in jobs {
                job.answer(Err(e.clone()));
            }
            return;
        }
        let failed = jobs
            .iter_mut()
            .enumerate()
            .find_map(|(index, job)| job.run(conn).err().map(|e| (index, e)));
        if let Some((index, e)) = failed {
            // Undo the batch; the failed write's caller gets its error, the others run
            // again without it.
            if !conn.is_autocommit() {
                let _ = execute(conn, "ROLLBACK");
            }
            jobs.remove(index).answer(Err(error(e)));
            continue;
        }
        match commit(conn, shared) {
            Ok(()) => {
                counters.write_transactions.fetch_add(1, Relaxed);
                for job in jobs {
                    job.answer(Ok(()));
                }
            }
            Err(e) => {
                let e = error(e);
                if !conn.is_autocommit() {
                    let _ = execute(conn, "ROLLBACK");
                }
                for job in jobs {
                    job.answer(Err(e.clone()));
                }
            }
        }
        return;
    }
}

/// `COMMIT`, with SQLite's automatic checkpoint when leaders are on (their own commits
/// skip it).
fn commit(conn: &Connection, shared: &Shared) -> rusqlite::Result<()> {
    if shared.autocheckpoint <= 0 {
        return execute(conn, "COMMIT");
    }
    pragma(
        conn,
        &format!("PRAGMA wal_autocheckpoint = {}", shared.autocheckpoint),
    )?;
    let committed = execute(conn, "COMMIT");
    // Not the callers' business once committed: at worst a leader checkpoints itself.
    let _ = pragma(conn, "PRAGMA wal_autocheckpoint = 0");
    committed
}

/// A pragma that answers with a row, prepared once per connection.
fn pragma(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.query([])?.next().map(drop)
}

/// One statement without parameters, prepared once per connection.
fn execute(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}
