//! What a report says, gathered from the same query functions the CLI prints (`query::apps`,
//! `query::timeline`), and embedded in the page as JSON. Nothing here counts bytes on its own:
//! every figure is a query answer, or a sum or maximum of query answers (monthly totals are
//! the sums of the daily buckets of each month, the busiest day is the largest daily bucket).

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeZone, Timelike, Utc};
use serde::Serialize;

use crate::output::round6;
use crate::query::apps::{self, AppUsage, Sort};
use crate::query::domains;
use crate::query::time::{HOUR_MS, utc};
use crate::query::timeline::{self, Bucket};
use crate::query::{Db, Error, Kind, Range};

/// How much a report shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Applications drawn separately in the timeline (the rest are "other").
    pub series: usize,
    /// Applications and websites drawn as bars.
    pub top: usize,
    /// Only the applications' bytes counted on this network (websites are not split).
    pub network: Option<i64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            series: 6,
            top: 10,
            network: None,
        }
    }
}

/// Bucket lengths the timeline chart chooses from, shortest first. Below an hour a bucket
/// can only be read from raw ticks, per application: that costs about 14 ms per hour of
/// range on the benchmark year (a 24-hour report in 15-minute columns took 390 ms, in hours
/// 60 ms), so sub-hour columns are kept for ranges of 6 hours or less.
const TIMELINE_BUCKETS_S: [i64; 8] = [
    300,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86_400,
    2 * 86_400,
    7 * 86_400,
];

/// Ranges up to this long may use sub-hour buckets.
const SUB_HOUR_UP_TO_MS: i64 = 6 * HOUR_MS;

/// At most this many columns in the timeline chart: enough detail, a small file.
const MAX_COLUMNS: i64 = 180;

/// Above this many days the heatmap has one row per weekday instead of one per date.
pub const HEATMAP_MAX_DATE_ROWS: usize = 62;

/// Monthly totals are shown from this range length on.
const MONTHS_FROM_DAYS: i64 = 60;

/// The report's data: serialized into the page as it is (the JSON contract of the report).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub netmon_version: &'static str,
    pub generated_at: DateTime<Utc>,
    /// The UTC offset local times are shown in (at the end of the range), e.g. `+02:00`.
    pub utc_offset: String,
    /// The range as asked, and the range covered (widened where only rollups remain).
    pub requested: Range,
    pub range: Range,
    pub recorded_ms: i64,
    pub coverage: f64,
    /// When the database's first recording began (`None`: it holds none).
    pub recording_began: Option<DateTime<Utc>>,
    /// Why there is nothing to draw: `nothing_recorded` (an empty database),
    /// `not_recorded` (no recording in this range), `no_traffic`; `None` when there is.
    pub empty: Option<&'static str>,
    pub totals: Totals,
    pub headline: Headline,
    /// How much of what the interfaces carried the applications account for; absent when no
    /// interface counters were recorded in the range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explained: Option<crate::query::networks::Explained>,
    /// The network the applications' bytes are limited to (`--network`), by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// With `--network`: how the applications' bytes were put on networks in the range.
    pub split_rules: Option<crate::query::networks::SplitRules>,
    /// Every application with traffic, as `netmon apps --json` lists it (largest first).
    pub apps: Vec<AppUsage>,
    pub timeline: StackedTimeline,
    /// One bucket per local day, as `netmon timeline --bucket 1d --json`.
    pub days: Vec<Bucket>,
    /// Sums of `days` per calendar month (only for ranges of 60 days or more).
    pub months: Vec<Month>,
    pub heatmap: Heatmap,
    pub websites: Websites,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub apps: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub bytes_total: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Headline {
    pub busiest_day: Option<Bucket>,
    /// The application (not unattributed bytes) with the largest total.
    pub top_app: Option<AppUsage>,
    pub top_website: Option<Website>,
    pub average_per_day: Option<Average>,
}

/// Total traffic divided by the days of the range that were recorded at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Average {
    pub bytes_total: u64,
    pub days: usize,
}

/// The timeline, split into the top applications and "other".
#[derive(Debug, Clone, Default, Serialize)]
pub struct StackedTimeline {
    /// The bucket length, as `netmon timeline --bucket` would take it (e.g. `6h`).
    pub bucket: String,
    pub bucket_ms: i64,
    /// Some buckets are whole hours or days because only rollups are kept there.
    pub merged: bool,
    /// Names of the series, in stacking order (bottom first); the last one is "other" when
    /// `other` is true.
    pub series: Vec<String>,
    pub other: bool,
    pub buckets: Vec<StackedBucket>,
}

/// A timeline bucket (as `netmon timeline --json`) with its bytes per series.
#[derive(Debug, Clone, Serialize)]
pub struct StackedBucket {
    #[serde(flatten)]
    pub bucket: Bucket,
    /// `[bytes_in, bytes_out]` of each series, in `series` order.
    pub series: Vec<[u64; 2]>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Month {
    /// `2024-05`.
    pub month: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub bytes_total: u64,
    pub recorded_ms: i64,
}

/// Traffic per local hour of day (columns 0–23), one row per date or per weekday.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Heatmap {
    /// `dates` or `weekdays` (long ranges: each cell sums that weekday's hour over the range).
    pub rows_are: &'static str,
    pub rows: Vec<HeatRow>,
    /// The largest cell.
    pub max: u64,
    /// How many local days have hourly figures (the days the cells are made of).
    pub days_with_hours: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeatRow {
    /// `Mon 6 May` or `Monday`.
    pub label: String,
    /// Bytes per hour of day; `null` where nothing was recorded or only daily totals are kept.
    pub cells: Vec<Option<u64>>,
    /// Only daily totals are kept for (part of) this day: its hours cannot be told apart.
    pub daily_only: bool,
}

/// Websites (browser traffic per site), from `netmon serve` and the browser extension.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Websites {
    /// Whether a browser has ever reported to `netmon serve` (else there can be no website data).
    pub available: bool,
    pub rows: Vec<Website>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Website {
    pub domain: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub bytes_total: u64,
    pub share: f64,
}

/// The bucket the timeline chart uses for a range of `span_ms`: the shortest of
/// [`TIMELINE_BUCKETS_S`] giving at most [`MAX_COLUMNS`] columns (sub-hour only up to 6 hours).
pub fn timeline_bucket_ms(span_ms: i64) -> i64 {
    TIMELINE_BUCKETS_S
        .iter()
        .map(|s| s * 1000)
        .filter(|ms| *ms >= HOUR_MS || span_ms <= SUB_HOUR_UP_TO_MS)
        .find(|ms| (span_ms + ms - 1) / ms <= MAX_COLUMNS)
        .unwrap_or(7 * 86_400_000)
}

/// `6h`, `15m`, `1d`: a bucket length as `--bucket` takes it.
pub fn bucket_flag(ms: i64) -> String {
    let s = ms / 1000;
    if s % 86_400 == 0 {
        format!("{}d", s / 86_400)
    } else if s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// Gather a report over `range` (already resolved) in zone `tz`.
pub fn gather<Tz: TimeZone>(
    db: &Db,
    tz: &Tz,
    range: Range,
    now: DateTime<Utc>,
    opts: &Options,
) -> Result<Report, Error> {
    let began = db.earliest_ms()?;
    let recorded_ever = began.is_some();
    // The page draws every day and hour of its range; a range that starts before recording
    // did is drawn from the day it began, so the page's size and cost follow the history, not
    // the width asked for (`--since 36500d` over a month of data draws that month).
    let requested = range;
    let range = match began {
        Some(b) => crate::query::range::from_recording_day(range, tz, b),
        None => range,
    };
    let apps = apps::apps(
        db,
        tz,
        range,
        &apps::Options {
            sort: Sort::Total,
            limit: None,
            app: None,
            network: opts.network,
        },
    )?;
    let covered = apps.range;
    let rows: Vec<AppUsage> = apps
        .apps
        .iter()
        .map(|r| AppUsage {
            share: round6(r.share),
            ..r.clone()
        })
        .collect();
    let totals = Totals {
        apps: apps.all.apps,
        bytes_in: apps.all.bytes_in,
        bytes_out: apps.all.bytes_out,
        bytes_total: apps.all.bytes_in + apps.all.bytes_out,
    };

    let span = covered.end_ms() - covered.start_ms();
    let days = rounded(
        timeline::timeline(db, tz, range, &bucket_opts(86_400_000, false, opts.network))?.buckets,
    );
    let stacked = stacked(
        db,
        tz,
        range,
        &rows,
        timeline_bucket_ms(span),
        opts.series,
        opts.network,
    )?;
    let hours = timeline::timeline(db, tz, range, &bucket_opts(HOUR_MS, false, opts.network))?;
    let heatmap = heatmap(tz, &hours.buckets, covered);
    // Months are listed when a long range was asked for, however much of it was recorded.
    let asked_span = requested.end_ms() - requested.start_ms();
    let months = if span.max(asked_span) >= MONTHS_FROM_DAYS * 86_400_000 {
        months(tz, &days)
    } else {
        Vec::new()
    };

    let busiest_day = days
        .iter()
        .filter(|d| d.bytes_total > 0)
        .fold(None::<&Bucket>, |best, d| match best {
            Some(b) if b.bytes_total >= d.bytes_total => Some(b),
            _ => Some(d),
        })
        .cloned();
    let recorded_days = days.iter().filter(|d| d.recorded_ms > 0).count();
    let average_per_day = (recorded_days > 0 && totals.bytes_total > 0).then(|| Average {
        bytes_total: totals.bytes_total / recorded_days as u64,
        days: recorded_days,
    });
    let websites = websites(db, tz, range)?;
    let headline = Headline {
        busiest_day,
        top_app: rows
            .iter()
            .find(|r| r.kind == Kind::Application && r.bytes_total > 0)
            .cloned(),
        top_website: websites.rows.first().cloned(),
        average_per_day,
    };
    let empty = if !recorded_ever {
        Some("nothing_recorded")
    } else if apps.coverage.recorded_ms == 0 && totals.bytes_total == 0 {
        Some("not_recorded")
    } else if totals.bytes_total == 0 {
        Some("no_traffic")
    } else {
        None
    };
    Ok(Report {
        netmon_version: env!("CARGO_PKG_VERSION"),
        generated_at: now,
        utc_offset: tz
            .offset_from_utc_datetime(&covered.end.naive_utc())
            .fix()
            .to_string(),
        requested,
        range: covered,
        recorded_ms: apps.coverage.recorded_ms,
        coverage: round6(apps.coverage.fraction()),
        recording_began: began.map(utc),
        empty,
        totals,
        headline,
        explained: apps.explained.share().map(|_| apps.explained),
        network: match opts.network {
            Some(id) => crate::query::networks::name_of(&db.conn, id)?,
            None => None,
        },
        split_rules: opts.network.map(|_| apps.split_rules),
        apps: rows,
        timeline: stacked,
        days,
        months,
        heatmap,
        websites,
    })
}

/// Website data, as `netmon domains` answers it: the browsers' traffic per registrable domain,
/// largest first (the bytes no site could be given are not a bar). `available` is false until
/// a browser has reported to `netmon serve`; the page then says how to start.
fn websites<Tz: TimeZone>(db: &Db, tz: &Tz, range: Range) -> Result<Websites, Error> {
    let d = domains::domains(
        db,
        tz,
        range,
        &domains::Options {
            sort: Sort::Total,
            limit: None,
            app: None,
            rollup: true,
            hosts: false,
        },
    )?;
    Ok(Websites {
        available: !d.browsers_reporting.is_empty(),
        rows: d
            .rows
            .into_iter()
            .filter(|r| r.kind == domains::SiteKind::Site)
            .map(|r| Website {
                domain: r.domain,
                bytes_in: r.bytes_in,
                bytes_out: r.bytes_out,
                bytes_total: r.bytes_total,
                share: round6(r.share),
            })
            .collect(),
    })
}

fn bucket_opts(ms: i64, per_app: bool, network: Option<i64>) -> timeline::Options {
    timeline::Options {
        bucket: Some(std::time::Duration::from_millis(ms as u64)),
        app: None,
        per_app,
        network,
    }
}

/// Coverage rounded as `timeline --json` prints it.
fn rounded(buckets: Vec<Bucket>) -> Vec<Bucket> {
    buckets
        .into_iter()
        .map(|b| Bucket {
            coverage: round6(b.coverage),
            ..b
        })
        .collect()
}

/// The timeline in `bucket_ms` buckets, with each bucket's bytes split into the `n` largest
/// applications of the range and "other".
fn stacked<Tz: TimeZone>(
    db: &Db,
    tz: &Tz,
    range: Range,
    apps: &[AppUsage],
    bucket_ms: i64,
    n: usize,
    network: Option<i64>,
) -> Result<StackedTimeline, Error> {
    let totals = timeline::timeline(db, tz, range, &bucket_opts(bucket_ms, false, network))?;
    let per_app = timeline::timeline(db, tz, range, &bucket_opts(bucket_ms, true, network))?;
    let mut series: Vec<String> = apps.iter().take(n).map(|a| a.app.clone()).collect();
    let other = apps.len() > n;
    let index: HashMap<&str, usize> = series
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let width = series.len() + usize::from(other);
    let by_start: HashMap<DateTime<Utc>, usize> = totals
        .buckets
        .iter()
        .enumerate()
        .map(|(i, b)| (b.start, i))
        .collect();
    let mut split: Vec<Vec<[u64; 2]>> = vec![vec![[0, 0]; width]; totals.buckets.len()];
    for r in &per_app.buckets {
        let (Some(i), Some(name)) = (by_start.get(&r.start), r.app.as_deref()) else {
            continue;
        };
        let s = index.get(name).copied().unwrap_or(width.saturating_sub(1));
        if let Some(cell) = split[*i].get_mut(s) {
            cell[0] += r.bytes_in;
            cell[1] += r.bytes_out;
        }
    }
    if other {
        series.push("other".into());
    }
    let buckets = rounded(totals.buckets)
        .into_iter()
        .zip(split)
        .map(|(bucket, series)| StackedBucket { bucket, series })
        .collect();
    Ok(StackedTimeline {
        bucket: bucket_flag(bucket_ms),
        bucket_ms,
        merged: totals.merged,
        series,
        other,
        buckets,
    })
}

/// Hour-of-day rows from 1-hour buckets: one per local date, or per weekday when the range is
/// longer than [`HEATMAP_MAX_DATE_ROWS`] days. Buckets longer than an hour (only daily totals
/// kept there) are not spread over hours: their days are marked `daily_only`.
fn heatmap<Tz: TimeZone>(tz: &Tz, hours: &[Bucket], covered: Range) -> Heatmap {
    let local = |t: DateTime<Utc>| t.with_timezone(tz).naive_local();
    let first = local(covered.start).date();
    // The last instant inside the range.
    let last = local(utc(covered.end_ms() - 1)).date();
    let ndays = (last - first).num_days().max(0) as usize + 1;
    let by_date = ndays <= HEATMAP_MAX_DATE_ROWS;
    let nrows = if by_date { ndays } else { 7 };
    let mut cells: Vec<Vec<Option<u64>>> = vec![vec![None; 24]; nrows];
    let mut daily_only = vec![false; nrows];
    let mut hour_days: std::collections::HashSet<NaiveDate> = std::collections::HashSet::new();
    let row_of = |d: NaiveDate| -> Option<usize> {
        if by_date {
            usize::try_from((d - first).num_days())
                .ok()
                .filter(|i| *i < nrows)
        } else {
            Some(d.weekday().num_days_from_monday() as usize)
        }
    };
    for b in hours {
        let (s, e) = (b.start.timestamp_millis(), b.end.timestamp_millis());
        let start = local(b.start);
        if e - s > HOUR_MS {
            // A merged bucket: mark every date it touches.
            let mut d = start.date();
            let end = local(utc(e - 1)).date();
            while d <= end {
                if let Some(r) = row_of(d) {
                    daily_only[r] = true;
                }
                let Some(next) = d.succ_opt() else { break };
                d = next;
            }
            continue;
        }
        if b.recorded_ms == 0 && b.bytes_total == 0 {
            continue;
        }
        let Some(r) = row_of(start.date()) else {
            continue;
        };
        hour_days.insert(start.date());
        let cell = &mut cells[r][start.hour() as usize];
        *cell = Some(cell.unwrap_or(0) + b.bytes_total);
    }
    let rows: Vec<HeatRow> = (0..nrows)
        .map(|r| HeatRow {
            label: if by_date {
                (first + chrono::Days::new(r as u64))
                    .format("%a %-d %b")
                    .to_string()
            } else {
                WEEKDAYS[r].to_string()
            },
            cells: std::mem::take(&mut cells[r]),
            daily_only: daily_only[r],
        })
        .collect();
    let max = rows
        .iter()
        .flat_map(|r| r.cells.iter().flatten())
        .copied()
        .max()
        .unwrap_or(0);
    Heatmap {
        rows_are: if by_date { "dates" } else { "weekdays" },
        rows,
        max,
        days_with_hours: hour_days.len(),
    }
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Sums of the daily buckets per local calendar month.
fn months<Tz: TimeZone>(tz: &Tz, days: &[Bucket]) -> Vec<Month> {
    let mut out: Vec<Month> = Vec::new();
    for d in days {
        let key = d
            .start
            .with_timezone(tz)
            .naive_local()
            .format("%Y-%m")
            .to_string();
        match out.last_mut() {
            Some(m) if m.month == key => {
                m.end = d.end;
                m.bytes_in += d.bytes_in;
                m.bytes_out += d.bytes_out;
                m.bytes_total += d.bytes_total;
                m.recorded_ms += d.recorded_ms;
            }
            _ => out.push(Month {
                month: key,
                start: d.start,
                end: d.end,
                bytes_in: d.bytes_in,
                bytes_out: d.bytes_out,
                bytes_total: d.bytes_total,
                recorded_ms: d.recorded_ms,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_bucket_keeps_columns_few_but_detailed() {
        const H: i64 = HOUR_MS;
        assert_eq!(timeline_bucket_ms(6 * H), 300_000);
        assert_eq!(timeline_bucket_ms(24 * H), H);
        assert_eq!(timeline_bucket_ms(7 * 24 * H), H);
        assert_eq!(timeline_bucket_ms(30 * 24 * H), 6 * H);
        assert_eq!(timeline_bucket_ms(90 * 24 * H), 12 * H);
        assert_eq!(timeline_bucket_ms(365 * 24 * H), 7 * 24 * H);
        assert_eq!(timeline_bucket_ms(10 * 365 * 24 * H), 7 * 24 * H);
        assert_eq!(bucket_flag(6 * H), "6h");
        assert_eq!(bucket_flag(900_000), "15m");
        assert_eq!(bucket_flag(300_000), "5m");
        assert_eq!(bucket_flag(7 * 24 * H), "7d");
    }

    fn bucket(start: i64, end: i64, total: u64, recorded_ms: i64) -> Bucket {
        Bucket {
            start: utc(start),
            end: utc(end),
            bytes_in: total,
            bytes_total: total,
            recorded_ms,
            ..Bucket::default()
        }
    }

    #[test]
    fn heatmap_puts_hours_in_local_rows_and_never_spreads_a_daily_total() {
        const D: i64 = 86_400_000;
        let tz = chrono::FixedOffset::east_opt(2 * 3600).expect("tz");
        // Local midnight of 2024-05-01 is 2024-04-30T22:00Z.
        let mid = 1_714_514_400_000;
        let hours = vec![
            bucket(mid - D, mid, 999, D), // a merged (daily-only) day
            bucket(mid, mid + HOUR_MS, 5, HOUR_MS),
            bucket(mid + HOUR_MS, mid + 2 * HOUR_MS, 0, HOUR_MS),
            bucket(mid + 2 * HOUR_MS, mid + 3 * HOUR_MS, 0, 0),
            bucket(mid + 14 * HOUR_MS, mid + 15 * HOUR_MS, 7, HOUR_MS),
        ];
        let h = heatmap(&tz, &hours, Range::from_ms(mid - D, mid + 15 * HOUR_MS));
        assert_eq!(h.rows_are, "dates");
        assert_eq!(h.rows.len(), 2);
        assert!(h.rows[0].daily_only);
        assert!(h.rows[0].cells.iter().all(Option::is_none));
        assert_eq!(h.rows[1].label, "Wed 1 May");
        assert_eq!(h.rows[1].cells[0], Some(5));
        assert_eq!(h.rows[1].cells[1], Some(0), "recorded and quiet");
        assert_eq!(h.rows[1].cells[2], None, "not recorded");
        assert_eq!(h.rows[1].cells[14], Some(7));
        assert_eq!(h.max, 7);
        assert_eq!(h.days_with_hours, 1);
    }

    #[test]
    fn long_ranges_fold_the_heatmap_onto_weekdays() {
        let mid = 1_714_521_600_000; // 2024-05-01T00:00Z, a Wednesday
        let days = 100;
        let hours: Vec<Bucket> = (0..days * 24)
            .map(|h| {
                let s = mid + h * HOUR_MS;
                bucket(s, s + HOUR_MS, 1, HOUR_MS)
            })
            .collect();
        let h = heatmap(&Utc, &hours, Range::from_ms(mid, mid + days * 24 * HOUR_MS));
        assert_eq!(h.rows_are, "weekdays");
        assert_eq!(h.rows.len(), 7);
        let total: u64 = h.rows.iter().flat_map(|r| r.cells.iter().flatten()).sum();
        assert_eq!(total, (days * 24) as u64);
        assert_eq!(h.days_with_hours, days as usize);
        // 100 days from a Wednesday: 15 Wednesdays, 14 Tuesdays.
        assert_eq!(h.rows[2].cells[0], Some(15));
        assert_eq!(h.rows[1].cells[0], Some(14));
    }

    #[test]
    fn months_are_sums_of_their_days() {
        const D: i64 = 86_400_000;
        let may30 = 1_717_027_200_000; // 2024-05-30T00:00Z
        let days: Vec<Bucket> = (0..4)
            .map(|i| bucket(may30 + i * D, may30 + (i + 1) * D, 10 + i as u64, D))
            .collect();
        let m = months(&Utc, &days);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].month.as_str(), m[0].bytes_total), ("2024-05", 21));
        assert_eq!((m[1].month.as_str(), m[1].bytes_total), ("2024-06", 25));
        assert_eq!(m[1].end, utc(may30 + 4 * D));
    }
}
