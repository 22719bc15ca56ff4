//! The recorder's write path: runs, gaps, and one transaction per batch of ticks.
//!
//! The recorder keeps its ticks in memory and writes them in batches (`--write-every`, see
//! `sql/0006_batched_writes.sql`). A batch's transaction holds everything its ticks learned:
//! each tick's own row and its non-zero per-process and per-connection deltas (ticks are never
//! merged), the hourly and daily rollups (upserted, so they are never behind the ticks), the
//! gaps the ticks end, the counter state a restart resumes from (one journal row: the last word
//! per counter), and the run's last-tick time (so a crash is bounded to the last written
//! batch). Either all of it lands or none of it does.

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

/// A stretch of time in which counting was incomplete, written with the batch that holds the
/// tick it precedes (`insert_gap` rules: it never reaches back over recorded time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub start_ms: i64,
    pub end_ms: i64,
    pub reason: String,
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

impl RunInfo {
    /// A run of this process known by its source, start and interval alone (no hostname,
    /// boot id or notes): tests, benchmarks and synthetic history.
    pub fn new(source: &str, started_at_ms: i64, interval_ms: i64) -> Self {
        RunInfo {
            started_at_ms,
            source: source.to_string(),
            interval_ms,
            pid: std::process::id(),
            hostname: None,
            boot_id: None,
            notes: Vec::new(),
        }
    }
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
            "INSERT INTO runs(started_at, source, interval_ms, pid, hostname, boot_id, version, notes, \
             network_split) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                info.started_at_ms,
                info.source,
                info.interval_ms,
                info.pid,
                info.hostname,
                info.boot_id,
                env!("CARGO_PKG_VERSION"),
                (!info.notes.is_empty()).then(|| info.notes.join("\n")),
                // nettop names each connection's interface; the Linux sources do not.
                if info.source == crate::source::SourceKind::Nettop.as_str() {
                    "connection"
                } else {
                    "tick"
                },
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

    /// Note how often this run makes its ticks durable (0: every tick), for readers telling a
    /// recorder between two writes from a stalled one.
    pub fn set_write_every(&mut self, run_id: i64, every_ms: i64) -> Result<(), Error> {
        self.conn.execute(
            "UPDATE runs SET write_every_ms = ?2 WHERE id = ?1",
            params![run_id, every_ms],
        )?;
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
    /// that this tick ends (written before the tick moves the run's recorded time on).
    pub fn commit_tick_ending_gap(
        &mut self,
        tick: &Tick<'_>,
        gap: Option<(i64, &str)>,
    ) -> Result<TickStats, Error> {
        let gaps: Vec<Gap> = gap
            .map(|(start_ms, reason)| Gap {
                start_ms,
                end_ms: tick.at_ms,
                reason: reason.to_string(),
            })
            .into_iter()
            .collect();
        let stats = self.commit_batch(&[(tick.clone(), &gaps[..])])?;
        Ok(stats.into_iter().next().unwrap_or_default())
    }

    /// Write a batch of ticks, in order, in one transaction: each with the gaps written just
    /// before it. Every tick keeps its own row; the counter journal gets one row holding the
    /// last word per counter over the batch (each tick's `state` applied in order). On failure
    /// nothing is written and the caller keeps the batch.
    pub fn commit_batch(&mut self, ticks: &[(Tick<'_>, &[Gap])]) -> Result<Vec<TickStats>, Error> {
        let merged = state::merge(ticks.iter().map(|(t, _)| t.state));
        let row = self.journal.encode(&merged);
        let result = self.try_commit_batch(ticks, &row);
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

    fn try_commit_batch(
        &mut self,
        ticks: &[(Tick<'_>, &[Gap])],
        row: &state::Row,
    ) -> Result<Vec<TickStats>, Error> {
        let Writer {
            conn,
            apps,
            processes,
            remotes,
            web_hosts,
            nets,
            ..
        } = self;
        let mut ids = Ids {
            apps,
            processes,
            remotes,
            web_hosts,
            nets,
        };
        let tx = conn.transaction()?;
        let mut all = Vec::with_capacity(ticks.len());
        // Rollups summed over the batch first: one upsert per bucket and app, not per tick.
        let mut rollups = Rollups::default();
        let mut last_at: Option<(i64, i64)> = None;
        for (tick, gaps) in ticks {
            for g in gaps.iter() {
                insert_gap(&tx, tick.run_id, g.start_ms, g.end_ms, &g.reason)?;
            }
            all.push(write_tick(&tx, &mut ids, tick, &mut rollups)?);
            // A wall clock stepped back does not move the run's end back: recorded time (which
            // `/metrics` exports as a counter) never shrinks. Written per tick, so a gap the
            // next tick ends starts where recorded time ends (`insert_gap`).
            tx.prepare_cached(
                "UPDATE runs SET last_tick_at = max(coalesce(last_tick_at, ?2), ?2), \
                 first_tick_at = coalesce(first_tick_at, ?2) WHERE id = ?1",
            )?
            .execute(params![tick.run_id, tick.at_ms])?;
            last_at = Some((tick.run_id, tick.at_ms));
        }
        rollups.write(&tx)?;
        if let Some((_, at_ms)) = last_at
            && !row.is_empty()
        {
            state::journal(&tx, at_ms, row)?;
        }
        tx.commit()?;
        Ok(all)
    }

    /// Drop cached ids of processes not seen since `before_ms` (retention may delete them).
    pub fn forget_processes_before(&mut self, before_ms: i64) {
        self.processes.retain(|_, p| p.last_at_written >= before_ms);
    }
}

/// The writer's id caches, borrowed apart from its connection for a transaction.
struct Ids<'a> {
    apps: &'a mut HashMap<AppIdentity, i64>,
    processes: &'a mut HashMap<ProcessRecord, CachedProcess>,
    remotes: &'a mut HashMap<RemoteRecord, i64>,
    web_hosts: &'a mut HashMap<String, i64>,
    nets: &'a mut networks::Cache,
}

/// One tick's rows (its rollups are added to `rollups`, written once per batch).
fn write_tick(
    tx: &Connection,
    ids: &mut Ids<'_>,
    tick: &Tick<'_>,
    rollups: &mut Rollups,
) -> Result<TickStats, Error> {
    let mut stats = TickStats::default();
    let hour = tick.at_ms.div_euclid(3_600_000) * 3600;
    // Ids first: the tick's row carries its connections (`super::flows`).
    let mut samples: Vec<(i64, u64, u64)> = Vec::with_capacity(tick.traffic.len());
    // The tick's bytes per application, for its split across networks.
    let mut per_app: HashMap<i64, (u64, u64)> = HashMap::new();
    let mut flows: Vec<super::flows::Flow> = Vec::new();
    // Processes with bytes on other networks than the tick's app network.
    let mut split: Vec<networks::ProcessSplit<'_>> = Vec::new();
    for t in tick.traffic {
        if t.bytes_in == 0 && t.bytes_out == 0 {
            continue;
        }
        let (process_id, app_id) = process_id(tx, ids.apps, ids.processes, &t.process, tick.at_ms)?;
        samples.push((process_id, t.bytes_in, t.bytes_out));
        stats.sample_rows += 1;
        stats.bytes_in += t.bytes_in;
        stats.bytes_out += t.bytes_out;
        for bucket in [Bucket::Hour(hour), Bucket::Day(tick.day)] {
            rollups
                .apps
                .add((bucket, app_id), t.bytes_in, t.bytes_out, tick.at_ms);
        }
        let a = per_app.entry(app_id).or_default();
        a.0 += t.bytes_in;
        a.1 += t.bytes_out;
        if !t.networks.is_empty() {
            split.push(networks::ProcessSplit {
                process_id,
                app_id,
                networks: &t.networks,
            });
        }
        for f in &t.flows {
            if f.bytes_in == 0 && f.bytes_out == 0 {
                continue;
            }
            let remote_id = remote_id(tx, ids.remotes, &f.remote)?;
            flows.push((process_id, remote_id, f.bytes_in, f.bytes_out));
            stats.flow_rows += 1;
        }
    }
    let net = networks::prepare(tx, ids.nets, tick.net, tick.traffic, &split, tick.at_ms)?;
    tx.prepare_cached(
        "INSERT INTO ticks(run_id, at, elapsed_ms, flows, net) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        tick.run_id,
        tick.at_ms,
        tick.elapsed_ms,
        super::flows::encode(flows),
        net.blob
    ])?;
    networks::roll_up(
        tx,
        ids.nets,
        &mut rollups.net,
        &net,
        hour,
        tick.day,
        tick.at_ms,
        &per_app,
    )?;
    let tick_id = tx.last_insert_rowid();
    stats.tick_id = tick_id;
    for (process_id, bin, bout) in samples {
        tx.prepare_cached(
            "INSERT INTO samples(tick_id, process_id, bytes_in, bytes_out) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(tick_id, process_id) DO UPDATE SET \
             bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out",
        )?
        .execute(params![tick_id, process_id, bin as i64, bout as i64])?;
    }
    for w in tick.web {
        if w.bytes_in == 0 && w.bytes_out == 0 {
            continue;
        }
        let app_id = app_id(tx, ids.apps, &w.app, None, AppKind::Application)?;
        let host_id = web_host_id(tx, ids.web_hosts, &w.host)?;
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
        for bucket in [Bucket::Hour(hour), Bucket::Day(tick.day)] {
            rollups.web.add(
                (bucket, app_id, host_id, method),
                w.bytes_in,
                w.bytes_out,
                tick.at_ms,
            );
        }
    }
    Ok(stats)
}

/// A rollup bucket: a UTC hour (epoch second) or a local day (epoch second of its midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bucket {
    Hour(i64),
    Day(i64),
}

/// Bytes per rollup key over a batch, with the first and last tick that added to it.
#[derive(Debug)]
struct Sums<K>(HashMap<K, (u64, u64, i64, i64)>);

impl<K> Default for Sums<K> {
    fn default() -> Self {
        Sums(HashMap::new())
    }
}

impl<K: std::hash::Hash + Eq> Sums<K> {
    fn add(&mut self, key: K, bytes_in: u64, bytes_out: u64, at_ms: i64) {
        let e = self.0.entry(key).or_insert((0, 0, at_ms, at_ms));
        e.0 += bytes_in;
        e.1 += bytes_out;
        e.2 = e.2.min(at_ms);
        e.3 = e.3.max(at_ms);
    }
}

/// A batch's rollups, upserted once per key when the batch is written.
#[derive(Debug, Default)]
struct Rollups {
    apps: Sums<(Bucket, i64)>,
    web: Sums<(Bucket, i64, i64, i64)>,
    /// `net_hourly`/`net_daily` and `app_net_hourly`/`app_net_daily`.
    net: networks::Sums,
}

impl Rollups {
    fn write(&self, tx: &Connection) -> rusqlite::Result<()> {
        for ((bucket, app_id), (bin, bout, first, last)) in &self.apps.0 {
            let (sql, at) = match bucket {
                Bucket::Hour(h) => (UPSERT_HOURLY, h),
                Bucket::Day(d) => (UPSERT_DAILY, d),
            };
            tx.prepare_cached(sql)?.execute(params![
                at,
                app_id,
                *bin as i64,
                *bout as i64,
                first,
                last
            ])?;
        }
        for ((bucket, app_id, host_id, method), (bin, bout, first, last)) in &self.web.0 {
            let (sql, at) = match bucket {
                Bucket::Hour(h) => (UPSERT_WEB_HOURLY, h),
                Bucket::Day(d) => (UPSERT_WEB_DAILY, d),
            };
            tx.prepare_cached(sql)?.execute(params![
                at,
                app_id,
                host_id,
                method,
                *bin as i64,
                *bout as i64,
                first,
                last
            ])?;
        }
        self.net.write(tx)
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
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(hour, app_id) DO UPDATE SET \
     bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out, \
     first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at)";

const UPSERT_DAILY: &str = "INSERT INTO daily(day, app_id, bytes_in, bytes_out, first_at, last_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(day, app_id) DO UPDATE SET \
     bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out, \
     first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at)";

const UPSERT_WEB_HOURLY: &str = "INSERT INTO web_hourly(hour, app_id, host_id, method, \
     bytes_in, bytes_out, first_at, last_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
     ON CONFLICT(hour, app_id, host_id, method) DO UPDATE SET \
     bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out, \
     first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at)";

const UPSERT_WEB_DAILY: &str = "INSERT INTO web_daily(day, app_id, host_id, method, \
     bytes_in, bytes_out, first_at, last_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
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
