-- 0007: what each interface carried, on which network, and the data caps set on networks
-- (issue 15). The interfaces' own byte counters are netmon's second opinion on its per-app
-- numbers, and the network answers "how much of my cap is left, and what ate it?".
--
-- Written by the recorder in the same transaction as the tick, kept compact (issue 16 bounds
-- what a day of recording may write):
-- - `ticks.net`: the tick's interface deltas as one BLOB of unsigned LEB128 varints: first the
--   id of the network the tick's application bytes are counted on (0: none), then
--   (network id, interface id, bytes in, bytes out) per interface that moved, network id 0
--   for loopback. NULL when nothing moved and no network is known.
-- - `net_hourly` / `net_daily`: the same per network and interface, upserted like `hourly`
--   and `daily` and kept as long (retention deletes `net_hourly` with `hourly`).
-- - Applications per network: a tick's application bytes are counted on one network, named
--   at the head of `ticks.net` (the sources do not yet say which interface each connection
--   used). The first network application bytes are counted on in an hour (day) is that
--   bucket's primary (`net_primary`); application bytes on any other network go to
--   `app_net_hourly` (`app_net_daily`), so a machine that stays on one network writes no
--   extra row per application.
CREATE TABLE networks (
    id       INTEGER PRIMARY KEY,
    key      TEXT NOT NULL UNIQUE,      -- wifi:SSID, gw:gateway MAC, vpn:IF, if:IF
    label    TEXT NOT NULL,             -- shown until the user names it
    name     TEXT UNIQUE,               -- `netmon networks name ID NAME`
    first_at INTEGER NOT NULL           -- epoch ms
);

CREATE TABLE interfaces (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,                 -- wifi, ethernet, cellular, vpn, bridge, virtual, loopback, other
    UNIQUE (name, kind)
);

ALTER TABLE ticks ADD COLUMN net BLOB;

CREATE TABLE net_hourly (
    hour         INTEGER NOT NULL,      -- epoch s, UTC hour start
    network_id   INTEGER NOT NULL,      -- 0: loopback
    interface_id INTEGER NOT NULL,
    bytes_in     INTEGER NOT NULL,
    bytes_out    INTEGER NOT NULL,
    first_at     INTEGER NOT NULL,
    last_at      INTEGER NOT NULL,
    PRIMARY KEY (hour, network_id, interface_id)
) WITHOUT ROWID;

CREATE TABLE net_daily (
    day          INTEGER NOT NULL,      -- epoch s of the recorder's local midnight
    network_id   INTEGER NOT NULL,
    interface_id INTEGER NOT NULL,
    bytes_in     INTEGER NOT NULL,
    bytes_out    INTEGER NOT NULL,
    first_at     INTEGER NOT NULL,
    last_at      INTEGER NOT NULL,
    PRIMARY KEY (day, network_id, interface_id)
) WITHOUT ROWID;

-- span 0: an hour (`hour`, epoch s); 1: a day (`day`, epoch s).
CREATE TABLE net_primary (
    span       INTEGER NOT NULL,
    start      INTEGER NOT NULL,
    network_id INTEGER NOT NULL,        -- 0: application bytes with no known network
    PRIMARY KEY (span, start)
) WITHOUT ROWID;

CREATE TABLE app_net_hourly (
    hour       INTEGER NOT NULL,
    app_id     INTEGER NOT NULL,
    network_id INTEGER NOT NULL,
    bytes_in   INTEGER NOT NULL,
    bytes_out  INTEGER NOT NULL,
    PRIMARY KEY (hour, app_id, network_id)
) WITHOUT ROWID;

CREATE TABLE app_net_daily (
    day        INTEGER NOT NULL,
    app_id     INTEGER NOT NULL,
    network_id INTEGER NOT NULL,
    bytes_in   INTEGER NOT NULL,
    bytes_out  INTEGER NOT NULL,
    PRIMARY KEY (day, app_id, network_id)
) WITHOUT ROWID;

-- Data caps: `scope` is a network's id as text, or '*' for all networks together. A period
-- is a day, a week (starting on `resets_on`, 1 = Monday) or a month (starting on day
-- `resets_on`, clamped to the month's last day), in the recorder's local time.
CREATE TABLE caps (
    scope     TEXT PRIMARY KEY,
    bytes     INTEGER NOT NULL,
    period    TEXT NOT NULL CHECK (period IN ('day', 'week', 'month')),
    resets_on INTEGER NOT NULL DEFAULT 1
);

-- Thresholds already announced, so a warning is given once per threshold and period, across
-- restarts.
CREATE TABLE cap_alerts (
    scope        TEXT NOT NULL,
    period_start INTEGER NOT NULL,      -- epoch s
    percent      INTEGER NOT NULL,      -- 80 or 100
    at           INTEGER NOT NULL,      -- epoch ms
    PRIMARY KEY (scope, period_start, percent)
) WITHOUT ROWID;
