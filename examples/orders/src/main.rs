//! `orders [--admin ADDR] [NEW_DB_PATH]`: the main example. One order's life on a durable
//! event bus in a new SQLite file, from creation to delivery; then the flow as the store
//! holds it, each subscription's count and checkpoint, and the event registry as a table.
//!
//! Without a path the database goes in a temporary directory, removed at the end. With
//! `--admin 127.0.0.1:8080` the admin API and dashboard (`event-admin`) are served there
//! while the bus runs, and after the flow until Ctrl-C; the address and token are printed.
//! Exits with 1 when the run fails or loses anything (a dead letter, a checkpoint short of
//! the head), with 2 on a bad command line.

use orders::app::{self, Error};
use std::ffi::OsString;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let Some((admin, path)) = arguments(std::env::args_os().skip(1).collect()) else {
        eprintln!("usage: orders [--admin ADDR] [NEW_DB_PATH]");
        return ExitCode::from(2);
    };
    match example(path, admin).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("error: the flow lost events: see the dead letters and checkpoints above");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("error: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

/// `[--admin ADDR] [NEW_DB_PATH]`; `None` for anything else.
fn arguments(mut args: Vec<OsString>) -> Option<(Option<SocketAddr>, Option<PathBuf>)> {
    let mut admin = None;
    if args.first().is_some_and(|arg| arg == "--admin") {
        let addr = args.get(1)?.to_str()?.parse().ok()?;
        admin = Some(addr);
        args.drain(..2);
    }
    match args.as_slice() {
        [] => Some((admin, None)),
        [path] if !path.to_string_lossy().starts_with('-') => {
            Some((admin, Some(PathBuf::from(path))))
        }
        _ => None,
    }
}

/// Runs the flow on `path`, or on a file in a temporary directory, and prints the reports;
/// tells whether nothing was lost.
async fn example(path: Option<PathBuf>, admin: Option<SocketAddr>) -> Result<bool, Error> {
    // Kept until the end of the run, then removed with the database in it.
    let dir;
    let path = if let Some(path) = path {
        path
    } else {
        dir = tempfile::tempdir()?;
        dir.path().join("orders.db")
    };
    let report = app::run_with_admin(&path, io::stdout(), admin).await?;
    let mut out = io::stdout().lock();
    report.write(&mut out)?;
    writeln!(
        out,
        "\n== the event registry: every event linked into this binary"
    )?;
    app::write_registry_table(&mut out)?;
    Ok(report.is_complete())
}
