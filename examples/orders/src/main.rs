//! `orders [--admin ADDR | --http ADDR] [NEW_DB_PATH]`: the main example. One order's life
//! on a durable event bus in a new SQLite file, from creation to delivery; then the flow as
//! the store holds it, each subscription's count and checkpoint, and the event registry as a
//! table.
//!
//! Without a path the database goes in a temporary directory, removed at the end. With
//! `--admin 127.0.0.1:8080` the admin API and dashboard (`event-admin`) are served there
//! while the bus runs, and after the flow until Ctrl-C; the address and token are printed.
//! With `--http 127.0.0.1:8080` there is no script: the storefront's HTTP API
//! ([`orders::app::http`]) is served there until Ctrl-C, its address printed (port 0 picks a
//! free one). Exits with 1 when the run fails or loses anything (a dead letter, a checkpoint
//! short of the head), with 2 on a bad command line.

use orders::app::{self, Error};
use std::ffi::OsString;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let Some((mode, path)) = arguments(std::env::args_os().skip(1).collect()) else {
        eprintln!("usage: orders [--admin ADDR | --http ADDR] [NEW_DB_PATH]");
        return ExitCode::from(2);
    };
    match example(path, mode).await {
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

/// What the command runs besides the bus.
enum Mode {
    /// The script alone.
    Script,
    /// The script, with the admin API served on this address.
    Admin(SocketAddr),
    /// No script: the storefront's HTTP API on this address.
    Http(SocketAddr),
}

/// `[--admin ADDR | --http ADDR] [NEW_DB_PATH]`; `None` for anything else.
fn arguments(mut args: Vec<OsString>) -> Option<(Mode, Option<PathBuf>)> {
    let mut mode = Mode::Script;
    let flag = args.first().and_then(|arg| arg.to_str()).map(str::to_owned);
    if let Some(flag @ ("--admin" | "--http")) = flag.as_deref() {
        let addr = args.get(1)?.to_str()?.parse().ok()?;
        mode = if flag == "--admin" {
            Mode::Admin(addr)
        } else {
            Mode::Http(addr)
        };
        args.drain(..2);
    }
    match args.as_slice() {
        [] => Some((mode, None)),
        [path] if !path.to_string_lossy().starts_with('-') => {
            Some((mode, Some(PathBuf::from(path))))
        }
        _ => None,
    }
}

/// Runs the flow on `path`, or on a file in a temporary directory, and prints the reports;
/// tells whether nothing was lost. With `--http`, serves the API instead until Ctrl-C.
async fn example(path: Option<PathBuf>, mode: Mode) -> Result<bool, Error> {
    // Kept until the end of the run, then removed with the database in it.
    let dir;
    let path = if let Some(path) = path {
        path
    } else {
        dir = tempfile::tempdir()?;
        dir.path().join("orders.db")
    };
    let admin = match mode {
        Mode::Script => None,
        Mode::Admin(addr) => Some(addr),
        Mode::Http(addr) => {
            app::http::serve(&path, addr, io::stdout()).await?;
            return Ok(true);
        }
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
