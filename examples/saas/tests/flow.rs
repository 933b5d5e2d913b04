//! The demo's flows end as the scenario says: in memory (as a library call), and over Redis
//! in several processes (the binary, when `redis-server` is installed).

use saas::gateway::Outcome;
use saas::roles::file_processor;
use saas::scenario::{BAD_UPLOAD, SIGNUPS, UPLOADS, VICTIM};
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_every_saga_completes_and_the_bad_upload_is_the_one_dead_letter() {
    let summary = saas::in_memory::run().await.expect("the flow runs");

    let sagas = &summary.report.sagas;
    assert_eq!(sagas.len(), SIGNUPS.len() + UPLOADS.len());
    for saga in sagas {
        if saga.name == format!("upload {BAD_UPLOAD}") {
            assert!(
                matches!(&saga.outcome, Outcome::Rejected(why) if why.contains("empty")),
                "{saga:?}"
            );
        } else {
            assert_eq!(saga.outcome, Outcome::Completed, "{saga:?}");
        }
    }

    let [letter] = summary.dead_letters.as_slice() else {
        panic!("one dead letter expected: {:?}", summary.dead_letters);
    };
    assert_eq!(letter.subscription, file_processor::GROUP);
    assert_eq!(letter.envelope.event_type, "file.uploaded");
    assert_eq!(letter.envelope.partition_key(), Some(BAD_UPLOAD));
    assert_eq!(
        letter.envelope.correlation_id.as_deref(),
        Some(saas::scenario::upload_correlation_id(BAD_UPLOAD).as_str())
    );
    assert!(
        letter.last_error.contains("is empty"),
        "{}",
        letter.last_error
    );
    assert_eq!(letter.attempts, 1, "a permanent error is not retried");
    summary.check().expect("the summary's own check agrees");
}

#[test]
fn over_redis_the_sagas_survive_a_killed_worker() {
    if saas::redis_server::find().is_none() {
        eprintln!("skipped: no redis-server (apt-get install redis-server)");
        return;
    }
    let output = Command::new(env!("CARGO_BIN_EXE_saas"))
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    let has = |needle: &str| stdout.lines().any(|line| line.contains(needle));
    // Workers in other processes handled events, and said so through the relay.
    assert!(
        has("] file-processor handled file.uploaded f-1"),
        "{stdout}"
    );
    assert!(has(&format!("killed {VICTIM} (SIGKILL)")), "{stdout}");
    assert!(
        has(&format!("{VICTIM}'s shards passed to the others")),
        "{stdout}"
    );
    // After the kill, nothing names the victim as a shard owner.
    let after = stdout
        .split_once(&format!("{VICTIM}'s shards passed to the others"))
        .map(|(_, after)| after)
        .unwrap_or_default();
    // The orchestrator's lines that follow, skipping the children's relayed in between.
    let owners_after: Vec<&str> = after
        .lines()
        .skip(1)
        .filter(|line| line.starts_with("[main]"))
        .take_while(|line| line.starts_with("[main]   "))
        .collect();
    assert_eq!(owners_after.len(), 4, "{stdout}");
    assert!(
        owners_after
            .iter()
            .all(|line| !line.contains(&format!("{VICTIM} ["))),
        "{owners_after:?}"
    );
    for upload in UPLOADS.iter().filter(|u| u.file_id != BAD_UPLOAD) {
        assert!(
            has(&format!("[gateway] {}: step 3/3", upload.file_id)),
            "saga {} did not complete:\n{stdout}",
            upload.file_id
        );
    }
    assert!(
        has(&format!(
            "file-processor <- file.uploaded {BAD_UPLOAD} after 1 attempt(s)"
        )),
        "{stdout}"
    );
    assert!(has("dead letters: 1"), "{stdout}");
}
