-- Version 3 of the PostgreSQL event store: the data keys of field encryption (the store is
-- a `KeyStore` too).

-- One row per data key, wrapped (encrypted) by the master key: never in plain text. `id` is
-- the key's id, as each field it seals names it. A subject's newest key (by `created_at`,
-- then `id`) seals new fields; forgetting a subject deletes its rows, then vacuums the
-- table (see `PostgresStore`'s `KeyStore` implementation for what stays on disk).
CREATE TABLE event_store_keys (
    id         UUID PRIMARY KEY,
    subject    TEXT NOT NULL,
    wrapped    BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX event_store_keys_subject ON event_store_keys (subject, created_at);
