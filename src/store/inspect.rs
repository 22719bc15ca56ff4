//! Read-only facts about a database for `netmon status` and `netmon serve`: the last run,
//! the newest and oldest rows, retention settings and boundaries, rows per table. Nothing here
//! creates, migrates or writes: the connection is opened `query_only`.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::meta::{self, Key};

/// Open without creating, migrating or writing anything (`query_only`). Read-write when the
/// file allows, so closing the last connection tidies the WAL as usual; read-only otherwise
/// (SQLite falls back by itself). Fails here, rather than at the first query, when the file
/// is not a database.
pub fn open(db: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(2))?;
    conn.pragma_update(None, "query_only", true)?;
    let _: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    Ok(conn)
}

/// `PRAGMA user_version`: the schema the file has (0: not a netmon database, or empty).
pub fn schema(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// The tables every netmon database has had since schema 1.
const NETMON_TABLES: &[&str] = &["meta", "runs", "ticks", "daily"];

/// What an SQLite file holds, as far as netmon is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// netmon's tables.
    Netmon,
    /// Nothing at all: no schema, no version (an empty file is one).
    Empty,
    /// Something else: another program's database.
    Other,
}

/// Whether the database holds netmon's tables, nothing, or something else.
pub fn kind(conn: &Connection) -> rusqlite::Result<Kind> {
    let (objects, ours): (i64, i64) = conn.query_row(
        &format!(
            "SELECT count(*), count(CASE WHEN type = 'table' AND name IN ({}) THEN 1 END) \
             FROM sqlite_master",
            NETMON_TABLES
                .iter()
                .map(|t| format!("'{t}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(if ours == NETMON_TABLES.len() as i64 {
        Kind::Netmon
    } else if objects == 0 && schema(conn)? == 0 {
        Kind::Empty
    } else {
        Kind::Other
    })
}

/// Bytes SQLite holds free inside the file.
pub fn free_bytes(conn: &Connection) -> Option<u64> {
    let page = |p: &str| -> Option<u64> {
        conn.pragma_query_value(None, p, |r| r.get::<_, i64>(0))
            .ok()
            .map(|v| v.max(0) as u64)
    };
    Some(page("freelist_count")? * page("page_size")?)
}

/// A `runs` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub id: i64,
    pub pid: i64,
    pub started_at_ms: Option<i64>,
    pub first_tick_at_ms: Option<i64>,
    pub last_tick_at_ms: Option<i64>,
    pub stopped_at_ms: Option<i64>,
    pub stop_reason: Option<String>,
    pub source: String,
    pub interval_ms: i64,
    /// How often the run writes its ticks (0: every tick).
    pub write_every_ms: i64,
    pub hostname: Option<String>,
    pub version: String,
    /// What the source could not see, one sentence a line.
    pub notes: Option<String>,
}

/// The most recent run, running or not.
pub fn last_run(conn: &Connection) -> rusqlite::Result<Option<RunRow>> {
    conn.query_row(
        "SELECT id, pid, started_at, first_tick_at, last_tick_at, stopped_at, stop_reason, \
         source, interval_ms, hostname, version, notes, write_every_ms FROM runs \
         ORDER BY id DESC LIMIT 1",
        [],
        |r| {
            Ok(RunRow {
                id: r.get(0)?,
                pid: r.get(1)?,
                started_at_ms: r.get(2)?,
                first_tick_at_ms: r.get(3)?,
                last_tick_at_ms: r.get(4)?,
                stopped_at_ms: r.get(5)?,
                stop_reason: r.get(6)?,
                source: r.get(7)?,
                interval_ms: r.get(8)?,
                hostname: r.get(9)?,
                version: r.get(10)?,
                notes: r.get(11)?,
                write_every_ms: r.get(12)?,
            })
        },
    )
    .optional()
}

/// The source of the run process `pid` is recording right now (a run not stopped yet).
pub fn running_source(conn: &Connection, pid: i64) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT source FROM runs WHERE stopped_at IS NULL AND pid = ?1 \
         ORDER BY id DESC LIMIT 1",
        [pid],
        |r| r.get(0),
    )
    .optional()
}

/// How far back each kind of row reaches, and what the recorder was told to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extent {
    pub newest_tick_ms: Option<i64>,
    pub oldest_tick_ms: Option<i64>,
    /// Epoch second of the oldest hourly total's hour.
    pub oldest_hour_s: Option<i64>,
    /// Epoch second of the oldest daily total's local midnight.
    pub oldest_day_s: Option<i64>,
    /// Seconds; `Some(None)`: forever; `None`: not written by any recorder yet.
    pub keep_raw_s: Option<Option<u64>>,
    pub keep_hourly_s: Option<Option<u64>>,
}

pub fn extent(conn: &Connection) -> rusqlite::Result<Extent> {
    let keep = |key: Key| -> rusqlite::Result<Option<Option<u64>>> {
        Ok(meta::get(conn, key)?
            .and_then(|v| v.parse::<u64>().ok())
            .map(|s| (s > 0).then_some(s)))
    };
    let one =
        |sql: &str| -> rusqlite::Result<Option<i64>> { conn.query_row(sql, [], |r| r.get(0)) };
    Ok(Extent {
        newest_tick_ms: one("SELECT max(at) FROM ticks")?,
        oldest_tick_ms: one("SELECT min(at) FROM ticks")?,
        oldest_hour_s: one("SELECT min(hour) FROM hourly")?,
        oldest_day_s: one("SELECT min(day) FROM daily")?,
        keep_raw_s: keep(Key::KeepRawS)?,
        keep_hourly_s: keep(Key::KeepHourlyS)?,
    })
}

/// A run of samples that came back with no counters, as far as the database tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmptySamples {
    pub run_id: i64,
    /// Wall time (epoch ms) of the first empty sample.
    pub since_ms: i64,
    /// Ticks the run has committed since then, all of them empty.
    pub ticks: i64,
}

/// The run of empty samples the recorder noted, if it is still going on.
pub fn empty_samples(conn: &Connection) -> rusqlite::Result<Option<EmptySamples>> {
    let Some(value) = meta::get(conn, Key::EmptySamplesSince)? else {
        return Ok(None);
    };
    let mut parts = value.split(' ').map(str::parse::<i64>);
    let (Some(Ok(run_id)), Some(Ok(since_ms)), None) = (parts.next(), parts.next(), parts.next())
    else {
        return Ok(None);
    };
    let ticks: i64 = conn.query_row(
        "SELECT count(*) FROM ticks WHERE run_id = ?1 AND at >= ?2",
        [run_id, since_ms],
        |r| r.get(0),
    )?;
    Ok(Some(EmptySamples {
        run_id,
        since_ms,
        ticks,
    }))
}

/// Rows per table, in name order.
pub fn table_rows(conn: &Connection) -> rusqlite::Result<Vec<(String, i64)>> {
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    names
        .into_iter()
        .map(|table| {
            // The name comes from sqlite_master; quoting keeps any name a single identifier.
            let rows = conn.query_row(
                &format!("SELECT count(*) FROM \"{}\"", table.replace('"', "\"\"")),
                [],
                |r| r.get(0),
            )?;
            Ok((table, rows))
        })
        .collect()
}
