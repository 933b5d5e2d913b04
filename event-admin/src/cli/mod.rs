//! The ops CLI (`event_admin::main()`): subscriptions, dead letters, replay, the timeline of a
//! partition key, a live tail and health, against a store directly or a running service's
//! admin API.
//!
//! # Target
//!
//! Exactly one of:
//!
//! - `--store sqlite:PATH` or `--store postgres:URL` opens the store itself (`URL` is a
//!   `postgresql://` URL or `host=... user=... dbname=...`). The file must exist: a missing
//!   one is not created. Commands that only look open a SQLite file read-only.
//! - `--url http://HOST:PORT` (with the prefix where the admin router is mounted, if any)
//!   talks to a running service's admin API, with the bearer token in the environment
//!   variable [`TOKEN_ENV`](crate::TOKEN_ENV) (`EVENT_ADMIN_TOKEN`). Plain HTTP only: serve
//!   the API on loopback, or reach it through a tunnel.
//!
//! # Commands
//!
//! - `subscriptions [NAME]...`: checkpoint and lag (head − checkpoint) of each subscription,
//!   with its dead letters; with `--url`, also its feed, in-flight and delivered counts. A
//!   store keeps no list of subscriptions, so directly it shows those with dead letters and
//!   those named.
//! - `dlq list [--subscription NAME]`, `dlq show ID`, `dlq redeliver ID`, `dlq discard ID`:
//!   the dead letters, by the API's id `{event id}:{subscription}`. `redeliver` needs the
//!   service, whose handler handles the event again: it needs `--url`.
//! - `replay NAME --from POS [--wait] [--timeout SECS]`: the subscription handles its events
//!   after store position `POS` again (0: all). With `--url` the service rewinds it at once;
//!   directly only its stored checkpoint is reset, which a service picks up when it (re)starts
//!   the subscription. `--wait` follows its checkpoint up to the head, with a progress bar when
//!   stderr is a terminal.
//! - `timeline KEY [--type TYPE]... [--limit N] [--newest] [--cursor CURSOR]`: the events of a
//!   partition key, one page.
//! - `tail [PATTERN] [--from POS]`: prints the events appended from now on (or after `POS`)
//!   whose type matches the dotted glob `PATTERN` (`order.*`, `*.created`; default `*`), until
//!   killed.
//! - `health [--subscription NAME]... [--max-lag N]`: the service's `/health`, or directly the
//!   store's reachability and the lag of the subscriptions it knows.
//!
//! Every payload shown has its `#[event(pii)]` fields redacted. Output is an aligned table
//! for people, or with `--json` one JSON document in the API's shapes (one object per line
//! for `tail`).
//!
//! # Exit codes
//!
//! - 0: success;
//! - 1: the command ran and found a problem: unhealthy, no such dead letter, event or
//!   subscription, a replay not caught up within `--timeout`, an operation the service
//!   refused as conflicting (409);
//! - 2: a usage or input error: bad arguments, a bad store spec or URL, a bad dead letter id
//!   or cursor, a file that is not an event store, a token refused (401, 403), `dlq
//!   redeliver` without `--url`;
//! - 3: the store or the service could not be reached, or failed (503).

mod output;
mod remote;
mod store;

use clap::{Args, Parser, Subcommand};
use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the command ran and found a problem.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: usage or input error.
pub const EXIT_ERROR: u8 = 2;
/// Exit code: the store or the service could not be reached.
pub const EXIT_UNREACHABLE: u8 = 3;

/// Operates an event bus: subscriptions, dead letters, replay, timelines, a live tail and
/// health, against its store or its running service's admin API.
#[derive(Debug, Parser)]
#[command(
    name = "event-admin",
    after_help = "Exit codes: 0 success; 1 the command found a problem (unhealthy, not found, replay not caught up); 2 usage or input error; 3 the store or service could not be reached."
)]
struct Cli {
    #[command(flatten)]
    target: TargetArgs,
    /// Print JSON for scripts: one document (one object per line for `tail`), no progress bar.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct TargetArgs {
    /// Open the store directly: `sqlite:PATH` or `postgres:URL`.
    #[arg(long, value_name = "SPEC")]
    store: Option<String>,
    /// A running service's admin API, like `http://127.0.0.1:8080`; the token is read from
    /// `EVENT_ADMIN_TOKEN`.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Subscriptions with their checkpoint, lag (head − checkpoint) and dead letters.
    Subscriptions {
        /// Only these subscriptions. Directly, also those to look up: a store keeps no list of
        /// subscriptions, only their checkpoints and dead letters.
        names: Vec<String>,
    },
    /// Dead letters: list, show, redeliver, discard.
    #[command(subcommand)]
    Dlq(Dlq),
    /// Handles a subscription's events after store position POS again.
    Replay(ReplayArgs),
    /// The events of a partition key.
    Timeline(TimelineArgs),
    /// Prints events as they are appended, until killed.
    Tail(TailArgs),
    /// Store (and service) reachable, subscriptions under the lag threshold.
    Health(HealthArgs),
}

#[derive(Debug, Subcommand)]
enum Dlq {
    /// The dead letters, oldest first.
    List {
        /// Only this subscription's.
        #[arg(long, value_name = "NAME")]
        subscription: Option<String>,
    },
    /// One dead letter, with its event (PII redacted).
    Show {
        /// `{event id}:{subscription}`, as `dlq list` shows it.
        id: String,
    },
    /// Sends a dead letter's event to its subscription again (needs `--url`).
    Redeliver {
        /// `{event id}:{subscription}`.
        id: String,
    },
    /// Takes a dead letter off the list without handling its event.
    Discard {
        /// `{event id}:{subscription}`.
        id: String,
    },
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The subscription.
    name: String,
    /// Handle the events after this store position (0: from the first).
    #[arg(long, value_name = "POS")]
    from: u64,
    /// Follow the subscription's checkpoint up to the head before exiting.
    #[arg(long)]
    wait: bool,
    /// With `--wait`: give up (exit 1) after this many seconds.
    #[arg(long, value_name = "SECS", requires = "wait")]
    timeout: Option<u64>,
    /// Directly: reset the checkpoint even of a subscription the store does not know (no
    /// checkpoint past 0, no dead letters).
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct TimelineArgs {
    /// The partition key (`meta.partition_key`).
    key: String,
    /// Only events of these types (repeat, or separate with commas).
    #[arg(long = "type", value_name = "TYPE", value_delimiter = ',')]
    types: Vec<String>,
    /// At most this many events.
    #[arg(long, value_name = "N", default_value_t = crate::DEFAULT_PAGE)]
    limit: usize,
    /// The newest event first.
    #[arg(long)]
    newest: bool,
    /// Continue after a previous page: its `next_cursor`.
    #[arg(long, value_name = "CURSOR")]
    cursor: Option<String>,
}

#[derive(Debug, Args)]
struct TailArgs {
    /// Only events whose type matches this dotted glob: `order.*`, `*.created`, `*`.
    #[arg(default_value = "*")]
    pattern: String,
    /// Start after this store position rather than at the head.
    #[arg(long, value_name = "POS")]
    from: Option<u64>,
    /// How often to look for new events, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 250)]
    interval: u64,
}

#[derive(Debug, Args)]
struct HealthArgs {
    /// Directly: also check the lag of this subscription (repeat); those with dead letters
    /// are checked anyway.
    #[arg(long, value_name = "NAME")]
    subscription: Vec<String>,
    /// Directly: a subscription further behind than this is unhealthy (the service has its
    /// own threshold).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_lag: u64,
}

/// Why a command did not succeed: the exit code, and what to tell on stderr.
#[derive(Debug)]
pub(crate) struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// Exit 1: the command ran and found a problem.
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_FAILED,
            message: message.into(),
        }
    }

    /// Exit 2: a usage or input error.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_ERROR,
            message: message.into(),
        }
    }

    /// Exit 3: the store or service could not be reached.
    pub(crate) fn unreachable(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_UNREACHABLE,
            message: message.into(),
        }
    }
}

/// What a command ends with: the exit code of a command that ran (0, or 1 for a problem it
/// printed), or a failure to report.
pub(crate) type Outcome = Result<u8, Failure>;

/// Where the commands go.
enum Target {
    Sqlite(std::path::PathBuf),
    Postgres(String),
    Url(reqwest::Url),
}

impl Target {
    fn parse(args: &TargetArgs) -> Result<Target, Failure> {
        if let Some(url) = &args.url {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| Failure::usage(format!("--url {url:?}: not a URL: {e}")))?;
            return match parsed.scheme() {
                "http" => Ok(Target::Url(parsed)),
                "https" => Err(Failure::usage(format!(
                    "--url {url}: https is not supported by this build: serve the admin API on loopback (http) or reach it through a tunnel"
                ))),
                other => Err(Failure::usage(format!(
                    "--url {url}: scheme {other:?}: expected http://HOST:PORT"
                ))),
            };
        }
        let spec = args.store.as_deref().unwrap_or_default();
        if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
            return Ok(Target::Postgres(spec.to_owned()));
        }
        match spec.split_once(':') {
            Some(("sqlite", path)) if !path.is_empty() => Ok(Target::Sqlite(path.into())),
            Some(("postgres" | "postgresql", url)) if !url.is_empty() => {
                Ok(Target::Postgres(url.to_owned()))
            }
            _ => Err(Failure::usage(format!(
                "--store {spec:?}: expected sqlite:PATH or postgres:URL"
            ))),
        }
    }
}

/// Runs the ops CLI on the events linked into the binary (their PII fields are redacted).
///
/// The whole `main.rs` of an ops binary (link the domain crates, then call this):
///
/// ```no_run
/// # #![allow(unused_imports)]
/// # mod orders {}
/// use orders as _; // link the events
/// fn main() -> std::process::ExitCode { event_admin::main() }
/// ```
///
/// Then, against a store or a running service:
///
/// ```text
/// event-admin --store sqlite:events.db subscriptions billing
/// event-admin --store postgres:postgresql://app@db/app dlq list
/// EVENT_ADMIN_TOKEN=... event-admin --url http://127.0.0.1:8080 dlq redeliver ID
/// event-admin --url http://127.0.0.1:8080 replay billing --from 0 --wait
/// event-admin --store sqlite:events.db timeline ord_7Hq2 --newest --json
/// event-admin --store sqlite:events.db tail 'order.*'
/// ```
///
/// Commands: `subscriptions [NAME]...`, `dlq list|show ID|redeliver ID|discard ID`,
/// `replay NAME --from POS [--wait]`, `timeline KEY`, `tail [PATTERN]`, `health`; `--json`
/// for scripts. See `--help`.
///
/// Exit codes: 0 success; 1 the command ran and found a problem (unhealthy, no such dead
/// letter or subscription, a replay not caught up within `--timeout`, a conflict); 2 usage
/// or input error (bad arguments, store spec, id or cursor, a refused token, `dlq redeliver`
/// without `--url`); 3 the store or service could not be reached. Errors go to stderr,
/// naming what failed.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() {
                EXIT_ERROR
            } else {
                EXIT_OK
            });
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_UNREACHABLE);
        }
    };
    let outcome = runtime.block_on(run(cli));
    runtime.shutdown_timeout(Duration::from_secs(1));
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

async fn run(cli: Cli) -> Outcome {
    let target = Target::parse(&cli.target)?;
    let out = output::Out::new(cli.json);
    match target {
        Target::Url(url) => remote::run(url, &cli.command, out).await,
        Target::Sqlite(path) => {
            let store = store::Direct::sqlite(&path, writes(&cli.command))?;
            store.run(&cli.command, out).await
        }
        Target::Postgres(url) => {
            let store = store::Direct::postgres(&url).await?;
            store.run(&cli.command, out).await
        }
    }
}

/// Whether the command writes to a store opened directly.
fn writes(command: &Command) -> bool {
    matches!(
        command,
        Command::Replay(_) | Command::Dlq(Dlq::Discard { .. } | Dlq::Redeliver { .. })
    )
}

/// A dead letter's id in the API and here: the event's id and the subscription that failed.
fn letter_id(event_id: uuid::Uuid, subscription: &str) -> String {
    format!("{event_id}:{subscription}")
}

/// Checks a dead letter id's form: `{event id}:{subscription}`.
fn parse_letter_id(id: &str) -> Result<(uuid::Uuid, &str), Failure> {
    let (event_id, subscription) = id.split_once(':').ok_or_else(|| {
        Failure::usage(format!(
            "not a dead letter id ({{event id}}:{{subscription}}): {id:?}"
        ))
    })?;
    let event_id = uuid::Uuid::parse_str(event_id).map_err(|_| {
        Failure::usage(format!(
            "dead letter id {id:?}: not an event id (a UUID): {event_id:?}"
        ))
    })?;
    Ok((event_id, subscription))
}

/// The error and its causes, joined by `: `.
fn chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Follows a replayed subscription until its checkpoint reaches the head, with a progress
/// bar, polling `poll` for `(checkpoint, head)`; gives up after `timeout` seconds. Returns
/// the last `(checkpoint, head)`.
async fn wait_caught_up(
    out: output::Out,
    name: &str,
    from: u64,
    timeout: Option<u64>,
    mut poll: impl AsyncFnMut() -> Result<(u64, u64), Failure>,
) -> Result<(u64, u64), Failure> {
    let mut progress = output::Progress::new(out, name, from);
    let deadline = timeout.map(|secs| tokio::time::Instant::now() + Duration::from_secs(secs));
    loop {
        let (checkpoint, head) = match poll().await {
            Ok(seen) => seen,
            Err(failure) => {
                progress.finish();
                return Err(failure);
            }
        };
        progress.set(checkpoint, head);
        if checkpoint >= head {
            progress.finish();
            return Ok((checkpoint, head));
        }
        if deadline.is_some_and(|deadline| tokio::time::Instant::now() >= deadline) {
            progress.finish();
            return Err(Failure::failed(format!(
                "replay of {name}: not caught up within {}s: checkpoint {checkpoint}, head {head} (lag {})",
                timeout.unwrap_or_default(),
                head - checkpoint
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_specs() {
        let parse = |store: &str| {
            Target::parse(&TargetArgs {
                store: Some(store.to_owned()),
                url: None,
            })
        };
        assert!(matches!(parse("sqlite:/tmp/x.db"), Ok(Target::Sqlite(_))));
        assert!(matches!(
            parse("postgres:host=127.0.0.1 dbname=app"),
            Ok(Target::Postgres(url)) if url == "host=127.0.0.1 dbname=app"
        ));
        assert!(matches!(
            parse("postgresql://app@db/app"),
            Ok(Target::Postgres(_))
        ));
        for bad in ["", "sqlite:", "mysql:x", "events.db"] {
            assert!(
                matches!(
                    parse(bad),
                    Err(Failure {
                        code: EXIT_ERROR,
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_arguments_hold_together() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
