-- TimescaleDB, where the server has it: hypertables, compression settings and the hourly and
-- daily rollups of each space's count series. On plain PostgreSQL this migration only creates
-- the function and the (then unused) stale-rollup table; the schema stays as it was.
--
-- The function is idempotent: roomer calls it again at every start, so a database that was
-- created on plain PostgreSQL turns into hypertables once TimescaleDB is installed and
-- preloaded. Chunk intervals, refresh windows, compression age and retention are settings
-- (see the README), applied by roomer after this migration, not fixed here.

-- Series order is (ts, rank, dpu_id) everywhere: in SQL, in Rust (byte order of the id) and
-- in the rollups' "last count". Byte order in SQL too, whatever the database's collation.
ALTER TABLE space_counts ALTER COLUMN dpu_id TYPE TEXT COLLATE "C";

-- The series order as one sortable value, for the rollups' last(count, ...): the instant in
-- microseconds (sign bit flipped so that bytes sort like numbers), the rank, the DPU's bytes.
-- Immutable: the server encoding (textsend) never changes for a database.
CREATE FUNCTION roomer_series_key(ts TIMESTAMPTZ, rank SMALLINT, dpu_id TEXT) RETURNS BYTEA
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT int8send((extract(epoch FROM ts - TIMESTAMPTZ '1970-01-01 00:00:00+00') * 1000000)::bigint
                    # (-9223372036854775808)::bigint)
           || int2send(rank) || textsend(dpu_id)
$$;

-- Per space, the earliest instant whose rollups may be out of date: written in the same
-- transaction as a change to the count series below the rollups' materialized edge (a late
-- crossing, a re-attribution, a new reset rule), removed once the rollups were refreshed. The
-- API serves a space's history from the rollups only before its earliest mark, so answers
-- never depend on whether a refresh has run yet.
CREATE TABLE rollup_stale (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    space_id BIGINT NOT NULL,
    since    TIMESTAMPTZ NOT NULL
);
CREATE INDEX rollup_stale_by_space ON rollup_stale (space_id, since);

CREATE FUNCTION roomer_timescaledb_setup() RETURNS boolean LANGUAGE plpgsql AS $setup$
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
    IF EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates
               WHERE view_name = 'space_counts_daily') THEN
        RETURN true;
    END IF;

    PERFORM create_hypertable('crossings', by_range('ts', INTERVAL '1 day'),
                              if_not_exists => true, migrate_data => true);
    PERFORM create_hypertable('space_counts', by_range('ts', INTERVAL '1 day'),
                              if_not_exists => true, migrate_data => true);
    -- Compressed chunks keep each space's series together (segments by space), ordered as
    -- the series is read, so count lookups and late corrections touch one segment.
    ALTER TABLE space_counts SET (timescaledb.compress,
                                  timescaledb.compress_segmentby = 'space_id',
                                  timescaledb.compress_orderby = 'ts, rank, dpu_id');
    ALTER TABLE crossings SET (timescaledb.compress,
                               timescaledb.compress_segmentby = 'dpu_id',
                               timescaledb.compress_orderby = 'ts, direction');

    -- One row per space and hour: crossings into and out of the space, the lowest and highest
    -- count after a crossing, and the count after the hour's last crossing in series order
    -- (ts, rank, dpu_id). How these combine into the API's buckets (the count carried in,
    -- daily resets) is `occupancy::rollup`.
    EXECUTE $view$
        CREATE MATERIALIZED VIEW space_counts_hourly
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT space_id,
               time_bucket(INTERVAL '1 hour', ts) AS bucket,
               count(*) FILTER (WHERE rank = 0) AS entrances,
               count(*) FILTER (WHERE rank = 1) AS exits,
               min(count) AS min_count,
               max(count) AS max_count,
               last(count, roomer_series_key(ts, rank, dpu_id)) AS last_count,
               max(ts) AS last_ts
        FROM space_counts
        GROUP BY space_id, bucket
        WITH NO DATA
    $view$;
    -- Days in UTC, rolled up from the hours.
    EXECUTE $view$
        CREATE MATERIALIZED VIEW space_counts_daily
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT space_id,
               time_bucket(INTERVAL '1 day', bucket) AS bucket,
               sum(entrances)::bigint AS entrances,
               sum(exits)::bigint AS exits,
               min(min_count) AS min_count,
               max(max_count) AS max_count,
               last(last_count, bucket) AS last_count,
               max(last_ts) AS last_ts
        FROM space_counts_hourly
        GROUP BY space_id, time_bucket(INTERVAL '1 day', bucket)
        WITH NO DATA
    $view$;
    RETURN true;
END
$setup$;

SELECT roomer_timescaledb_setup();
