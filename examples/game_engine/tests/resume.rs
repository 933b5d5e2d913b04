//! `cargo run -p game-engine` as a user runs it: a child process killed with SIGKILL halfway
//! through the session, a restart that resumes from the checkpoints, a verification that
//! passes.

use std::process::{Command, Output};

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_game-engine"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

#[test]
fn a_killed_session_resumes_and_every_event_is_handled_once() {
    let output = run(&[]);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        text(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let has = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));

    // Phase 1: ten steps reported by the child, then SIGKILL.
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("  child: published "))
            .count(),
        10,
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("phase 1: killed after 10 events (pid ")
                && l.ends_with(", SIGKILL)")),
        "{stdout}"
    );
    assert!(has("== at the kill: "), "{stdout}");
    // Phase 2 continues the session where the stored steps end.
    assert!(has("  the store holds steps 1-"), "{stdout}");
    assert!(has("  published steps "), "{stdout}");
    assert!(
        has(
            "  replayed generation-tracker from the start: 9 events delivered again, 9 skipped by claim_in"
        ),
        "{stdout}"
    );
    assert!(
        has("== result: 35 events stored (head 35): 24 steps, 11 published by handlers"),
        "{stdout}"
    );

    // The verification, line by line.
    for expected in [
        "  ok   session: 24 of 24 steps stored, once each, in order",
        "  ok   projection: 9 rows, 9 distinct event ids, 9 batch events stored, 0 missing, 0 applied twice",
        "  ok   batches: b-1 completed 100%, b-2 failed 60% (event counts match the store)",
        "  ok   narrative beats: 7 triggers, 0 without exactly one narrative.event_triggered, 0 follow-ups of nothing",
        "  ok   suggestion answers: 4 requests, 0 without exactly one answer",
        "  ok   dead letters: 0",
        "verification: passed: every stored event handled once by every subscriber that matches it",
    ] {
        assert!(
            lines.contains(&expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    for (subscriber, matching) in [
        ("narrator", 11),
        ("generation-tracker", 9),
        ("suggestion-worker", 4),
    ] {
        let prefix =
            format!("  ok   {subscriber}: {matching}/{matching} matching events handled (");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&prefix) && l.ends_with("checkpoint 35 of head 35")),
            "missing `{prefix}` in:\n{stdout}"
        );
    }
    assert!(has("  ok   redeliveries: "), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn the_database_can_be_given_and_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("game.db");

    let first = run(&[path.as_os_str()]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(path.exists(), "the database stays where it was asked for");
    assert!(text(&first.stdout).starts_with(&format!("database: {} (new)", path.display())));

    let second = run(&[path.as_os_str()]);
    assert_eq!(second.status.code(), Some(1));
    assert!(
        text(&second.stderr).contains("exists already"),
        "{}",
        text(&second.stderr)
    );
}
