//! `game-engine [--admin ADDR] [NEW_DB_PATH]`: runs phase 1 of the session in a child
//! process, kills it with SIGKILL halfway, resumes in phase 2, and verifies that every event
//! was handled once. Without a path the database goes in a temporary directory, removed at
//! the end. With `--admin 127.0.0.1:8080`, phase 2 serves the admin API and dashboard there
//! and waits for Ctrl-C before it shuts its bus down; the address and token are printed.
//! Exits with 1 when the verification fails or the run cannot complete.

use game_engine::{CHILD_FLAG, Config, RunConfig};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let mut admin = None;
    if args.first().is_some_and(|arg| arg == "--admin") {
        match args.get(1).and_then(|addr| addr.to_str()?.parse().ok()) {
            Some(addr) => admin = Some(addr),
            None => return usage(),
        }
        args.drain(..2);
    }
    let result = match args.as_slice() {
        [flag, path] if flag == CHILD_FLAG && admin.is_none() => child(Path::new(path)),
        [] => parent(None, admin),
        [path] if !path.to_string_lossy().starts_with('-') => {
            parent(Some(PathBuf::from(path)), admin)
        }
        _ => return usage(),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
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

fn usage() -> ExitCode {
    eprintln!("usage: game-engine [--admin ADDR] [NEW_DB_PATH]");
    ExitCode::from(2)
}

/// Phase 1, in the child: publishes until killed.
fn child(path: &Path) -> Result<bool, game_engine::Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut stdout = std::io::stdout();
    runtime.block_on(game_engine::phase_1(
        path,
        &Config::default(),
        None,
        &mut stdout,
    ))?;
    Ok(true)
}

/// The whole run, in the parent.
fn parent(path: Option<PathBuf>, admin: Option<SocketAddr>) -> Result<bool, game_engine::Error> {
    let exe = std::env::current_exe()?;
    // Kept until the end of the run, then removed with the database in it.
    let dir;
    let path = if let Some(path) = path {
        path
    } else {
        dir = tempfile::tempdir()?;
        dir.path().join("game.db")
    };
    let mut config = RunConfig::default();
    config.scenario.admin = admin;
    let verification = game_engine::run(&exe, &path, &config, &mut std::io::stdout())?;
    Ok(verification.passed())
}
