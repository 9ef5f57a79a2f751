-- Cheaper writes for every batch.
--
-- Notes for the summarizer are taken by their physical address in one DELETE … RETURNING
-- (`entries_sql::take_pending`), so they need no id: its sequence and primary key cost
-- every batch an index insertion per minute it touched.
ALTER TABLE tier_pending DROP COLUMN id;

-- "Crossings today" on the DPU pages counts crossings that happened today, by their own
-- time, which the primary key (dpu_id, ts, …) finds; an index by arrival time cost every
-- stored crossing one more index insertion.
DROP INDEX crossings_by_received;

-- The notes are a queue: every batch adds rows and the summarizer deletes them, so the
-- table is mostly dead rows until vacuumed, and reads that look for notes of a space walk
-- them. Vacuum it whenever a few thousand rows died, not when a fifth of it has.
ALTER TABLE tier_pending SET (autovacuum_vacuum_scale_factor = 0,
                              autovacuum_vacuum_threshold = 5000,
                              autovacuum_vacuum_insert_scale_factor = 0,
                              autovacuum_vacuum_insert_threshold = 5000);
