-- "Crossings today" on the DPU pages counts crossings that happened today, by their own
-- time, which the primary key (dpu_id, ts, …) finds; an index by arrival time cost every
-- stored crossing one more index insertion.
DROP INDEX crossings_by_received;

-- One note per space and minute, keyed by both (no rowid, no second index): the SQLite
-- writer is alone, so a batch merges its changed seconds into the minute's note
-- (`ON CONFLICT … DO UPDATE`) instead of adding a row per batch, and a summarizer turn
-- deletes one row per minute however many batches noted it. Minutes noted more than once
-- so far are kept as whole minutes (seconds NULL), which is always correct.
CREATE TABLE tier_pending_by_minute (
    space_id INTEGER NOT NULL,
    minute   INTEGER NOT NULL,
    seconds  BIGINT,
    PRIMARY KEY (space_id, minute)
) WITHOUT ROWID;
INSERT INTO tier_pending_by_minute (space_id, minute, seconds)
    SELECT space_id, minute, CASE WHEN count(*) = 1 THEN max(seconds) END
    FROM tier_pending GROUP BY space_id, minute;
DROP TABLE tier_pending;
ALTER TABLE tier_pending_by_minute RENAME TO tier_pending;
