//! `netmon status`: what is true about this database right now, told without disturbing it.
//!
//! Facts come from three places, each read-only: the recorder's lock (`store::lock::holder`:
//! is someone recording, since when), the database (`store::inspect`: the last run, the last
//! committed tick, rows per table, retention boundaries) and the file system (sizes, modes, the
//! service definitions `netmon service` writes, handed in by the caller). [`gather`] turns them
//! into a [`Status`], a plain `Serialize` struct that `--json` prints as is;
//! `output::status` is the text form. Problems are data too: each has a stable `code` and a
//! message that says what to do.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::Serialize;

use crate::query::stall;
use crate::store::{self, inspect, lock};
use crate::text::units;

/// Everything `netmon status` reports. Field names are the `--json` contract (README).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub database: Database,
    pub recorder: Recorder,
    /// The most recent `netmon record` run in this database, running or not.
    pub last_run: Option<Run>,
    pub retention: Option<Retention>,
    /// Rows per table, in name order.
    pub tables: Vec<TableRows>,
    /// Service definitions `netmon service install` wrote on this machine, if any.
    pub service: Vec<ServiceFile>,
    /// How much of what the interfaces carried in the last 7 days applications account for;
    /// absent when no interface counters were recorded then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explained: Option<Explained>,
    /// Data caps and where they stand (`netmon networks cap`); absent when none is set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<crate::query::networks::CapUsage>,
    pub problems: Vec<Problem>,
}

/// The explained share over recent days (`netmon networks` explains it).
#[derive(Debug, Clone, Serialize)]
pub struct Explained {
    /// The first local day counted.
    pub since: DateTime<Utc>,
    pub app_bytes: u64,
    pub interface_bytes: u64,
    /// `app_bytes / interface_bytes`.
    pub share: f64,
}

/// Days the explained share covers in `status`.
const EXPLAINED_DAYS: i64 = 7;

#[derive(Debug, Clone, Serialize)]
pub struct Database {
    pub path: PathBuf,
    pub exists: bool,
    /// The database file plus its -wal and -shm files.
    pub size_bytes: u64,
    /// Pages SQLite holds free inside the file (returned to the file system by retention).
    pub free_bytes: Option<u64>,
    /// `PRAGMA user_version`: the schema the file has.
    pub schema: Option<i64>,
    /// The schema this netmon writes.
    pub schema_supported: i64,
    /// Permission bits of the database file, in octal (e.g. "0600").
    pub mode: Option<String>,
    pub owner_uid: Option<u32>,
    /// Whether the file could be read as a netmon database: false when it (or its directory)
    /// could not be read, and the problems say why; null when there is no file.
    pub readable: Option<bool>,
}

/// What the recorder is doing, as far as the lock and the database tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecorderState {
    /// A recorder holds the lock and is committing samples (or has just started).
    Running,
    /// A recorder holds the lock but has committed no sample for much longer than its interval.
    Stalled,
    /// Nobody records; the last run stopped cleanly.
    Stopped,
    /// Nobody records; the last run never stopped (killed, crashed, power lost).
    Crashed,
    /// Nothing was ever recorded here.
    Never,
    /// The database exists but could not be read (not a netmon database, damaged, or closed
    /// to this user), and no recorder holds its lock: what it holds is not known.
    Unknown,
}

impl RecorderState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecorderState::Running => "running",
            RecorderState::Stalled => "stalled",
            RecorderState::Stopped => "stopped",
            RecorderState::Crashed => "crashed",
            RecorderState::Never => "never run",
            RecorderState::Unknown => "unknown (cannot read the database)",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Recorder {
    pub state: RecorderState,
    /// The pid holding the lock (a running or stalled recorder).
    pub pid: Option<u32>,
    /// When the running recorder started.
    pub since: Option<DateTime<Utc>>,
    /// The newest sample (tick): from the running recorder itself when it answers on its
    /// live socket, else the newest in the database.
    pub last_sample_at: Option<DateTime<Utc>>,
    /// The newest sample written to the database (made durable): the recorder writes its
    /// samples every `write_every_ms`.
    pub written_at: Option<DateTime<Utc>>,
    pub write_every_ms: Option<i64>,
    /// Samples the running recorder holds and has not written yet (null: it did not answer).
    pub unwritten_samples: Option<u64>,
    /// Consecutive writes that failed (the samples are kept and written later).
    pub failed_writes: Option<u32>,
    /// The source of the last run (`nettop`, `sockdiag`, `ebpf`).
    pub source: Option<String>,
    pub interval_ms: Option<i64>,
    /// What the source cannot see, one sentence each (the run's notes).
    pub not_counted: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub id: i64,
    pub pid: i64,
    pub started_at: Option<DateTime<Utc>>,
    pub first_sample_at: Option<DateTime<Utc>>,
    pub last_sample_at: Option<DateTime<Utc>>,
    /// NULL while running, and after a crash until the next recorder closes the run.
    pub stopped_at: Option<DateTime<Utc>>,
    pub stop_reason: Option<String>,
    pub source: String,
    pub interval_ms: i64,
    /// How often the run writes its samples to the database (0: every sample).
    pub write_every_ms: i64,
    pub hostname: Option<String>,
    pub version: String,
}

/// How long each kind of row is kept, and how far back each actually reaches.
#[derive(Debug, Clone, Serialize)]
pub struct Retention {
    /// Per-tick samples are kept this long (seconds); null: forever, or not known (no
    /// recorder has written its settings yet).
    pub raw_keep_s: Option<u64>,
    pub hourly_keep_s: Option<u64>,
    /// Whether the two values above are known (written by the recorder at start).
    pub known: bool,
    /// The oldest per-tick sample kept.
    pub raw_oldest_at: Option<DateTime<Utc>>,
    /// The oldest hourly total kept (start of its hour).
    pub hourly_oldest_at: Option<DateTime<Utc>>,
    /// The oldest daily total (start of its local day); daily totals are kept forever.
    pub daily_oldest_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableRows {
    pub table: String,
    pub rows: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceFile {
    pub name: String,
    pub path: PathBuf,
}

/// Something wrong, with a stable `code` for scripts and a message saying what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub code: &'static str,
    pub message: String,
}

/// Consecutive samples with no rows after which nettop is reported as blind: one can happen
/// (a read between two states of the machine), tick after tick cannot on a working Mac.
const EMPTY_SAMPLES_PROBLEM: i64 = 3;

/// How `gather` decides and where it looks (tests and `--stalled-after` change these).
#[derive(Debug, Clone)]
pub struct Options {
    /// A recorder that has committed nothing for this long beyond its interval is stalled.
    pub stalled_after: Duration,
    /// Service definitions to look for.
    pub service_files: Vec<ServiceFile>,
    /// Check that nettop is on PATH (macOS, or a database recorded with nettop).
    pub need_nettop: bool,
    /// Problems the service manager reports about the installed recorder (a LaunchAgent
    /// switched off, or failing at launch), found by the caller.
    pub service_problems: Vec<Problem>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            stalled_after: stall::STALLED_AFTER,
            service_files: Vec::new(),
            need_nettop: cfg!(target_os = "macos"),
            service_problems: Vec::new(),
        }
    }
}

/// Collect the status of the database at `db`. Fails only when the facts cannot be read at all
/// (an unreadable lock file is a problem in the report, not an error).
pub fn gather(db: &Path, opts: &Options, now: DateTime<Utc>) -> Status {
    let mut problems = Vec::new();
    let (meta, meta_err) = match fs::metadata(db) {
        Ok(m) => (Some(m), None),
        Err(e) => (None, Some(e)),
    };
    let database = Database {
        path: db.to_path_buf(),
        exists: meta.is_some(),
        size_bytes: file_size(db)
            + file_size(&suffixed(db, "-wal"))
            + file_size(&suffixed(db, "-shm")),
        free_bytes: None,
        schema: None,
        schema_supported: store::SCHEMA_VERSION,
        mode: meta
            .as_ref()
            .map(|m| format!("{:04o}", m.permissions().mode() & 0o7777)),
        owner_uid: meta.as_ref().map(|m| m.uid()),
        readable: None,
    };
    let mut status = Status {
        database,
        recorder: Recorder {
            state: RecorderState::Never,
            pid: None,
            since: None,
            last_sample_at: None,
            written_at: None,
            write_every_ms: None,
            unwritten_samples: None,
            failed_writes: None,
            source: None,
            interval_ms: None,
            not_counted: Vec::new(),
        },
        last_run: None,
        retention: None,
        tables: Vec::new(),
        service: opts
            .service_files
            .iter()
            .filter(|f| f.path.exists())
            .cloned()
            .collect(),
        explained: None,
        caps: Vec::new(),
        problems: Vec::new(),
    };

    let mut lock_problem = None;
    let holder = match lock::holder(db) {
        Ok(h) => h,
        Err(e) => {
            lock_problem = Some(Problem {
                code: "lock_unreadable",
                message: format!(
                    "cannot tell whether a recorder is running: {e}; \
                     run netmon status as the user the recorder runs as"
                ),
            });
            None
        }
    };
    // The running recorder's unwritten samples, from itself (nothing on disk changes).
    let live = holder.as_ref().and_then(|_| {
        crate::live::read(
            db,
            &crate::live::Request {
                nets: true,
                ..crate::live::Request::default()
            },
        )
    });
    if let Some(h) = &holder {
        status.recorder.pid = h.pid.parse().ok();
        status.recorder.since = DateTime::parse_from_rfc3339(&h.since)
            .ok()
            .map(|d| d.with_timezone(&Utc));
        status.recorder.state = RecorderState::Running;
    }

    if let Some(m) = &meta {
        if m.permissions().mode() & 0o007 != 0 {
            problems.push(Problem {
                code: "permissions",
                message: format!(
                    "{} is readable by every user on this machine (mode {:04o}): \
                     run chmod 600 on it (and its -wal and -shm files)",
                    db.display(),
                    m.permissions().mode() & 0o777
                ),
            });
        }
        status.database.readable = Some(false);
        match inspect::open(db) {
            Ok(conn) => {
                read_database(&conn, &mut status, &mut problems);
                // A database from before interface counters has no such tables: nothing to say.
                if let Ok(e) = explained(&conn, now, &mut problems) {
                    status.explained = e;
                }
                // Caps count the recorder's unwritten ticks too, as its alerts do.
                let unwritten = live
                    .as_ref()
                    .filter(|v| status.recorder.pid == Some(v.pid))
                    .map_or(&[][..], |v| &v.nets[..]);
                if let Ok(c) = crate::query::networks::caps_with(
                    &conn,
                    &chrono::Local,
                    now.timestamp_millis(),
                    unwritten,
                ) {
                    status.caps = c;
                }
            }
            Err(e) => problems.push(unreadable(db, m, &e)),
        }
    } else if let Some(e) = meta_err.filter(|e| e.kind() == std::io::ErrorKind::PermissionDenied) {
        // The directory is closed to this user: whether the file exists is not known.
        status.database.readable = Some(false);
        problems.push(Problem {
            code: "permissions",
            message: format!(
                "cannot see {} ({e}): its directory is closed to you; run netmon as the user \
                 the recorder runs as, or (for the system service) reinstall it with \
                 --reader YOUR_USER",
                db.display()
            ),
        });
    } else if holder.is_none() {
        let system_db = Path::new(crate::paths::SYSTEM_DB);
        let hint = if db != system_db && system_db.exists() {
            format!(
                "the system service records into {0}: pass --db {0} or set NETMON_DB",
                system_db.display()
            )
        } else {
            "start recording with `netmon service install` (or `netmon record`), or point \
             --db / NETMON_DB at an existing one"
                .to_string()
        };
        problems.push(Problem {
            code: "no_database",
            message: format!("no database at {}: {hint}", db.display()),
        });
    }

    // Said once: a closed directory also hides the lock.
    if let Some(p) = lock_problem
        && !problems.iter().any(|p| p.code == "permissions")
    {
        problems.push(p);
    }
    if let Some(v) = live.as_ref().filter(|v| status.recorder.pid == Some(v.pid)) {
        if let Some(t) = v.last_tick_ms.and_then(|t| ms(Some(t))) {
            status.recorder.last_sample_at = Some(t);
        }
        if let Some(t) = v.durable_ms.and_then(|t| ms(Some(t))) {
            status.recorder.written_at = Some(t);
        }
        status.recorder.write_every_ms = Some(v.write_every_ms);
        status.recorder.unwritten_samples = Some(v.unwritten);
        status.recorder.failed_writes = Some(v.failed_writes);
        if v.failed_writes > 0 {
            problems.push(Problem {
                code: "write_failing",
                message: format!(
                    "the recorder (pid {}) cannot write to the database ({} tries in a row): \
                     its {} samples are kept in memory and written once it can; a full disk or \
                     another program holding the database are the usual causes (see its log)",
                    v.pid, v.failed_writes, v.unwritten
                ),
            });
        }
    }
    if status.database.readable == Some(false) && holder.is_none() {
        // Nothing read, so nothing to classify: "never run" or "not recording yet" would be
        // claims about a file nobody has looked into.
        status.recorder.state = RecorderState::Unknown;
    } else {
        classify(&mut status, holder.is_some(), opts, now, &mut problems);
    }

    let recorded_with_nettop = status.recorder.source.as_deref() == Some("nettop");
    if (opts.need_nettop || recorded_with_nettop)
        && crate::source::nettop::find_on_path("nettop").is_none()
    {
        problems.push(Problem {
            code: "nettop_missing",
            message: "nettop is not on PATH, so the recorder cannot sample: it ships with macOS \
                      as /usr/bin/nettop; make sure PATH includes /usr/bin"
                .into(),
        });
    }
    problems.extend(opts.service_problems.iter().cloned());
    status.problems = problems;
    status
}

/// Decide the recorder's state from the lock and the last run, and add the problems that go
/// with it.
fn classify(
    status: &mut Status,
    locked: bool,
    opts: &Options,
    now: DateTime<Utc>,
    problems: &mut Vec<Problem>,
) {
    let run = status.last_run.clone();
    // The lock holder's run is the last one once it has begun; before that (opening,
    // migrating) the last run is the previous recorder's.
    let current = run
        .as_ref()
        .filter(|r| locked && status.recorder.pid.is_some_and(|p| i64::from(p) == r.pid));
    if let Some(r) = run.as_ref().filter(|_| !locked || current.is_some()) {
        status.recorder.source = Some(r.source.clone());
        status.recorder.interval_ms = Some(r.interval_ms);
        status
            .recorder
            .write_every_ms
            .get_or_insert(r.write_every_ms);
    }
    if locked {
        let interval = current.map_or(Duration::ZERO, |r| stall::millis(r.interval_ms));
        // A recorder that answered on its live socket told its newest sample; otherwise the
        // file is up to one write window behind a healthy recorder.
        let answered = status.recorder.unwritten_samples.is_some();
        let window = if answered {
            Duration::ZERO
        } else {
            current.map_or(Duration::ZERO, |r| stall::millis(r.write_every_ms))
        };
        let last_activity = if answered {
            status.recorder.last_sample_at.or(status.recorder.since)
        } else {
            current
                .and_then(|r| r.last_sample_at.or(r.started_at))
                .or(status.recorder.since)
        };
        let stalled = last_activity.and_then(|t| {
            stall::stalled_for(
                t.timestamp_millis(),
                now.timestamp_millis(),
                interval,
                window,
                opts.stalled_after,
            )
        });
        if let Some(quiet) = stalled {
            status.recorder.state = RecorderState::Stalled;
            problems.push(Problem {
                code: "stalled",
                message: format!(
                    "the recorder (pid {}) holds the database but has committed no sample \
                     for {} (its interval is {}): its source is failing or hung; see its \
                     log (`netmon service status` says where)",
                    status.recorder.pid.map_or("?".into(), |p| p.to_string()),
                    units::duration(quiet),
                    units::duration(interval)
                ),
            });
        }
        return;
    }
    let Some(r) = run else {
        if status.database.exists {
            problems.push(Problem {
                code: "not_recording",
                message: "nothing has been recorded into this database yet: start recording \
                          with `netmon service install` (or `netmon record`)"
                    .into(),
            });
        }
        return;
    };
    let crashed = r.stopped_at.is_none() || r.stop_reason.as_deref() == Some("crashed");
    if crashed {
        status.recorder.state = RecorderState::Crashed;
        problems.push(Problem {
            code: "crashed",
            message: format!(
                "the last recorder (pid {}) ended without stopping: it crashed, was killed \
                 (SIGKILL) or the machine lost power; its last sample was {}. What it \
                 committed is kept, and the next recorder resumes its counters",
                r.pid,
                r.last_sample_at
                    .map_or("never committed".into(), |t| units::time_ago(t, now))
            ),
        });
    } else {
        status.recorder.state = RecorderState::Stopped;
    }
    let hint = if status.service.is_empty() {
        "start it with `netmon service install` (or `netmon record`)"
    } else {
        "the service is installed but not recording: see `netmon service status`"
    };
    problems.push(Problem {
        code: "not_recording",
        message: format!(
            "no recorder is running for this database{}: {hint}",
            r.stopped_at
                .filter(|_| !crashed)
                .map(|t| format!(
                    " (the last one stopped {}{})",
                    units::time_ago(t, now),
                    r.stop_reason
                        .as_deref()
                        .map(|s| format!(", {s}"))
                        .unwrap_or_default()
                ))
                .unwrap_or_default()
        ),
    });
}

fn unreadable(db: &Path, m: &fs::Metadata, e: &rusqlite::Error) -> Problem {
    let denied = matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::CannotOpen || f.code == rusqlite::ErrorCode::PermissionDenied);
    if denied {
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if m.uid() != me {
            return Problem {
                code: "permissions",
                message: format!(
                    "cannot read {} ({e}): it belongs to uid {} and has mode {:04o}; run netmon \
                     as that user, or (for the system service) reinstall it with \
                     --reader YOUR_USER",
                    db.display(),
                    m.uid(),
                    m.permissions().mode() & 0o777
                ),
            };
        }
    }
    Problem {
        code: "unreadable",
        message: format!(
            "cannot read {}: {e}; is it a netmon database? (--db, NETMON_DB)",
            db.display()
        ),
    }
}

/// The explained share over the last days, from the daily tables, and a problem for each day
/// on which applications were counted for more bytes than the interfaces carried: bytes that
/// never crossed an interface were counted.
fn explained(
    conn: &Connection,
    now: DateTime<Utc>,
    problems: &mut Vec<Problem>,
) -> rusqlite::Result<Option<Explained>> {
    let since = now.timestamp() - EXPLAINED_DAYS * 86_400;
    let per_day = |sql: &str| -> rusqlite::Result<std::collections::BTreeMap<i64, i64>> {
        let mut st = conn.prepare(sql)?;
        st.query_map([since], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    };
    let apps =
        per_day("SELECT day, sum(bytes_in + bytes_out) FROM daily WHERE day >= ?1 GROUP BY day")?;
    let ifaces = per_day(
        "SELECT n.day, sum(n.bytes_in + n.bytes_out) FROM net_daily n \
         JOIN interfaces i ON i.id = n.interface_id \
         WHERE n.day >= ?1 AND i.kind NOT IN ('loopback', 'vpn', 'bridge') GROUP BY n.day",
    )?;
    // Days a VPN interface carried traffic: an app-based VPN or proxy (a Network Extension, a
    // TUN-mode proxy) sends the applications' tunnelled bytes again from its own process over
    // the physical interface, so both are counted (FORMAT.md §5), and the problem says so.
    let vpn: std::collections::BTreeMap<i64, (i64, String)> = {
        let mut st = conn.prepare(
            "SELECT n.day, sum(n.bytes_in + n.bytes_out), group_concat(DISTINCT i.name) \
             FROM net_daily n JOIN interfaces i ON i.id = n.interface_id \
             WHERE n.day >= ?1 AND i.kind = 'vpn' GROUP BY n.day",
        )?;
        st.query_map([since], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
            .collect::<rusqlite::Result<_>>()?
    };
    // The day interface counting began (an upgrade from before issue 15) is not judged: its
    // applications' bytes from before that moment have no interface bytes to compare with.
    let first_day: Option<i64> =
        conn.query_row("SELECT min(day) FROM net_daily", [], |r| r.get(0))?;
    let (mut app_bytes, mut interface_bytes) = (0u64, 0u64);
    for (day, carried) in ifaces
        .iter()
        .filter(|(d, _)| Some(**d) != first_day || first_day_complete(conn, **d).unwrap_or(false))
    {
        let counted = apps.get(day).copied().unwrap_or(0);
        app_bytes += counted.max(0) as u64;
        interface_bytes += (*carried).max(0) as u64;
        if counted > *carried && *carried > 0 {
            let start = ms(Some(day * 1000)).unwrap_or(now);
            let local_day = start.with_timezone(&chrono::Local).format("%Y-%m-%d");
            let cause = match vpn.get(day).filter(|(bytes, _)| *bytes > 0) {
                Some((bytes, names)) => format!(
                    "a VPN was up that day ({names} carried {}): an app-based VPN or proxy \
                     sends the applications' tunnelled traffic again from its own process over \
                     the physical interface, and netmon counts both",
                    units::bytes(*bytes as u64)
                ),
                None => "netmon counted bytes that never crossed an interface".to_string(),
            };
            problems.push(Problem {
                code: "explained_over_100",
                message: format!(
                    "on the day from {} applications were counted for {} but the interfaces \
                     carried only {} ({}): {cause}; `netmon apps --from {local_day} --until \
                     {local_day}` and `netmon networks` over that day show which",
                    start
                        .with_timezone(&chrono::Local)
                        .format("%Y-%m-%d %H:%M %:z"),
                    units::bytes(counted as u64),
                    units::bytes(*carried as u64),
                    units::share_percent(counted as f64 / *carried as f64),
                ),
            });
        }
    }
    Ok((interface_bytes > 0).then(|| Explained {
        since: ms(Some(since * 1000)).unwrap_or(now),
        app_bytes,
        interface_bytes,
        share: app_bytes as f64 / interface_bytes as f64,
    }))
}

/// Whether applications were counted on day `day` only after interfaces were: no tick of
/// that day before the first interface row (checked on the raw ticks while they are kept).
fn first_day_complete(conn: &Connection, day: i64) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT NOT EXISTS (SELECT 1 FROM daily WHERE day = ?1 AND first_at < \
         (SELECT min(first_at) FROM net_daily WHERE day = ?1))",
        [day],
        |r| r.get(0),
    )
}

fn read_database(conn: &Connection, status: &mut Status, problems: &mut Vec<Problem>) {
    let schema = match inspect::schema(conn) {
        Ok(v) => v,
        Err(e) => {
            problems.push(Problem {
                code: "unreadable",
                message: format!(
                    "reading {} failed: {e}; is it a netmon database? (--db, NETMON_DB)",
                    status.database.path.display()
                ),
            });
            return;
        }
    };
    match inspect::kind(conn) {
        Ok(inspect::Kind::Netmon) => {}
        // An empty file, or one a recorder is creating: a database with nothing in it yet.
        Ok(inspect::Kind::Empty) => {
            status.database.schema = Some(schema);
            status.database.readable = Some(true);
            return;
        }
        Ok(inspect::Kind::Other) => {
            problems.push(Problem {
                code: "not_netmon",
                message: format!(
                    "{} is an SQLite database without netmon's tables, not a netmon database: \
                     pass --db (or NETMON_DB) with the file `netmon record` writes",
                    status.database.path.display()
                ),
            });
            return;
        }
        Err(e) => {
            problems.push(Problem {
                code: "unreadable",
                message: format!(
                    "reading {} failed: {e}; is it a netmon database? (--db, NETMON_DB)",
                    status.database.path.display()
                ),
            });
            return;
        }
    }
    status.database.schema = Some(schema);
    if schema > store::SCHEMA_VERSION {
        problems.push(Problem {
            code: "schema_too_new",
            message: format!(
                "the database has schema {schema}, newer than this netmon ({}): upgrade netmon",
                store::SCHEMA_VERSION
            ),
        });
    }
    status.database.free_bytes = inspect::free_bytes(conn);
    let result = (|| -> rusqlite::Result<()> {
        status.tables = inspect::table_rows(conn)?
            .into_iter()
            .map(|(table, rows)| TableRows { table, rows })
            .collect();
        status.last_run = inspect::last_run(conn)?.map(|r| {
            status.recorder.not_counted = r
                .notes
                .as_deref()
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect();
            Run {
                id: r.id,
                pid: r.pid,
                started_at: ms(r.started_at_ms),
                first_sample_at: ms(r.first_tick_at_ms),
                last_sample_at: ms(r.last_tick_at_ms),
                stopped_at: ms(r.stopped_at_ms),
                stop_reason: r.stop_reason,
                source: r.source,
                interval_ms: r.interval_ms,
                write_every_ms: r.write_every_ms,
                hostname: r.hostname,
                version: r.version,
            }
        });
        let e = inspect::extent(conn)?;
        status.recorder.last_sample_at = ms(e.newest_tick_ms);
        status.recorder.written_at = ms(e.newest_tick_ms);
        if let Some(run) = &status.last_run
            && run.source == "nettop"
            && let Some(e) = inspect::empty_samples(conn)?
            && e.run_id == run.id
            && e.ticks >= EMPTY_SAMPLES_PROBLEM
        {
            problems.push(Problem {
                code: "no_rows",
                message: format!(
                    "nettop has printed its header and no rows for every one of the last {}                      samples (since {}): it sees no sockets at all, so nothing is counted.                      nettop shows nothing when it may not read the network statistics (inside                      a sandbox, for one); run `nettop -L 1 -n -x` as the user the recorder                      runs as and see what it prints",
                    e.ticks,
                    ms(Some(e.since_ms)).map_or_else(
                        || "?".to_string(),
                        |t| {
                            t.with_timezone(&chrono::Local)
                                .format("%Y-%m-%d %H:%M:%S %:z")
                                .to_string()
                        }
                    )
                ),
            });
        }
        status.retention = Some(Retention {
            known: e.keep_raw_s.is_some() && e.keep_hourly_s.is_some(),
            raw_keep_s: e.keep_raw_s.flatten(),
            hourly_keep_s: e.keep_hourly_s.flatten(),
            raw_oldest_at: ms(e.oldest_tick_ms),
            hourly_oldest_at: secs(e.oldest_hour_s),
            daily_oldest_at: secs(e.oldest_day_s),
        });
        Ok(())
    })();
    status.database.readable = Some(result.is_ok());
    if let Err(e) = result {
        problems.push(Problem {
            code: "unreadable",
            message: format!(
                "reading {} failed: {e}; is it a netmon database?",
                status.database.path.display()
            ),
        });
    }
}

fn ms(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.and_then(DateTime::from_timestamp_millis)
}

fn secs(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.and_then(|s| DateTime::from_timestamp(s, 0))
}

fn suffixed(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}

fn file_size(p: &Path) -> u64 {
    fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_database_with_no_recorder_says_how_to_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = gather(&dir.path().join("none.db"), &Options::default(), Utc::now());
        assert_eq!(s.recorder.state, RecorderState::Never);
        assert!(!s.database.exists);
        assert_eq!(s.database.readable, None);
        assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
        assert_eq!(s.problems[0].code, "no_database");
        assert!(s.problems[0].message.contains("netmon service install"));
    }

    #[test]
    fn a_database_open_to_everyone_is_a_problem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("n.db");
        drop(store::open(&db, store::Create::IfMissing).expect("create"));
        fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).expect("chmod");
        let s = gather(&db, &Options::default(), Utc::now());
        let p = s
            .problems
            .iter()
            .find(|p| p.code == "permissions")
            .expect("permissions problem");
        assert!(p.message.contains("chmod 600"), "{}", p.message);
        assert_eq!(s.database.mode.as_deref(), Some("0644"));
        assert_eq!(s.database.schema, Some(store::SCHEMA_VERSION));
        assert_eq!(s.database.readable, Some(true));
        assert!(s.tables.iter().any(|t| t.table == "samples" && t.rows == 0));
    }

    #[test]
    fn a_file_that_is_not_a_database_is_reported_not_fatal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("n.db");
        fs::write(&db, "not sqlite at all, just some text that is long enough").expect("write");
        fs::set_permissions(&db, fs::Permissions::from_mode(0o600)).expect("chmod");
        let s = gather(&db, &Options::default(), Utc::now());
        assert!(
            s.problems.iter().any(|p| p.code == "unreadable"),
            "{:?}",
            s.problems
        );
        // Issue 13: what it holds is unknown, not "never run".
        assert_eq!(s.recorder.state, RecorderState::Unknown);
        assert_eq!(s.database.readable, Some(false));
    }

    #[test]
    fn another_programs_database_is_not_netmons_and_its_state_unknown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("n.db");
        Connection::open(&db)
            .expect("sqlite")
            .execute_batch("CREATE TABLE bookmarks(url TEXT); INSERT INTO bookmarks VALUES ('x');")
            .expect("foreign");
        // Private, whatever the umask: a world-readable file is a problem of its own.
        fs::set_permissions(&db, fs::Permissions::from_mode(0o600)).expect("chmod");
        let s = gather(&db, &Options::default(), Utc::now());
        let codes: Vec<&str> = s.problems.iter().map(|p| p.code).collect();
        assert_eq!(codes, ["not_netmon"], "{:?}", s.problems);
        assert_eq!(s.recorder.state, RecorderState::Unknown);
        assert_eq!(s.database.readable, Some(false));
    }

    #[test]
    fn an_empty_file_is_a_database_nothing_was_recorded_into() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("n.db");
        fs::write(&db, "").expect("empty");
        fs::set_permissions(&db, fs::Permissions::from_mode(0o600)).expect("chmod");
        let s = gather(&db, &Options::default(), Utc::now());
        assert_eq!(s.recorder.state, RecorderState::Never);
        assert_eq!(s.database.readable, Some(true));
        let codes: Vec<&str> = s.problems.iter().map(|p| p.code).collect();
        assert_eq!(codes, ["not_recording"], "{:?}", s.problems);
    }
}
