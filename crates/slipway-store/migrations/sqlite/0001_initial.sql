-- slipway schema, version 1. Timestamps are i64 milliseconds since the Unix epoch (UTC).
-- Enumerations are stored as their stable lower-case names (Status::as_str and friends),
-- so the database stays readable and a new variant needs no migration.

-- AUTOINCREMENT: a deployment id is never reused, even after a row is removed by hand,
-- because ids appear in logs, events and users' scripts.
CREATE TABLE deployments (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    app              TEXT    NOT NULL,
    environment      TEXT    NOT NULL,
    version          TEXT    NOT NULL,
    git_commit       TEXT,
    git_ref          TEXT,
    committed_at     INTEGER,
    digest           TEXT,
    kind             TEXT    NOT NULL,
    -- Mirrors the last entry of deployment_statuses; written in the same transaction.
    status           TEXT    NOT NULL,
    phase            TEXT    NOT NULL,
    created_by       TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    rolled_back_from TEXT,
    force_by         TEXT,
    force_reason     TEXT
);

CREATE INDEX deployments_app_env ON deployments (app, environment, id);
CREATE INDEX deployments_status ON deployments (status, id);

-- The append-only status history: `seq` numbers a deployment's changes from 1.
CREATE TABLE deployment_statuses (
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    seq           INTEGER NOT NULL,
    status        TEXT    NOT NULL,
    at            INTEGER NOT NULL,
    actor         TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    PRIMARY KEY (deployment_id, seq)
) WITHOUT ROWID;

-- The history is evidence of what happened; the database itself refuses to rewrite it.
CREATE TRIGGER deployment_statuses_no_update BEFORE UPDATE ON deployment_statuses
BEGIN
    SELECT RAISE(ABORT, 'deployment_statuses is append-only');
END;

CREATE TRIGGER deployment_statuses_no_delete BEFORE DELETE ON deployment_statuses
BEGIN
    SELECT RAISE(ABORT, 'deployment_statuses is append-only');
END;

CREATE TABLE deployment_approvals (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    user_name     TEXT    NOT NULL,
    decision      TEXT    NOT NULL,
    comment       TEXT,
    at            INTEGER NOT NULL
);

CREATE INDEX deployment_approvals_deployment ON deployment_approvals (deployment_id, id);

-- `seq` numbers a deployment's log lines from 1, so a client pages with `after=SEQ`.
CREATE TABLE deployment_logs (
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    seq           INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    source        TEXT    NOT NULL,
    message       TEXT    NOT NULL,
    PRIMARY KEY (deployment_id, seq)
) WITHOUT ROWID;

-- What the drivers reported. No foreign key to deployments: an instance is an
-- observation of the outside world, and re-adoption must be able to record it as found.
CREATE TABLE instances (
    id            TEXT    PRIMARY KEY NOT NULL,
    app           TEXT    NOT NULL,
    environment   TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    deployment_id INTEGER NOT NULL,
    handle        TEXT    NOT NULL,
    addr          TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    started_at    INTEGER NOT NULL
);

CREATE INDEX instances_app_env ON instances (app, environment);

-- Only a hash of a token is stored; one token per user.
CREATE TABLE users (
    name         TEXT    PRIMARY KEY NOT NULL,
    role         TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    token_set_at INTEGER NOT NULL
);
