-- Version 2 of the SQLite event store: leases (one outbox relay per store among the
-- processes sharing it, say).

-- One row per lease ever taken. `holder` holds it while `expires_at` (Unix milliseconds, on
-- the application's clock) is in the future. `token` is the fencing token: it stays while
-- the holder renews, and grows by one each time the lease is taken anew (by another holder,
-- or after it ran out or was released). A release keeps the row, with `expires_at` in the
-- past, so that the next holder still gets a larger token.
CREATE TABLE event_store_leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    token      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL -- Unix milliseconds
) WITHOUT ROWID;
