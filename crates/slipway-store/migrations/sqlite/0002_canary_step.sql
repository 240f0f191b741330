-- How far a canary got through its steps, so a restarted server resumes the walk.
ALTER TABLE deployments ADD COLUMN step INTEGER NOT NULL DEFAULT 0 CHECK (step >= 0);
