-- A post-deploy watch that fails enters the outbox (kind `watch`, `status` holds how the
-- watch ended, `reason` its figures and what followed), written in the same transaction
-- that ends the watch, so a webhook hears of a failed watch even when nothing could be
-- rolled back. SQLite cannot change a CHECK in place: the table is copied, every `seq`
-- kept (the notifiers' cursors point at them).
CREATE TABLE outbox_events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL CHECK (kind IN ('status', 'decision', 'run', 'watch')),
    deployment_id INTEGER REFERENCES deployments (id),
    run_id        INTEGER,
    pipeline      TEXT,
    git_commit    TEXT,
    status        TEXT    NOT NULL,
    at            INTEGER NOT NULL,
    actor         TEXT    NOT NULL,
    reason        TEXT,
    statuses      INTEGER,
    approvals     INTEGER,
    CHECK ((kind = 'run') = (deployment_id IS NULL)),
    CHECK ((kind = 'run') = (run_id IS NOT NULL AND pipeline IS NOT NULL)),
    CHECK ((kind = 'run') = (statuses IS NULL AND approvals IS NULL))
);

INSERT INTO outbox_events (seq, kind, deployment_id, run_id, pipeline, git_commit, status, at,
                           actor, reason, statuses, approvals)
SELECT seq, kind, deployment_id, run_id, pipeline, git_commit, status, at, actor, reason,
       statuses, approvals
FROM outbox;

UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT seq FROM sqlite_sequence WHERE name = 'outbox'))
WHERE name = 'outbox_events';

DROP TABLE outbox;
ALTER TABLE outbox_events RENAME TO outbox;
