-- 0003: counter state is journalled per tick and folded into counter_state every few minutes.
--
-- Upserting every changed counter's row each tick rewrote pages all over counter_state: with
-- ~50 of 600 counters changing per tick the recorder wrote 120.5 KiB per tick, now 63.6 KiB
-- (`cargo bench --bench record`). Now each tick appends one compact row holding its state changes
-- (src/store/state.rs gives the encoding), in the tick's own transaction, so a restart — even
-- after kill -9 — still resumes from exactly what was committed: counter_state plus the
-- journal replayed in order. The recorder folds the journal into counter_state every few
-- minutes and when it stops, in one transaction.
--
-- Rows are replayed in `seq` order, a key of the journal's own rather than the tick's id:
-- tick ids can start again at 1 when retention has deleted every tick, and the journal must
-- not depend on what retention keeps.
CREATE TABLE counter_journal (
    seq      INTEGER PRIMARY KEY,   -- write order (rowid): replay order
    saved_at INTEGER NOT NULL,      -- epoch ms, as counter_state.saved_at
    changes  BLOB NOT NULL
);
