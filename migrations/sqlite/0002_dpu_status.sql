-- What each DPU last said about itself (dpus/{id}/status) and when it was last heard from
-- (a status or a crossings message). Times are microseconds since the epoch.
CREATE TABLE dpu_status (
    dpu_id    TEXT PRIMARY KEY,
    online    INTEGER,
    status_at INTEGER,
    last_seen INTEGER NOT NULL
) WITHOUT ROWID;

-- "Crossings received today" per DPU.
CREATE INDEX crossings_by_received ON crossings (dpu_id, received_at);
