-- 0005: the names `/metrics` (netmon serve) exports as series of their own.
--
-- Why it is stored: a machine meets thousands of executables in a year, and Prometheus cannot
-- hold a series for each, so `/metrics` gives each of the first applications (and websites) to
-- pass a size threshold a series of its own, up to a cap, and counts everything else in one
-- "(other)" series. For every counter to stay monotonic, that set may only grow, and a name
-- that joins it late must start counting from where "(other)" stopped counting it: `base_in`
-- and `base_out` are the name's all-time bytes at the moment it joined, which stay in
-- "(other)" for good (its series counts what came after). Kept in the database so a restart of
-- `netmon serve`, or a second one, exports the same set.
--
-- family: 'app' (an application name as `netmon apps` shows it), 'website' (a registrable
-- domain as `netmon domains` shows it); later 'network'.
CREATE TABLE metrics_series (
    family    TEXT NOT NULL,
    name      TEXT NOT NULL,
    joined_at INTEGER NOT NULL,        -- epoch ms
    base_in   INTEGER NOT NULL,        -- bytes that stay in "(other)"
    base_out  INTEGER NOT NULL,
    PRIMARY KEY (family, name)
) WITHOUT ROWID;
