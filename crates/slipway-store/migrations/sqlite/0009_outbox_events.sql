-- The outbox carries more than deployment status changes (migration 0003): a reviewer's
-- decision, written in the same transaction as the decision, and a pipeline run's start
-- and end. `kind` says which: `status` (every row before this migration), `decision`
-- (`status` holds approve or reject, `reason` the comment) or `run` (`status` holds
-- started, succeeded or failed). A run's rows name the run and no deployment.
-- `statuses` and `approvals` count what the deployment had once the row was written, so
-- a notifier delivering late still shows the deployment as it was at the event.
CREATE TABLE outbox_events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL CHECK (kind IN ('status', 'decision', 'run')),
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

-- Existing rows keep their `seq` (the notifiers' cursors point at them). A row's count of
-- statuses is the deployment's whole history less the changes written after it.
INSERT INTO outbox_events (seq, kind, deployment_id, status, at, actor, reason, statuses,
                           approvals)
SELECT o.seq, 'status', o.deployment_id, o.status, o.at, o.actor, o.reason,
       (SELECT COUNT(*) FROM deployment_statuses s WHERE s.deployment_id = o.deployment_id)
         - (SELECT COUNT(*) FROM outbox l
            WHERE l.deployment_id = o.deployment_id AND l.seq > o.seq),
       (SELECT COUNT(*) FROM deployment_approvals a
        WHERE a.deployment_id = o.deployment_id AND a.at <= o.at)
FROM outbox o;

-- A `seq` is never handed out twice, also across this copy.
UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT seq FROM sqlite_sequence WHERE name = 'outbox'))
WHERE name = 'outbox_events';

DROP TABLE outbox;
ALTER TABLE outbox_events RENAME TO outbox;

-- Every attempt to deliver an outbox entry to a webhook target: when, how it ended, how
-- long it took. Never the signing secret, never the target's URL (a chat webhook's URL
-- is itself a secret): the target is named by its `name`.
CREATE TABLE notification_attempts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    target        TEXT    NOT NULL,
    outbox_seq    INTEGER NOT NULL,
    event         TEXT    NOT NULL,
    deployment_id INTEGER,
    run_id        INTEGER,
    attempt       INTEGER NOT NULL CHECK (attempt >= 1),
    at            INTEGER NOT NULL,
    http_status   INTEGER,
    error         TEXT,
    duration_ms   INTEGER NOT NULL CHECK (duration_ms >= 0),
    outcome       TEXT    NOT NULL CHECK (outcome IN ('delivered', 'retrying', 'failed'))
);
