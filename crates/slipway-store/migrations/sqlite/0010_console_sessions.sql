-- Console sessions (docs/security.md): the browser's cookie holds a random id; only its
-- SHA-256 is stored, so a copy of the database signs no one in. A session belongs to the
-- API token it was made from: giving the user a new token ends the old token's sessions
-- (SessionStore::session joins on the user's current token hash). `csrf` is the token
-- every console form must carry.
CREATE TABLE console_sessions (
    id_hash    TEXT    PRIMARY KEY NOT NULL,
    token_hash TEXT    NOT NULL,
    csrf       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
