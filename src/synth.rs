//! Synthetic history written through the recorder's own write path (`store::write::Writer`
//! and `store::retention`), never through SQL of its own: the query tests build their fixtures
//! with it, and the hidden `netmon generate-history` fills a year for the benchmark.

use std::path::Path;

use crate::delta::StateChanges;
use crate::procinfo::App;
use crate::store::retention::{self, Cutoffs};
use crate::store::write::{AppKind, ProcessRecord, ProcessTraffic, RunInfo, Tick, Writer};
use crate::store::{self, Create, Error};

/// One process's bytes in one synthetic tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub app: String,
    pub pid: u32,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Flow {
    pub fn new(app: &str, pid: u32, bytes_in: u64, bytes_out: u64) -> Self {
        Flow {
            app: app.to_string(),
            pid,
            bytes_in,
            bytes_out,
        }
    }
}

/// A writer of synthetic runs, ticks, gaps and retention passes.
pub struct Synth {
    writer: Writer,
    run: Option<i64>,
    /// Maps a tick's epoch ms to its day key (epoch s of its local midnight).
    day_of: Box<dyn Fn(i64) -> i64>,
}

impl Synth {
    /// Create (or open) the database at `path`. `day_of` gives the local midnight (epoch s)
    /// of a tick's time, as the recorder would compute it in its time zone.
    pub fn create(path: &Path, day_of: impl Fn(i64) -> i64 + 'static) -> Result<Self, Error> {
        let conn = store::open(path, Create::IfMissing)?;
        Ok(Synth {
            writer: Writer::new(conn),
            run: None,
            day_of: Box::new(day_of),
        })
    }

    /// Days in UTC (what a recorder under `TZ=UTC` computes).
    pub fn utc_days(ms: i64) -> i64 {
        ms.div_euclid(86_400_000) * 86_400
    }

    pub fn writer(&mut self) -> &mut Writer {
        &mut self.writer
    }

    /// Start a run at `at_ms` (its first tick will be the next `tick`).
    pub fn begin_run(&mut self, at_ms: i64, interval_ms: i64) -> Result<i64, Error> {
        let id = self.writer.begin_run(&RunInfo {
            started_at_ms: at_ms,
            source: "synthetic".into(),
            interval_ms,
            pid: std::process::id(),
            hostname: None,
            boot_id: Some("synthetic-boot".into()),
            notes: Vec::new(),
        })?;
        self.run = Some(id);
        Ok(id)
    }

    /// Commit one tick at `at_ms` covering `elapsed_ms`.
    pub fn tick(&mut self, at_ms: i64, elapsed_ms: i64, flows: &[Flow]) -> Result<(), Error> {
        let run_id = self.run.ok_or_else(|| {
            Error::Sqlite(rusqlite::Error::InvalidParameterName(
                "synth: tick before begin_run".into(),
            ))
        })?;
        let traffic: Vec<ProcessTraffic> = flows
            .iter()
            .map(|f| ProcessTraffic {
                process: process(&f.app, f.pid),
                bytes_in: f.bytes_in,
                bytes_out: f.bytes_out,
                flows: Vec::new(),
            })
            .collect();
        self.writer.commit_tick(&Tick {
            run_id,
            at_ms,
            elapsed_ms,
            day: (self.day_of)(at_ms),
            traffic: &traffic,
            state: &StateChanges::default(),
        })?;
        Ok(())
    }

    /// Record a gap in the current run.
    pub fn gap(&mut self, start_ms: i64, end_ms: i64, reason: &str) -> Result<(), Error> {
        let run = self.run.unwrap_or(0);
        self.writer.gap(run, start_ms, end_ms, reason)
    }

    /// Stop the current run cleanly.
    pub fn end_run(&mut self, at_ms: i64) -> Result<(), Error> {
        if let Some(run) = self.run.take() {
            self.writer.end_run(run, at_ms, "signal SIGINT")?;
        }
        Ok(())
    }

    /// A retention pass with explicit cut-offs (raw before `raw_before_ms`, hourly before
    /// `hourly_before` epoch s).
    pub fn retention(&mut self, cut: Cutoffs) -> Result<retention::Stats, Error> {
        if let Some(before) = cut.raw_before_ms {
            self.writer.forget_processes_before(before);
        }
        retention::apply(self.writer.conn_mut(), &cut)
    }
}

/// The process record of a synthetic app: names starting with `(unattributed` are
/// unattributed bytes, the rest applications under `/Applications`.
fn process(app: &str, pid: u32) -> ProcessRecord {
    if let Some(reason) = app
        .strip_prefix("(unattributed: ")
        .and_then(|r| r.strip_suffix(')'))
    {
        return ProcessRecord {
            pid: None,
            name: reason.to_string(),
            start_time: None,
            exe: None,
            uid: None,
            app: App {
                name: app.to_string(),
                path: None,
            },
            kind: AppKind::Unattributed,
        };
    }
    ProcessRecord {
        pid: Some(pid),
        name: app.to_string(),
        start_time: Some(u64::from(pid)),
        exe: Some(format!("/Applications/{app}.app/Contents/MacOS/{app}")),
        uid: Some(501),
        app: App {
            name: app.to_string(),
            path: Some(format!("/Applications/{app}.app")),
        },
        kind: AppKind::Application,
    }
}
