-- Bearer tokens for the HTTP API. Only a SHA-256 hash of each token is kept (tokens are 256
-- random bits, so a fast hash is enough); the token itself is shown once, when created.
CREATE TABLE api_tokens (
    hash       TEXT PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'read')),
    name       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
