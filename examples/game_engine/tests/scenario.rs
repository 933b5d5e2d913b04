//! The two phases as library calls: phase 1 stopped halfway by dropping its runtime (a crash
//! without a shutdown), phase 2 on the same file, and the verification, including that it
//! catches an effect applied twice.

use game_engine::scenario::{self, Config};
use game_engine::session;
use game_engine::subscribers::{GENERATION_TRACKER, NARRATOR, SUGGESTION_WORKER};
use std::time::Duration;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_crashed_phase_1_is_resumed_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("game.db");
    let config = Config {
        step_delay: Duration::from_millis(5),
        ..Config::default()
    };

    // Phase 1 publishes 8 steps; dropping the runtime then ends every task mid-flight.
    let phase_1 = runtime();
    let mut reported = Vec::new();
    let published = phase_1
        .block_on(scenario::phase_1(&path, &config, Some(8), &mut reported))
        .unwrap();
    assert_eq!(published, 8);
    phase_1.shutdown_timeout(Duration::from_secs(1));
    let reported = String::from_utf8(reported).unwrap();
    assert_eq!(reported.lines().count(), 8);
    assert!(reported.starts_with("published 1/24 story.event_created se-1 (scene_transition)\n"));

    let runtime = runtime();
    runtime.block_on(async {
        let store = scenario::create(&path).unwrap();
        let at_kill = scenario::snapshot(&store).await.unwrap();
        assert_eq!(at_kill.steps, session::script()[..8]);
        for progress in &at_kill.subscriptions {
            assert!(progress.claimed <= progress.matching, "{progress:?}");
            assert!(progress.checkpoint <= at_kill.head, "{progress:?}");
        }

        let mut narration = Vec::new();
        let resumed = scenario::phase_2(&path, &config, &mut narration)
            .await
            .unwrap();
        let narration = String::from_utf8(narration).unwrap();
        assert!(
            narration.starts_with("the store holds steps 1-8 of 24: continuing with step 9 "),
            "{narration}"
        );
        assert_eq!((resumed.steps_stored, resumed.published), (8, 16));
        assert_eq!(resumed.replayed, 9);

        let (after, verification) = scenario::verify(&store, &at_kill, &resumed).await.unwrap();
        assert!(verification.passed(), "{verification:#?}");
        assert_eq!((after.events.len(), after.steps.len()), (35, 24));
        let matching: Vec<(&str, usize)> = after
            .subscriptions
            .iter()
            .map(|p| (p.name, p.matching))
            .collect();
        assert_eq!(
            matching,
            [
                (NARRATOR, 11),
                (GENERATION_TRACKER, 9),
                (SUGGESTION_WORKER, 4)
            ]
        );

        // An effect applied twice is what the verification is there to catch.
        let conn = store.connection().unwrap();
        conn.execute(
            "INSERT INTO game_batch_events (event_id, batch_id, event_type, applied_at)
             SELECT event_id, batch_id, event_type, applied_at FROM game_batch_events LIMIT 1",
            [],
        )
        .unwrap();
        let (_, tampered) = scenario::verify(&store, &at_kill, &resumed).await.unwrap();
        assert!(!tampered.passed());
        let failed: Vec<&str> = tampered
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.subject.as_str())
            .collect();
        assert_eq!(failed, ["projection"], "{tampered:#?}");
        assert!(
            tampered
                .checks
                .iter()
                .any(|c| c.detail.ends_with("1 applied twice")),
            "{tampered:#?}"
        );
    });
}
