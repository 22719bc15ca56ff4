-- 0006: the recorder writes its ticks in batches (issue 16).
--
-- Why: one transaction per 5-second tick rewrote a dozen pages each time (12.4 KB written per
-- idle tick, about 214 MB a day for nothing). The recorder now keeps ticks in memory and writes
-- them every `--write-every` (default 10 minutes) in one transaction: each tick keeps its own
-- row and samples (nothing is merged), rollups and the counter state are written with them.
-- `top` and `status` read the newest, unwritten ticks from the recorder itself (<db>.sock).
--
-- write_every_ms: how often this run makes its ticks durable (0: every tick). Readers use it
-- to tell a recorder that is between two writes from one that has stalled: a running
-- recorder's last_tick_at may be up to this much (plus an interval) old.
ALTER TABLE runs ADD COLUMN write_every_ms INTEGER NOT NULL DEFAULT 0;

-- A tick's per-connection deltas, as one blob in its own row (encoding: src/store/flows.rs),
-- NULL when it has none. A row each in flow_samples cost ~21 bytes on disk for ~8 bytes of
-- facts, about half of all a busy recorder wrote. flow_samples keeps the rows written before
-- this version (retention deletes them as it deletes their ticks); nothing new goes there.
ALTER TABLE ticks ADD COLUMN flows BLOB;
