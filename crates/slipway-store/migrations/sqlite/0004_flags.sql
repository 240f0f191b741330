-- Feature flags, one row per (environment, key): the definition is the JSON of
-- slipway_core::flags::Flag, validated before it is written. `version` counts changes.
CREATE TABLE flags (
    environment TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    definition  TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    updated_by  TEXT    NOT NULL,
    PRIMARY KEY (environment, key)
) WITHOUT ROWID;

-- Every change with who made it and when: what the flag became, and what was done
-- (`set`, `rollout`, `kill`, `revive`).
CREATE TABLE flag_changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    environment TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    action      TEXT    NOT NULL,
    definition  TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    at          INTEGER NOT NULL
);

CREATE INDEX flag_changes_flag ON flag_changes (environment, key, id);

CREATE TRIGGER flag_changes_no_update BEFORE UPDATE ON flag_changes
BEGIN
    SELECT RAISE(ABORT, 'flag_changes is append-only');
END;

CREATE TRIGGER flag_changes_no_delete BEFORE DELETE ON flag_changes
BEGIN
    SELECT RAISE(ABORT, 'flag_changes is append-only');
END;
