-- Version 1 of the SQLite event store. Every table carries the `event_store_` prefix, so the
-- store can share a database with the application's own tables (transactional outbox).

-- Store-wide values: `schema_version`, and `pruned_through` (the highest position ever
-- pruned, so that positions are never reused once the newest events are pruned).
CREATE TABLE event_store_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO event_store_meta (key, value) VALUES ('schema_version', 0), ('pruned_through', 0);

-- The log. `position` is the rowid: 1, 2, 3... in commit order; `envelope` is the canonical
-- JSON, byte for byte as appended.
CREATE TABLE event_store_events (
    position      INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    event_type    TEXT NOT NULL,
    partition_key TEXT,
    appended_at   INTEGER NOT NULL, -- Unix milliseconds
    envelope      TEXT NOT NULL
);
CREATE INDEX event_store_events_timeline
    ON event_store_events (partition_key, position) WHERE partition_key IS NOT NULL;

-- Per-subscription checkpoints: everything up to `position` is handled.
CREATE TABLE event_store_checkpoints (
    subscription TEXT PRIMARY KEY,
    position     INTEGER NOT NULL
) WITHOUT ROWID;

-- The inbox: one row per event a subscription handled.
CREATE TABLE event_store_inbox (
    subscription TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    claimed_at   INTEGER NOT NULL, -- Unix milliseconds
    PRIMARY KEY (subscription, event_id)
) WITHOUT ROWID;
CREATE INDEX event_store_inbox_event ON event_store_inbox (event_id);

CREATE TABLE event_store_dead_letters (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription TEXT NOT NULL,
    envelope     TEXT NOT NULL,
    last_error   TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    failed_at    INTEGER NOT NULL -- Unix milliseconds
);
CREATE INDEX event_store_dead_letters_subscription
    ON event_store_dead_letters (subscription, id);
