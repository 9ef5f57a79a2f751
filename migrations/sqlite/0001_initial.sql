-- Roomer's schema for SQLite. Timestamps are microseconds since the Unix epoch (UTC).

CREATE TABLE spaces (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL
);
-- Outside always exists: every doorway has a space on both sides.
INSERT INTO spaces (id, name) VALUES (0, 'Outside');

CREATE TABLE doorways (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    exiting_to  INTEGER NOT NULL REFERENCES spaces (id),
    entering_to INTEGER NOT NULL REFERENCES spaces (id),
    CHECK (exiting_to <> entering_to)
);

-- DPUs declared in a layout. Crossings of undeclared DPUs are stored all the same (pending).
CREATE TABLE dpus (
    id TEXT PRIMARY KEY
) WITHOUT ROWID;

-- Where a DPU hung when: [valid_from, valid_until), open-ended when valid_until is NULL.
CREATE TABLE installations (
    dpu_id      TEXT NOT NULL REFERENCES dpus (id),
    valid_from  INTEGER NOT NULL,
    valid_until INTEGER,
    doorway_id  INTEGER NOT NULL REFERENCES doorways (id),
    PRIMARY KEY (dpu_id, valid_from)
) WITHOUT ROWID;

-- Every distinct crossing ever received. doorway_id is the doorway it is attributed to, NULL
-- while no installation covers it (pending).
CREATE TABLE crossings (
    dpu_id      TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    direction   INTEGER NOT NULL CHECK (direction IN (1, -1)),
    event_id    INTEGER,
    doorway_id  INTEGER,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (dpu_id, ts, direction)
) WITHOUT ROWID;
CREATE INDEX crossings_by_event_id ON crossings (dpu_id, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX crossings_by_doorway ON crossings (doorway_id, ts);

-- Each space's count series: one entry per crossing that touched the space, holding the
-- count right after it. rank: 0 for an arrival, 1 for a departure (arrivals first at equal ts).
CREATE TABLE space_counts (
    space_id INTEGER NOT NULL,
    ts       INTEGER NOT NULL,
    rank     INTEGER NOT NULL CHECK (rank IN (0, 1)),
    dpu_id   TEXT NOT NULL,
    count    INTEGER,
    PRIMARY KEY (space_id, ts, rank, dpu_id)
) WITHOUT ROWID;

-- Messages that could not be applied, kept with their raw payload.
CREATE TABLE rejected (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at INTEGER NOT NULL,
    source      TEXT NOT NULL,
    dpu_id      TEXT,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    payload     BLOB NOT NULL
);
CREATE INDEX rejected_by_time ON rejected (received_at);
