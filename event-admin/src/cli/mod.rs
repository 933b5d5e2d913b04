//! The ops CLI (`event_admin::main()`).

use std::process::ExitCode;

/// The whole `main.rs` of an ops binary (link the domain crates, then call this).
pub fn main() -> ExitCode {
    eprintln!("error: the ops CLI is not built yet");
    ExitCode::from(2)
}
