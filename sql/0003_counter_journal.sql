-- 0003: counter state is journalled per tick and folded into counter_state every few minutes.
--
-- Upserting every changed counter's row each tick rewrote whole pages of counter_state: with
-- ~50 changed counters a tick that was ~15 of ~31 WAL pages written per tick (about 1.2 GB a
-- day at a 5 s interval). Now each tick appends one compact row holding its state changes
-- (src/store/state.rs gives the encoding), in the tick's own transaction, so a restart — even
-- after kill -9 — still resumes from exactly what was committed: counter_state plus the
-- journal replayed in order. The recorder folds the journal into counter_state every few
-- minutes and when it stops, in one transaction.
CREATE TABLE counter_journal (
    tick_id  INTEGER PRIMARY KEY,   -- the tick whose transaction wrote it: replay order
    saved_at INTEGER NOT NULL,      -- epoch ms, as counter_state.saved_at
    changes  BLOB NOT NULL
);
