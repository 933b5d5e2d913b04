//! `cargo run -p saas`: the platform over Redis, in several processes of this binary.
//!
//! The orchestrator (no subcommand) starts a throwaway `redis-server`, three workers
//! (`worker --name w1|w2|w3`) and a gateway (`gateway`), relays their output prefixed with
//! their names, kills `w2` midway and shows its shards passing to `w1` and `w3`, then checks
//! that every saga completed and that the broken upload is the one dead letter. Exit code 0
//! when all went as expected, 1 when not, 2 when Redis is not installed.
//!
//! `cargo run -p saas -- --in-memory`: the same flow in one process, on an in-memory bus.

use clap::{Args, Parser, Subcommand};
use event_core::EventBus;
use saas::backend::{Backend, LEASE};
use saas::children::Children;
use saas::events::NotificationDelivered;
use saas::log::Log;
use saas::redis_server::{RedisServer, StartError};
use saas::scenario::{KILL_AFTER, VICTIM, WORKERS, upload_correlation_id};
use saas::{Error, dead_letters, gateway, in_memory, observer, roles};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The most a run over Redis takes; past it the orchestrator gives up.
const DEADLINE: Duration = Duration::from_secs(30);

/// How long a saga's step waits for its reply over Redis: a killed worker's shards take up
/// to a lease, and a rebalance, to pass on.
const STEP_TIMEOUT: Duration = Duration::from_secs(8);

/// The platform's events, over Redis in several processes, or in memory in one.
#[derive(Debug, Parser)]
#[command(name = "saas", version, args_conflicts_with_subcommands = true)]
struct Cli {
    /// Runs every role in this process on an in-memory bus, without Redis.
    #[arg(long)]
    in_memory: bool,
    /// A role, for the processes the orchestrator starts.
    #[command(subcommand)]
    role: Option<Role>,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// Registers the users and runs the upload sagas (started by the orchestrator).
    Gateway(Broker),
    /// Joins every consumer group as member `name` (started by the orchestrator).
    Worker {
        /// Its member name in the groups: w1, w2, w3.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        broker: Broker,
    },
}

/// Where the orchestrator's Redis is.
#[derive(Debug, Args)]
struct Broker {
    /// `redis://127.0.0.1:{port}`.
    #[arg(long)]
    redis: String,
    /// The key prefix of this run.
    #[arg(long)]
    prefix: String,
}

impl Broker {
    fn backend(self) -> Backend {
        Backend::Redis {
            url: self.redis,
            prefix: self.prefix,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.role {
        None if cli.in_memory => run_in_memory().await,
        None => orchestrate().await,
        Some(Role::Gateway(broker)) => run_gateway(broker.backend()).await,
        Some(Role::Worker { name, broker }) => run_worker(&name, broker.backend()).await,
    }
}

/// The flow in one process.
async fn run_in_memory() -> ExitCode {
    let log = Log::named("main");
    let started = Instant::now();
    match in_memory::run().await.map(|summary| summary.check()) {
        Ok(Ok(())) => {
            log.line(format_args!(
                "OK: every saga went as expected, the broken upload is the one dead letter ({:.1?})",
                started.elapsed()
            ));
            ExitCode::SUCCESS
        }
        Ok(Err(failure)) => {
            eprintln!("[main] FAILED: {failure}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("[main] FAILED: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The orchestrator: Redis, the children, the kill, the verdict.
async fn orchestrate() -> ExitCode {
    let log = Log::named("main");
    let started = Instant::now();
    let server = match tokio::task::spawn_blocking(RedisServer::start).await {
        Ok(Ok(server)) => server,
        Ok(Err(StartError::NotInstalled)) => {
            eprintln!("{}", StartError::NotInstalled);
            return ExitCode::from(2);
        }
        Ok(Err(error)) => {
            eprintln!("[main] FAILED: {error}");
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("[main] FAILED: starting redis-server: {error}");
            return ExitCode::FAILURE;
        }
    };
    let url = server.url();
    let prefix = format!("saas-{}", std::process::id());
    log.line(format_args!(
        "redis-server (pid {}) on {url}, prefix {prefix}",
        server.pid()
    ));
    let mut children = Children::default();
    let outcome =
        tokio::time::timeout(DEADLINE, run_processes(&url, &prefix, &mut children, &log)).await;
    let ok = matches!(outcome, Ok(Ok(())));
    // Workers leave their groups when their stdin closes; on failure, kill at once.
    let grace = if ok {
        Duration::from_secs(2)
    } else {
        Duration::ZERO
    };
    children.stop_all(grace).await;
    drop(server);
    match outcome {
        Ok(Ok(())) => {
            log.line(format_args!(
                "OK: every saga completed despite {VICTIM}'s death, the broken upload is the one dead letter ({:.1?})",
                started.elapsed()
            ));
            ExitCode::SUCCESS
        }
        Ok(Err(error)) => {
            eprintln!("[main] FAILED: {error}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("[main] FAILED: the run did not finish within {DEADLINE:?}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the workers and the gateway, kills a worker midway, and checks the end.
async fn run_processes(
    url: &str,
    prefix: &str,
    children: &mut Children,
    log: &Log,
) -> Result<(), Error> {
    let broker = ["--redis", url, "--prefix", prefix];
    // The orchestrator's own small bus: it subscribes to nothing, it looks.
    let observer = Backend::Redis {
        url: url.to_owned(),
        prefix: prefix.to_owned(),
    }
    .bus("orchestrator")
    .await?;

    for name in WORKERS {
        let pid = children.spawn(name, &[&["worker", "--name", name][..], &broker].concat())?;
        log.line(format_args!("started worker {name} (pid {pid})"));
    }
    let owners =
        observer::wait_until_balanced(&observer, &roles::GROUPS, &WORKERS, Duration::from_secs(10))
            .await?;
    log.line("every worker is in every group; shards per consumer:");
    observer::print(log, &owners);

    let pid = children.spawn("gateway", &[&["gateway"][..], &broker].concat())?;
    log.line(format_args!("started the gateway (pid {pid})"));

    // Midway: as soon as the saga of KILL_AFTER ends (the gateway goes on meanwhile). The
    // owners are those seen above: shards move only when a member joins or leaves, and a
    // look at the broker takes long enough (one round trip per shard, group and topic) to
    // let the gateway run ahead if taken now.
    saga_done(&observer, children, KILL_AFTER).await?;
    children.kill(VICTIM).await?;
    let killed = Instant::now();
    log.line(format_args!(
        "saga {KILL_AFTER} done: killed {VICTIM} (SIGKILL). Shards per consumer before:"
    ));
    observer::print(log, &owners);
    let after = observer::wait_until_gone(&observer, VICTIM, LEASE * 6).await?;
    log.line(format_args!(
        "{VICTIM}'s shards passed to the others, seen {:.1?} after the kill (lease {LEASE:?}). Shards per consumer after:",
        killed.elapsed()
    ));
    observer::print(log, &after);

    let status = children.wait("gateway").await?;
    let letters = dead_letters::collect(&observer, Duration::from_secs(3)).await;
    dead_letters::print(log, &letters);
    observer.shutdown().await;
    if !status.success() {
        return Err(Error::Failed(format!(
            "not every saga completed: the gateway exited with {status}"
        )));
    }
    dead_letters::check(&letters).map_err(Error::Failed)
}

/// Waits until the saga of `file_id` has completed, as its last reply tells the observer
/// too, or fails if the gateway exits first.
async fn saga_done(
    observer: &EventBus,
    children: &mut Children,
    file_id: &str,
) -> Result<(), Error> {
    let correlation_id = upload_correlation_id(file_id);
    tokio::select! {
        delivered = observer.wait_for::<NotificationDelivered>(&correlation_id, STEP_TIMEOUT * 3) => {
            delivered?;
            Ok(())
        }
        status = children.wait("gateway") => Err(Error::Failed(format!(
            "the gateway exited ({}) before saga {file_id} completed",
            status?
        ))),
    }
}

/// The gateway process: exit code 0 when every saga went as expected.
async fn run_gateway(backend: Backend) -> ExitCode {
    let log = Log::bare();
    let bus = match backend.bus("gateway").await {
        Ok(bus) => bus,
        Err(error) => {
            eprintln!("cannot reach the broker: {error}");
            return ExitCode::FAILURE;
        }
    };
    let report = gateway::run(&bus, &log, STEP_TIMEOUT).await;
    report.print(&log);
    bus.shutdown().await;
    if report.unexpected().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A worker process: every role, until its stdin closes (the orchestrator stops it, or
/// died).
async fn run_worker(name: &str, backend: Backend) -> ExitCode {
    let log = Log::bare();
    let bus = match backend.bus(name).await {
        Ok(bus) => bus,
        Err(error) => {
            eprintln!("cannot reach the broker: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = roles::subscribe_all(&bus, &log) {
        eprintln!("cannot subscribe: {error}");
        return ExitCode::FAILURE;
    }
    log.line(format_args!("joined {}", roles::GROUPS.join(", ")));
    let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut tokio::io::sink()).await;
    bus.shutdown().await;
    log.line("left every group");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
