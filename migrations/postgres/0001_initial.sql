-- Roomer's schema for PostgreSQL. Every primary key of a time-series table (crossings,
-- space_counts, rejected) includes its time column, so that TimescaleDB can turn them into
-- hypertables.

CREATE TABLE spaces (
    id   BIGINT PRIMARY KEY,
    name TEXT NOT NULL
);
-- Outside always exists: every doorway has a space on both sides.
INSERT INTO spaces (id, name) VALUES (0, 'Outside');

CREATE TABLE doorways (
    id          BIGINT PRIMARY KEY,
    name        TEXT NOT NULL,
    exiting_to  BIGINT NOT NULL REFERENCES spaces (id),
    entering_to BIGINT NOT NULL REFERENCES spaces (id),
    CHECK (exiting_to <> entering_to)
);

-- DPUs declared in a layout. Crossings of undeclared DPUs are stored all the same (pending).
CREATE TABLE dpus (
    id TEXT PRIMARY KEY
);

-- Where a DPU hung when: [valid_from, valid_until), open-ended when valid_until is NULL.
CREATE TABLE installations (
    dpu_id      TEXT NOT NULL REFERENCES dpus (id),
    valid_from  TIMESTAMPTZ NOT NULL,
    valid_until TIMESTAMPTZ,
    doorway_id  BIGINT NOT NULL REFERENCES doorways (id),
    PRIMARY KEY (dpu_id, valid_from)
);

-- Every distinct crossing ever received. doorway_id is the doorway it is attributed to, NULL
-- while no installation covers it (pending).
CREATE TABLE crossings (
    dpu_id      TEXT NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,
    direction   SMALLINT NOT NULL CHECK (direction IN (1, -1)),
    event_id    BIGINT,
    doorway_id  BIGINT,
    received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (dpu_id, ts, direction)
);
CREATE INDEX crossings_by_event_id ON crossings (dpu_id, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX crossings_by_doorway ON crossings (doorway_id, ts);

-- Each space's count series: one entry per crossing that touched the space, holding the
-- count right after it. rank: 0 for an arrival, 1 for a departure (arrivals first at equal ts).
CREATE TABLE space_counts (
    space_id BIGINT NOT NULL,
    ts       TIMESTAMPTZ NOT NULL,
    rank     SMALLINT NOT NULL CHECK (rank IN (0, 1)),
    dpu_id   TEXT NOT NULL,
    count    BIGINT,
    PRIMARY KEY (space_id, ts, rank, dpu_id)
);

-- Messages that could not be applied, kept with their raw payload.
CREATE TABLE rejected (
    id          BIGINT GENERATED ALWAYS AS IDENTITY,
    received_at TIMESTAMPTZ NOT NULL,
    source      TEXT NOT NULL,
    dpu_id      TEXT,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    payload     BYTEA NOT NULL,
    PRIMARY KEY (received_at, id)
);
