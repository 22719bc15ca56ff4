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
pub mod batch;
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

use crate::delta::{self, Engine};
use crate::procinfo::{self, usage};
use crate::source::{self, Cancel, Source, SourceKind, SourceOptions};
use crate::store::lock::RecorderLock;
use crate::store::retention::{self, Policy};
use crate::store::write::{Gap, RunInfo, Writer};
use crate::store::{self, Create};
use crate::web::attribute::HostSplitter;

use batch::{Batch, PendingTick};
use clock::{Schedule, WallJump};

/// Everything `record` needs, validated.
#[derive(Debug, Clone)]
pub struct Options {
    pub db: PathBuf,
    pub source: SourceKind,
    pub interval: Duration,
    /// How often ticks are written to the database (zero: every tick).
    pub write_every: Duration,
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
/// so this only bounds its size; see sql/0003_counter_journal.sql). A fold rewrites pages all
/// over `counter_state`, so it is rare: the journal holds one row per written batch.
const FOLD_EVERY: Duration = Duration::from_secs(3600);
/// Tries to write what is unwritten when the run stops, a second apart.
const LAST_WRITE_TRIES: u32 = 3;
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
    source: Box<dyn Source>,
    rec: Recorder<'a>,
    cancel: Cancel,
    signals: mpsc::Receiver<i32>,
    signal_handle: signal_hook::iterator::Handle,
    /// Held for the whole run; released when dropped, after everything above (the live
    /// socket is removed before another recorder can take the lock).
    _lock: RecorderLock,
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
        writer.set_write_every(run_id, opts.write_every.as_millis() as i64)?;
        let saved = writer.load_state(&boot, Utc::now().timestamp_millis())?;
        let resumed = saved.len();
        let mut engine = Engine::new(delta::Config {
            max_rate: opts.max_rate,
            empty_says_nothing: kind == SourceKind::Nettop,
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
            "netmon record: source {}{chosen}, database {}, every {}, written {}",
            kind.as_str(),
            opts.db.display(),
            humantime::format_duration(opts.interval),
            if opts.write_every.is_zero() {
                "every tick".to_string()
            } else {
                format!("every {}", humantime::format_duration(opts.write_every))
            }
        );
        for note in source.blind_spots() {
            eprintln!("netmon record: not counted: {note}");
        }
        if !opts.include_loopback {
            debug!("loopback traffic is not counted (--include-loopback counts it)");
        }
        info!(run = run_id, resumed_counters = resumed, boot = %boot, "recording");

        let live = if opts.write_every.is_zero() {
            None
        } else {
            crate::live::Publisher::start(
                &opts.db,
                crate::live::View {
                    pid: std::process::id(),
                    interval_ms: opts.interval.as_millis() as i64,
                    write_every_ms: opts.write_every.as_millis() as i64,
                    ..crate::live::View::default()
                },
                opts.share_with_group,
            )
        };
        Ok(Session {
            opts,
            _lock: lock,
            source,
            rec: {
                let mut rec = Recorder::new(opts, writer, engine, run_id);
                rec.interfaces = interfaces;
                rec.live = live;
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
                    rec.write_last();
                    rec.close_failing(now_ms);
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
            if now.duration_since(last_fold) >= FOLD_EVERY && rec.batch.is_empty() {
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

    /// Write what is unwritten, fold the journal, close the run, and log what it cost.
    fn finish(mut self, stop: Stop) -> anyhow::Result<()> {
        let rec = &mut self.rec;
        rec.write_last();
        let stopped_ms = Utc::now().timestamp_millis();
        rec.close_failing(stopped_ms);
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
            writes = rec.writes, failed_writes = rec.write_failures, cpu_ms = cpu.as_millis() as u64, max_rss_kib, written_bytes, "stopped");
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
    /// Writes of the batch that failed (it was kept and written later).
    failed_writes: u64,
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
    /// Wall time (epoch ms) of the last committed tick, or of the run's start.
    since_ms: i64,
    /// The last failure.
    error: String,
}

impl Failing {
    /// The gap's reason: how many ticks failed and the last error. The span's bytes are in
    /// the tick that ends it (its counters' deltas cover the span).
    fn reason(&self) -> String {
        format!("{} tick(s) failed: {}", self.count, self.error)
    }
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
    /// Ticks sampled but not yet written.
    batch: Batch,
    /// Gaps noticed since the last tick (the wall clock jumped), written before the next.
    gaps_ahead: Vec<Gap>,
    /// Consecutive failed writes of the batch.
    failed_writes: u32,
    /// Batches written this run, and writes that failed.
    writes: u64,
    write_failures: u64,
    /// Ticks per write: `--write-every` over the interval.
    every_ticks: usize,
    /// Wall time (epoch ms) of the newest tick in the database.
    durable_ms: Option<i64>,
    /// What `top` and `status` read of the unwritten ticks (`<db>.sock`).
    live: Option<crate::live::Publisher>,
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
            batch: Batch::default(),
            gaps_ahead: Vec::new(),
            failed_writes: 0,
            writes: 0,
            write_failures: 0,
            every_ticks: every_ticks(opts.interval, opts.write_every),
            durable_ms: None,
            live: None,
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
        let mut traffic = self.resolver.group(&outcome.deltas);
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
                    self.gaps_ahead.push(Gap {
                        start_ms: start,
                        end_ms: start + d.as_millis() as i64,
                        reason: "machine asleep or clock stepped forward".to_string(),
                    });
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

        // A streak of failed samples ends with this tick, whose deltas cover it: its gap is
        // written just before the tick.
        let mut gaps = std::mem::take(&mut self.gaps_ahead);
        if let Some(f) = self.failing.take() {
            gaps.push(Gap {
                start_ms: f.since_ms,
                end_ms: wall_ms,
                reason: f.reason(),
            });
        }
        let at = chrono::DateTime::<Utc>::from_timestamp_millis(wall_ms).unwrap_or_else(Utc::now);
        let mut state = outcome.state;
        let net = self.interfaces.tick(sampled_at, &mut state);
        self.interfaces.split(&mut traffic, net.as_ref());
        // Caps and rate alerts follow the ticks as they are taken, written or not.
        self.alerts
            .after_commit(self.writer.conn(), net.as_ref(), &traffic, elapsed, wall_ms);
        let pending = PendingTick {
            at_ms: wall_ms,
            elapsed_ms: elapsed.as_millis() as i64,
            day: clock::local_day_start(at),
            traffic,
            web,
            state,
            net,
            gaps,
        };
        debug!(
            counters,
            processes = pending.traffic.len(),
            rejected = outcome.rejected.len(),
            baselined = outcome.baselined,
            elapsed_ms = pending.elapsed_ms,
            unwritten = self.batch.len() + 1,
            "tick"
        );
        if let Some(live) = &self.live {
            live.tick(&pending);
        }
        self.batch.push(pending, sampled_at);
        self.ticks += 1;
        self.summary.ticks += 1;
        self.last_mono = Some(sampled_at);
        self.last_wall_ms = Some(wall_ms);
        // After a failed write, try again every tick.
        let every = if self.failed_writes > 0 {
            Duration::ZERO
        } else {
            self.opts.write_every
        };
        let every_ticks = if self.failed_writes > 0 {
            1
        } else {
            self.every_ticks
        };
        if self.batch.due(sampled_at, every, every_ticks) {
            self.write();
        }
    }

    /// Write the unwritten ticks in one transaction. On failure they are kept (merged into
    /// one tick if the batch is over its bound) and written with a later tick.
    fn write(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let result = {
            let ticks = self.batch.as_ticks(self.run_id);
            self.writer.commit_batch(&ticks)
        };
        match result {
            Ok(stats) => {
                for s in &stats {
                    self.summary.bytes_in += s.bytes_in;
                    self.summary.bytes_out += s.bytes_out;
                    self.summary.sample_rows += s.sample_rows as u64;
                }
                if self.failed_writes > 0 {
                    info!(
                        failed_writes = self.failed_writes,
                        ticks = stats.len(),
                        "the database is writable again: the kept ticks are written"
                    );
                }
                debug!(
                    ticks = stats.len(),
                    rows = self.batch.rows(),
                    "batch written"
                );
                self.durable_ms = self.batch.ticks().last().map(|t| t.at_ms);
                self.batch.clear();
                self.failed_writes = 0;
                self.writes += 1;
                self.alerts.written();
                if let Some(live) = &self.live {
                    live.written(self.durable_ms);
                }
                true
            }
            Err(e) => {
                self.failed_writes += 1;
                self.write_failures += 1;
                self.summary.failed_writes += 1;
                error!(
                    error = %e,
                    unwritten_ticks = self.batch.len(),
                    consecutive = self.failed_writes,
                    "writing the database failed; the ticks are kept and written with a later tick"
                );
                if self.batch.rows() >= batch::MAX_ROWS {
                    warn!(
                        rows = self.batch.rows(),
                        "the unwritten ticks reached their memory bound: merged into one tick \
                         covering their span (bytes kept, per-tick detail lost)"
                    );
                    self.batch.squeeze();
                }
                if let Some(live) = &self.live {
                    live.failed(self.failed_writes);
                }
                false
            }
        }
    }

    /// The run is ending: write what is unwritten, trying a few times (a database locked for
    /// a moment); if it cannot be written, say what is lost.
    fn write_last(&mut self) {
        for attempt in 1..=LAST_WRITE_TRIES {
            if self.write() {
                return;
            }
            if attempt < LAST_WRITE_TRIES {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        let (Some(first), Some(last)) = (self.batch.ticks().first(), self.batch.ticks().last())
        else {
            return;
        };
        let (from, to) = (first.at_ms - first.elapsed_ms, last.at_ms);
        error!(
            ticks = self.batch.len(),
            "could not write the last ticks; their bytes are lost"
        );
        // Counters resume from the last written state, so the next run counts what live
        // processes moved in this span again: only processes that exit in between lose it.
        if let Err(e) = self.writer.gap(
            self.run_id,
            from,
            to,
            &format!(
                "{} tick(s) could not be written at the stop; processes that exited before \
                 the next run lost their bytes of this span",
                self.batch.len()
            ),
        ) {
            error!(error = %e, "could not record a gap");
        }
        self.batch.clear();
    }

    /// The source failed this tick.
    fn failed(&mut self, e: &source::Error) {
        self.fail(e.to_string());
        warn!(error = %e, consecutive = self.failing.as_ref().map_or(0, |f| f.count), "tick failed");
    }

    /// Count a failed tick in the summary and the streak.
    fn fail(&mut self, error: String) {
        self.summary.failed += 1;
        // The streak starts where the last tick ended: the previous sample's, when no streak
        // is running, else the streak's own start.
        let since_ms = self
            .failing
            .as_ref()
            .map(|f| f.since_ms)
            .or(self.last_wall_ms)
            .unwrap_or_else(|| Utc::now().timestamp_millis());
        let count = self.failing.as_ref().map_or(0, |f| f.count);
        self.failing = Some(Failing {
            count: count + 1,
            since_ms,
            error,
        });
    }

    /// A failure streak ended without a tick to store it with (the run is stopping): record it
    /// as a gap.
    fn close_failing(&mut self, until_ms: i64) {
        if let Some(f) = self.failing.take()
            && let Err(e) = self
                .writer
                .gap(self.run_id, f.since_ms, until_ms, &f.reason())
        {
            error!(error = %e, "could not record a gap");
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
            failed_writes = s.failed_writes,
            bytes_in = s.bytes_in,
            bytes_out = s.bytes_out,
            sample_rows = s.sample_rows,
            tracked_counters = self.engine.tracked(),
            cpu_us_per_tick,
            "summary"
        );
    }
}

/// Ticks per write: `write_every` over `interval`, at least one.
fn every_ticks(interval: Duration, write_every: Duration) -> usize {
    if interval.is_zero() {
        return 1;
    }
    (write_every.as_nanos() / interval.as_nanos()).clamp(1, usize::MAX as u128) as usize
}

#[cfg(test)]
mod tests {
    use super::batch::{merge_traffic, merge_web};
    use super::*;
    use crate::delta::StateChanges;
    use crate::source::CounterKey;
    use crate::tick::{HostTraffic, ProcessRecord, ProcessTraffic};

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
                    interfaces: Vec::new(),
                    networks: Vec::new(),
                    process: process(1),
                    bytes_in: 10 * n,
                    bytes_out: n,
                    flows: vec![flow("a", 10 * n, n)],
                },
                ProcessTraffic {
                    interfaces: Vec::new(),
                    networks: Vec::new(),
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

    /// A write that fails (here: another writer holds the database; in life also a full
    /// disk) keeps its ticks, and the next write stores each of them as it was: nothing is
    /// lost, nothing counted twice, no tick merged and no gap (nothing was missed).
    #[test]
    fn ticks_whose_write_fails_are_written_with_the_next_one_exactly() {
        use crate::source::{Counter, Owner, ProcessRef, Snapshot};
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("n.db");
        let conn = store::open(&db, Create::IfMissing).expect("open");
        conn.busy_timeout(Duration::ZERO).expect("no waiting");
        let mut writer = Writer::new(conn);
        let run_id = writer
            .begin_run(&RunInfo::new("nettop", Utc::now().timestamp_millis(), 1000))
            .expect("run");
        let opts = Options {
            db: db.clone(),
            source: SourceKind::Nettop,
            interval: Duration::from_secs(1),
            write_every: Duration::ZERO,
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
                interface: None,
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
        assert_eq!(
            rec.batch.len(),
            2,
            "both writes failed and the ticks were kept"
        );
        hold.rollback().expect("release");
        pause();
        rec.tick(snap(7), at(3));
        assert!(rec.batch.is_empty());
        use crate::store::testing::{count, sum};
        let conn = rec.writer.conn();
        let (bytes_in, bytes_out) = (
            sum(conn, "samples", "bytes_in"),
            sum(conn, "samples", "bytes_out"),
        );
        assert_eq!((bytes_in, bytes_out), (6000, 60), "7000 - 1000 baseline");
        assert_eq!(
            count(conn, "samples"),
            3,
            "one row per tick: nothing merged"
        );
        assert_eq!(sum(conn, "hourly", "bytes_in"), 6000);
        let elapsed: Vec<i64> = conn
            .prepare("SELECT elapsed_ms FROM ticks ORDER BY id")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(elapsed, vec![0, 1000, 1000, 1000], "each tick its own span");
        assert_eq!(rec.summary.failed_writes, 2);
        assert_eq!(rec.summary.failed, 0, "every sample worked");
        assert_eq!(count(conn, "gaps"), 0, "no time was missed");
    }

    /// Ticks still unwritten when the run stops are written, each as it was, however long
    /// the write window.
    #[test]
    fn ticks_unwritten_at_the_stop_are_written_each_with_its_span() {
        use crate::source::{Counter, Owner, ProcessRef, Snapshot};
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("n.db");
        let conn = store::open(&db, Create::IfMissing).expect("open");
        conn.busy_timeout(Duration::ZERO).expect("no waiting");
        let mut writer = Writer::new(conn);
        let run_id = writer
            .begin_run(&RunInfo::new("nettop", Utc::now().timestamp_millis(), 1000))
            .expect("run");
        let opts = Options {
            db: db.clone(),
            source: SourceKind::Nettop,
            interval: Duration::from_secs(1),
            write_every: Duration::from_secs(3600),
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
                interface: None,
            }],
        };
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        rec.tick(snap(1), at(0));
        rec.tick(snap(3), at(2));
        rec.tick(snap(4), at(3));
        assert_eq!(rec.batch.len(), 3, "an hour's window: nothing written yet");
        assert_eq!(
            crate::store::testing::count(rec.writer.conn(), "ticks"),
            0,
            "nothing in the file before the window ends"
        );
        rec.write_last();
        use crate::store::testing::sum;
        let conn = rec.writer.conn();
        assert_eq!(sum(conn, "samples", "bytes_in"), 3000);
        let elapsed: Vec<i64> = conn
            .prepare("SELECT elapsed_ms FROM ticks ORDER BY id")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(elapsed, vec![0, 2000, 1000]);
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
        let mut m = crate::store::state::merge([&a, &b]);
        m.upsert.sort();
        assert_eq!(m.upsert, vec![(k("a"), 2, 2), (k("c"), 3, 3)]);
        assert_eq!(m.remove, vec![k("b")]);
    }
}
