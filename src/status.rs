//! `netmon status`: what is true about this database right now, told without disturbing it.
//!
//! Facts come from three places, each read-only: the recorder's lock (`store::lock::holder`:
//! is someone recording, since when), the database (the last run, the last committed tick,
//! rows per table, retention boundaries in `meta`) and the file system (sizes, modes, the
//! service definitions `netmon service` writes). [`gather`] turns them into a [`Status`], a
//! plain `Serialize` struct that `--json` prints as is; [`render`] is the text form. Problems
//! are data too: each has a stable `code` and a message that says what to do.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use crate::output::units;
use crate::store::{self, lock};

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
    pub problems: Vec<Problem>,
}

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
}

impl RecorderState {
    fn as_str(self) -> &'static str {
        match self {
            RecorderState::Running => "running",
            RecorderState::Stalled => "stalled",
            RecorderState::Stopped => "stopped",
            RecorderState::Crashed => "crashed",
            RecorderState::Never => "never run",
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
    /// The newest committed sample (tick) in the database.
    pub last_sample_at: Option<DateTime<Utc>>,
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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            stalled_after: Duration::from_secs(60),
            service_files: Vec::new(),
            need_nettop: cfg!(target_os = "macos"),
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
    };
    let mut status = Status {
        database,
        recorder: Recorder {
            state: RecorderState::Never,
            pid: None,
            since: None,
            last_sample_at: None,
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
        match open_for_status(db) {
            Ok(conn) => read_database(&conn, &mut status, &mut problems),
            Err(e) => problems.push(unreadable(db, m, &e)),
        }
    } else if let Some(e) = meta_err.filter(|e| e.kind() == std::io::ErrorKind::PermissionDenied) {
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
        let system_db = Path::new(crate::service::systemd::SYSTEM_DB);
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
    classify(&mut status, holder.is_some(), opts, now, &mut problems);

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
    status.problems = problems;
    status
}

/// `netmon status [--json]`.
pub fn run(db: &Path, a: crate::cli::StatusArgs) -> anyhow::Result<()> {
    let opts = Options {
        stalled_after: a.stalled_after,
        service_files: crate::service::known_files(),
        ..Options::default()
    };
    let now = Utc::now();
    let status = gather(db, &opts, now);
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &status)?;
        writeln!(out)?;
    } else {
        render(&status, now, &mut out)?;
    }
    out.flush()?;
    Ok(())
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
    }
    if locked {
        let interval = Duration::from_millis(current.map_or(0, |r| r.interval_ms.max(0) as u64));
        let last_activity = current
            .and_then(|r| r.last_sample_at.or(r.started_at))
            .or(status.recorder.since);
        if let Some(t) = last_activity {
            let quiet = (now - t).to_std().unwrap_or_default();
            if quiet > interval + opts.stalled_after {
                status.recorder.state = RecorderState::Stalled;
                problems.push(Problem {
                    code: "stalled",
                    message: format!(
                        "the recorder (pid {}) holds the database but has committed no sample \
                         for {} (its interval is {}): its source is failing or hung; see its \
                         log (`netmon service status` says where)",
                        status.recorder.pid.map_or("?".into(), |p| p.to_string()),
                        human_duration(quiet),
                        human_duration(interval)
                    ),
                });
            }
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
                    .map_or("never committed".into(), |t| human_time(t, now))
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
                    human_time(t, now),
                    r.stop_reason
                        .as_deref()
                        .map(|s| format!(", {s}"))
                        .unwrap_or_default()
                ))
                .unwrap_or_default()
        ),
    });
}

/// Open without creating, migrating or writing anything (`query_only`). Read-write when the
/// file allows, so closing the last connection tidies the WAL as usual; read-only otherwise
/// (SQLite falls back by itself).
fn open_for_status(db: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(2))?;
    conn.pragma_update(None, "query_only", true)?;
    // Fails here, rather than at the first query, when the file is not a database.
    let _: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    Ok(conn)
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

fn read_database(conn: &Connection, status: &mut Status, problems: &mut Vec<Problem>) {
    let schema: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap_or(0);
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
    let page = |p: &str| -> Option<u64> {
        conn.pragma_query_value(None, p, |r| r.get::<_, i64>(0))
            .ok()
            .map(|v| v.max(0) as u64)
    };
    if let (Some(free), Some(size)) = (page("freelist_count"), page("page_size")) {
        status.database.free_bytes = Some(free * size);
    }
    if schema == 0 {
        return;
    }
    let result = (|| -> rusqlite::Result<()> {
        status.tables = table_rows(conn)?;
        status.last_run = conn
            .query_row(
                "SELECT id, pid, started_at, first_tick_at, last_tick_at, stopped_at, stop_reason, \
                 source, interval_ms, hostname, version, notes FROM runs ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    let notes: Option<String> = r.get(11)?;
                    Ok((
                        Run {
                            id: r.get(0)?,
                            pid: r.get(1)?,
                            started_at: ms(r.get(2)?),
                            first_sample_at: ms(r.get(3)?),
                            last_sample_at: ms(r.get(4)?),
                            stopped_at: ms(r.get(5)?),
                            stop_reason: r.get(6)?,
                            source: r.get(7)?,
                            interval_ms: r.get(8)?,
                            hostname: r.get(9)?,
                            version: r.get(10)?,
                        },
                        notes,
                    ))
                },
            )
            .optional()?
            .map(|(run, notes)| {
                status.recorder.not_counted = notes
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_string)
                    .collect();
                run
            });
        status.recorder.last_sample_at =
            ms(conn.query_row("SELECT max(at) FROM ticks", [], |r| r.get(0))?);
        if let Some(run) = &status.last_run
            && run.source == "nettop"
            && let Some(e) = store::empty_samples(conn)?
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
                        |t| local(t).format("%Y-%m-%d %H:%M:%S %:z").to_string()
                    )
                ),
            });
        }
        let keep = |key: &str| -> rusqlite::Result<Option<Option<u64>>> {
            Ok(store::meta_get(conn, key)?
                .and_then(|v| v.parse::<u64>().ok())
                .map(|s| (s > 0).then_some(s)))
        };
        let (raw, hourly) = (keep("keep_raw_s")?, keep("keep_hourly_s")?);
        status.retention = Some(Retention {
            known: raw.is_some() && hourly.is_some(),
            raw_keep_s: raw.flatten(),
            hourly_keep_s: hourly.flatten(),
            raw_oldest_at: ms(conn.query_row("SELECT min(at) FROM ticks", [], |r| r.get(0))?),
            hourly_oldest_at: secs(
                conn.query_row("SELECT min(hour) FROM hourly", [], |r| r.get(0))?,
            ),
            daily_oldest_at: secs(conn.query_row("SELECT min(day) FROM daily", [], |r| r.get(0))?),
        });
        Ok(())
    })();
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

fn table_rows(conn: &Connection) -> rusqlite::Result<Vec<TableRows>> {
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
            Ok(TableRows { table, rows })
        })
        .collect()
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

/// The text form.
pub fn render(s: &Status, now: DateTime<Utc>, w: &mut dyn Write) -> std::io::Result<()> {
    let r = &s.recorder;
    let who = match (r.pid, r.since) {
        (Some(pid), Some(since)) => format!(" (pid {pid}, since {})", human_time(since, now)),
        (Some(pid), None) => format!(" (pid {pid})"),
        _ => String::new(),
    };
    writeln!(w, "Recorder:     {}{who}", r.state.as_str())?;
    if let Some(t) = r.last_sample_at {
        let every = r
            .interval_ms
            .map(|i| {
                format!(
                    ", every {}",
                    human_duration(Duration::from_millis(i.max(0) as u64))
                )
            })
            .unwrap_or_default();
        writeln!(w, "Last sample:  {}{every}", human_time(t, now))?;
    } else if s.database.exists {
        writeln!(w, "Last sample:  none yet")?;
    }
    if let Some(src) = &r.source {
        writeln!(w, "Source:       {src}")?;
        for n in &r.not_counted {
            writeln!(w, "  not counted: {n}")?;
        }
    }
    if let Some(run) = &s.last_run
        && r.state != RecorderState::Running
        && r.state != RecorderState::Stalled
    {
        let ended = match (&run.stopped_at, &run.stop_reason) {
            (Some(t), Some(why)) => format!("stopped {} ({why})", human_time(*t, now)),
            (Some(t), None) => format!("stopped {}", human_time(*t, now)),
            (None, _) => "never stopped".into(),
        };
        writeln!(
            w,
            "Last run:     #{} pid {}, started {}, {ended}",
            run.id,
            run.pid,
            run.started_at
                .map_or("at an unknown time".into(), |t| human_time(t, now))
        )?;
    }
    let d = &s.database;
    if d.exists {
        let mut facts = vec![human_bytes(d.size_bytes)];
        if let Some(f) = d.free_bytes.filter(|f| *f > 0) {
            facts.push(format!("{} free inside", human_bytes(f)));
        }
        if let Some(v) = d.schema {
            facts.push(format!("schema {v}"));
        }
        if let Some(m) = &d.mode {
            facts.push(format!("mode {m}"));
        }
        writeln!(
            w,
            "Database:     {} ({})",
            d.path.display(),
            facts.join(", ")
        )?;
    } else {
        writeln!(w, "Database:     {} (does not exist)", d.path.display())?;
    }
    if !s.tables.is_empty() {
        let rows: Vec<String> = s
            .tables
            .iter()
            .map(|t| format!("{} {}", t.table, t.rows))
            .collect();
        writeln!(w, "Rows:         {}", rows.join(", "))?;
    }
    if let Some(ret) = &s.retention {
        let keep = |k: Option<u64>| {
            if !ret.known {
                "as the recorder is told".to_string()
            } else {
                k.map_or("forever".into(), |s| human_duration(Duration::from_secs(s)))
            }
        };
        let from = |t: Option<DateTime<Utc>>| {
            t.map(|t| format!(" (from {})", local(t).format("%Y-%m-%d %H:%M")))
                .unwrap_or_default()
        };
        writeln!(
            w,
            "Retention:    samples {}{}, hourly totals {}{}, daily totals forever{}",
            keep(ret.raw_keep_s),
            from(ret.raw_oldest_at),
            keep(ret.hourly_keep_s),
            from(ret.hourly_oldest_at),
            from(ret.daily_oldest_at)
        )?;
    }
    if s.service.is_empty() {
        writeln!(w, "Service:      not installed")?;
    } else {
        for f in &s.service {
            writeln!(w, "Service:      {} ({})", f.name, f.path.display())?;
        }
    }
    if s.problems.is_empty() {
        writeln!(w, "Problems:     none")?;
    } else {
        writeln!(w, "Problems:")?;
        for p in &s.problems {
            writeln!(w, "  - {}", p.message)?;
        }
    }
    Ok(())
}

fn local(t: DateTime<Utc>) -> DateTime<Local> {
    t.with_timezone(&Local)
}

/// "2026-11-24 10:00:05 +01:00 (3m ago)".
pub fn human_time(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let stamp = local(t).format("%Y-%m-%d %H:%M:%S %:z");
    match (now - t).to_std() {
        Ok(d) => format!("{stamp} ({} ago)", human_duration(d)),
        Err(_) => format!("{stamp} (in the future: check the clock)"),
    }
}

/// At most two units, as everywhere else (`output::units`): "45s", "3m 20s", "400ms".
pub fn human_duration(d: Duration) -> String {
    units::duration_ms(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Decimal units, as everywhere else (`output::units`): "12.3 MB".
pub fn human_bytes(b: u64) -> String {
    units::bytes(b)
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
    }
}
