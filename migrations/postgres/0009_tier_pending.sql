-- Minutes whose summaries (`space_tiers`) are out of date. A batch stores its entries and
-- notes their minutes here, so writers of one space never wait for each other; one writer at
-- a time (the one holding the summarizer's advisory lock, taken without waiting) recomputes
-- the minutes noted and the buckets above them, then deletes exactly the notes it read. Reads
-- fold the entries of noted minutes instead of their summaries, so counts are exact while a
-- note waits.
CREATE TABLE tier_pending (
    id       BIGSERIAL PRIMARY KEY,
    space_id BIGINT NOT NULL,
    minute   TIMESTAMPTZ NOT NULL
);
CREATE INDEX tier_pending_space_minute ON tier_pending (space_id, minute);
