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

use super::error::map_error;
use crate::store::{Counters, StoreError};
use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
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
}

/// The handle to the writer thread. Dropping the last one ends the thread once it has
/// answered what is queued.
pub(super) struct Writer {
    sender: mpsc::Sender<Command>,
    database: Arc<str>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(super) fn spawn(
        conn: Connection,
        database: Arc<str>,
        counters: Arc<Counters>,
        max_batch: usize,
    ) -> Result<Writer, StoreError> {
        let (sender, receiver) = mpsc::channel();
        let thread_database = Arc::clone(&database);
        std::thread::Builder::new()
            .name("event-store-sqlite-writer".to_owned())
            .spawn(move || run(&conn, &receiver, &thread_database, &counters, max_batch))
            .map_err(|error| StoreError::Io {
                database: database.to_string(),
                source: Arc::new(error),
            })?;
        Ok(Writer { sender, database })
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
        self.sender
            .send(Command::Write(Box::new(job)))
            .map_err(|_| self.closed())?;
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
        self.sender
            .send(Command::Read(job))
            .map_err(|_| self.closed())?;
        answer.await.map_err(|_| self.closed())?
    }

    fn closed(&self) -> StoreError {
        StoreError::Closed {
            database: self.database.to_string(),
        }
    }
}

/// The writer thread: waits for a command, takes whatever else is queued (up to
/// `max_batch` writes), commits the writes together, then runs the reads.
fn run(
    conn: &Connection,
    receiver: &mpsc::Receiver<Command>,
    database: &str,
    counters: &Counters,
    max_batch: usize,
) {
    let mut writes: Vec<Box<dyn WriteJob>> = Vec::new();
    let mut reads: Vec<ReadJob> = Vec::new();
    while let Ok(first) = receiver.recv() {
        let mut next = Some(first);
        while let Some(command) = next {
            match command {
                Command::Write(job) => writes.push(job),
                Command::Read(job) => reads.push(job),
            }
            next = if writes.len() < max_batch {
                receiver.try_recv().ok()
            } else {
                None
            };
        }
        if !writes.is_empty() {
            commit_batch(conn, std::mem::take(&mut writes), database, counters);
        }
        for read in reads.drain(..) {
            read(conn);
        }
    }
}

/// Runs a batch of writes in one transaction and answers each.
fn commit_batch(
    conn: &Connection,
    mut jobs: Vec<Box<dyn WriteJob>>,
    database: &str,
    counters: &Counters,
) {
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
        match execute(conn, "COMMIT") {
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

/// One statement without parameters, prepared once per connection.
fn execute(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}
