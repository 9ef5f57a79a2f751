-- Minutes whose summaries (`space_tiers`) are out of date, noted by a batch that could not
-- summarize them itself. The SQLite writer is alone and always summarizes in the batch's own
-- transaction, so here the table stays empty; it exists so that both backends run the same
-- write engine. `minute` is in µs since the epoch.
CREATE TABLE tier_pending (
    id       INTEGER PRIMARY KEY,
    space_id INTEGER NOT NULL,
    minute   INTEGER NOT NULL
);
CREATE INDEX tier_pending_space_minute ON tier_pending (space_id, minute);
