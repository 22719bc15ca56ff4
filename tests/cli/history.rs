//! Fixture histories written through the store's own write path (`netmon::synth`, which
//! drives `store::write::Writer` and `store::retention`), never hand-made SQL.
//!
//! `three_tables()` is 40 days of 10-minute ticks from 2024-04-01 UTC, after a retention pass
//! that left daily totals only before 2024-04-21, hourly totals from there, and raw ticks from
//! 2024-05-01 05:00. It remembers every tick, so tests compute the exact expected totals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use netmon::store::retention::Cutoffs;
use netmon::synth::{Flow, Synth};

pub const MIN: i64 = 60_000;
pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 86_400_000;

/// 2024-04-01T00:00:00Z.
pub const D0: i64 = 1_711_929_600_000;
pub const DAYS: i64 = 40;
/// Raw ticks are kept from here (a UTC hour): 2024-05-01T05:00Z.
pub const RAW_FROM: i64 = D0 + 30 * DAY + 5 * HOUR;
/// Hourly totals are kept from here (a midnight): 2024-04-21T00:00Z.
pub const HOURLY_FROM: i64 = D0 + 20 * DAY;
/// A gap (machine asleep) on day 33, 06:00–12:00; no ticks inside it.
pub const GAP: (i64, i64) = (D0 + 33 * DAY + 6 * HOUR, D0 + 33 * DAY + 12 * HOUR);
/// The run: from its first (baseline) tick to its clean stop.
pub const RUN: (i64, i64) = (D0, D0 + DAYS * DAY - 10 * MIN + 1);

pub const UNATTRIBUTED: &str = "(unattributed: no socket owner)";

/// One recorded tick.
#[derive(Debug, Clone)]
pub struct Tick {
    pub at: i64,
    pub flows: Vec<Flow>,
}

/// The ticks of `three_tables`, in order.
pub fn ticks() -> &'static [Tick] {
    static T: OnceLock<Vec<Tick>> = OnceLock::new();
    T.get_or_init(|| {
        let mut v = Vec::new();
        let mut k: i64 = 0;
        let mut at = D0 + 10 * MIN;
        while at < RUN.1 {
            k += 1;
            if at >= GAP.0 && at < GAP.1 {
                at += 10 * MIN;
                continue;
            }
            // Off the 10-minute grid now and then, so edges are tested off and on the hour.
            let t = if k % 3 == 0 { at + 7_000 } else { at };
            let day = (t - D0) / DAY;
            let mut flows = vec![Flow::new(
                "Safari",
                (100 + day) as u32,
                1000 + (k % 7) as u64 * 13,
                100 + (k % 5) as u64,
            )];
            if k % 3 == 0 {
                flows.push(Flow::new("Mail", 200, 300 + (k % 11) as u64, 30));
            }
            if (k / 100) % 4 == 1 {
                flows.push(Flow::new(
                    "curl",
                    300 + (k / 100) as u32,
                    5000,
                    50 + (k % 3) as u64,
                ));
            }
            if k % 5 == 0 {
                flows.push(Flow::new(UNATTRIBUTED, 0, 40, 4));
            }
            v.push(Tick { at: t, flows });
            at += 10 * MIN;
        }
        v
    })
}

/// Exact totals per app of the ticks with `at` in `[a, b)`.
pub fn expected(a: i64, b: i64) -> BTreeMap<String, (u64, u64)> {
    let mut m: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for t in ticks().iter().filter(|t| t.at >= a && t.at < b) {
        for f in &t.flows {
            let e = m.entry(f.app.clone()).or_default();
            e.0 += f.bytes_in;
            e.1 += f.bytes_out;
        }
    }
    m
}

/// A copy of the three-table fixture database at `dest`.
/// A test world whose database is the three-table fixture.
pub fn fixture() -> crate::util::Env {
    let env = crate::util::Env::new();
    three_tables(&env.db);
    env
}

pub fn three_tables(dest: &Path) {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    let template = TEMPLATE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        remove_stale_templates(dir);
        let path = dir.join(format!("three-tables-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        build(&path);
        path
    });
    std::fs::copy(template, dest).expect("copy fixture");
}

/// Templates of test runs that have ended (one per run; a run's own is rebuilt, so it always
/// reflects the current write path).
fn remove_stale_templates(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("three-tables-")
            .and_then(|r| r.split('.').next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn build(path: &Path) {
    let mut s = Synth::create(path, Synth::utc_days).expect("create");
    s.begin_run(D0 - MIN, 600_000).expect("run");
    s.tick(D0, 0, &[]).expect("baseline tick");
    let mut last = D0;
    for t in ticks() {
        if t.at >= GAP.1 && last < GAP.0 {
            s.gap(GAP.0, GAP.1, "machine asleep or clock stepped forward")
                .expect("gap");
        }
        s.tick(t.at, t.at - last, &t.flows).expect("tick");
        last = t.at;
    }
    s.end_run(RUN.1).expect("stop");
    s.retention(Cutoffs {
        raw_before_ms: Some(RAW_FROM),
        hourly_before: Some(HOURLY_FROM / 1000),
    })
    .expect("retention");
}

/// RFC 3339 for an epoch ms (what --from/--until accept).
pub fn rfc(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .expect("ms")
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}
