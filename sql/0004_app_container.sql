-- 0004: an application inside a container is an application of its own.
--
-- The Linux ebpf source counts every network namespace and names the container a process
-- runs in (from its cgroup, and the engine's own files): `nginx` in container `web-1` is not
-- the host's `nginx`. The container becomes part of an application's identity, so the
-- hourly and daily rollups, which are per application, keep them apart, and `netmon apps`
-- shows which container each row ran in.
--
-- SQLite cannot change a UNIQUE constraint in place: the table is rebuilt with the same ids
-- (every other table refers to apps by id), and every existing application is a host one.
CREATE TABLE apps_new (
    id        INTEGER PRIMARY KEY,
    name      TEXT NOT NULL,
    path      TEXT NOT NULL DEFAULT '',   -- bundle or executable path; '' when unknown
    bundle_id TEXT,
    kind      INTEGER NOT NULL DEFAULT 0,
    container TEXT NOT NULL DEFAULT '',   -- '' on the host; else the container's name or short id
    UNIQUE (name, path, container)
);
INSERT INTO apps_new(id, name, path, bundle_id, kind)
    SELECT id, name, path, bundle_id, kind FROM apps;
DROP TABLE apps;
ALTER TABLE apps_new RENAME TO apps;
