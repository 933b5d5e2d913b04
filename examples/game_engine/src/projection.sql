-- The generation-tracker's projection: the image batches as the creator's queue shows them.
-- Written by its handler in the same transaction as its inbox claim (event_store_inbox).

-- One row per batch: its latest state.
CREATE TABLE IF NOT EXISTS game_batches (
    batch_id    TEXT PRIMARY KEY,
    entity_type TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    asset_type  TEXT NOT NULL,
    status      TEXT NOT NULL,    -- queued, generating, completed, failed
    progress    INTEGER NOT NULL, -- percent
    asset_count INTEGER,          -- once completed
    error       TEXT,             -- once failed
    events      INTEGER NOT NULL  -- how many events were applied to the row
) WITHOUT ROWID;

-- One row per event applied. `event_id` is deliberately not unique: an event applied twice
-- would show as two rows, which is what the verification counts.
CREATE TABLE IF NOT EXISTS game_batch_events (
    event_id   TEXT NOT NULL,
    batch_id   TEXT NOT NULL,
    event_type TEXT NOT NULL,
    applied_at INTEGER NOT NULL   -- Unix milliseconds
);
