-- Version 1 of the PostgreSQL event store. Every table carries the `event_store_` prefix, so
-- the store can share a database with the application's own tables (transactional outbox).

-- Store-wide values: `schema_version`, and `head` (the last position given out). Appenders
-- lock the `head` row (SELECT ... FOR UPDATE) until they commit: that orders positions by
-- commit, without gaps.
CREATE TABLE IF NOT EXISTS event_store_meta (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO event_store_meta (key, value) VALUES ('schema_version', 0), ('head', 0)
    ON CONFLICT (key) DO NOTHING;

-- The log; `envelope` is the canonical JSON (type json keeps it byte for byte).
CREATE TABLE event_store_events (
    position      BIGINT PRIMARY KEY,
    id            UUID NOT NULL UNIQUE,
    event_type    TEXT NOT NULL,
    partition_key TEXT,
    appended_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    envelope      JSON NOT NULL
);
CREATE INDEX event_store_events_timeline
    ON event_store_events (partition_key, position) WHERE partition_key IS NOT NULL;

-- Per-subscription checkpoints: everything up to `position` is handled.
CREATE TABLE event_store_checkpoints (
    subscription TEXT PRIMARY KEY,
    position     BIGINT NOT NULL
);

-- The inbox: one row per event a subscription handled.
CREATE TABLE event_store_inbox (
    subscription TEXT NOT NULL,
    event_id     UUID NOT NULL,
    claimed_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription, event_id)
);
CREATE INDEX event_store_inbox_event ON event_store_inbox (event_id);

CREATE TABLE event_store_dead_letters (
    id           BIGSERIAL PRIMARY KEY,
    subscription TEXT NOT NULL,
    envelope     JSON NOT NULL,
    last_error   TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    failed_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX event_store_dead_letters_subscription
    ON event_store_dead_letters (subscription, id);
