//! Where the roles say what they do: one line on stdout each.
//!
//! A child process prints bare lines, and the orchestrator prefixes them with the child's
//! name as it relays them (`[w2] file-processor handled file.uploaded f-3`); in one process,
//! every role prints its own prefix.

use event_core::{DomainEvent, Envelope};
use std::sync::Arc;

/// Prints lines for one role, under its prefix.
#[derive(Debug, Clone)]
pub struct Log {
    prefix: Arc<str>,
}

impl Log {
    /// Lines as they are: the orchestrator prefixes what a child prints.
    pub fn bare() -> Log {
        Log { prefix: "".into() }
    }

    /// Lines prefixed with `[name] `.
    pub fn named(name: &str) -> Log {
        Log {
            prefix: format!("[{name}] ").into(),
        }
    }

    /// Prints a line.
    pub fn line(&self, line: impl std::fmt::Display) {
        println!("{}{line}", self.prefix);
    }

    /// `{group} handled {type} {key}`: who handled what.
    pub fn handled<E: DomainEvent>(&self, group: &str, envelope: &Envelope<E>) {
        self.line(format_args!(
            "{group} handled {} {}",
            envelope.event_type,
            envelope.partition_key().unwrap_or("-")
        ));
    }
}
