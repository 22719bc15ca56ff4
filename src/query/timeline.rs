//! `netmon timeline`: traffic per time bucket, in total or per application.
//!
//! Buckets are aligned to local midnights (a 1h bucket starts on the hour, a 1d bucket at
//! midnight, 7d buckets on Mondays); the first and last bucket are cut to the range, so the
//! buckets of a range add up exactly to `apps` over the same range. Where the data is coarser
//! than the bucket (only hourly totals, or only daily totals, are kept that far back), the
//! buckets inside one hour or day are merged into one row whose `start`/`end` say so: a
//! daily total is never smeared over 24 made-up hours.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde::Serialize;

use super::coverage::{self};
use super::plan::{self, Layer, Piece};
use super::range::Range;
use super::scan;
use super::time::{DAY_MS, day_floor, next_day, utc};
use super::{Db, Error, Matcher};

/// The most buckets one query may have.
pub const MAX_BUCKETS: usize = 100_000;

/// `--bucket` as typed: a length, or `None` for auto.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketArg(pub Option<Duration>);

/// What `--bucket` accepts besides `auto`.
pub const BUCKET: crate::input::Span = crate::input::Span::new(
    Duration::from_secs(1),
    Duration::from_secs(366 * 86_400),
    "5m, 1h, 1d, 7d",
);

/// `--bucket`: `auto`, or a duration that divides a day (5m, 15m, 1h, 6h) or is whole days.
pub fn parse_bucket(s: &str) -> Result<BucketArg, String> {
    if s.trim().eq_ignore_ascii_case("auto") {
        return Ok(BucketArg(None));
    }
    let d = BUCKET.parse(s).map_err(|e| format!("{e}, or auto"))?;
    let ms = d.as_millis() as i64;
    if DAY_MS % ms != 0 && ms % DAY_MS != 0 {
        return Err(
            "a bucket must divide a day (1m, 5m, 15m, 1h, 6h…) or be whole days (1d, 7d)".into(),
        );
    }
    Ok(BucketArg(Some(d)))
}

/// The bucket `auto` picks for a range of `span_ms`.
pub fn auto_bucket(span_ms: i64) -> Duration {
    const H: i64 = 3_600_000;
    let s = if span_ms <= 6 * H {
        300
    } else if span_ms <= 3 * 24 * H {
        3600
    } else if span_ms <= 90 * 24 * H {
        86_400
    } else {
        7 * 86_400
    };
    Duration::from_secs(s)
}

/// What to chart.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `None`: [`auto_bucket`].
    pub bucket: Option<Duration>,
    /// Only applications whose name matches.
    pub app: Option<Matcher>,
    /// One row per bucket and application instead of one per bucket.
    pub per_app: bool,
    /// Only the bytes counted on this network (`netmon networks` lists the ids).
    pub network: Option<i64>,
}

/// One bucket (of one application with `per_app`). Field names are the JSON/CSV contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Present when split per application.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub bytes_total: u64,
    /// Milliseconds of this bucket a recorder was counting.
    pub recorded_ms: i64,
    /// `recorded_ms` as a share of the bucket, 0.0–1.0.
    pub coverage: f64,
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket {
            start: DateTime::<Utc>::UNIX_EPOCH,
            end: DateTime::<Utc>::UNIX_EPOCH,
            app: None,
            bytes_in: 0,
            bytes_out: 0,
            bytes_total: 0,
            recorded_ms: 0,
            coverage: 0.0,
        }
    }
}

/// The answer to `timeline`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    pub requested: Range,
    /// The range the buckets cover (widened where only rollups remain).
    pub range: Range,
    /// The bucket length asked for (or picked by `auto`), in ms.
    pub bucket_ms: i64,
    pub coverage: coverage::Coverage,
    /// In time order; with `per_app`, by bucket then largest first, and only non-zero rows.
    pub buckets: Vec<Bucket>,
    /// Some buckets span several bucket lengths because the data there is coarser.
    pub merged: bool,
    /// With `--network`: how the applications' bytes were put on networks in the range.
    pub split_rules: Option<super::networks::SplitRules>,
}

/// Traffic per bucket over `range`.
pub fn timeline<Tz: TimeZone>(
    db: &Db,
    tz: &Tz,
    range: Range,
    opts: &Options,
) -> Result<Timeline, Error> {
    // Buckets before the day recording began would all be empty: the buckets start there, so
    // the work follows the history, not the width asked for (`--since 36500d --bucket 1d`).
    let covered = match db.earliest_ms()? {
        Some(began) => super::range::from_recording_day(range, tz, began),
        None => range,
    };
    let (a, b) = plan::widen(tz, &db.bounds, covered.start_ms(), covered.end_ms());
    let bucket = opts.bucket.unwrap_or_else(|| auto_bucket(b - a));
    let bucket_ms = (bucket.as_millis() as i64).max(1000);
    let all = boundaries(tz, a, b, bucket_ms)?;
    let edges: Vec<i64> = all
        .iter()
        .enumerate()
        .filter(|(i, t)| *i == 0 || *i == all.len() - 1 || plan::splittable(tz, &db.bounds, **t))
        .map(|(_, t)| *t)
        .collect();
    let merged = edges.len() != all.len();

    // Which bucket each piece of each layer belongs to, in time order.
    let mut pieces: Vec<(Piece, usize)> = Vec::new();
    for (i, w) in edges.windows(2).enumerate() {
        for p in plan::tile(tz, &db.bounds, w[0], w[1], true) {
            pieces.push((p, i));
        }
    }
    let ids = match &opts.app {
        Some(m) => Some(db.matching_apps(m)?),
        None => None,
    };
    let n = edges.len().saturating_sub(1);
    let mut totals: Vec<(i64, i64)> = vec![(0, 0); n];
    let mut per_app: HashMap<(usize, i64), (i64, i64)> = HashMap::new();
    for layer in [Layer::Daily, Layer::Hourly, Layer::Raw] {
        let of_layer: Vec<&(Piece, usize)> =
            pieces.iter().filter(|(p, _)| p.layer == layer).collect();
        if of_layer.is_empty() {
            continue;
        }
        let just: Vec<Piece> = of_layer.iter().map(|(p, _)| *p).collect();
        for (s, e) in plan::spans(&just, layer) {
            let sums = match opts.network {
                Some(n) => super::networks::sum_by_key_on(
                    &db.conn,
                    layer,
                    s,
                    e,
                    opts.per_app,
                    ids.as_deref(),
                    n,
                )?,
                None => scan::sum_by_key(&db.conn, layer, s, e, opts.per_app, ids.as_deref())?,
            };
            for r in sums {
                // The piece holding this row's key (pieces of a layer do not overlap).
                let k = of_layer.partition_point(|(p, _)| p.start_ms <= r.key_ms);
                let Some((p, bucket)) = k.checked_sub(1).map(|k| of_layer[k]) else {
                    continue;
                };
                if r.key_ms >= p.end_ms {
                    continue;
                }
                match r.app_id {
                    Some(app) if opts.per_app => {
                        let e = per_app.entry((*bucket, app)).or_default();
                        e.0 += r.bytes_in;
                        e.1 += r.bytes_out;
                    }
                    _ => {
                        totals[*bucket].0 += r.bytes_in;
                        totals[*bucket].1 += r.bytes_out;
                    }
                }
            }
        }
    }

    let recorded = coverage::recorded(&db.conn, a, b)?;
    let bucket_row = |i: usize, app: Option<String>, (bin, bout): (i64, i64)| {
        let (s, e) = (edges[i], edges[i + 1]);
        let c = recorded.coverage(s, e);
        let (bin, bout) = (bin.max(0) as u64, bout.max(0) as u64);
        Bucket {
            start: utc(s),
            end: utc(e),
            app,
            bytes_in: bin,
            bytes_out: bout,
            bytes_total: bin + bout,
            recorded_ms: c.recorded_ms,
            coverage: c.fraction(),
        }
    };
    let buckets = if opts.per_app {
        let infos = db.apps()?;
        // Applications sharing a name are one application, as in `apps`.
        let mut by_name: HashMap<(usize, String), (i64, i64)> = HashMap::new();
        for ((i, app), (bin, bout)) in per_app {
            let name = infos
                .get(&app)
                .map(|a| a.name.clone())
                .unwrap_or_else(|| format!("(unknown app #{app})"));
            let e = by_name.entry((i, name)).or_default();
            e.0 += bin;
            e.1 += bout;
        }
        let mut rows: Vec<Bucket> = by_name
            .into_iter()
            .filter(|(_, (i, o))| i + o > 0)
            .map(|((i, name), t)| bucket_row(i, Some(name), t))
            .collect();
        rows.sort_by(|x, y| {
            x.start
                .cmp(&y.start)
                .then(y.bytes_total.cmp(&x.bytes_total))
                .then_with(|| x.app.cmp(&y.app))
        });
        rows
    } else {
        (0..n).map(|i| bucket_row(i, None, totals[i])).collect()
    };
    Ok(Timeline {
        requested: range,
        range: Range::from_ms(a, b),
        bucket_ms,
        coverage: recorded.coverage(a, b),
        buckets,
        merged,
        split_rules: match opts.network {
            Some(_) => Some(super::networks::split_rules(&db.conn, a, b)?),
            None => None,
        },
    })
}

/// Bucket edges over `[a, b)`: `a`, every aligned boundary inside, `b`.
fn boundaries<Tz: TimeZone>(tz: &Tz, a: i64, b: i64, bucket_ms: i64) -> Result<Vec<i64>, Error> {
    let too_many = || {
        Error::Invalid(format!(
            "--bucket is too small for this range (more than {MAX_BUCKETS} buckets): \
             choose a larger bucket or a shorter range"
        ))
    };
    if (b - a) / bucket_ms > MAX_BUCKETS as i64 * 2 {
        return Err(too_many());
    }
    let mut v = vec![a];
    if DAY_MS % bucket_ms == 0 {
        // Sub-day buckets restart at every local midnight (a DST day's last bucket is short
        // or long), so 1h buckets are wall-clock hours.
        let mut day = day_floor(tz, a);
        while day < b {
            let nd = next_day(tz, day);
            let mut t = day;
            while t < nd {
                if t > a && t < b {
                    v.push(t);
                    if v.len() > MAX_BUCKETS {
                        return Err(too_many());
                    }
                }
                t += bucket_ms;
            }
            day = nd;
        }
    } else {
        let days = bucket_ms / DAY_MS;
        let mut day = day_floor(tz, a);
        if days == 7 {
            // Weeks start on Monday.
            let back = utc(day).with_timezone(tz).weekday().num_days_from_monday();
            for _ in 0..back {
                day = day_floor(tz, day - 1);
            }
        }
        let mut k = 0;
        while day < b {
            if k % days == 0 && day > a {
                v.push(day);
                if v.len() > MAX_BUCKETS {
                    return Err(too_many());
                }
            }
            day = next_day(tz, day);
            k += 1;
        }
    }
    v.push(b);
    v.dedup();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    const H: i64 = 3_600_000;

    #[test]
    fn buckets_align_to_local_midnights_and_weeks_to_mondays() {
        let tz = FixedOffset::east_opt(2 * 3600).expect("tz");
        // 2024-05-01 is a Wednesday; local midnight is 22:00 UTC the day before.
        let mid = 1_714_514_400_000; // 2024-04-30T22:00:00Z
        let a = mid + 90 * 60_000; // 01:30 local
        let b = mid + 5 * H;
        assert_eq!(
            boundaries(&tz, a, b, H).expect("b"),
            vec![a, mid + 2 * H, mid + 3 * H, mid + 4 * H, b]
        );
        let week = boundaries(&tz, a, mid + 14 * DAY_MS, 7 * DAY_MS).expect("w");
        // Next Monday (2024-05-06) local midnight, then the one after.
        assert_eq!(week[1], mid + 5 * DAY_MS);
        assert_eq!(week[2], mid + 12 * DAY_MS);
    }

    #[test]
    fn bucket_sizes_must_tile_days() {
        assert_eq!(parse_bucket("auto"), Ok(BucketArg(None)));
        assert_eq!(
            parse_bucket("1h"),
            Ok(BucketArg(Some(Duration::from_secs(3600))))
        );
        assert_eq!(
            parse_bucket("7d"),
            Ok(BucketArg(Some(Duration::from_secs(7 * 86_400))))
        );
        assert!(parse_bucket("7m").is_err());
        assert!(parse_bucket("25h").is_err());
        assert!(parse_bucket("x").expect_err("bad").contains("1h"));
        let e = parse_bucket("18446744073709551615s").expect_err("huge");
        assert!(e.contains("from 1s to 366d"), "{e}");
    }
}
