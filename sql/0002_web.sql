-- 0002: websites. What the browser extension reports through `netmon serve`, and the
-- browser's bytes split across the hosts it talked to.
--
-- Why it looks like this:
-- * The extension reports heartbeats ("this browser's active tab shows host H since T, for D
--   seconds"); `serve` merges them into one interval per uninterrupted stay (web_activity),
--   so a day of browsing is a few hundred rows, not one per heartbeat.
-- * The extension also reports which server address each host was served from
--   (web_addresses). The recorder matches a browser connection's remote address against it.
-- * Every tick, the recorder splits each browser application's bytes across hosts, in the
--   tick's own transaction, with the method that attributed them (web_samples), and adds
--   them to hourly and daily rollups (web_hourly, web_daily) exactly as it does for
--   applications: the same retention applies, and `netmon domains` can say how much of
--   what it shows was matched by connection and how much was guessed from the active tab.
--
-- Times as in 0001: *_at are epoch ms (UTC); hour is the epoch second of a UTC hour; day is
-- the epoch second of a local midnight.
--
-- method: 1 = connection (the connection's remote address was observed serving the host),
--         2 = active_tab (split by the share of the tick the host was the active tab),
--         0 = none (no observation matched and no tab was active: host is '').

-- Browsers as the extension names them ("Firefox", "Google Chrome"); the recorder matches
-- these names to applications (src/web/names.rs).
CREATE TABLE web_browsers (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    first_at INTEGER NOT NULL,
    last_at  INTEGER NOT NULL
);

-- Merged heartbeats: while [start_at, end_at] this browser's active tab showed host
-- ('' = no tab active: no window focused, or a page that is not a web site). The intervals
-- of one browser never overlap.
CREATE TABLE web_activity (
    id         INTEGER PRIMARY KEY,
    browser_id INTEGER NOT NULL REFERENCES web_browsers(id),
    host       TEXT NOT NULL,
    start_at   INTEGER NOT NULL,
    end_at     INTEGER NOT NULL,
    private    INTEGER NOT NULL DEFAULT 0,   -- 1: from a private window (the user opted in)
    heartbeats INTEGER NOT NULL DEFAULT 1    -- how many heartbeats were merged into it
);
CREATE INDEX web_activity_by_browser ON web_activity(browser_id, start_at);
CREATE INDEX web_activity_by_end ON web_activity(end_at);

-- Which server address a host was served from, as the browser reported it.
CREATE TABLE web_addresses (
    ip       TEXT NOT NULL,                  -- canonical text (IPv4-mapped IPv6 as IPv4)
    host     TEXT NOT NULL,
    first_at INTEGER NOT NULL,
    last_at  INTEGER NOT NULL,
    seen     INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (ip, host)
) WITHOUT ROWID;
CREATE INDEX web_addresses_by_last ON web_addresses(last_at);

-- Host names bytes were attributed to ('' = none).
CREATE TABLE web_hosts (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

-- A browser application's bytes in one tick, per host and method.
CREATE TABLE web_samples (
    tick_id   INTEGER NOT NULL,
    app_id    INTEGER NOT NULL,
    host_id   INTEGER NOT NULL,
    method    INTEGER NOT NULL,
    bytes_in  INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    PRIMARY KEY (tick_id, app_id, host_id, method)
) WITHOUT ROWID;

-- Per-host totals per UTC hour, maintained by every tick (like hourly).
CREATE TABLE web_hourly (
    hour      INTEGER NOT NULL,
    app_id    INTEGER NOT NULL,
    host_id   INTEGER NOT NULL,
    method    INTEGER NOT NULL,
    bytes_in  INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    first_at  INTEGER NOT NULL,
    last_at   INTEGER NOT NULL,
    PRIMARY KEY (hour, app_id, host_id, method)
) WITHOUT ROWID;

-- Per-host totals per local day, maintained by every tick; kept forever (like daily).
CREATE TABLE web_daily (
    day       INTEGER NOT NULL,
    app_id    INTEGER NOT NULL,
    host_id   INTEGER NOT NULL,
    method    INTEGER NOT NULL,
    bytes_in  INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    first_at  INTEGER NOT NULL,
    last_at   INTEGER NOT NULL,
    PRIMARY KEY (day, app_id, host_id, method)
) WITHOUT ROWID;
