//! The ops CLI, as an application builds it: link the domain crates, then call
//! `event_admin::main()`.

use orders as _; // link the events (PII fields, aggregates)

fn main() -> std::process::ExitCode {
    event_admin::main()
}
