-- 0001: the initial schema.
--
-- Why it looks like this:
-- * One row per (tick, process) with a non-zero delta, and nothing else per tick, is what a
--   year of 5-second ticks can afford: samples and flow_samples are WITHOUT ROWID tables
--   clustered on (tick_id, …), so a time range is one contiguous range scan and a row is a
--   few varints.
-- * Every tick also adds its deltas to hourly and daily rollups in the same transaction
--   (vnstat's db_addtraffic_dated): long ranges never wait for a rollup job, and none can
--   miss data.
-- * Coverage is data: runs (start, last tick, stop) and gaps (sleep, failed ticks, crashes)
--   let a query say how much of its range was actually recorded.
-- * counter_state holds the last cumulative value of every counter, written in the tick's own
--   transaction, so a restart (even after kill -9) resumes without loss or double count.
--
-- Times: *_at columns are Unix epoch milliseconds (wall clock, UTC). hourly.hour is the
-- epoch second of a UTC hour; daily.day is the epoch second of a local midnight as the
-- recorder saw it.

-- Small settings and facts: boot id of the saved counter state, retention boundaries.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Applications as users name them. kind 0 = an application; kind 1 = bytes the source saw but
-- could not tie to a process (name says why).
CREATE TABLE apps (
    id        INTEGER PRIMARY KEY,
    name      TEXT NOT NULL,
    path      TEXT NOT NULL DEFAULT '',   -- bundle or executable path; '' when unknown
    bundle_id TEXT,
    kind      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (name, path)
);

-- One row per process instance seen with traffic (pid + source name + start stamp).
CREATE TABLE processes (
    id         INTEGER PRIMARY KEY,
    app_id     INTEGER NOT NULL REFERENCES apps(id),
    pid        INTEGER,                   -- NULL for unattributed bytes
    name       TEXT NOT NULL,             -- as the source gave it
    exe        TEXT,
    uid        INTEGER,
    start_time INTEGER,
    first_at   INTEGER NOT NULL,
    last_at    INTEGER NOT NULL           -- refreshed at most once a minute while active
);
CREATE INDEX processes_by_app ON processes(app_id);

-- One row per `netmon record` run.
CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    started_at    INTEGER NOT NULL,
    first_tick_at INTEGER,                -- coverage starts here (the first tick is a baseline)
    last_tick_at  INTEGER,                -- updated by every tick: where a crashed run ends
    stopped_at    INTEGER,                -- NULL while running, or after a crash
    stop_reason   TEXT,                   -- 'signal', 'error: …', 'crashed'
    source        TEXT NOT NULL,
    interval_ms   INTEGER NOT NULL,
    pid           INTEGER NOT NULL,
    hostname      TEXT,
    boot_id       TEXT,
    version       TEXT NOT NULL,
    notes         TEXT                    -- what the source cannot see, one line each
);

-- Stretches of time inside or between runs when counting was incomplete, with why.
CREATE TABLE gaps (
    id       INTEGER PRIMARY KEY,
    run_id   INTEGER REFERENCES runs(id),
    start_at INTEGER NOT NULL,
    end_at   INTEGER NOT NULL,
    reason   TEXT NOT NULL
);
CREATE INDEX gaps_by_time ON gaps(start_at);

-- One row per committed tick.
CREATE TABLE ticks (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER NOT NULL,
    at         INTEGER NOT NULL,          -- wall clock when the source was read
    elapsed_ms INTEGER NOT NULL           -- monotonic time the tick covers: rates divide by this
);
CREATE INDEX ticks_by_time ON ticks(at);

-- Non-zero per-process deltas of one tick.
CREATE TABLE samples (
    tick_id    INTEGER NOT NULL,
    process_id INTEGER NOT NULL,
    bytes_in   INTEGER NOT NULL,
    bytes_out  INTEGER NOT NULL,
    PRIMARY KEY (tick_id, process_id)
) WITHOUT ROWID;

-- Remote endpoints of per-connection counters.
CREATE TABLE remotes (
    id    INTEGER PRIMARY KEY,
    proto TEXT NOT NULL,
    host  TEXT NOT NULL,
    port  INTEGER NOT NULL DEFAULT 0,     -- 0 when the source gave none
    UNIQUE (host, port, proto)
);

-- Non-zero per-process, per-remote deltas of one tick (where the source gives connections).
CREATE TABLE flow_samples (
    tick_id    INTEGER NOT NULL,
    process_id INTEGER NOT NULL,
    remote_id  INTEGER NOT NULL,
    bytes_in   INTEGER NOT NULL,
    bytes_out  INTEGER NOT NULL,
    PRIMARY KEY (tick_id, process_id, remote_id)
) WITHOUT ROWID;

-- Per-application totals per UTC hour, maintained by every tick.
CREATE TABLE hourly (
    hour      INTEGER NOT NULL,
    app_id    INTEGER NOT NULL,
    bytes_in  INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    first_at  INTEGER NOT NULL,           -- first and last tick with traffic in the bucket
    last_at   INTEGER NOT NULL,
    PRIMARY KEY (hour, app_id)
) WITHOUT ROWID;

-- Per-application totals per local day, maintained by every tick; kept forever.
CREATE TABLE daily (
    day       INTEGER NOT NULL,
    app_id    INTEGER NOT NULL,
    bytes_in  INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    first_at  INTEGER NOT NULL,
    last_at   INTEGER NOT NULL,
    PRIMARY KEY (day, app_id)
) WITHOUT ROWID;

-- The last cumulative value of every counter the recorder tracks (see meta 'state_boot_id').
CREATE TABLE counter_state (
    key       TEXT PRIMARY KEY,
    bytes_in  INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    saved_at  INTEGER NOT NULL
) WITHOUT ROWID;
