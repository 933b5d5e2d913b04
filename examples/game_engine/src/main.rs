//! `game-engine [NEW_DB_PATH]`: runs phase 1 of the session in a child process, kills it
//! with SIGKILL halfway, resumes in phase 2, and verifies that every event was handled once.
//! Without a path the database goes in a temporary directory, removed at the end. Exits
//! with 1 when the verification fails or the run cannot complete.

use game_engine::{CHILD_FLAG, Config, RunConfig};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let result = match args.as_slice() {
        [flag, path] if flag == CHILD_FLAG => child(Path::new(path)),
        [] => parent(None),
        [path] if !path.to_string_lossy().starts_with('-') => parent(Some(PathBuf::from(path))),
        _ => {
            eprintln!("usage: game-engine [NEW_DB_PATH]");
            return ExitCode::from(2);
        }
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
fn parent(path: Option<PathBuf>) -> Result<bool, game_engine::Error> {
    let exe = std::env::current_exe()?;
    // Kept until the end of the run, then removed with the database in it.
    let dir;
    let path = if let Some(path) = path {
        path
    } else {
        dir = tempfile::tempdir()?;
        dir.path().join("game.db")
    };
    let verification =
        game_engine::run(&exe, &path, &RunConfig::default(), &mut std::io::stdout())?;
    Ok(verification.passed())
}
