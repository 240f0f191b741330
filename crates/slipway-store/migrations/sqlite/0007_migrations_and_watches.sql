-- Schema migrations that ran with releases (`migrate.up`) and what became of their
-- `down`: one row per deployment whose rollout ran `up`. The commands are those
-- configured when `up` ran, so a rollback undoes what actually ran.
CREATE TABLE migration_runs (
    deployment_id INTEGER PRIMARY KEY NOT NULL REFERENCES deployments (id),
    app           TEXT    NOT NULL,
    environment   TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    up            TEXT    NOT NULL,
    ran_at        INTEGER NOT NULL,
    reversible    INTEGER NOT NULL CHECK (reversible IN (0, 1)),
    down          TEXT,
    -- Set by the rollback that ran (or skipped) `down`.
    undo_state    TEXT    CHECK (undo_state IN ('ran', 'failed', 'skipped')),
    undo_by       INTEGER REFERENCES deployments (id),
    undo_at       INTEGER,
    undo_note     TEXT,
    CHECK ((undo_state IS NULL) = (undo_by IS NULL))
);

CREATE INDEX migration_runs_app_env ON migration_runs (app, environment, deployment_id);

-- Post-deploy watches: one per successful deployment judged after its success, with its
-- start and end, so a restarted server resumes it with what is left.
CREATE TABLE watches (
    deployment_id INTEGER PRIMARY KEY NOT NULL REFERENCES deployments (id),
    app           TEXT    NOT NULL,
    environment   TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    ends_at       INTEGER NOT NULL CHECK (ends_at >= started_at),
    passed        INTEGER NOT NULL DEFAULT 0 CHECK (passed IN (0, 1)),
    ended_at      INTEGER,
    result        TEXT    CHECK (result IN ('passed', 'inconclusive', 'failed', 'ended')),
    reason        TEXT,
    CHECK ((ended_at IS NULL) = (result IS NULL))
);

CREATE INDEX watches_app_env ON watches (app, environment, deployment_id);
CREATE INDEX watches_open ON watches (deployment_id) WHERE ended_at IS NULL;
