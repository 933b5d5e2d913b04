//! What `cargo run -p game-engine` does: phase 1 in a child process, killed with SIGKILL
//! halfway through the session; what the file holds at the kill; phase 2 in this process;
//! the verification.

use crate::scenario::{self, Config, Resumed, Snapshot, Verification};
use crate::session::Step;
use crate::{Error, session};
use event_core::store::StoredEvent;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

/// The hidden first argument that makes the binary run phase 1 on the file given next.
pub const CHILD_FLAG: &str = "--phase-1-child";

/// How the command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunConfig {
    /// Kill the child once it reported this many steps published.
    pub kill_after: usize,
    /// The pace of both phases.
    pub scenario: Config,
}

impl Default for RunConfig {
    /// Kill after 10 of the 24 steps, at the default pace.
    fn default() -> Self {
        RunConfig {
            kill_after: 10,
            scenario: Config::default(),
        }
    }
}

/// Runs the whole example on the new database file `path`: phase 1 by running `exe` (this
/// binary) with [`CHILD_FLAG`], killed after `kill_after` steps; then phase 2 and the
/// verification in this process, on a tokio runtime of its own. Narrates on `out`.
///
/// # Errors
///
/// When the file exists already, the child cannot be run or ends before it is killed, a
/// phase fails, or `out` fails. A verification that finds a problem is not an error: see
/// [`Verification::passed`].
pub fn run(
    exe: &Path,
    path: &Path,
    config: &RunConfig,
    out: &mut (dyn Write + Send),
) -> Result<Verification, Error> {
    if path.exists() {
        return Err(Error::Unexpected(format!(
            "{} exists already; give the path of a new file",
            path.display()
        )));
    }
    drop(scenario::create(path)?);
    let script = session::script();
    let count = |kind: fn(&Step) -> bool| script.iter().filter(|s| kind(s)).count();
    writeln!(out, "database: {} (new)", path.display())?;
    writeln!(
        out,
        "session: {} steps in world {}: {} story events, {} challenges, {} image batches, {} suggestion requests",
        script.len(),
        session::WORLD,
        count(|s| matches!(s, Step::Story(_))),
        count(|s| matches!(s, Step::Challenge(_))),
        count(|s| matches!(s, Step::BatchQueued(_))),
        count(|s| matches!(s, Step::SuggestionQueued(_))),
    )?;

    writeln!(out)?;
    let killed_after = phase_1_in_child(exe, path, config, out)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let at_kill = scenario::snapshot(&scenario::create(path)?).await?;
        writeln!(out)?;
        print_at_kill(&at_kill, killed_after, out)?;

        writeln!(out)?;
        writeln!(
            out,
            "== phase 2: this process (pid {}) reopens the file",
            std::process::id()
        )?;
        let resumed =
            scenario::phase_2(path, &config.scenario, &mut Indented::new(&mut *out)).await?;

        let store = scenario::create(path)?;
        let (after, verification) = scenario::verify(&store, &at_kill, &resumed).await?;
        writeln!(out)?;
        print_result(&at_kill, &after, &resumed, &verification, out)?;
        Ok(verification)
    })
}

/// Runs phase 1 in a child and kills it once it reported `kill_after` steps; returns how
/// many it reported.
fn phase_1_in_child(
    exe: &Path,
    path: &Path,
    config: &RunConfig,
    out: &mut (dyn Write + Send),
) -> Result<usize, Error> {
    let mut child = Command::new(exe)
        .arg(CHILD_FLAG)
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let pid = child.id();
    let result = writeln!(
        out,
        "== phase 1: child process {pid} publishes the session, one step every {:?}",
        config.scenario.step_delay
    )
    .map_err(Error::from)
    .and_then(|()| watch(&mut child, config, out));
    // Whatever happened, the child does not outlive this function.
    let _ = child.kill();
    let status = child.wait()?;
    let reported = result?;
    writeln!(
        out,
        "phase 1: killed after {reported} events (pid {pid}, {})",
        describe(status)
    )?;
    Ok(reported)
}

/// Echoes the child's lines until it reported `kill_after` steps, then kills it.
fn watch(
    child: &mut Child,
    config: &RunConfig,
    out: &mut (dyn Write + Send),
) -> Result<usize, Error> {
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::Child("no stdout".to_owned()))?;
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut reported = 0;
    loop {
        let line = match received.recv_timeout(config.scenario.patience) {
            Ok(line) => line?,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(Error::Child(format!(
                    "silent for {:?}",
                    config.scenario.patience
                )));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Error::Child(format!(
                    "ended after {reported} steps, before it was killed"
                )));
            }
        };
        writeln!(out, "  child: {line}")?;
        if line.starts_with("published ") {
            reported += 1;
        }
        if reported >= config.kill_after {
            // SIGKILL on Unix: no destructor, no shutdown, no last checkpoint.
            child.kill()?;
            return Ok(reported);
        }
    }
}

#[cfg(unix)]
fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(9) => "SIGKILL".to_owned(),
        Some(signal) => format!("signal {signal}"),
        None => status.to_string(),
    }
}

#[cfg(not(unix))]
fn describe(status: std::process::ExitStatus) -> String {
    status.to_string()
}

fn print_at_kill(
    at_kill: &Snapshot,
    reported: usize,
    out: &mut (dyn Write + Send),
) -> Result<(), Error> {
    writeln!(
        out,
        "== at the kill: {} events stored (head {})",
        at_kill.events.len(),
        at_kill.head
    )?;
    let late = at_kill.steps.len().saturating_sub(reported);
    let late = if late > 0 {
        format!(", {late} stored after the child's last report")
    } else {
        String::new()
    };
    let steps = at_kill.events.iter().filter(|e| Step::is_step(&e.envelope));
    writeln!(
        out,
        "  {} steps{late}: {}",
        at_kill.steps.len(),
        by_type(steps)
    )?;
    let follow_ups = at_kill
        .events
        .iter()
        .filter(|e| !Step::is_step(&e.envelope));
    writeln!(
        out,
        "  {} published by handlers: {}",
        at_kill.follow_ups(),
        by_type(follow_ups)
    )?;
    writeln!(
        out,
        "  {:<20} {:>10} {:>8} {:>9}",
        "subscriber", "checkpoint", "handled", "matching"
    )?;
    for p in &at_kill.subscriptions {
        writeln!(
            out,
            "  {:<20} {:>10} {:>8} {:>9}",
            p.name, p.checkpoint, p.claimed, p.matching
        )?;
    }
    Ok(())
}

fn print_result(
    at_kill: &Snapshot,
    after: &Snapshot,
    resumed: &Resumed,
    verification: &Verification,
    out: &mut (dyn Write + Send),
) -> Result<(), Error> {
    writeln!(
        out,
        "== result: {} events stored (head {}): {} steps, {} published by handlers",
        after.events.len(),
        after.head,
        after.steps.len(),
        after.follow_ups()
    )?;
    writeln!(
        out,
        "  {:<20} {:>14} {:>8} {:>8} {:>6} {:>8} {:>12}",
        "subscriber", "checkpoint", "phase 1", "phase 2", "total", "skipped", "deduplicated"
    )?;
    for p in &after.subscriptions {
        let Some(before) = at_kill.progress(p.name) else {
            continue;
        };
        let counters = resumed.subscribers.get(p.name);
        let handled = counters.map_or(0, crate::subscribers::Counters::handled);
        let skipped = counters.map_or(0, crate::subscribers::Counters::skipped);
        writeln!(
            out,
            "  {:<20} {:>14} {:>8} {:>8} {:>6} {:>8} {:>12}",
            p.name,
            format!("{} -> {}", before.checkpoint, p.checkpoint),
            before.claimed,
            handled,
            p.claimed,
            skipped,
            before.claimed_after_checkpoint
        )?;
    }
    for legend in [
        "  phase 1, phase 2: events handled in each life",
        "  skipped: deliveries whose effect had happened already (replay, or an answer found)",
        "  deduplicated: handled before the kill but after the checkpoint, turned away by the inbox",
    ] {
        writeln!(out, "{legend}")?;
    }
    let m = &resumed.metrics;
    writeln!(
        out,
        "  phase 2 bus: published {} delivered {} deduplicated {} retried {} dead-lettered {}",
        m.published, m.delivered, m.deduplicated, m.retried, m.dead_lettered
    )?;
    writeln!(out, "verification:")?;
    for check in &verification.checks {
        let mark = if check.ok { "ok  " } else { "FAIL" };
        writeln!(out, "  {mark} {}: {}", check.subject, check.detail)?;
    }
    if verification.passed() {
        writeln!(
            out,
            "verification: passed: every stored event handled once by every subscriber that matches it"
        )?;
    } else {
        writeln!(out, "verification: FAILED")?;
    }
    Ok(())
}

/// `type count` for each event type, in order of first appearance.
fn by_type<'a>(events: impl Iterator<Item = &'a StoredEvent>) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for event in events {
        let event_type = event.envelope.event_type.as_str();
        match counts.iter_mut().find(|(t, _)| *t == event_type) {
            Some((_, n)) => *n += 1,
            None => counts.push((event_type, 1)),
        }
    }
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Indents every line written through it by two spaces.
struct Indented<'a> {
    out: &'a mut (dyn Write + Send),
    at_line_start: bool,
}

impl<'a> Indented<'a> {
    fn new(out: &'a mut (dyn Write + Send)) -> Self {
        Indented {
            out,
            at_line_start: true,
        }
    }
}

impl Write for Indented<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for piece in buf.split_inclusive(|&b| b == b'\n') {
            if self.at_line_start {
                self.out.write_all(b"  ")?;
            }
            self.out.write_all(piece)?;
            self.at_line_start = piece.ends_with(b"\n");
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
