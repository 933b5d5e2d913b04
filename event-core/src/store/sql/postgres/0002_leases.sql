-- Version 2 of the PostgreSQL event store: leases (one outbox relay per store among the
-- processes sharing it, shards of consumer groups).

-- One row per lease ever taken. `holder` holds it while `expires_at` (on the database's
-- clock, so processes with skewed clocks agree) is in the future. `token` is the fencing
-- token: it stays while the holder renews, and grows by one each time the lease is taken
-- anew (by another holder, or after it ran out or was released). A release keeps the row,
-- with `expires_at` in the past, so that the next holder still gets a larger token.
CREATE TABLE event_store_leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    token      BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
