-- Pipeline runs and their jobs (docs/concepts.md#pipelines). Statuses are the stable
-- lower-case names of slipway_pipeline::Status; maps (inputs, outputs) and lists (needs)
-- are JSON text.

-- AUTOINCREMENT: a run id is never reused; ids appear in logs and users' scripts.
CREATE TABLE pipeline_runs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline          TEXT    NOT NULL,
    -- `push` or `dispatch`.
    trigger           TEXT    NOT NULL,
    -- Mirrors the last entry of pipeline_statuses for the run; written in the same
    -- transaction.
    status            TEXT    NOT NULL,
    git_commit        TEXT,
    git_ref           TEXT,
    committed_at      INTEGER,
    inputs            TEXT    NOT NULL,
    concurrency_group TEXT,
    created_by        TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER,
    reason            TEXT    NOT NULL
);

CREATE INDEX pipeline_runs_pipeline ON pipeline_runs (pipeline, id);
CREATE INDEX pipeline_runs_status ON pipeline_runs (status, id);

CREATE TABLE pipeline_jobs (
    run_id        INTEGER NOT NULL REFERENCES pipeline_runs (id),
    -- The job's place in the pipeline's order.
    position      INTEGER NOT NULL,
    name          TEXT    NOT NULL,
    needs         TEXT    NOT NULL,
    -- `steps` or `deploy`.
    kind          TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    -- How many times it was started (retries included).
    attempt       INTEGER NOT NULL DEFAULT 0,
    started_at    INTEGER,
    finished_at   INTEGER,
    outputs       TEXT    NOT NULL DEFAULT '{}',
    deployment_id INTEGER REFERENCES deployments (id),
    reason        TEXT    NOT NULL,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;

-- The append-only history of every status change of a run (job NULL) and its jobs.
CREATE TABLE pipeline_statuses (
    run_id INTEGER NOT NULL REFERENCES pipeline_runs (id),
    seq    INTEGER NOT NULL,
    job    TEXT,
    status TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    reason TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

CREATE TRIGGER pipeline_statuses_no_update BEFORE UPDATE ON pipeline_statuses
BEGIN
    SELECT RAISE(ABORT, 'pipeline_statuses is append-only');
END;

CREATE TRIGGER pipeline_statuses_no_delete BEFORE DELETE ON pipeline_statuses
BEGIN
    SELECT RAISE(ABORT, 'pipeline_statuses is append-only');
END;

-- A run's log: its own lines (job NULL) and its jobs' output, secrets already masked.
-- `stream` is `status`, `runner`, `stdout` or `stderr`.
CREATE TABLE pipeline_logs (
    run_id  INTEGER NOT NULL REFERENCES pipeline_runs (id),
    seq     INTEGER NOT NULL,
    job     TEXT,
    at      INTEGER NOT NULL,
    stream  TEXT    NOT NULL,
    message TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

-- The last commit of each watched branch a pipeline started a run for, so each new
-- commit starts exactly one run, also across restarts and when the poll and
-- `slipway trigger` both see it.
CREATE TABLE pipeline_heads (
    pipeline TEXT NOT NULL,
    branch   TEXT NOT NULL,
    sha      TEXT NOT NULL,
    PRIMARY KEY (pipeline, branch)
) WITHOUT ROWID;
