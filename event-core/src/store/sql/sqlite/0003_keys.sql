-- Version 3 of the SQLite event store: the data keys of field encryption (the store is a
-- `KeyStore` too).

-- One row per data key, wrapped (encrypted) by the master key: never in plain text. `id` is
-- the key's 16-byte id (a UUID), as each field it seals names it. A subject's newest key
-- (by `created_at`, then `id`) seals new fields; forgetting a subject deletes its rows with
-- `secure_delete` on, then checkpoints and truncates the WAL, so that nothing of them stays
-- in the files.
CREATE TABLE event_store_keys (
    id         BLOB PRIMARY KEY,
    subject    TEXT NOT NULL,
    wrapped    BLOB NOT NULL,
    created_at INTEGER NOT NULL -- Unix milliseconds
) WITHOUT ROWID;
CREATE INDEX event_store_keys_subject ON event_store_keys (subject, created_at);
