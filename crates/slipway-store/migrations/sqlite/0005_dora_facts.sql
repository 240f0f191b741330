-- One narrow row per deployment with the times the DORA metrics need, kept by triggers
-- on the append-only history, so the metrics read one indexed table instead of joining
-- every deployment's history (a million deployments stay well under a second).
CREATE TABLE dora_facts (
    deployment_id  INTEGER PRIMARY KEY,
    app            TEXT    NOT NULL,
    environment    TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    committed_at   INTEGER,
    succeeded_at   INTEGER,
    failed_at      INTEGER,
    rolled_back_at INTEGER
);

CREATE INDEX dora_facts_created ON dora_facts (created_at);

INSERT INTO dora_facts (deployment_id, app, environment, kind, created_at, committed_at,
                        succeeded_at, failed_at, rolled_back_at)
SELECT d.id, d.app, d.environment, d.kind, d.created_at, d.committed_at,
       (SELECT MIN(at) FROM deployment_statuses s WHERE s.deployment_id = d.id AND s.status = 'success'),
       (SELECT MIN(at) FROM deployment_statuses s WHERE s.deployment_id = d.id AND s.status IN ('failure', 'error')),
       (SELECT MIN(at) FROM deployment_statuses s WHERE s.deployment_id = d.id AND s.status = 'rolled_back')
FROM deployments d;

CREATE TRIGGER dora_facts_new AFTER INSERT ON deployments
BEGIN
    INSERT INTO dora_facts (deployment_id, app, environment, kind, created_at, committed_at)
    VALUES (NEW.id, NEW.app, NEW.environment, NEW.kind, NEW.created_at, NEW.committed_at);
END;

CREATE TRIGGER dora_facts_success AFTER INSERT ON deployment_statuses
WHEN NEW.status = 'success'
BEGIN
    UPDATE dora_facts SET succeeded_at = COALESCE(succeeded_at, NEW.at)
    WHERE deployment_id = NEW.deployment_id;
END;

CREATE TRIGGER dora_facts_failed AFTER INSERT ON deployment_statuses
WHEN NEW.status IN ('failure', 'error')
BEGIN
    UPDATE dora_facts SET failed_at = COALESCE(failed_at, NEW.at)
    WHERE deployment_id = NEW.deployment_id;
END;

CREATE TRIGGER dora_facts_rolled_back AFTER INSERT ON deployment_statuses
WHEN NEW.status = 'rolled_back'
BEGIN
    UPDATE dora_facts SET rolled_back_at = COALESCE(rolled_back_at, NEW.at)
    WHERE deployment_id = NEW.deployment_id;
END;
