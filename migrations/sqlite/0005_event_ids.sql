-- Rule 3 with event ids: each (DPU, event id) names the earliest crossing sent under it, and a
-- crossing counts while it was sent without an id (crossings.event_id IS NULL) or an id names
-- it. Which crossing an id names moves to an earlier one when that one arrives later.
CREATE TABLE event_ids (
    dpu_id    TEXT NOT NULL,
    event_id  INTEGER NOT NULL,
    ts        INTEGER NOT NULL,
    direction INTEGER NOT NULL,
    PRIMARY KEY (dpu_id, event_id)
);
CREATE INDEX event_ids_by_crossing ON event_ids (dpu_id, ts, direction);

-- Until now a crossing's id was the only one naming it (a reuse was refused).
INSERT INTO event_ids (dpu_id, event_id, ts, direction)
SELECT dpu_id, event_id, ts, direction FROM crossings WHERE event_id IS NOT NULL;

DROP INDEX crossings_by_event_id;
