-- The secrets DPUs log in to the embedded broker with. Only a hash is kept, in Mosquitto's
-- password-file form ($7$: PBKDF2-SHA512), so the registry can be written out for an external
-- Mosquitto. A withdrawn secret leaves its row with no hash: `changed_at` is what a running
-- broker polls to end the connections it had opened.
CREATE TABLE dpu_secrets (
    dpu_id     TEXT PRIMARY KEY,
    hash       TEXT,
    changed_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX dpu_secrets_changed ON dpu_secrets (changed_at);
