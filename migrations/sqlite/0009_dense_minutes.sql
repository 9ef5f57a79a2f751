-- A minute that holds many crossings (Outside, a lobby) also keeps a summary per second
-- (tier 5), so that a late crossing rereads its second rather than the whole minute, and a
-- count inside the minute folds its seconds. SQLite cannot change a CHECK constraint in
-- place, so the table is copied once.
CREATE TABLE space_tiers_new (
    space_id    INTEGER NOT NULL,
    tier        INTEGER NOT NULL CHECK (tier BETWEEN 0 AND 5),
    start       INTEGER NOT NULL,
    count_floor INTEGER NOT NULL,
    count_shift INTEGER NOT NULL,
    low_floor   INTEGER NOT NULL,
    low_shift   INTEGER NOT NULL,
    high_floor  INTEGER NOT NULL,
    high_shift  INTEGER NOT NULL,
    entrances   INTEGER NOT NULL,
    exits       INTEGER NOT NULL,
    PRIMARY KEY (space_id, tier, start)
) WITHOUT ROWID;
INSERT INTO space_tiers_new SELECT * FROM space_tiers;
DROP TABLE space_tiers;
ALTER TABLE space_tiers_new RENAME TO space_tiers;

-- A note names its minute and, as bits 0 to 59, the seconds a batch changed in it (the
-- summarizer rereads only those of a dense minute); notes made before name none (NULL),
-- which stands for every second of the minute.
ALTER TABLE tier_pending ADD COLUMN seconds BIGINT;
