-- Rule 3: a crossing is its (DPU, timestamp, direction); an event id only tells apart the
-- crossings of one such key (people seen in the same instant). Each of them is a row of its
-- own, numbered by `copy` (0, 1, …), and so are its entries in the count series. What the
-- earlier rule refused or stopped counting is counted again by the upgrade that runs after
-- the migrations (`storage/src/upgrade.rs`), which reads event_ids one last time and then
-- drops it.
CREATE TABLE crossings_by_copy (
    dpu_id      TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    direction   INTEGER NOT NULL CHECK (direction IN (1, -1)),
    copy        INTEGER NOT NULL DEFAULT 0,
    event_id    INTEGER,
    doorway_id  INTEGER,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (dpu_id, ts, direction, copy)
) WITHOUT ROWID;
INSERT INTO crossings_by_copy (dpu_id, ts, direction, copy, event_id, doorway_id, received_at)
SELECT dpu_id, ts, direction, 0, event_id, doorway_id, received_at FROM crossings;
DROP TABLE crossings;
ALTER TABLE crossings_by_copy RENAME TO crossings;
CREATE INDEX crossings_by_doorway ON crossings (doorway_id, ts);
CREATE INDEX crossings_by_received ON crossings (dpu_id, received_at);

CREATE TABLE space_counts_by_copy (
    space_id INTEGER NOT NULL,
    ts       INTEGER NOT NULL,
    rank     INTEGER NOT NULL CHECK (rank IN (0, 1)),
    dpu_id   TEXT NOT NULL,
    copy     INTEGER NOT NULL DEFAULT 0,
    count    INTEGER,
    PRIMARY KEY (space_id, ts, rank, dpu_id, copy)
) WITHOUT ROWID;
INSERT INTO space_counts_by_copy (space_id, ts, rank, dpu_id, copy, count)
SELECT space_id, ts, rank, dpu_id, 0, count FROM space_counts;
DROP TABLE space_counts;
ALTER TABLE space_counts_by_copy RENAME TO space_counts;
