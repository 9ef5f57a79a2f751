-- What a space says about itself: grouping (parent), local time (time_zone, an IANA name),
-- capacity, and the local time of day its count returns to 0 (daily_reset, 'HH:MM:SS').
-- Roomer validates parents (existence, no cycles) before writing them.
ALTER TABLE spaces ADD COLUMN parent_id INTEGER;
ALTER TABLE spaces ADD COLUMN time_zone TEXT;
ALTER TABLE spaces ADD COLUMN capacity INTEGER CHECK (capacity > 0);
ALTER TABLE spaces ADD COLUMN daily_reset TEXT;
