//! `netmon apps`: traffic per application over a range.
//!
//! The range is widened to what the tables can split (see `plan`), tiled into raw, hourly and
//! daily pieces, summed per application id with one query per span, then grouped by the name
//! users see. Unattributed bytes (apps of kind 1) stay rows of their own, named for why.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;

use super::coverage::{self, Coverage};
use super::plan::{self, Layer};
use super::range::Range;
use super::scan;
use super::time::utc;
use super::{AppInfo, Db, Error, Kind, Matcher};

/// How rows are ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Sort {
    /// Most bytes in and out first.
    #[default]
    Total,
    /// Most bytes received first.
    In,
    /// Most bytes sent first.
    Out,
    /// By name, A to Z.
    Name,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub sort: Sort,
    /// At most this many rows (after sorting); `None`: all.
    pub limit: Option<usize>,
    /// Only applications whose name matches.
    pub app: Option<Matcher>,
    /// Only the bytes counted on this network (`netmon networks` lists the ids).
    pub network: Option<i64>,
}

/// One application's traffic in the range. Field names are the JSON/CSV contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppUsage {
    /// The name shown in the table; unattributed bytes are `(unattributed: why)`.
    pub app: String,
    pub kind: Kind,
    /// Bundle or executable path; `None` when unknown or when several share the name.
    pub path: Option<String>,
    /// The container it ran in (its name, else its short id); `None` on this machine itself.
    /// The same application in two containers is two rows.
    pub container: Option<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub bytes_total: u64,
    /// Share of all traffic in the range (0.0–1.0), before `--app` and `--limit`.
    pub share: f64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

impl Default for AppUsage {
    fn default() -> Self {
        AppUsage {
            app: String::new(),
            kind: Kind::Application,
            path: None,
            container: None,
            bytes_in: 0,
            bytes_out: 0,
            bytes_total: 0,
            share: 0.0,
            first_seen: DateTime::<Utc>::UNIX_EPOCH,
            last_seen: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

/// The answer to `apps`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Apps {
    /// The range as asked.
    pub requested: Range,
    /// The range the totals cover: `requested` widened to whole hours or days where only
    /// hourly or daily totals are kept.
    pub range: Range,
    pub coverage: Coverage,
    /// Sorted, filtered, limited.
    pub apps: Vec<AppUsage>,
    /// The applications matching `--app`, before `--limit` cut them.
    pub matched: Totals,
    /// Every application with traffic in the range.
    pub all: Totals,
    /// How much of what the interfaces carried (on `network`, when limited to one) the
    /// applications account for.
    pub explained: super::networks::Explained,
    /// How the applications' bytes were put on networks in the range (`--network`).
    pub split_rules: super::networks::SplitRules,
}

/// How many applications, and their traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub apps: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Totals {
    fn of(rows: &[AppUsage]) -> Self {
        rows.iter().fold(Totals::default(), |t, r| Totals {
            apps: t.apps + 1,
            bytes_in: t.bytes_in + r.bytes_in,
            bytes_out: t.bytes_out + r.bytes_out,
        })
    }
}

/// Per-application totals over `range`.
pub fn apps<Tz: TimeZone>(db: &Db, tz: &Tz, range: Range, opts: &Options) -> Result<Apps, Error> {
    let (a, b) = plan::widen(tz, &db.bounds, range.start_ms(), range.end_ms());
    let pieces = plan::tile(tz, &db.bounds, a, b, true);
    let mut by_id: HashMap<i64, scan::AppSum> = HashMap::new();
    for layer in [Layer::Daily, Layer::Hourly, Layer::Raw] {
        for (s, e) in plan::spans(&pieces, layer) {
            let sums = match opts.network {
                Some(n) => super::networks::sum_by_app_on(&db.conn, layer, s, e, n)?,
                None => scan::sum_by_app(&db.conn, layer, s, e, None)?,
            };
            for r in sums {
                by_id
                    .entry(r.app_id)
                    .and_modify(|t| {
                        t.bytes_in += r.bytes_in;
                        t.bytes_out += r.bytes_out;
                        t.first_ms = t.first_ms.min(r.first_ms);
                        t.last_ms = t.last_ms.max(r.last_ms);
                    })
                    .or_insert(r);
            }
        }
    }
    let infos = db.apps()?;
    let rows = group_by_name(&infos, by_id.into_values());
    let all = Totals::of(&rows);
    let total = all.bytes_in + all.bytes_out;
    let mut rows: Vec<AppUsage> = rows
        .into_iter()
        .filter(|r| opts.app.as_ref().is_none_or(|m| m.matches(&r.app)))
        .map(|mut r| {
            r.share = if total == 0 {
                0.0
            } else {
                r.bytes_total as f64 / total as f64
            };
            r
        })
        .collect();
    sort(&mut rows, opts.sort);
    let matched = Totals::of(&rows);
    if let Some(n) = opts.limit {
        rows.truncate(n);
    }
    let recorded = coverage::recorded(&db.conn, a, b)?;
    let explained =
        super::networks::explained(db, tz, a, b, opts.network, all.bytes_in + all.bytes_out)?;
    Ok(Apps {
        explained,
        split_rules: super::networks::split_rules(&db.conn, a, b)?,
        requested: range,
        range: Range::from_ms(a, b),
        coverage: recorded.coverage(a, b),
        apps: rows,
        matched,
        all,
    })
}

/// Merge per-id sums into one row per name and container (an application seen at two paths
/// is one app; one in a container is another).
fn group_by_name(
    infos: &HashMap<i64, AppInfo>,
    sums: impl Iterator<Item = scan::AppSum>,
) -> Vec<AppUsage> {
    let mut by_name: HashMap<(String, String), (AppUsage, Option<String>, bool)> = HashMap::new();
    for s in sums {
        let info = infos.get(&s.app_id).cloned().unwrap_or_else(|| AppInfo {
            name: format!("(unknown app #{})", s.app_id),
            path: String::new(),
            kind: Kind::Application,
            container: String::new(),
        });
        let (bin, bout) = (s.bytes_in.max(0) as u64, s.bytes_out.max(0) as u64);
        let key = (info.name.clone(), info.container.clone());
        let entry = by_name.entry(key).or_insert_with(|| {
            (
                AppUsage {
                    app: info.name.clone(),
                    kind: info.kind,
                    container: (!info.container.is_empty()).then(|| info.container.clone()),
                    first_seen: utc(s.first_ms),
                    last_seen: utc(s.last_ms),
                    ..AppUsage::default()
                },
                Some(info.path.clone()),
                false,
            )
        });
        let (row, path, mixed) = entry;
        row.bytes_in += bin;
        row.bytes_out += bout;
        row.first_seen = row.first_seen.min(utc(s.first_ms));
        row.last_seen = row.last_seen.max(utc(s.last_ms));
        if path.as_deref() != Some(info.path.as_str()) {
            *mixed = true;
        }
    }
    by_name
        .into_values()
        .map(|(mut row, path, mixed)| {
            row.bytes_total = row.bytes_in + row.bytes_out;
            row.path = if mixed {
                None
            } else {
                path.filter(|p| !p.is_empty())
            };
            row
        })
        .collect()
}

fn sort(rows: &mut [AppUsage], by: Sort) {
    rows.sort_by(|a, b| {
        let key = match by {
            Sort::Total => b.bytes_total.cmp(&a.bytes_total),
            Sort::In => b.bytes_in.cmp(&a.bytes_in),
            Sort::Out => b.bytes_out.cmp(&a.bytes_out),
            Sort::Name => std::cmp::Ordering::Equal,
        };
        key.then_with(|| a.app.to_lowercase().cmp(&b.app.to_lowercase()))
            .then_with(|| a.app.cmp(&b.app))
            .then_with(|| a.container.cmp(&b.container))
    });
}
