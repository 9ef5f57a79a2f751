-- Each space's count series summarized per minute, hour, day, 30 and 360 days
-- (`occupancy::tiers`): a late crossing updates one summary per tier instead of every later
-- count. A summary is three maps c ↦ max(floor, c + shift) (the count at the end of the
-- bucket, the lowest and the highest count in it; −∞ is stored as −2^61) and the crossings in
-- and out. Tier 0 is minutes. The counts per entry (`space_counts.count`) are no longer
-- kept. The summaries of existing data are made by the upgrade that runs after the
-- migrations (`storage/src/upgrade.rs`).
CREATE TABLE space_tiers (
    space_id    BIGINT NOT NULL,
    tier        SMALLINT NOT NULL CHECK (tier BETWEEN 0 AND 4),
    start       TIMESTAMPTZ NOT NULL,
    count_floor BIGINT NOT NULL,
    count_shift BIGINT NOT NULL,
    low_floor   BIGINT NOT NULL,
    low_shift   BIGINT NOT NULL,
    high_floor  BIGINT NOT NULL,
    high_shift  BIGINT NOT NULL,
    entrances   BIGINT NOT NULL,
    exits       BIGINT NOT NULL,
    PRIMARY KEY (space_id, tier, start)
);
