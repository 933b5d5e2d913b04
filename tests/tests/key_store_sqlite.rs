//! Crypto-shredding on the SQLite store: once a subject is forgotten, the bytes of its keys
//! are in neither the database file nor its WAL, whatever moved them around before.

use chrono::{SubsecRound, Utc};
use event_core::privacy::{KeyId, KeyStore, StoredKey};
use event_core::store::{SqliteOptions, SqliteStore, Store, Synchronous};
use event_core::{Envelope, Meta, PARTITION_KEY, RawEnvelope};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use uuid::Uuid;

fn event(n: u32) -> RawEnvelope {
    let mut meta = Meta::new();
    meta.insert(PARTITION_KEY.to_owned(), format!("o-{n}").into());
    Envelope {
        id: Uuid::now_v7(),
        event_type: "order.created".into(),
        version: 1,
        occurred_at: Utc::now().trunc_subsecs(3),
        source: None,
        correlation_id: None,
        causation_id: None,
        trace_id: None,
        payload: RawValue::from_string(format!(r#"{{"n":{n},"padding":"{}"}}"#, "x".repeat(200)))
            .unwrap(),
        meta,
    }
}

/// A key of 72 random bytes, as a wrapped key is (a nonce, the key, its tag): bytes that
/// appear nowhere else in the files.
fn key(subject: &str) -> StoredKey {
    StoredKey::new(
        KeyId::random(),
        subject.to_owned(),
        std::iter::repeat_with(|| fastrand::u8(..))
            .take(72)
            .collect(),
        Utc::now().trunc_subsecs(3),
    )
}

/// The database file and its WAL, as they are on disk.
struct Files {
    db: PathBuf,
    wal: PathBuf,
}

impl Files {
    fn new(db: &Path) -> Self {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        Files {
            db: db.to_owned(),
            wal: wal.into(),
        }
    }

    /// Which of `keys`' wrapped bytes appear in the database file or the WAL (a missing
    /// WAL holds nothing).
    fn holding(&self, keys: &[StoredKey]) -> Vec<KeyId> {
        // By their first 8 bytes, then in full: one pass over each file.
        let prefixes: HashMap<[u8; 8], Vec<&StoredKey>> =
            keys.iter().fold(HashMap::new(), |mut map, key| {
                let prefix = key.wrapped[..8].try_into().unwrap();
                map.entry(prefix).or_insert_with(Vec::new).push(key);
                map
            });
        let mut found = Vec::new();
        for path in [&self.db, &self.wal] {
            let bytes = match std::fs::read(path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => panic!("{}: {e}", path.display()),
            };
            for (at, window) in bytes.windows(8).enumerate() {
                let Some(candidates) = prefixes.get(window) else {
                    continue;
                };
                for key in candidates {
                    if bytes[at..].starts_with(&key.wrapped) && !found.contains(&key.id) {
                        found.push(key.id);
                    }
                }
            }
        }
        found
    }
}

async fn forget_leaves_no_key_bytes(synchronous: Synchronous) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteOptions::new()
        .synchronous(synchronous)
        .open(&path)
        .unwrap();
    let files = Files::new(&path);

    store.append((0..20).map(event).collect()).await.unwrap();
    let (forgotten, kept) = (key("customer-1"), key("customer-2"));
    store.insert_key(forgotten.clone()).await.unwrap();
    store.insert_key(kept.clone()).await.unwrap();
    for n in 20..40 {
        store.append(vec![event(n)]).await.unwrap();
    }
    // The reader pool holds idle connections from now on.
    assert_eq!(
        store.current_key("customer-1").await.unwrap().as_ref(),
        Some(&forgotten)
    );
    assert_eq!(store.head().await.unwrap(), 40);
    assert_eq!(
        files.holding(std::slice::from_ref(&forgotten)),
        [forgotten.id],
        "before forget the key is on disk, in the database file or the WAL"
    );

    assert_eq!(store.forget("customer-1").await.unwrap(), 1);
    assert_eq!(
        files.holding(&[forgotten.clone(), kept.clone()]),
        [kept.id],
        "after forget, nothing of the forgotten key is in {} or its WAL",
        path.display()
    );
    assert_eq!(store.key(forgotten.id).await.unwrap(), None);
    assert_eq!(store.key(kept.id).await.unwrap(), Some(kept));
    // The store goes on as before.
    assert_eq!(store.append(vec![event(40)]).await.unwrap(), [41]);
    assert_eq!(store.read(0, 100).await.unwrap().len(), 41);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_leaves_no_key_bytes_in_the_files() {
    forget_leaves_no_key_bytes(Synchronous::Full).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_leaves_no_key_bytes_in_the_files_with_leading_appends() {
    forget_leaves_no_key_bytes(Synchronous::Normal).await;
}

/// Keys move between pages as the table grows and shrinks (b-tree splits and merges); no
/// copy left behind by a move may outlive `forget`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_leaves_no_key_bytes_after_the_table_was_rebalanced() {
    const SUBJECTS: usize = 600;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).unwrap();
    let files = Files::new(&path);

    // Subjects in random order, so inserts split pages in the middle of the table.
    let mut subjects: Vec<String> = (0..SUBJECTS).map(|n| format!("customer-{n:04}")).collect();
    fastrand::shuffle(&mut subjects);
    let mut keys = Vec::new();
    for (n, subject) in subjects.iter().enumerate() {
        keys.push(key(subject));
        store.insert_key(keys[n].clone()).await.unwrap();
        if n % 50 == 0 {
            store
                .append(vec![event(u32::try_from(n).unwrap())])
                .await
                .unwrap();
        }
    }
    assert_eq!(files.holding(&keys).len(), SUBJECTS, "every key is on disk");

    // Forget two subjects in three, in random order, with new keys in between (they fill
    // the holes, and move the survivors again).
    let mut order: Vec<usize> = (0..SUBJECTS).filter(|n| n % 3 != 0).collect();
    fastrand::shuffle(&mut order);
    let mut forgotten = Vec::new();
    for (round, &n) in order.iter().enumerate() {
        assert_eq!(store.forget(&keys[n].subject).await.unwrap(), 1);
        forgotten.push(keys[n].clone());
        if round % 4 == 0 {
            let newcomer = key(&format!("newcomer-{round}"));
            store.insert_key(newcomer.clone()).await.unwrap();
            keys.push(newcomer);
        }
    }
    let left = files.holding(&forgotten);
    assert!(
        left.is_empty(),
        "{} of {} forgotten keys are still on disk",
        left.len(),
        forgotten.len()
    );
    for key in &forgotten {
        assert_eq!(store.key(key.id).await.unwrap(), None);
    }
}
