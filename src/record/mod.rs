//! `netmon record`: the synchronous sampling loop.
//!
//! Each tick: read a snapshot from the source, turn it into deltas (`crate::delta`), resolve
//! processes to applications (`attribute`), split browser applications' bytes across the
//! hosts they served (`crate::web::attribute`), and commit everything in one transaction
//! (`crate::store::write`). Ticks are scheduled on the monotonic clock (`clock`); the wall
//! clock only labels them. SIGINT, SIGTERM and SIGHUP stop the loop within one interval: a
//! sample in progress is abandoned (its child killed), a commit in progress finishes, the run
//! is closed, and the process exits 0. If a commit fails (a full disk, a locked database), the
//! tick's deltas are kept and committed with the next tick, so a passing database error loses
//! nothing; that tick's stored elapsed time is the whole span its bytes cover, the failed
//! ticks count as `failed` in the summary, and the span is recorded as a gap saying where its
//! bytes went.

pub mod alerts;
pub mod attribute;
pub mod clock;
pub mod networks;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{SecondsFormat, Utc};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing::{debug, debug_span, error, info, warn};

use crate::delta::{self, Engine, StateChanges};
use crate::procinfo::{self, usage};
use crate::source::{self, Cancel, CounterKey, Source, SourceKind, SourceOptions};
use crate::store::lock::RecorderLock;
use crate::store::retention::{self, Policy};
use crate::store::write::{RunInfo, Tick, Writer};
use crate::store::{self, Create};
use crate::tick::{HostTraffic, NetTraffic, ProcessRecord, ProcessTraffic};
use crate::web::attribute::HostSplitter;

use clock::{Schedule, WallJump};

/// Everything `record` needs, validated.
#[derive(Debug, Clone)]
pub struct Options {
    pub db: PathBuf,
    pub source: SourceKind,
    pub interval: Duration,
    pub sample_timeout: Duration,
    pub retention: Policy,
    pub include_loopback: bool,
    pub max_rate: u64,
    /// Announce an application above this many bytes per second for a minute.
    pub alert_rate: Option<u64>,
    /// Stop after this many committed ticks.
    pub max_ticks: Option<u64>,
    /// Files are 0640 rather than 0600 (a system recorder whose data a user reads).
    pub share_with_group: bool,
    /// A process table to resolve pids from instead of the OS (tests).
    pub process_table: Option<HashMap<u32, procinfo::ProcInfo>>,
}

/// How often the retention pass runs.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// How often the counter journal is folded into `counter_state` (it is replayed on restart,
/// so this only bounds its size; see sql/0003_counter_journal.sql).
const FOLD_EVERY: Duration = Duration::from_secs(300);
/// How often an info-level summary is logged.
const SUMMARY_EVERY: Duration = Duration::from_secs(300);
/// The longest pause between attempts after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Why the loop ended.
enum Stop {
    Signal(i32),
    TickLimit,
}

/// Record until stopped: open, loop, finish.
pub fn run(opts: Options) -> anyhow::Result<()> {
    let mut session = Session::open(&opts)?;
    let stop = session.record()?;
    session.finish(stop)
}

/// A recording in progress: the lock, the source, the signal watcher, and the loop's state.
struct Session<'a> {
    opts: &'a Options,
    /// Held for the whole run; released when dropped.
    _lock: RecorderLock,
    source: Box<dyn Source>,
    rec: Recorder<'a>,
    cancel: Cancel,
    signals: mpsc::Receiver<i32>,
    signal_handle: signal_hook::iterator::Handle,
}

impl<'a> Session<'a> {
    /// Take the lock, open (or create) the database, start the source, begin the run, resume
    /// the saved counters, and start watching for signals.
    fn open(opts: &'a Options) -> anyhow::Result<Self> {
        let started = Utc::now();
        if opts.share_with_group {
            // New files (lock, -wal, -shm) readable by the group, never by others.
            // SAFETY: umask only changes this process's file creation mask.
            unsafe {
                libc::umask(0o027);
            }
        }
        // Nothing is created or changed (directory, lock, mode) before the path is known to
        // be a new file or a netmon database.
        store::check_target(&opts.db)?;
        // The lock lives beside the database: on a fresh machine its directory is made first.
        store::open::create_parent(&opts.db)?;
        let lock = RecorderLock::acquire(
            &opts.db,
            &started.to_rfc3339_opts(SecondsFormat::Secs, true),
        )?;
        let conn = store::open(&opts.db, Create::IfMissing)?;
        if opts.share_with_group {
            store::open::share_with_group(&conn, &opts.db, lock.path())?;
        }
        let source = source::open(
            opts.source,
            &SourceOptions {
                sample_timeout: opts.sample_timeout,
            },
        )?;
        let kind = source.kind();
        let mut writer = Writer::new(conn);
        // `netmon status` shows the retention this recorder applies.
        writer.set_retention_settings(opts.retention.raw, opts.retention.hourly)?;
        let boot = procinfo::boot_id();
        let run_id = writer.begin_run(&RunInfo {
            started_at_ms: started.timestamp_millis(),
            source: kind.as_str().to_string(),
            interval_ms: opts.interval.as_millis() as i64,
            pid: std::process::id(),
            hostname: procinfo::hostname(),
            boot_id: Some(boot.clone()),
            notes: source.blind_spots(),
        })?;
        let saved = writer.load_state(&boot, Utc::now().timestamp_millis())?;
        let resumed = saved.len();
        let mut engine = Engine::new(delta::Config {
            max_rate: opts.max_rate,
            ..delta::Config::default()
        });
        let mut interfaces = networks::open(opts.max_rate, opts.include_loopback);
        engine.resume(interfaces.resume(saved));

        let cancel = Cancel::new();
        let (sig_tx, sig_rx) = mpsc::channel::<i32>();
        let mut signals =
            Signals::new([SIGINT, SIGTERM, SIGHUP]).context("installing signal handlers")?;
        let signal_handle = signals.handle();
        {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                for sig in signals.forever() {
                    cancel.cancel();
                    if sig_tx.send(sig).is_err() {
                        break;
                    }
                }
            });
        }

        let chosen = if opts.source == SourceKind::Auto && kind != SourceKind::Auto {
            " (chosen by --source auto)"
        } else {
            ""
        };
        eprintln!(
            "netmon record: source {}{chosen}, database {}, every {}",
            kind.as_str(),
            opts.db.display(),
            humantime::format_duration(opts.interval)
        );
        for note in source.blind_spots() {
            eprintln!("netmon record: not counted: {note}");
        }
        if !opts.include_loopback {
            debug!("loopback traffic is not counted (--include-loopback counts it)");
        }
        info!(run = run_id, resumed_counters = resumed, boot = %boot, "recording");

        Ok(Session {
            opts,
            _lock: lock,
            source,
            rec: {
                let mut rec = Recorder::new(opts, writer, engine, run_id);
                rec.interfaces = interfaces;
                rec.watch_empty = kind == SourceKind::Nettop;
                if let Some(table) = opts.process_table.clone() {
                    rec.resolver = attribute::ProcessResolver::new(Box::new(move |pid| {
                        table.get(&pid).cloned()
                    }));
                }
                rec
            },
            cancel,
            signals: sig_rx,
            signal_handle,
        })
    }

    /// Tick until a signal, the tick limit, or a source that can never work again (an error).
    fn record(&mut self) -> anyhow::Result<Stop> {
        let opts = self.opts;
        let rec = &mut self.rec;
        let mut schedule = Schedule::new(Instant::now(), opts.interval);
        let mut last_retention: Option<Instant> = None;
        let mut last_summary = Instant::now();
        let mut last_fold = Instant::now();
        loop {
            let due = schedule.due();
            let now = Instant::now();
            if due > now {
                match self.signals.recv_timeout(due - now) {
                    Ok(sig) => return Ok(Stop::Signal(sig)),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => {}
                }
            }
            if let Ok(sig) = self.signals.try_recv() {
                return Ok(Stop::Signal(sig));
            }
            let span = debug_span!("tick", n = rec.ticks + 1).entered();
            let result = self.source.sample(&self.cancel);
            let sampled_at = Instant::now();
            match result {
                Ok(snapshot) => rec.tick(snapshot, sampled_at),
                Err(source::Error::Cancelled) => {
                    drop(span);
                    return Ok(Stop::Signal(self.signals.try_recv().unwrap_or(SIGTERM)));
                }
                Err(e) if e.is_permanent() => {
                    let now_ms = Utc::now().timestamp_millis();
                    rec.stop_failing(now_ms);
                    let _ = rec
                        .writer
                        .end_run(rec.run_id, now_ms, &format!("error: {e}"));
                    return Err(e.into());
                }
                Err(e) => rec.failed(&e),
            }
            drop(span);

            let now = Instant::now();
            let skipped = schedule.advance(now);
            if skipped > 0 {
                debug!(skipped, "tick ran past later due times; they were skipped");
            }
            if let Some(f) = &rec.failing {
                schedule.not_before(now + backoff(opts.interval, f.count));
            }
            if rec.ticks > 0
                && last_retention.is_none_or(|t| now.duration_since(t) >= RETENTION_EVERY)
            {
                rec.retention();
                last_retention = Some(now);
            }
            if now.duration_since(last_fold) >= FOLD_EVERY {
                if let Err(e) = rec.writer.fold_state() {
                    error!(error = %e, "folding the counter journal failed; it is kept and retried");
                }
                last_fold = now;
            }
            if now.duration_since(last_summary) >= SUMMARY_EVERY {
                rec.log_summary();
                last_summary = now;
            }
            if opts.max_ticks.is_some_and(|n| rec.ticks >= n) {
                return Ok(Stop::TickLimit);
            }
        }
    }

    /// Commit what is pending, fold the journal, close the run, and log what it cost.
    fn finish(mut self, stop: Stop) -> anyhow::Result<()> {
        let rec = &mut self.rec;
        let stopped_ms = Utc::now().timestamp_millis();
        rec.stop_failing(stopped_ms);
        let reason = match stop {
            Stop::Signal(sig) => format!("signal {}", signal_name(sig)),
            Stop::TickLimit => "tick limit".to_string(),
        };
        if let Err(e) = rec.writer.fold_state() {
            error!(error = %e, "folding the counter journal failed; the next run replays it");
        }
        rec.writer.end_run(rec.run_id, stopped_ms, &reason)?;
        rec.log_summary();
        self.signal_handle.close();
        // This program's own peak (not a parent's, inherited across exec).
        let (cpu, max_rss_kib) = usage::usage().unwrap_or_default();
        // Bytes this process handed to write(2): nearly all of it SQLite's WAL and database.
        let written_bytes = usage::written_bytes().unwrap_or(0);
        info!(run = rec.run_id, reason = %reason, ticks = rec.ticks,
            cpu_ms = cpu.as_millis() as u64, max_rss_kib, written_bytes, "stopped");
        Ok(())
    }
}

/// Pause after `failures` consecutive failed ticks: none after the first, then doubling.
fn backoff(interval: Duration, failures: u32) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let factor = 1u32 << (failures - 1).min(16);
    interval
        .saturating_mul(factor)
        .min(MAX_BACKOFF.max(interval))
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "other",
    }
}

#[derive(Debug, Default)]
struct Summary {
    ticks: u64,
    failed: u64,
    bytes_in: u64,
    bytes_out: u64,
    sample_rows: u64,
    /// This process's CPU time (user + system) when the summary period started.
    cpu_at_start: Duration,
}

/// A streak of ticks that failed: their source failed, or their commit did.
struct Failing {
    /// Consecutive failures.
    count: u32,
    /// Of those, commits that failed (a full disk, a locked database): their bytes are kept
    /// and stored with the tick that ends the streak.
    unwritten: u32,
    /// Wall time (epoch ms) of the last committed tick, or of the run's start.
    since_ms: i64,
    /// The last failure.
    error: String,
}

impl Failing {
    /// The gap's reason: how many ticks failed, the last error, and where the span's bytes
    /// went (`lost`: the last try to store kept deltas failed).
    fn reason(&self, lost: bool) -> String {
        let fate = if lost {
            "; the bytes of this span could not be stored and are not counted"
        } else if self.unwritten > 0 {
            "; their bytes are stored with the tick that ends this gap"
        } else {
            ""
        };
        format!("{} tick(s) failed: {}{fate}", self.count, self.error)
    }
}

/// Deltas whose commit failed, kept for the next commit.
struct Pending {
    traffic: Vec<ProcessTraffic>,
    web: Vec<HostTraffic>,
    state: StateChanges,
    net: Option<NetTraffic>,
    /// The monotonic time these deltas cover: from the last committed tick's sample to the
    /// latest sample merged in. The tick that finally stores them says so (`elapsed_ms`), so
    /// rates over it are bytes over the real span, not over one interval.
    covers: Duration,
    /// Wall time (epoch ms) of the latest sample merged in.
    at_ms: i64,
}

/// One run's per-tick work: deltas, attribution, commits, failures and summaries.
struct Recorder<'a> {
    opts: &'a Options,
    writer: Writer,
    engine: Engine,
    resolver: attribute::ProcessResolver,
    /// Splits browser applications' bytes across hosts.
    web: HostSplitter,
    run_id: i64,
    last_mono: Option<Instant>,
    last_wall_ms: Option<i64>,
    /// The current streak of failed ticks, if any.
    failing: Option<Failing>,
    /// Deltas whose commit failed, to be committed with the next tick.
    pending: Option<Pending>,
    ticks: u64,
    summary: Summary,
    /// Whether a sample with no counters at all is a fault worth telling `status` about: for
    /// nettop it is (a Mac always has sockets; nettop prints its header alone when it cannot
    /// read the statistics), for the Linux sources an idle machine can show nothing.
    watch_empty: bool,
    /// Wall time of the first of the current run of samples with no counters.
    empty_since: Option<i64>,
    /// Interface counters and networks.
    interfaces: networks::Interfaces,
    /// Data caps and the rate alert.
    alerts: alerts::Alerts,
}

impl<'a> Recorder<'a> {
    fn new(opts: &'a Options, writer: Writer, engine: Engine, run_id: i64) -> Self {
        Recorder {
            opts,
            writer,
            engine,
            resolver: attribute::ProcessResolver::default(),
            web: HostSplitter::default(),
            interfaces: networks::open(opts.max_rate, opts.include_loopback),
            alerts: alerts::Alerts::new(opts.alert_rate),
            run_id,
            last_mono: None,
            last_wall_ms: None,
            failing: None,
            pending: None,
            ticks: 0,
            summary: Summary {
                cpu_at_start: usage::cpu_time(),
                ..Summary::default()
            },
            watch_empty: false,
            empty_since: None,
        }
    }

    /// Keep `status` told whether samples keep coming back empty (only the start and the end
    /// of such a run are written).
    fn note_empty(&mut self, empty: bool, wall_ms: i64) {
        if !self.watch_empty {
            return;
        }
        let since = match (empty, self.empty_since) {
            (true, None) => {
                warn!("the source printed no rows at all: it sees no sockets");
                Some(wall_ms)
            }
            (false, Some(_)) => None,
            _ => return,
        };
        match self.writer.empty_samples(self.run_id, since) {
            Ok(()) => self.empty_since = since,
            Err(e) => error!(error = %e, "could not note empty samples for `netmon status`"),
        }
    }

    fn tick(&mut self, mut snapshot: source::Snapshot, sampled_at: Instant) {
        let took = self.last_mono.map(|m| sampled_at.duration_since(m));
        let elapsed = took.unwrap_or(Duration::ZERO);
        let wall_ms = Utc::now().timestamp_millis();
        self.note_empty(snapshot.counters.is_empty(), wall_ms);
        if !self.opts.include_loopback {
            snapshot.counters.retain(|c| !c.loopback);
        }
        let counters = snapshot.counters.len();
        let outcome = self.engine.apply(&snapshot, elapsed);
        let traffic = self.resolver.group(&outcome.deltas);
        let window = (self.last_wall_ms.unwrap_or(wall_ms), wall_ms);
        let web = match self.web.split_tick(self.writer.conn(), &traffic, window) {
            Ok(web) => web,
            Err(e) => {
                warn!(error = %e, "splitting browser traffic across hosts failed; this tick's browser bytes have no hosts");
                Vec::new()
            }
        };

        if let Some(prev) = self.last_wall_ms {
            let tolerance = self.opts.interval.max(Duration::from_secs(2));
            match clock::wall_jump(wall_ms - prev, elapsed, tolerance) {
                WallJump::None => {}
                WallJump::Forward(d) => {
                    warn!(
                        wall_ahead_ms = d.as_millis() as u64,
                        "the wall clock moved ahead of the monotonic clock: \
                        the machine slept or the clock was stepped; recorded as a gap"
                    );
                    let start = prev + elapsed.as_millis() as i64;
                    if let Err(e) = self.writer.gap(
                        self.run_id,
                        start,
                        start + d.as_millis() as i64,
                        "machine asleep or clock stepped forward",
                    ) {
                        error!(error = %e, "could not record a gap");
                    }
                }
                WallJump::Backward(d) => {
                    warn!(
                        behind_ms = d.as_millis() as u64,
                        "the wall clock went back; \
                        ticks keep their monotonic durations, labels follow the wall clock"
                    );
                }
            }
        }

        let mut state = outcome.state;
        let net = self.interfaces.tick(sampled_at, &mut state);
        let (mut traffic, mut web, mut net) = (traffic, web, net);
        let mut covers = elapsed;
        if let Some(old) = self.pending.take() {
            traffic = merge_traffic(old.traffic, traffic);
            web = merge_web(old.web, web);
            state = merge_state(old.state, state);
            net = networks::merge(old.net, net);
            covers = old.covers.saturating_add(elapsed);
        }
        // A failure streak ends only when a commit succeeds: its gap is stored with that tick.
        let gap = self.failing.as_ref().map(|f| (f.since_ms, f.reason(false)));
        let gap = gap.as_ref().map(|(since, why)| (*since, why.as_str()));
        match self.commit(&traffic, &web, &state, net.as_ref(), wall_ms, covers, gap) {
            Ok(stats) => {
                self.failing = None;
                self.ticks += 1;
                self.summary.ticks += 1;
                self.summary.bytes_in += stats.bytes_in;
                self.summary.bytes_out += stats.bytes_out;
                self.summary.sample_rows += stats.sample_rows as u64;
                self.alerts.after_commit(
                    self.writer.conn(),
                    net.as_ref(),
                    &traffic,
                    covers,
                    wall_ms,
                );
                debug!(
                    counters,
                    processes = traffic.len(),
                    host_rows = stats.web_rows,
                    bytes_in = stats.bytes_in,
                    bytes_out = stats.bytes_out,
                    rejected = outcome.rejected.len(),
                    baselined = outcome.baselined,
                    elapsed_ms = covers.as_millis() as u64,
                    "tick committed"
                );
            }
            Err(e) => {
                error!(error = %e, "committing the tick failed; its deltas will be committed with the next one");
                self.fail(format!("writing the database failed: {e}"), true);
                self.pending = Some(Pending {
                    traffic,
                    web,
                    state,
                    net,
                    covers,
                    at_ms: wall_ms,
                });
            }
        }
        self.last_mono = Some(sampled_at);
        self.last_wall_ms = Some(wall_ms);
    }

    // The tick's parts, passed as they are (the batching rewrite of this loop replaces them
    // with one struct).
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        traffic: &[ProcessTraffic],
        web: &[HostTraffic],
        state: &StateChanges,
        net: Option<&NetTraffic>,
        wall_ms: i64,
        elapsed: Duration,
        gap: Option<(i64, &str)>,
    ) -> Result<store::write::TickStats, store::Error> {
        let at = chrono::DateTime::<Utc>::from_timestamp_millis(wall_ms).unwrap_or_else(Utc::now);
        self.writer.commit_tick_ending_gap(
            &Tick {
                run_id: self.run_id,
                at_ms: wall_ms,
                elapsed_ms: elapsed.as_millis() as i64,
                day: clock::local_day_start(at),
                traffic,
                web,
                state,
                net,
            },
            gap,
        )
    }

    /// The source failed this tick.
    fn failed(&mut self, e: &source::Error) {
        self.fail(e.to_string(), false);
        warn!(error = %e, consecutive = self.failing.as_ref().map_or(0, |f| f.count), "tick failed");
    }

    /// Count a failed tick (`unwritten`: its commit failed) in the summary and the streak.
    fn fail(&mut self, error: String, unwritten: bool) {
        self.summary.failed += 1;
        // The streak starts where the last committed tick ended: the previous sample's, when
        // no streak is running (it was committed), else the streak's own start.
        let since_ms = self
            .failing
            .as_ref()
            .map(|f| f.since_ms)
            .or(self.last_wall_ms)
            .unwrap_or_else(|| Utc::now().timestamp_millis());
        let (count, before) = self
            .failing
            .as_ref()
            .map_or((0, 0), |f| (f.count, f.unwritten));
        self.failing = Some(Failing {
            count: count + 1,
            unwritten: before + u32::from(unwritten),
            since_ms,
            error,
        });
    }

    /// The run is ending: one last try for deltas a failed commit left behind (labelled with
    /// the span they cover), then the open failure streak, if any, becomes a gap.
    fn stop_failing(&mut self, now_ms: i64) {
        let mut lost = false;
        if let Some(p) = self.pending.take() {
            // The streak ends with the tick that stores its bytes, and its gap with it.
            let gap = self.failing.as_ref().map(|f| (f.since_ms, f.reason(false)));
            let gap = gap.as_ref().map(|(since, why)| (*since, why.as_str()));
            match self.commit(
                &p.traffic,
                &p.web,
                &p.state,
                p.net.as_ref(),
                p.at_ms,
                p.covers,
                gap,
            ) {
                Ok(_) => self.failing = None,
                Err(e) => {
                    error!(error = %e, "could not commit the last ticks' deltas; they are lost");
                    lost = true;
                }
            }
        }
        self.close_failing(now_ms, lost);
    }

    /// A failure streak ended without a tick to store it with (the run is stopping): record it
    /// as a gap, saying where its bytes went. `lost`: the last try to store kept deltas failed.
    fn close_failing(&mut self, until_ms: i64, lost: bool) {
        if let Some(f) = self.failing.take() {
            let reason = f.reason(lost);
            if let Err(e) = self.writer.gap(self.run_id, f.since_ms, until_ms, &reason) {
                error!(error = %e, "could not record a gap");
            }
        }
    }

    fn retention(&mut self) {
        let now_ms = Utc::now().timestamp_millis();
        let cut = retention::cutoffs(&self.opts.retention, now_ms, clock::local_day_floor);
        if let Some(before) = cut.raw_before_ms {
            // Cached process ids may point at rows this pass deletes.
            self.writer.forget_processes_before(before);
        }
        self.resolver.prune();
        let started = Instant::now();
        match retention::apply(self.writer.conn_mut(), &cut) {
            Ok(s) => info!(
                ticks = s.ticks,
                samples = s.samples,
                hourly = s.hourly,
                web_samples = s.web_samples,
                web_hourly = s.web_hourly,
                web_activity = s.web_activity,
                processes = s.processes,
                pages_freed = s.pages_freed,
                took_ms = started.elapsed().as_millis() as u64,
                "retention pass"
            ),
            Err(e) => error!(error = %e, "retention pass failed; will retry in an hour"),
        }
    }

    fn log_summary(&mut self) {
        let cpu = usage::cpu_time();
        let fresh = Summary {
            cpu_at_start: cpu,
            ..Summary::default()
        };
        let s = std::mem::replace(&mut self.summary, fresh);
        let cpu_us = cpu.saturating_sub(s.cpu_at_start).as_micros() as u64;
        let cpu_us_per_tick = cpu_us.checked_div(s.ticks).unwrap_or(0);
        info!(
            ticks = s.ticks,
            failed = s.failed,
            bytes_in = s.bytes_in,
            bytes_out = s.bytes_out,
            sample_rows = s.sample_rows,
            tracked_counters = self.engine.tracked(),
            cpu_us_per_tick,
            "summary"
        );
    }
}

/// Deltas of two ticks as one: bytes summed per process and per connection, so deltas kept
/// across failing commits (a full disk, a locked database) grow with the processes seen, not
/// with the number of ticks.
fn merge_traffic(earlier: Vec<ProcessTraffic>, later: Vec<ProcessTraffic>) -> Vec<ProcessTraffic> {
    let mut out: Vec<ProcessTraffic> = Vec::with_capacity(earlier.len().max(later.len()));
    let mut at: HashMap<ProcessRecord, usize> = HashMap::new();
    for t in earlier.into_iter().chain(later) {
        match at.get(&t.process) {
            Some(&i) => {
                let m = &mut out[i];
                m.bytes_in = m.bytes_in.saturating_add(t.bytes_in);
                m.bytes_out = m.bytes_out.saturating_add(t.bytes_out);
                for f in t.flows {
                    match m.flows.iter_mut().find(|g| g.remote == f.remote) {
                        Some(g) => {
                            g.bytes_in = g.bytes_in.saturating_add(f.bytes_in);
                            g.bytes_out = g.bytes_out.saturating_add(f.bytes_out);
                        }
                        None => m.flows.push(f),
                    }
                }
            }
            None => {
                at.insert(t.process.clone(), out.len());
                out.push(t);
            }
        }
    }
    out
}

/// Browser bytes of two ticks as one, summed per application, host and method.
fn merge_web(earlier: Vec<HostTraffic>, later: Vec<HostTraffic>) -> Vec<HostTraffic> {
    let mut out: Vec<HostTraffic> = Vec::with_capacity(earlier.len().max(later.len()));
    for h in earlier.into_iter().chain(later) {
        match out
            .iter_mut()
            .find(|m| m.app == h.app && m.host == h.host && m.method == h.method)
        {
            Some(m) => {
                m.bytes_in = m.bytes_in.saturating_add(h.bytes_in);
                m.bytes_out = m.bytes_out.saturating_add(h.bytes_out);
            }
            None => out.push(h),
        }
    }
    out
}

/// Apply `later` on top of `earlier`, key by key, in order.
fn merge_state(earlier: StateChanges, later: StateChanges) -> StateChanges {
    let mut m: HashMap<CounterKey, Option<(u64, u64)>> = HashMap::new();
    for s in [earlier, later] {
        for (k, i, o) in s.upsert {
            m.insert(k, Some((i, o)));
        }
        for k in s.remove {
            m.insert(k, None);
        }
    }
    let mut out = StateChanges::default();
    for (k, v) in m {
        match v {
            Some((i, o)) => out.upsert.push((k, i, o)),
            None => out.remove.push(k),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_after_the_second_failure_and_is_capped() {
        let i = Duration::from_secs(5);
        assert_eq!(backoff(i, 1), Duration::ZERO);
        assert_eq!(backoff(i, 2), Duration::from_secs(10));
        assert_eq!(backoff(i, 3), Duration::from_secs(20));
        assert_eq!(backoff(i, 30), MAX_BACKOFF);
    }

    fn process(pid: u32) -> ProcessRecord {
        ProcessRecord {
            pid: Some(pid),
            name: format!("p{pid}"),
            start_time: Some(1),
            exe: None,
            uid: None,
            app: procinfo::App {
                name: format!("p{pid}"),
                path: None,
            },
            kind: crate::tick::AppKind::Application,
            container: None,
        }
    }

    fn remote(host: &str) -> crate::tick::RemoteRecord {
        crate::tick::RemoteRecord {
            proto: "tcp",
            host: host.into(),
            port: 443,
        }
    }

    fn flow(host: &str, bytes_in: u64, bytes_out: u64) -> crate::tick::Flow {
        crate::tick::Flow {
            remote: remote(host),
            bytes_in,
            bytes_out,
        }
    }

    #[test]
    fn deltas_kept_across_failed_commits_sum_per_process_and_connection_and_stay_bounded() {
        let tick = |n: u64| {
            vec![
                ProcessTraffic {
                    process: process(1),
                    bytes_in: 10 * n,
                    bytes_out: n,
                    flows: vec![flow("a", 10 * n, n)],
                },
                ProcessTraffic {
                    process: process(2),
                    bytes_in: 5,
                    bytes_out: 0,
                    flows: vec![],
                },
            ]
        };
        let mut pending = tick(1);
        for n in 2..=1000 {
            pending = merge_traffic(pending, tick(n));
        }
        let mut extra = tick(1);
        extra[0].flows.push(flow("b", 7, 7));
        pending = merge_traffic(pending, extra);
        assert_eq!(pending.len(), 2, "one entry per process however many ticks");
        let sum: u64 = (1..=1000).sum::<u64>() + 1;
        assert_eq!((pending[0].bytes_in, pending[0].bytes_out), (10 * sum, sum));
        assert_eq!(
            pending[0].flows,
            vec![flow("a", 10 * sum, sum), flow("b", 7, 7)]
        );
        assert_eq!((pending[1].bytes_in, pending[1].bytes_out), (5 * 1001, 0));
    }

    #[test]
    fn browser_bytes_kept_across_failed_commits_sum_per_host_and_method() {
        use crate::tick::Method::{ActiveTab, Connection};
        let h = |host: &str, method, bytes_in, bytes_out| HostTraffic {
            app: procinfo::App {
                name: "firefox".into(),
                path: None,
            },
            host: host.into(),
            method,
            bytes_in,
            bytes_out,
        };
        let m = merge_web(
            vec![h("a.org", Connection, 5, 1), h("b.org", Connection, 1, 1)],
            vec![h("a.org", Connection, 7, 1), h("a.org", ActiveTab, 2, 1)],
        );
        assert_eq!(
            m,
            vec![
                h("a.org", Connection, 12, 2),
                h("b.org", Connection, 1, 1),
                h("a.org", ActiveTab, 2, 1),
            ]
        );
    }

    /// A commit that fails (here: another writer holds the database; in life also a full
    /// disk) keeps its deltas, and the next tick that commits writes them: nothing is lost
    /// and nothing counted twice.
    #[test]
    fn ticks_whose_commit_fails_are_committed_with_the_next_one_exactly() {
        use crate::source::{Counter, Owner, ProcessRef, Snapshot};
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("n.db");
        let conn = store::open(&db, Create::IfMissing).expect("open");
        conn.busy_timeout(Duration::ZERO).expect("no waiting");
        let mut writer = Writer::new(conn);
        let run_id = writer
            .begin_run(&RunInfo {
                started_at_ms: Utc::now().timestamp_millis(),
                source: "nettop".into(),
                interval_ms: 1000,
                pid: std::process::id(),
                hostname: None,
                boot_id: None,
                notes: vec![],
            })
            .expect("run");
        let opts = Options {
            db: db.clone(),
            source: SourceKind::Nettop,
            interval: Duration::from_secs(1),
            sample_timeout: Duration::from_secs(1),
            retention: Policy::default(),
            include_loopback: false,
            max_rate: delta::Config::default().max_rate,
            alert_rate: None,
            max_ticks: None,
            share_with_group: false,
            process_table: None,
        };
        let mut rec = Recorder::new(&opts, writer, Engine::new(delta::Config::default()), run_id);
        let snap = |n: u64| Snapshot {
            counters: vec![Counter {
                key: CounterKey("nettop/curl.4000000".into()),
                // A pid no process has here, so the name stays the source's.
                owner: Owner::Process(ProcessRef {
                    pid: 4_000_000,
                    name: "curl".into(),
                    start_time: None,
                    exe: None,
                    uid: None,
                    cmdline: None,
                    container: None,
                }),
                remote: None,
                loopback: false,
                bytes_in: n * 1000,
                bytes_out: n * 10,
                closed: false,
            }],
        };
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // Ticks label themselves with the wall clock: a few milliseconds apart, so the failed
        // ones' span (the gap) is never empty.
        let pause = || std::thread::sleep(Duration::from_millis(5));
        rec.tick(snap(1), at(0)); // the baseline
        let mut blocker = rusqlite::Connection::open(&db).expect("second connection");
        let hold = blocker
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .expect("hold the write lock");
        pause();
        rec.tick(snap(2), at(1));
        pause();
        rec.tick(snap(4), at(2));
        assert!(rec.pending.is_some(), "both commits failed and were kept");
        hold.rollback().expect("release");
        pause();
        rec.tick(snap(7), at(3));
        assert!(rec.pending.is_none());
        use crate::store::testing::{count, sum};
        let conn = rec.writer.conn();
        let (bytes_in, bytes_out) = (
            sum(conn, "samples", "bytes_in"),
            sum(conn, "samples", "bytes_out"),
        );
        let rows = count(conn, "samples");
        assert_eq!((bytes_in, bytes_out), (6000, 60), "7000 - 1000 baseline");
        assert_eq!(rows, 1, "the kept deltas were merged into one row");
        assert_eq!(sum(conn, "hourly", "bytes_in"), 6000);
        // The tick that stored them says it covers the three seconds they span (issue 13:
        // not the last second alone, which would make the rate three times too high).
        let elapsed: Vec<i64> = conn
            .prepare("SELECT elapsed_ms FROM ticks ORDER BY id")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(elapsed, vec![0, 3000]);
        // The two failed commits are failures, and their span a gap that says where its bytes
        // went.
        assert_eq!(rec.summary.failed, 2);
        let (gaps, reason): (i64, String) = conn
            .query_row("SELECT count(*), max(reason) FROM gaps", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("gaps");
        assert_eq!(gaps, 1);
        assert!(
            reason.starts_with("2 tick(s) failed: writing the database failed")
                && reason.ends_with("their bytes are stored with the tick that ends this gap"),
            "{reason}"
        );
    }

    /// Deltas still unwritten when the run stops get one more try, labelled with the span
    /// they cover.
    #[test]
    fn deltas_unwritten_at_the_stop_are_stored_with_the_span_they_cover() {
        use crate::source::{Counter, Owner, ProcessRef, Snapshot};
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("n.db");
        let conn = store::open(&db, Create::IfMissing).expect("open");
        conn.busy_timeout(Duration::ZERO).expect("no waiting");
        let mut writer = Writer::new(conn);
        let run_id = writer
            .begin_run(&RunInfo {
                started_at_ms: Utc::now().timestamp_millis(),
                source: "nettop".into(),
                interval_ms: 1000,
                pid: std::process::id(),
                hostname: None,
                boot_id: None,
                notes: vec![],
            })
            .expect("run");
        let opts = Options {
            db: db.clone(),
            source: SourceKind::Nettop,
            interval: Duration::from_secs(1),
            sample_timeout: Duration::from_secs(1),
            retention: Policy::default(),
            include_loopback: false,
            max_rate: delta::Config::default().max_rate,
            alert_rate: None,
            max_ticks: None,
            share_with_group: false,
            process_table: None,
        };
        let mut rec = Recorder::new(&opts, writer, Engine::new(delta::Config::default()), run_id);
        let snap = |n: u64| Snapshot {
            counters: vec![Counter {
                key: CounterKey("nettop/curl.4000000".into()),
                owner: Owner::Process(ProcessRef {
                    pid: 4_000_000,
                    name: "curl".into(),
                    start_time: None,
                    exe: None,
                    uid: None,
                    cmdline: None,
                    container: None,
                }),
                remote: None,
                loopback: false,
                bytes_in: n * 1000,
                bytes_out: 0,
                closed: false,
            }],
        };
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        rec.tick(snap(1), at(0));
        let mut blocker = rusqlite::Connection::open(&db).expect("second connection");
        let hold = blocker
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .expect("hold the write lock");
        rec.tick(snap(3), at(2));
        rec.tick(snap(4), at(3));
        hold.rollback().expect("release");
        rec.stop_failing(Utc::now().timestamp_millis());
        use crate::store::testing::sum;
        let conn = rec.writer.conn();
        assert_eq!(sum(conn, "samples", "bytes_in"), 3000);
        let last: i64 = conn
            .query_row(
                "SELECT elapsed_ms FROM ticks ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .expect("last tick");
        assert_eq!(last, 3000, "the stored tick covers both unwritten ones");
    }

    #[test]
    fn merged_state_keeps_the_latest_word_per_key() {
        let k = |s: &str| CounterKey(s.into());
        let a = StateChanges {
            upsert: vec![(k("a"), 1, 1), (k("b"), 1, 1)],
            remove: vec![k("c")],
        };
        let b = StateChanges {
            upsert: vec![(k("a"), 2, 2), (k("c"), 3, 3)],
            remove: vec![k("b")],
        };
        let mut m = merge_state(a, b);
        m.upsert.sort();
        assert_eq!(m.upsert, vec![(k("a"), 2, 2), (k("c"), 3, 3)]);
        assert_eq!(m.remove, vec![k("b")]);
    }
}
