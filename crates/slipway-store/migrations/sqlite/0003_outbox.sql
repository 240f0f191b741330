-- The outbox: one row per status change, written in the same transaction as the change,
-- so a notifier reading it misses nothing (also across a crash) and sees each
-- deployment's changes in order. `seq` is the global delivery order.
CREATE TABLE outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    status        TEXT    NOT NULL,
    at            INTEGER NOT NULL,
    actor         TEXT    NOT NULL,
    reason        TEXT    NOT NULL
);

-- How far each notifier got: the last `seq` it took. Advanced only after a delivery
-- succeeded, so delivery is at least once.
CREATE TABLE outbox_cursors (
    name TEXT    PRIMARY KEY NOT NULL,
    seq  INTEGER NOT NULL
);
