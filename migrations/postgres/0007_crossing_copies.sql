-- Rule 3: a crossing is its (DPU, timestamp, direction); an event id only tells apart the
-- crossings of one such key (people seen in the same instant). Each of them is a row of its
-- own, numbered by `copy` (0, 1, …), and so are its entries in the count series. What the
-- earlier rule refused or stopped counting is counted again by the upgrade that runs after
-- the migrations (`storage/src/upgrade.rs`), which reads event_ids one last time and then
-- drops it.
--
-- With TimescaleDB, primary keys change only on uncompressed chunks without compression
-- settings, and the rollups' series order gains the copy: compressed chunks are decompressed,
-- the rollups are dropped, and roomer_timescaledb_setup() below sets compression and the
-- rollups up again. Roomer re-applies the policies it read before migrating (see
-- `postgres::connect`); the compression policy compresses the chunks again.
DO $copies$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        IF EXISTS (SELECT 1 FROM timescaledb_information.hypertables
                   WHERE hypertable_name = 'space_counts') THEN
            DROP MATERIALIZED VIEW IF EXISTS space_counts_daily;
            DROP MATERIALIZED VIEW IF EXISTS space_counts_hourly;
            PERFORM remove_compression_policy('crossings', if_exists => true);
            PERFORM remove_compression_policy('space_counts', if_exists => true);
            PERFORM decompress_chunk(c, true) FROM show_chunks('crossings') c;
            PERFORM decompress_chunk(c, true) FROM show_chunks('space_counts') c;
            ALTER TABLE crossings SET (timescaledb.compress = false);
            ALTER TABLE space_counts SET (timescaledb.compress = false);
        END IF;
    END IF;
END
$copies$;

ALTER TABLE crossings ADD COLUMN copy INTEGER NOT NULL DEFAULT 0;
ALTER TABLE crossings DROP CONSTRAINT crossings_pkey;
ALTER TABLE crossings ADD PRIMARY KEY (dpu_id, ts, direction, copy);

ALTER TABLE space_counts ADD COLUMN copy INTEGER NOT NULL DEFAULT 0;
ALTER TABLE space_counts DROP CONSTRAINT space_counts_pkey;
ALTER TABLE space_counts ADD PRIMARY KEY (space_id, ts, rank, dpu_id, copy);

-- TimescaleDB 2.28 sorts a row whose `copy` is only the column's default (PostgreSQL keeps
-- it in the catalog, not in the row) after every other value of its group when it
-- compresses a chunk, which breaks the series order that count lookups read back. Writing
-- the value into the existing rows avoids that.
DO $physical$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        UPDATE crossings SET copy = 0;
        UPDATE space_counts SET copy = 0;
    END IF;
END
$physical$;

-- The series order (ts, rank, dpu_id, copy) as one sortable value, as roomer_series_key
-- of three arguments (0005) with the copy appended: DPU ids never contain a NUL byte and
-- copies stay below 2^24, so appending keeps the byte order. Self-contained, because
-- TimescaleDB refreshes rollups with an empty search path.
CREATE FUNCTION roomer_series_key(ts TIMESTAMPTZ, rank SMALLINT, dpu_id TEXT, copy INTEGER)
RETURNS BYTEA LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT int8send((extract(epoch FROM ts - TIMESTAMPTZ '1970-01-01 00:00:00+00') * 1000000)::bigint
                    # (-9223372036854775808)::bigint)
           || int2send(rank) || textsend(dpu_id) || int4send(copy)
$$;

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
                                  timescaledb.compress_orderby = 'ts, rank, dpu_id, copy');
    ALTER TABLE crossings SET (timescaledb.compress,
                               timescaledb.compress_segmentby = 'dpu_id',
                               timescaledb.compress_orderby = 'ts, direction, copy');

    -- One row per space and hour: crossings into and out of the space, the lowest and highest
    -- count after a crossing, and the count after the hour's last crossing in series order
    -- (ts, rank, dpu_id, copy). How these combine into the API's buckets (the count carried
    -- in, daily resets) is `occupancy::rollup`.
    EXECUTE $view$
        CREATE MATERIALIZED VIEW space_counts_hourly
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT space_id,
               time_bucket(INTERVAL '1 hour', ts) AS bucket,
               count(*) FILTER (WHERE rank = 0) AS entrances,
               count(*) FILTER (WHERE rank = 1) AS exits,
               min(count) AS min_count,
               max(count) AS max_count,
               last(count, roomer_series_key(ts, rank, dpu_id, copy)) AS last_count,
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
