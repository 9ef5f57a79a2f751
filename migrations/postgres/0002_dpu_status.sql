-- What each DPU last said about itself (dpus/{id}/status) and when it was last heard from
-- (a status or a crossings message). One row per DPU: not a time series.
CREATE TABLE dpu_status (
    dpu_id    TEXT PRIMARY KEY,
    online    BOOLEAN,
    status_at TIMESTAMPTZ,
    last_seen TIMESTAMPTZ NOT NULL
);

-- "Crossings received today" per DPU.
CREATE INDEX crossings_by_received ON crossings (dpu_id, received_at);
