-- Minutes whose summaries (`space_tiers`) are out of date: a batch stores its entries and
-- notes their minutes here; the summarizer recomputes the minutes noted and the buckets above
-- them, then deletes the notes it handled. Reads fold the entries of noted minutes instead of
-- their summaries, so counts are exact while a note waits. `minute` is in µs since the epoch.
CREATE TABLE tier_pending (
    id       INTEGER PRIMARY KEY,
    space_id INTEGER NOT NULL,
    minute   INTEGER NOT NULL
);
CREATE INDEX tier_pending_space_minute ON tier_pending (space_id, minute);
