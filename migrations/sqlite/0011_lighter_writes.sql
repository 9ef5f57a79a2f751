-- "Crossings today" on the DPU pages counts crossings that happened today, by their own
-- time, which the primary key (dpu_id, ts, …) finds; an index by arrival time cost every
-- stored crossing one more index insertion.
DROP INDEX crossings_by_received;
