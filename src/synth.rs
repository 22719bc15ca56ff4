//! Synthetic history written through the recorder's own write path (`store::write::Writer`
//! and `store::retention`), never through SQL of its own: the query tests build their fixtures
//! with it, and the hidden `netmon generate-history` fills a year for the benchmark.

use std::path::Path;

use crate::delta::StateChanges;
use crate::procinfo::App;
use crate::store::retention::{self, Cutoffs};
use crate::store::write::{RunInfo, Tick, Writer};
use crate::store::{self, Create, Error};
use crate::tick::{AppKind, HostTraffic, Method, NetTraffic, ProcessRecord, ProcessTraffic};

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

/// A browser application's bytes to one host in one synthetic tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebFlow {
    pub app: String,
    pub host: String,
    pub method: Method,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl WebFlow {
    pub fn new(app: &str, host: &str, method: Method, bytes_in: u64, bytes_out: u64) -> Self {
        WebFlow {
            app: app.to_string(),
            host: host.to_string(),
            method,
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

    /// The day key (epoch s of the local midnight) of a time, as ticks are filed.
    pub fn day_of(&self, ms: i64) -> i64 {
        (self.day_of)(ms)
    }

    pub fn writer(&mut self) -> &mut Writer {
        &mut self.writer
    }

    /// Start a run at `at_ms` (its first tick will be the next `tick`).
    pub fn begin_run(&mut self, at_ms: i64, interval_ms: i64) -> Result<i64, Error> {
        let id = self.writer.begin_run(&RunInfo {
            boot_id: Some("synthetic-boot".into()),
            ..RunInfo::new("synthetic", at_ms, interval_ms)
        })?;
        self.run = Some(id);
        Ok(id)
    }

    /// Commit one tick at `at_ms` covering `elapsed_ms`.
    pub fn tick(&mut self, at_ms: i64, elapsed_ms: i64, flows: &[Flow]) -> Result<(), Error> {
        self.tick_with_web(at_ms, elapsed_ms, flows, &[])
    }

    /// Commit one tick with browser bytes split across hosts (`app` in `web` is the name of
    /// one of `flows`' applications).
    pub fn tick_with_web(
        &mut self,
        at_ms: i64,
        elapsed_ms: i64,
        flows: &[Flow],
        web: &[WebFlow],
    ) -> Result<(), Error> {
        self.commit(at_ms, elapsed_ms, flows, web, None)
    }

    /// Commit one tick with what the interfaces carried, per network.
    pub fn tick_with_net(
        &mut self,
        at_ms: i64,
        elapsed_ms: i64,
        flows: &[Flow],
        net: &NetTraffic,
    ) -> Result<(), Error> {
        self.commit(at_ms, elapsed_ms, flows, &[], Some(net))
    }

    fn commit(
        &mut self,
        at_ms: i64,
        elapsed_ms: i64,
        flows: &[Flow],
        web: &[WebFlow],
        net: Option<&NetTraffic>,
    ) -> Result<(), Error> {
        let run_id = self.run.ok_or_else(|| {
            Error::Sqlite(rusqlite::Error::InvalidParameterName(
                "synth: tick before begin_run".into(),
            ))
        })?;
        let traffic: Vec<ProcessTraffic> = flows
            .iter()
            .map(|f| ProcessTraffic {
                interfaces: Vec::new(),
                networks: Vec::new(),
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
            web: &web
                .iter()
                .map(|w| HostTraffic {
                    app: process(&w.app, 0).app,
                    host: w.host.clone(),
                    method: w.method,
                    bytes_in: w.bytes_in,
                    bytes_out: w.bytes_out,
                })
                .collect::<Vec<_>>(),
            state: &StateChanges::default(),
            net,
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
            container: None,
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
        container: None,
    }
}

/// What `generate` writes.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// The history ends here (epoch ms); it starts `days` before.
    pub end_ms: i64,
    pub days: u32,
    /// Distinct applications.
    pub apps: usize,
    /// Processes alive at a time.
    pub active: usize,
    /// Seed of the deterministic generator.
    pub seed: u64,
    /// Ticks inside the raw window are this far apart (the recorder's default 5 s).
    pub tick_ms: i64,
    /// Older ticks (deleted by retention anyway, their hourly and daily sums kept) are this
    /// far apart, so a year takes minutes, not hours, to write.
    pub old_tick_ms: i64,
    pub policy: retention::Policy,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            end_ms: chrono::Utc::now().timestamp_millis(),
            days: 365,
            apps: 300,
            active: 40,
            seed: 1,
            tick_ms: 5_000,
            old_tick_ms: 900_000,
            policy: retention::Policy::default(),
        }
    }
}

/// What `generate` wrote.
#[derive(Debug, Clone, Copy, Default)]
pub struct GenStats {
    pub ticks: u64,
    pub sample_rows: u64,
    pub runs: u64,
    pub gaps: u64,
}

/// xorshift64*: small, fast, and the same sequence on every platform and version.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Well-known names first, then numbered ones: what a year on a laptop looks like.
const NAMES: &[&str] = &[
    "Google Chrome",
    "Safari",
    "Firefox",
    "Slack",
    "zoom.us",
    "Spotify",
    "Mail",
    "Dropbox",
    "Microsoft Teams",
    "Code",
    "Music",
    "softwareupdated",
    "cloudd",
    "nsurlsessiond",
    "Discord",
    "Signal",
    "ssh",
    "git",
    "curl",
    "Docker",
];

struct Proc {
    app: usize,
    pid: u32,
    until_ms: i64,
    /// Mean bytes per second while active.
    rate: f64,
}

/// Write a deterministic history ending at `opts.end_ms` through the recorder's write path,
/// then run retention as the recorder would at that time. `day_of` gives a tick's local day.
pub fn generate(
    path: &Path,
    opts: &GenOptions,
    day_of: impl Fn(i64) -> i64 + 'static,
    hour_of_day: impl Fn(i64) -> u32,
    mut progress: impl FnMut(i64),
) -> Result<GenStats, Error> {
    let mut rng = Rng::new(opts.seed);
    let names: Vec<String> = (0..opts.apps)
        .map(|i| match NAMES.get(i) {
            Some(n) => n.to_string(),
            None => format!("app-{i:03}"),
        })
        .collect();
    // Zipf-like popularity: a few applications carry most bytes.
    let weight: Vec<f64> = (0..opts.apps)
        .map(|i| 1.0 / ((i + 1) as f64).powf(1.1))
        .collect();
    let weight_sum: f64 = weight.iter().sum();
    let pick = |rng: &mut Rng, busy: &[bool]| -> usize {
        for _ in 0..16 {
            let mut x = rng.unit() * weight_sum;
            for (i, w) in weight.iter().enumerate() {
                x -= w;
                if x <= 0.0 {
                    if !busy[i] {
                        return i;
                    }
                    break;
                }
            }
        }
        // Popular ones are busy: take any idle application.
        let idle: Vec<usize> = (0..busy.len()).filter(|i| !busy[*i]).collect();
        idle.get(rng.below(idle.len())).copied().unwrap_or(0)
    };

    let mut s = Synth::create(path, day_of)?;
    let start = opts.end_ms - i64::from(opts.days) * 86_400_000;
    let raw_from = opts
        .policy
        .raw
        .map_or(start, |d| opts.end_ms - d.as_millis() as i64);
    let mut stats = GenStats::default();
    let mut next_pid: u32 = 10_000;
    let mut procs: Vec<Proc> = Vec::new();
    let mut busy = vec![false; opts.apps];
    let mut t = start;
    s.begin_run(t - 1000, opts.tick_ms)?;
    stats.runs += 1;
    s.tick(t, 0, &[])?;
    let mut last_tick = t;
    let mut run_started = t;
    let mut asleep_until: Option<i64> = None;
    let mut last_hour = -1i64;
    while t < opts.end_ms {
        let step = if t < raw_from {
            opts.old_tick_ms
        } else {
            opts.tick_ms
        };
        t += step;
        let hour = hour_of_day(t);
        // Nights: half of them the laptop sleeps from 01:00 to 07:00.
        if t / 3_600_000 != last_hour {
            last_hour = t / 3_600_000;
            if hour == 1 && asleep_until.is_none() && rng.unit() < 0.5 {
                asleep_until = Some(t + 6 * 3_600_000);
            }
            // A new run each week, as after an upgrade or reboot.
            if t - run_started > 7 * 86_400_000 && hour == 9 {
                s.end_run(last_tick + 1000)?;
                s.begin_run(t - 30_000, opts.tick_ms)?;
                s.tick(t, 0, &[])?;
                stats.runs += 1;
                run_started = t;
                last_tick = t;
                continue;
            }
        }
        if let Some(until) = asleep_until {
            if t < until {
                continue;
            }
            s.gap(
                last_tick,
                t - step,
                "machine asleep or clock stepped forward",
            )?;
            stats.gaps += 1;
            asleep_until = None;
        }
        // Processes come and go; about `active` are alive at any time.
        procs.retain(|p| {
            let alive = p.until_ms > t;
            if !alive {
                busy[p.app] = false;
            }
            alive
        });
        while procs.len() < opts.active {
            let app = pick(&mut rng, &busy);
            busy[app] = true;
            next_pid += 1;
            let life_min = 10.0 + rng.unit().powi(3) * 2.0 * 24.0 * 60.0;
            procs.push(Proc {
                app,
                pid: next_pid,
                until_ms: t + (life_min * 60_000.0) as i64,
                rate: 60_000.0 * weight[app] * (0.2 + rng.unit()),
            });
        }
        // Daily rhythm: busy afternoons, quiet nights.
        let rhythm: f64 = match hour {
            0..=6 => 0.08,
            7..=8 => 0.5,
            9..=12 => 1.0,
            13..=18 => 1.2,
            19..=22 => 0.8,
            _ => 0.3,
        };
        let busy_share = 0.25 + 0.6 * rhythm.min(1.0);
        let secs = step as f64 / 1000.0;
        let flows: Vec<Flow> = procs
            .iter()
            .filter_map(|p| {
                if rng.unit() > busy_share {
                    return None;
                }
                let burst = rng.unit() * 2.0;
                let bytes_in = (p.rate * rhythm * burst * secs) as u64 + 1;
                let bytes_out = (bytes_in as f64 * (0.02 + 0.2 * rng.unit())) as u64;
                Some(Flow {
                    app: names[p.app].clone(),
                    pid: p.pid,
                    bytes_in,
                    bytes_out,
                })
            })
            .collect();
        stats.sample_rows += flows.len() as u64;
        s.tick(t, step, &flows)?;
        stats.ticks += 1;
        last_tick = t;
        if stats.ticks % 10_000 == 0 {
            progress(t);
        }
    }
    s.end_run(last_tick + 1000)?;
    let cut = retention::cutoffs(&opts.policy, opts.end_ms, |secs| {
        s.day_of(secs.saturating_mul(1000))
    });
    s.retention(cut)?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(seed: u64) -> GenOptions {
        GenOptions {
            end_ms: 1_714_521_600_000, // 2024-05-01T00:00:00Z
            days: 3,
            apps: 12,
            active: 4,
            seed,
            tick_ms: 60_000,
            old_tick_ms: 900_000,
            policy: retention::Policy {
                raw: Some(std::time::Duration::from_secs(86_400)),
                hourly: Some(std::time::Duration::from_secs(2 * 86_400)),
            },
        }
    }

    fn daily(path: &Path) -> Vec<(i64, i64, i64, i64)> {
        let conn = rusqlite::Connection::open(path).expect("open");
        crate::store::testing::daily_rows(&conn)
    }

    #[test]
    fn the_same_seed_and_end_write_the_same_history_through_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let day = |ms: i64| ms.div_euclid(86_400_000) * 86_400;
        let hour = |ms: i64| (ms.div_euclid(3_600_000) % 24) as u32;
        let gen_db = |name: &str, seed: u64| {
            let p = dir.path().join(name);
            let stats = generate(&p, &small(seed), day, hour, |_| {}).expect("generate");
            (p, stats)
        };
        let (a, sa) = gen_db("a.db", 7);
        let (b, _) = gen_db("b.db", 7);
        let (c, _) = gen_db("c.db", 8);
        assert!(sa.ticks > 0 && sa.sample_rows > 0 && sa.gaps + sa.runs > 0);
        assert_eq!(daily(&a), daily(&b));
        assert_ne!(daily(&a), daily(&c));
        // Retention ran: raw ticks only in the last day, hourly only in the last two.
        let conn = rusqlite::Connection::open(&a).expect("open");
        let raw_from = crate::store::meta::get_i64(&conn, crate::store::meta::Key::RawFromMs)
            .expect("meta")
            .expect("retention wrote its boundary");
        let oldest = crate::store::inspect::extent(&conn)
            .expect("extent")
            .oldest_tick_ms
            .expect("ticks");
        assert!(oldest >= raw_from && raw_from >= small(7).end_ms - 86_400_000 - 3_600_000);
        // Never more processes with traffic in a tick than are alive.
        let busiest = crate::store::testing::busiest_tick(&conn);
        assert!(busiest <= 4, "{busiest}");
    }
}
