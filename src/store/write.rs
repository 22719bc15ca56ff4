//! The recorder's write path: runs, gaps, and one transaction per tick.
//!
//! A tick's transaction holds everything the tick learned: the tick row, its non-zero
//! per-process and per-connection deltas, the hourly and daily rollups (upserted, so they are
//! never behind), the counter state a restart resumes from, and the run's last-tick time (so a
//! crash is bounded to the last committed tick). Either all of it lands or none of it does.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::meta::{self, Key};
use super::{Error, networks, state};
use crate::delta::{Saved, StateChanges};
use crate::tick::{
    App, AppKind, HostTraffic, NetTraffic, ProcessRecord, ProcessTraffic, RemoteRecord,
};

/// Everything one tick writes.
#[derive(Debug, Clone)]
pub struct Tick<'a> {
    pub run_id: i64,
    /// Wall clock (epoch ms) when the source was read.
    pub at_ms: i64,
    /// Monotonic time the tick covers.
    pub elapsed_ms: i64,
    /// Epoch second of the local midnight that starts the day of `at_ms`.
    pub day: i64,
    pub traffic: &'a [ProcessTraffic],
    /// Browser traffic split across hosts (`crate::web::attribute`).
    pub web: &'a [HostTraffic],
    pub state: &'a StateChanges,
    /// Interface deltas and networks (`None`: no interface reading this tick).
    pub net: Option<&'a NetTraffic>,
}

/// What one committed tick wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickStats {
    pub tick_id: i64,
    pub sample_rows: usize,
    pub flow_rows: usize,
    pub web_rows: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Facts about a run, written when it starts.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub started_at_ms: i64,
    pub source: String,
    pub interval_ms: i64,
    pub pid: u32,
    pub hostname: Option<String>,
    pub boot_id: Option<String>,
    /// What the source cannot see, one sentence each (shown by `status`).
    pub notes: Vec<String>,
}

/// What tells applications apart: name, path, container ('' for none).
type AppIdentity = (String, String, String);

/// Refresh a process's `last_at` at most this often (ms): enough for retention to find
/// processes that have been silent for days, without a write per process per tick.
const LAST_AT_GRANULARITY_MS: i64 = 60_000;

struct CachedProcess {
    id: i64,
    app_id: i64,
    last_at_written: i64,
}

/// The recorder's connection and its id caches.
pub struct Writer {
    conn: Connection,
    apps: HashMap<AppIdentity, i64>,
    processes: HashMap<ProcessRecord, CachedProcess>,
    remotes: HashMap<RemoteRecord, i64>,
    web_hosts: HashMap<String, i64>,
    /// The counter-state journal's key ids since its last fold.
    journal: state::Journal,
    nets: networks::Cache,
}

impl Writer {
    pub fn new(conn: Connection) -> Self {
        Writer {
            conn,
            apps: HashMap::new(),
            processes: HashMap::new(),
            remotes: HashMap::new(),
            web_hosts: HashMap::new(),
            journal: state::Journal::default(),
            nets: networks::Cache::default(),
        }
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Record the start of a run; close any earlier run that crashed, and note the time
    /// nobody was recording as a gap.
    pub fn begin_run(&mut self, info: &RunInfo) -> Result<i64, Error> {
        let tx = self.conn.transaction()?;
        // Runs that never stopped crashed (the lock says none is running now).
        let crashed: Vec<(i64, i64)> = {
            let mut st = tx.prepare(
                "SELECT id, coalesce(last_tick_at, started_at) FROM runs WHERE stopped_at IS NULL",
            )?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        for (id, end) in &crashed {
            tx.execute(
                "UPDATE runs SET stopped_at = ?2, stop_reason = 'crashed' WHERE id = ?1",
                params![id, end],
            )?;
        }
        let previous: Option<(i64, Option<String>)> = tx
            .query_row(
                "SELECT coalesce(last_tick_at, stopped_at, started_at), stop_reason FROM runs \
                 ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        tx.execute(
            "INSERT INTO runs(started_at, source, interval_ms, pid, hostname, boot_id, version, notes) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                info.started_at_ms,
                info.source,
                info.interval_ms,
                info.pid,
                info.hostname,
                info.boot_id,
                env!("CARGO_PKG_VERSION"),
                (!info.notes.is_empty()).then(|| info.notes.join("\n")),
            ],
        )?;
        let run_id = tx.last_insert_rowid();
        let counted = recorded_until(&tx)?.unwrap_or(i64::MIN);
        if let Some((end, reason)) = previous
            .map(|(end, reason)| (end.max(counted), reason))
            .filter(|(end, _)| *end < info.started_at_ms)
        {
            let why = if reason.as_deref() == Some("crashed") {
                "recorder crashed"
            } else {
                "recorder not running"
            };
            tx.execute(
                "INSERT INTO gaps(run_id, start_at, end_at, reason) VALUES (?1, ?2, ?3, ?4)",
                params![run_id, end, info.started_at_ms, why],
            )?;
        }
        tx.commit()?;
        Ok(run_id)
    }

    /// Write what this recorder was told to keep (0: forever), for `status` to show.
    pub fn set_retention_settings(
        &self,
        keep_raw: Option<std::time::Duration>,
        keep_hourly: Option<std::time::Duration>,
    ) -> Result<(), Error> {
        for (key, keep) in [(Key::KeepRawS, keep_raw), (Key::KeepHourlyS, keep_hourly)] {
            meta::set(
                &self.conn,
                key,
                &keep.map_or(0, |d| d.as_secs()).to_string(),
            )?;
        }
        Ok(())
    }

    /// Record a stretch of a run in which counting was incomplete, from where recorded time
    /// ends at the earliest (`recorded_until`).
    pub fn gap(
        &mut self,
        run_id: i64,
        start_ms: i64,
        end_ms: i64,
        reason: &str,
    ) -> Result<(), Error> {
        insert_gap(&self.conn, run_id, start_ms, end_ms, reason)?;
        Ok(())
    }

    /// Note that the run's samples have come back with no counters at all since `since_ms`
    /// (`None`: they have rows again), for `netmon status` (meta `empty_samples_since`, value
    /// `"<run id> <epoch ms>"`).
    pub fn empty_samples(&mut self, run_id: i64, since_ms: Option<i64>) -> Result<(), Error> {
        match since_ms {
            Some(ms) => meta::set(
                &self.conn,
                Key::EmptySamplesSince,
                &format!("{run_id} {ms}"),
            )?,
            None => meta::delete(&self.conn, Key::EmptySamplesSince)?,
        }
        Ok(())
    }

    /// Record a clean stop.
    pub fn end_run(&mut self, run_id: i64, stopped_at_ms: i64, reason: &str) -> Result<(), Error> {
        self.conn.execute(
            "UPDATE runs SET stopped_at = ?2, stop_reason = ?3 WHERE id = ?1",
            params![run_id, stopped_at_ms, reason],
        )?;
        Ok(())
    }

    /// The counter state saved for `boot_id`, with each value's age at `now_ms`. State saved
    /// under another boot is discarded: a reboot restarted every counter.
    pub fn load_state(&mut self, boot_id: &str, now_ms: i64) -> Result<Vec<Saved>, Error> {
        {
            let tx = self.conn.transaction()?;
            let saved_boot = meta::get(&tx, Key::StateBootId)?;
            if saved_boot.as_deref() != Some(boot_id) {
                tx.execute("DELETE FROM counter_state", [])?;
                tx.execute("DELETE FROM counter_journal", [])?;
                meta::set(&tx, Key::StateBootId, boot_id)?;
                tx.commit()?;
                return Ok(Vec::new());
            }
        }
        let loaded = self.journal.load(&mut self.conn)?;
        Ok(loaded
            .into_iter()
            .filter_map(|(key, entry)| {
                let (bin, bout, saved_at) = entry?;
                Some(Saved {
                    key: crate::source::CounterKey(key),
                    bytes_in: bin,
                    bytes_out: bout,
                    age: std::time::Duration::from_millis(
                        now_ms.saturating_sub(saved_at).max(0) as u64
                    ),
                })
            })
            .collect())
    }

    /// Fold the counter journal into `counter_state` (the recorder does this every few
    /// minutes and when it stops; a restart replays whatever is not folded yet).
    pub fn fold_state(&mut self) -> Result<(), Error> {
        self.journal.fold(&mut self.conn)
    }

    /// Write one tick in one transaction.
    pub fn commit_tick(&mut self, tick: &Tick<'_>) -> Result<TickStats, Error> {
        self.commit_tick_ending_gap(tick, None)
    }

    /// [`Writer::commit_tick`], storing in the same transaction the gap `(start_ms, reason)`
    /// that this tick ends: the span of ticks that failed before it, whose bytes it carries.
    /// Written before the tick moves the run's recorded time on (`recorded_until`), and
    /// atomically with it, so recorded time never counts that span, not even for a moment.
    pub fn commit_tick_ending_gap(
        &mut self,
        tick: &Tick<'_>,
        gap: Option<(i64, &str)>,
    ) -> Result<TickStats, Error> {
        let row = self.journal.encode(tick.state);
        let result = self.try_commit_tick(tick, gap, &row);
        if result.is_ok() {
            self.journal.committed(row);
        } else {
            // Ids inserted by the rolled-back transaction are gone: forget every cached id
            // rather than write rows that point at nothing.
            self.apps.clear();
            self.processes.clear();
            self.remotes.clear();
            self.web_hosts.clear();
            self.nets.clear();
        }
        result
    }

    fn try_commit_tick(
        &mut self,
        tick: &Tick<'_>,
        gap: Option<(i64, &str)>,
        row: &state::Row,
    ) -> Result<TickStats, Error> {
        // Resolve ids outside the hot statements; new ones are inserted inside the transaction.
        let tx = self.conn.transaction()?;
        if let Some((start_ms, reason)) = gap {
            insert_gap(&tx, tick.run_id, start_ms, tick.at_ms, reason)?;
        }
        let net = networks::prepare(&tx, &mut self.nets, tick.net, tick.traffic, tick.at_ms)?;
        tx.prepare_cached(
            "INSERT INTO ticks(run_id, at, elapsed_ms, net) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![tick.run_id, tick.at_ms, tick.elapsed_ms, net.blob])?;
        let tick_id = tx.last_insert_rowid();
        let mut stats = TickStats {
            tick_id,
            ..TickStats::default()
        };
        let mut per_app: HashMap<i64, (u64, u64)> = HashMap::new();
        for t in tick.traffic {
            if t.bytes_in == 0 && t.bytes_out == 0 {
                continue;
            }
            let (process_id, app_id) = process_id(
                &tx,
                &mut self.apps,
                &mut self.processes,
                &t.process,
                tick.at_ms,
            )?;
            tx.prepare_cached(
                "INSERT INTO samples(tick_id, process_id, bytes_in, bytes_out) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT(tick_id, process_id) DO UPDATE SET \
                 bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out",
            )?
            .execute(params![tick_id, process_id, t.bytes_in as i64, t.bytes_out as i64])?;
            stats.sample_rows += 1;
            stats.bytes_in += t.bytes_in;
            stats.bytes_out += t.bytes_out;
            let a = per_app.entry(app_id).or_default();
            a.0 += t.bytes_in;
            a.1 += t.bytes_out;
            for f in &t.flows {
                let (bin, bout) = (f.bytes_in, f.bytes_out);
                if bin == 0 && bout == 0 {
                    continue;
                }
                let remote_id = remote_id(&tx, &mut self.remotes, &f.remote)?;
                tx.prepare_cached(
                    "INSERT INTO flow_samples(tick_id, process_id, remote_id, bytes_in, bytes_out) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(tick_id, process_id, remote_id) DO UPDATE SET \
                     bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out",
                )?
                .execute(params![tick_id, process_id, remote_id, bin as i64, bout as i64])?;
                stats.flow_rows += 1;
            }
        }
        let hour = tick.at_ms.div_euclid(3_600_000) * 3600;
        for (app_id, (bin, bout)) in &per_app {
            for (sql, bucket) in [(UPSERT_HOURLY, hour), (UPSERT_DAILY, tick.day)] {
                tx.prepare_cached(sql)?.execute(params![
                    bucket,
                    app_id,
                    *bin as i64,
                    *bout as i64,
                    tick.at_ms
                ])?;
            }
        }
        networks::roll_up(
            &tx,
            &mut self.nets,
            &net,
            hour,
            tick.day,
            tick.at_ms,
            &per_app,
        )?;
        let mut per_host: HashMap<(i64, i64, i64), (u64, u64)> = HashMap::new();
        for w in tick.web {
            if w.bytes_in == 0 && w.bytes_out == 0 {
                continue;
            }
            let app_id = app_id(&tx, &mut self.apps, &w.app, None, AppKind::Application)?;
            let host_id = web_host_id(&tx, &mut self.web_hosts, &w.host)?;
            let method = w.method as i64;
            tx.prepare_cached(
                "INSERT INTO web_samples(tick_id, app_id, host_id, method, bytes_in, bytes_out) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(tick_id, app_id, host_id, method) \
                 DO UPDATE SET bytes_in = bytes_in + excluded.bytes_in, \
                 bytes_out = bytes_out + excluded.bytes_out",
            )?
            .execute(params![
                tick_id,
                app_id,
                host_id,
                method,
                w.bytes_in as i64,
                w.bytes_out as i64
            ])?;
            stats.web_rows += 1;
            let e = per_host.entry((app_id, host_id, method)).or_default();
            e.0 += w.bytes_in;
            e.1 += w.bytes_out;
        }
        for ((app_id, host_id, method), (bin, bout)) in &per_host {
            for (sql, bucket) in [(UPSERT_WEB_HOURLY, hour), (UPSERT_WEB_DAILY, tick.day)] {
                tx.prepare_cached(sql)?.execute(params![
                    bucket,
                    app_id,
                    host_id,
                    method,
                    *bin as i64,
                    *bout as i64,
                    tick.at_ms
                ])?;
            }
        }
        state::journal(&tx, tick.at_ms, row)?;
        // A wall clock stepped back does not move the run's end back: recorded time (which
        // `/metrics` exports as a counter) never shrinks.
        tx.prepare_cached(
            "UPDATE runs SET last_tick_at = max(coalesce(last_tick_at, ?2), ?2), \
             first_tick_at = coalesce(first_tick_at, ?2) WHERE id = ?1",
        )?
        .execute(params![tick.run_id, tick.at_ms])?;
        tx.commit()?;
        Ok(stats)
    }

    /// Drop cached ids of processes not seen since `before_ms` (retention may delete them).
    pub fn forget_processes_before(&mut self, before_ms: i64) {
        self.processes.retain(|_, p| p.last_at_written >= before_ms);
    }
}

/// Where recorded time ends so far: the newest tick of any run. A gap written later starts
/// there at the earliest. Gaps are written as they end, so normally they start at or after it
/// anyway; only a wall clock stepped back (then forward, or ticks failing) would put a gap over
/// time a tick already covered, and recorded time (`runs` minus `gaps`, which `/metrics`
/// exports as a counter) must never shrink. The part of such a gap before this point is not
/// stored: ticks were labelled there.
/// Store a gap of `run_id` from `start_ms` (or where recorded time ends, if later) to
/// `end_ms`; nothing when that leaves no time.
fn insert_gap(
    conn: &Connection,
    run_id: i64,
    start_ms: i64,
    end_ms: i64,
    reason: &str,
) -> rusqlite::Result<()> {
    let start_ms = start_ms.max(recorded_until(conn)?.unwrap_or(i64::MIN));
    if end_ms > start_ms {
        conn.prepare_cached(
            "INSERT INTO gaps(run_id, start_at, end_at, reason) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![run_id, start_ms, end_ms, reason])?;
    }
    Ok(())
}

fn recorded_until(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT max(last_tick_at) FROM runs")?
        .query_row([], |r| r.get(0))
}

const UPSERT_HOURLY: &str = "INSERT INTO hourly(hour, app_id, bytes_in, bytes_out, first_at, last_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT(hour, app_id) DO UPDATE SET \
     bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out, \
     first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at)";

const UPSERT_DAILY: &str = "INSERT INTO daily(day, app_id, bytes_in, bytes_out, first_at, last_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT(day, app_id) DO UPDATE SET \
     bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out, \
     first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at)";

const UPSERT_WEB_HOURLY: &str = "INSERT INTO web_hourly(hour, app_id, host_id, method, \
     bytes_in, bytes_out, first_at, last_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) \
     ON CONFLICT(hour, app_id, host_id, method) DO UPDATE SET \
     bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out, \
     first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at)";

const UPSERT_WEB_DAILY: &str = "INSERT INTO web_daily(day, app_id, host_id, method, \
     bytes_in, bytes_out, first_at, last_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) \
     ON CONFLICT(day, app_id, host_id, method) DO UPDATE SET \
     bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out, \
     first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at)";

fn web_host_id(
    conn: &Connection,
    cache: &mut HashMap<String, i64>,
    host: &str,
) -> rusqlite::Result<i64> {
    if let Some(id) = cache.get(host) {
        return Ok(*id);
    }
    conn.prepare_cached("INSERT INTO web_hosts(name) VALUES (?1) ON CONFLICT(name) DO NOTHING")?
        .execute([host])?;
    let id = conn
        .prepare_cached("SELECT id FROM web_hosts WHERE name = ?1")?
        .query_row([host], |r| r.get(0))?;
    cache.insert(host.to_string(), id);
    Ok(id)
}

fn app_id(
    conn: &Connection,
    cache: &mut HashMap<AppIdentity, i64>,
    app: &App,
    container: Option<&str>,
    kind: AppKind,
) -> rusqlite::Result<i64> {
    let key = (
        app.name.clone(),
        app.path.clone().unwrap_or_default(),
        container.unwrap_or_default().to_string(),
    );
    if let Some(id) = cache.get(&key) {
        return Ok(*id);
    }
    let id = conn
        .prepare_cached("SELECT id FROM apps WHERE name = ?1 AND path = ?2 AND container = ?3")?
        .query_row(params![key.0, key.1, key.2], |r| r.get(0))
        .optional()?;
    let id = match id {
        Some(id) => id,
        None => {
            conn.prepare_cached(
                "INSERT INTO apps(name, path, container, kind) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![key.0, key.1, key.2, kind as i64])?;
            conn.last_insert_rowid()
        }
    };
    cache.insert(key, id);
    Ok(id)
}

fn process_id(
    conn: &Connection,
    apps: &mut HashMap<AppIdentity, i64>,
    cache: &mut HashMap<ProcessRecord, CachedProcess>,
    p: &ProcessRecord,
    at_ms: i64,
) -> rusqlite::Result<(i64, i64)> {
    if let Some(c) = cache.get_mut(p) {
        if at_ms - c.last_at_written >= LAST_AT_GRANULARITY_MS {
            conn.prepare_cached("UPDATE processes SET last_at = ?2 WHERE id = ?1")?
                .execute(params![c.id, at_ms])?;
            c.last_at_written = at_ms;
        }
        return Ok((c.id, c.app_id));
    }
    let app_id = app_id(conn, apps, &p.app, p.container.as_deref(), p.kind)?;
    conn.prepare_cached(
        "INSERT INTO processes(app_id, pid, name, exe, uid, start_time, first_at, last_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    )?
    .execute(params![
        app_id,
        p.pid,
        p.name,
        p.exe,
        p.uid,
        p.start_time.map(|s| s as i64),
        at_ms
    ])?;
    let id = conn.last_insert_rowid();
    cache.insert(
        p.clone(),
        CachedProcess {
            id,
            app_id,
            last_at_written: at_ms,
        },
    );
    Ok((id, app_id))
}

fn remote_id(
    conn: &Connection,
    cache: &mut HashMap<RemoteRecord, i64>,
    r: &RemoteRecord,
) -> rusqlite::Result<i64> {
    if let Some(id) = cache.get(r) {
        return Ok(*id);
    }
    let id = conn
        .prepare_cached("SELECT id FROM remotes WHERE host = ?1 AND port = ?2 AND proto = ?3")?
        .query_row(params![r.host, r.port, r.proto], |row| row.get(0))
        .optional()?;
    let id = match id {
        Some(id) => id,
        None => {
            conn.prepare_cached("INSERT INTO remotes(proto, host, port) VALUES (?1, ?2, ?3)")?
                .execute(params![r.proto, r.host, r.port])?;
            conn.last_insert_rowid()
        }
    };
    cache.insert(r.clone(), id);
    Ok(id)
}

#[cfg(test)]
mod tests;
