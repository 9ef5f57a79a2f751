-- Minutes whose summaries (`space_tiers`) are out of date. Writers of one space never wait
-- for each other: the writer holding the summarizer's advisory lock (taken without waiting)
-- recomputes its own minutes and those noted here, with the buckets above them, then deletes
-- exactly the notes it read; a batch that finds the lock taken notes its minutes here
-- instead. Reads fold the entries of noted minutes instead of their summaries, so counts are
-- exact while a note waits.
CREATE TABLE tier_pending (
    id       BIGSERIAL PRIMARY KEY,
    space_id BIGINT NOT NULL,
    minute   TIMESTAMPTZ NOT NULL
);
CREATE INDEX tier_pending_space_minute ON tier_pending (space_id, minute);
