//! Opening the database: file permissions, pragmas, and schema migrations by `user_version`.
//!
//! Migrations are the files in `sql/`, applied in order inside one IMMEDIATE transaction that
//! ends by setting `user_version` (Mozilla application-services' `open_database`). A database
//! whose version is newer than this binary knows is refused and left untouched.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::Error;
use super::inspect::Kind;

/// The schema files, in order. Index + 1 is the `user_version` after applying each.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../../sql/0001_init.sql")),
    ("0002_web", include_str!("../../sql/0002_web.sql")),
    (
        "0003_counter_journal",
        include_str!("../../sql/0003_counter_journal.sql"),
    ),
    (
        "0004_app_container",
        include_str!("../../sql/0004_app_container.sql"),
    ),
    (
        "0005_metrics_series",
        include_str!("../../sql/0005_metrics_series.sql"),
    ),
    (
        "0006_batched_writes",
        include_str!("../../sql/0006_batched_writes.sql"),
    ),
    ("0007_networks", include_str!("../../sql/0007_networks.sql")),
    (
        "0008_app_network_split",
        include_str!("../../sql/0008_app_network_split.sql"),
    ),
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a writer waits for another writer's transaction (record and serve share the file).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a missing database may be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// `record` and `serve`: create the directory (0700) and the file (0600).
    IfMissing,
    /// Queries: a missing file is an error that says how to get one.
    Never,
}

/// Open (and if needed create and migrate) the database at `path`.
pub fn open(path: &Path, create: Create) -> Result<Connection, Error> {
    if !path.exists() {
        if create == Create::Never {
            return Err(Error::Missing {
                path: path.to_path_buf(),
            });
        }
        create_parent(path)?;
    }
    let flags = match create {
        Create::IfMissing => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        Create::Never => OpenFlags::SQLITE_OPEN_READ_WRITE,
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| Error::open(path, e))?;
    // The file may predate a umask; the history of someone's network use is private.
    if create == Create::IfMissing {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o600));
    }
    prepare(&conn).map_err(|e| Error::open(path, e))?;
    migrate(&conn, path)?;
    Ok(conn)
}

/// Open an existing netmon database for reading, creating, migrating, chmod-ing and writing
/// nothing (`netmon apps`, `timeline`, `top`, `domains`, `report`). A missing file, an empty
/// one, a file that is not SQLite, another program's SQLite database, or a netmon database of
/// another schema is an error that says so, and the file is left as it was.
pub fn open_read_only(path: &Path) -> Result<Connection, Error> {
    let conn = open_existing(path)?;
    let found = super::inspect::schema(&conn).map_err(|e| Error::open(path, e))?;
    if found < SCHEMA_VERSION {
        return Err(Error::TooOld {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(conn)
}

/// `record` and `serve`, before they create or change anything (the directory, the lock, the
/// token, the file's mode): `path` must be new (missing, or an empty regular file, which holds
/// nothing to harm: SQLite itself treats it as a new database) or a netmon database.
pub fn check_target(path: &Path) -> Result<(), Error> {
    match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
        Ok(m) if m.is_file() && m.len() == 0 => Ok(()),
        Ok(_) => open_existing(path).map(drop),
    }
}

/// Open `path` (which must exist) without creating or writing anything, and check it is a
/// netmon database of a schema this binary knows (older ones included).
fn open_existing(path: &Path) -> Result<Connection, Error> {
    let not = |why: &str| Error::NotNetmon {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Missing {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    if !meta.is_file() {
        return Err(not("not a regular file"));
    }
    if meta.len() == 0 {
        return Err(not("the file is empty"));
    }
    // Read the header ourselves: SQLite would take any file it may write for an empty
    // database to fill.
    let mut header = [0u8; 16];
    let n = {
        use std::io::Read;
        let mut f = fs::File::open(path).map_err(|e| Error::io(path, e))?;
        f.read(&mut header).map_err(|e| Error::io(path, e))?
    };
    if n < header.len() || &header != b"SQLite format 3\0" {
        return Err(not("not an SQLite database"));
    }
    let conn = super::inspect::open(path).map_err(|e| Error::open(path, e))?;
    let found = super::inspect::schema(&conn).map_err(|e| Error::open(path, e))?;
    if found > SCHEMA_VERSION {
        return Err(Error::TooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found < 1 || super::inspect::kind(&conn).map_err(|e| Error::open(path, e))? != Kind::Netmon {
        return Err(not("an SQLite database without netmon's tables"));
    }
    Ok(conn)
}

/// Give the recorder's group read access to the database, its WAL files and its lock (0640),
/// for a recorder that runs as another user than the one who reads (the system service). The
/// directory is the caller's business (systemd's StateDirectoryMode).
///
/// The WAL and shared-memory files are also kept when the recorder closes (persistent WAL):
/// a reader without write access to the directory can open a WAL database only while they
/// exist (SQLite 3.22+ reads it through a read-only -shm), so a stopped recorder's data stays
/// readable.
pub fn share_with_group(conn: &Connection, db: &Path, lock: &Path) -> Result<(), Error> {
    let mut persist: std::ffi::c_int = 1;
    // SAFETY: the handle is valid for the connection's lifetime; PERSIST_WAL takes an int*.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&raw mut persist).cast(),
        )
    };
    if rc != rusqlite::ffi::SQLITE_OK {
        return Err(Error::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rc),
            Some("could not keep the WAL files for readers (SQLITE_FCNTL_PERSIST_WAL)".into()),
        )));
    }
    let mut paths = vec![db.to_path_buf(), lock.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        paths.push(p.into());
    }
    for p in paths {
        match fs::set_permissions(&p, fs::Permissions::from_mode(0o640)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&p, e)),
        }
    }
    Ok(())
}

/// Create the directory a database goes in (0700), if missing. The recorder calls it before
/// taking its lock, which lives beside the database.
pub fn create_parent(path: &Path) -> Result<(), Error> {
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

/// Open an in-memory database with the current schema (tests, benchmarks).
pub fn open_in_memory() -> Result<Connection, Error> {
    let conn = Connection::open_in_memory()?;
    prepare(&conn)?;
    migrate(&conn, Path::new(":memory:"))?;
    Ok(conn)
}

/// Pragmas run outside any transaction.
fn prepare(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // auto_vacuum must be chosen before the first table exists: incremental lets the
    // retention pass hand freed pages back to the file system.
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    if tables == 0 {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    }
    // In-memory databases answer "memory"; files switch to WAL so queries and `serve` read
    // and write beside a running recorder.
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

fn migrate(conn: &Connection, path: &Path) -> Result<(), Error> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(Error::TooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    apply_from(conn, path, found)
}

/// Apply the migrations after `found` (the version read before taking the write lock).
fn apply_from(conn: &Connection, path: &Path, found: i64) -> Result<(), Error> {
    // By hand rather than rusqlite's Transaction, which needs `&mut Connection`.
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| -> rusqlite::Result<()> {
        // Read again under the write lock: `record` and `serve` started together on an older
        // database both see the old version, and the second must not migrate again.
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found >= SCHEMA_VERSION {
            return Ok(());
        }
        for (_, sql) in &MIGRATIONS[found as usize..] {
            conn.execute_batch(sql)?;
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(Error::Migration {
                path: path.to_path_buf(),
                from: found,
                cause: e,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(conn: &Connection) -> Vec<(String, String)> {
        let mut st = conn
            .prepare("SELECT name, coalesce(sql, '') FROM sqlite_master ORDER BY name")
            .expect("prepare");
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    #[test]
    fn a_new_database_gets_every_migration_and_the_current_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/netmon.db");
        let conn = open(&path, Create::IfMissing).expect("open");
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("v");
        assert_eq!(v, SCHEMA_VERSION);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
        let av: i64 = conn
            .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
            .expect("av");
        assert_eq!(av, 2, "incremental auto_vacuum");
        let dir_mode = fs::metadata(path.parent().expect("parent"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let file_mode = fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(file_mode & 0o777, 0o600);
    }

    #[test]
    fn every_old_version_upgrades_to_the_same_schema_as_a_new_database() {
        let fresh = open_in_memory().expect("fresh");
        for start in 0..SCHEMA_VERSION {
            let conn = Connection::open_in_memory().expect("mem");
            for (_, sql) in &MIGRATIONS[..start as usize] {
                conn.execute_batch(sql).expect("old migration");
            }
            conn.pragma_update(None, "user_version", start)
                .expect("set v");
            migrate(&conn, Path::new(":memory:")).expect("upgrade");
            assert_eq!(schema(&conn), schema(&fresh), "upgrade from {start}");
        }
    }

    #[test]
    fn a_database_migrated_by_another_opener_meanwhile_is_not_migrated_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("netmon.db");
        let old = Connection::open(&path).expect("raw");
        for (_, sql) in &MIGRATIONS[..1] {
            old.execute_batch(sql).expect("v1");
        }
        old.pragma_update(None, "user_version", 1).expect("v");
        // `old` saw version 1; another process migrates before it takes the write lock.
        drop(open(&path, Create::Never).expect("the other opener"));
        apply_from(&old, &path, 1).expect("a second migration is a no-op, not an error");
        let v: i64 = old
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("v");
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn a_newer_database_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("netmon.db");
        {
            let conn = Connection::open(&path).expect("raw");
            conn.execute_batch("CREATE TABLE future(x); PRAGMA user_version = 99;")
                .expect("future");
        }
        let err = open(&path, Create::IfMissing).expect_err("too new");
        let msg = err.to_string();
        assert!(
            msg.contains("schema 99") && msg.contains(&format!("({SCHEMA_VERSION})")),
            "{msg}"
        );
        let conn = Connection::open(&path).expect("raw");
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("v");
        assert_eq!(v, 99);
    }

    #[test]
    fn a_failing_migration_leaves_the_database_as_it_was() {
        let conn = Connection::open_in_memory().expect("mem");
        // A table the first migration will try to create makes it fail part-way.
        conn.execute_batch("CREATE TABLE ticks(x); INSERT INTO ticks VALUES (1);")
            .expect("setup");
        let err = migrate(&conn, Path::new(":memory:")).expect_err("fails");
        assert!(matches!(err, Error::Migration { from: 0, .. }));
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("v");
        assert_eq!(v, 0);
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'meta'",
                [],
                |r| r.get(0),
            )
            .expect("n");
        assert_eq!(n, 0, "no table of the failed migration survives");
    }

    #[test]
    fn a_missing_database_for_a_query_says_how_to_get_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = open(&dir.path().join("none.db"), Create::Never).expect_err("missing");
        assert!(err.to_string().contains("netmon record"), "{err}");
    }
}
