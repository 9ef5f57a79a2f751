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

-- History is folded from these summaries on every backend, so TimescaleDB's continuous
-- aggregates over the per-entry counts go, with the stale marks that kept them exact.
-- Dropping a continuous aggregate also removes its refresh and retention policies.
DROP TABLE rollup_stale;
DO $drop$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        DROP MATERIALIZED VIEW IF EXISTS space_counts_daily;
        DROP MATERIALIZED VIEW IF EXISTS space_counts_hourly;
    END IF;
END
$drop$;

CREATE OR REPLACE FUNCTION roomer_timescaledb_setup() RETURNS boolean LANGUAGE plpgsql AS $setup$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        -- Creating the extension without it preloaded ends the connection (FATAL), so look
        -- first.
        IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
           OR position('timescaledb' IN current_setting('shared_preload_libraries')) = 0 THEN
            RETURN false;
        END IF;
        BEGIN
            CREATE EXTENSION timescaledb;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'TimescaleDB is available but roomer may not create the extension '
                          '(ask an administrator to run CREATE EXTENSION timescaledb): %', SQLERRM;
            RETURN false;
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM timescaledb_information.hypertables
               WHERE hypertable_name = 'space_counts' AND compression_enabled) THEN
        RETURN true;
    END IF;

    PERFORM create_hypertable('crossings', by_range('ts', INTERVAL '1 day'),
                              if_not_exists => true, migrate_data => true);
    PERFORM create_hypertable('space_counts', by_range('ts', INTERVAL '1 day'),
                              if_not_exists => true, migrate_data => true);
    -- Compressed chunks keep each space's series together (segments by space), ordered as
    -- the series is read, so the entries of a minute (a late crossing's summary) are one
    -- segment's range.
    ALTER TABLE space_counts SET (timescaledb.compress,
                                  timescaledb.compress_segmentby = 'space_id',
                                  timescaledb.compress_orderby = 'ts, rank, dpu_id, copy');
    ALTER TABLE crossings SET (timescaledb.compress,
                               timescaledb.compress_segmentby = 'dpu_id',
                               timescaledb.compress_orderby = 'ts, direction, copy');
    RETURN true;
END
$setup$;
