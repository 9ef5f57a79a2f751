-- A minute that holds many crossings (Outside, a lobby) also keeps a summary per second
-- (tier 5), so that a late crossing rereads its second rather than the whole minute, and a
-- count inside the minute folds its seconds. Existing rows are tiers 0 to 4, so the wider
-- check need not scan them.
ALTER TABLE space_tiers DROP CONSTRAINT space_tiers_tier_check;
ALTER TABLE space_tiers ADD CONSTRAINT space_tiers_tier_check CHECK (tier BETWEEN 0 AND 5) NOT VALID;

-- A note names its minute and, as bits 0 to 59, the seconds a batch changed in it (the
-- summarizer rereads only those of a dense minute); notes made before name none (NULL),
-- which stands for every second of the minute.
ALTER TABLE tier_pending ADD COLUMN seconds BIGINT;
