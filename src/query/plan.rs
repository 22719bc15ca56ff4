//! Which table answers which part of a range, so totals agree whichever table is read.
//!
//! The recorder adds every tick's deltas to three tables in one transaction: per-tick samples
//! (`raw`, kept `--keep-raw`), UTC-hour totals (`hourly`, kept `--keep-hourly`) and local-day
//! totals (`daily`, kept forever). Retention deletes raw rows before `meta.raw_from_ms` (a UTC
//! hour) and hourly rows before `meta.hourly_from` (a local midnight). So at an instant `t`:
//! raw rows exist when `t >= raw_from`, hourly rows when `t >= hourly_from`, daily rows always.
//!
//! A range is first widened so that each end falls where the data there can be split (an hour
//! boundary where only hourly totals remain, a midnight where only daily totals do), then
//! tiled into pieces, coarsest first: whole local days from `daily`, whole UTC hours from
//! `hourly`, and the partial hours at the edges from raw ticks. Every tile is exact (an hour's
//! row is the sum of that hour's ticks), so a total never depends on the tiling, reads few
//! rows, and never counts a byte twice.

use chrono::TimeZone;
use rusqlite::Connection;

use super::time::{HOUR_MS, ceil_hour, day_ceil, day_floor, floor_hour, is_midnight, next_day};
use crate::store::meta::{self, Key};

/// Where the raw and hourly tables begin (epoch ms); `None`: the table holds all it ever got.
/// And where any data lies at all, so that a query's cost follows the data recorded, not the
/// width of the range asked for (`--from 1970-01-01` walks the recorded days, not 56 years).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bounds {
    pub raw_from_ms: Option<i64>,
    pub hourly_from_ms: Option<i64>,
    /// Every row of every table lies in `[start, end)` (epoch ms), with a margin for a
    /// recorder that ran in another time zone; `None`: not known (tests), nothing is clamped.
    pub data_ms: Option<(i64, i64)>,
}

/// The margin around the recorded days: days are keyed by the recorder's local midnight, and
/// zones differ from UTC by at most 26 hours.
const DATA_MARGIN_MS: i64 = 2 * 86_400_000;

impl Bounds {
    /// Read the retention boundaries from `meta`, and the first and last recorded days from
    /// `daily` and `net_daily` (kept forever, they get every tick's bytes: no row of any table
    /// lies outside their days).
    pub fn load(conn: &Connection) -> rusqlite::Result<Self> {
        let (first_day, last_day): (Option<i64>, Option<i64>) =
            // Interfaces may have carried bytes on days no application did (net_daily).
            conn.query_row(
                "SELECT min(a), max(b) FROM (SELECT min(day) a, max(day) b FROM daily \
                 UNION ALL SELECT min(day), max(day) FROM net_daily)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
        let data_ms = match (first_day, last_day) {
            (Some(f), Some(l)) => Some((
                f.saturating_mul(1000).saturating_sub(DATA_MARGIN_MS),
                l.saturating_mul(1000).saturating_add(DATA_MARGIN_MS),
            )),
            _ => Some((0, 0)),
        };
        Ok(Bounds {
            raw_from_ms: meta::get_i64(conn, Key::RawFromMs)?,
            hourly_from_ms: meta::get_i64(conn, Key::HourlyFromS)?.map(|s| s.saturating_mul(1000)),
            data_ms,
        })
    }

    /// `[a, b)` narrowed to where data can lie, both ends still points the data can be split
    /// at (local midnights); `None` when no data can lie in it.
    pub fn clamp<Tz: TimeZone>(&self, tz: &Tz, a: i64, b: i64) -> Option<(i64, i64)> {
        let Some((lo, hi)) = self.data_ms else {
            return (a < b).then_some((a, b));
        };
        if hi <= lo {
            return None;
        }
        let s = if a < lo { day_floor(tz, lo) } else { a };
        let e = if b > hi { next_day(tz, hi) } else { b };
        (s < e).then_some((s.max(a), e.min(b)))
    }

    /// Raw ticks exist at `t`.
    pub fn raw_at(&self, t: i64) -> bool {
        self.raw_from_ms.is_none_or(|r| t >= r)
    }

    /// Hourly rows exist at `t`.
    pub fn hourly_at(&self, t: i64) -> bool {
        self.hourly_from_ms.is_none_or(|h| t >= h)
    }
}

/// A table of traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    /// `ticks` + `samples`: rows whose tick `at` is in the piece.
    Raw,
    /// `hourly`: rows whose `hour` starts in the piece.
    Hourly,
    /// `daily`: rows whose `day` starts in the piece.
    Daily,
}

/// One layer answering `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub layer: Layer,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// Whether the data can be split at `t`: anything before `t` and anything after it lie in
/// different rows.
pub fn splittable<Tz: TimeZone>(tz: &Tz, b: &Bounds, t: i64) -> bool {
    b.raw_at(t) || (b.hourly_at(t) && t.rem_euclid(HOUR_MS) == 0) || is_midnight(tz, t)
}

/// Widen `[start, end)` outwards to the nearest points where the data can be split.
pub fn widen<Tz: TimeZone>(tz: &Tz, b: &Bounds, start: i64, end: i64) -> (i64, i64) {
    let s = if b.raw_at(start) {
        start
    } else if b.hourly_at(start) {
        floor_hour(start)
    } else {
        day_floor(tz, start)
    };
    // The end is judged by the data just before it.
    let e = if b.raw_at(end - 1) {
        end
    } else if b.hourly_at(end - 1) {
        ceil_hour(end)
    } else {
        day_ceil(tz, end)
    };
    (s, e.max(s))
}

/// Tile `[a, b)` (both splittable) into pieces. With `days`, whole local days come from the
/// daily table even where finer tables exist (the fewest rows to read); without it, only
/// where nothing finer is left.
pub fn tile<Tz: TimeZone>(tz: &Tz, bounds: &Bounds, a: i64, b: i64, days: bool) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::new();
    // Outside the recorded days there are no rows to read.
    let Some((a, b)) = bounds.clamp(tz, a, b) else {
        return out;
    };
    let mut push = |layer: Layer, s: i64, e: i64| match out.last_mut() {
        Some(last) if last.layer == layer && last.end_ms == s => last.end_ms = e,
        _ => out.push(Piece {
            layer,
            start_ms: s,
            end_ms: e,
        }),
    };
    let mut p = a;
    while p < b {
        let daily_only = !bounds.hourly_at(p);
        if daily_only || (days && p.rem_euclid(HOUR_MS) == 0) {
            let nd = next_day(tz, p);
            // A whole day from the daily table; where finer rows exist, only when the day's
            // edges are hour boundaries (half-hour zones must split days by hour).
            if is_midnight(tz, p) && nd <= b && (daily_only || nd.rem_euclid(HOUR_MS) == 0) {
                push(Layer::Daily, p, nd);
                p = nd;
                continue;
            }
        }
        if daily_only {
            // Not on a midnight: no row can be split here. Widening avoids this; if it is
            // reached (a day row from a recorder in another zone), nothing is read until the
            // next point a table can split at.
            let mut q = next_day(tz, p).min(b);
            if let Some(h) = bounds.hourly_from_ms.filter(|h| *h > p) {
                q = q.min(h);
            }
            p = q;
            continue;
        }
        let nh = floor_hour(p) + HOUR_MS;
        if p.rem_euclid(HOUR_MS) == 0 && nh <= b {
            push(Layer::Hourly, p, nh);
            p = nh;
        } else if bounds.raw_at(p) {
            let q = nh.min(b);
            push(Layer::Raw, p, q);
            p = q;
        } else {
            // Inside an hour that only hourly totals cover and that the range cuts: nothing
            // can be read for it (widening avoids this too).
            p = nh.min(b);
        }
    }
    out
}

/// The pieces of one layer, merged where they touch: one SQL query per span.
pub fn spans(pieces: &[Piece], layer: Layer) -> Vec<(i64, i64)> {
    let mut v: Vec<(i64, i64)> = pieces
        .iter()
        .filter(|p| p.layer == layer)
        .map(|p| (p.start_ms, p.end_ms))
        .collect();
    v.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if last.1 >= s => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, Utc};

    const H: i64 = HOUR_MS;
    const D: i64 = 24 * H;

    fn covered(pieces: &[Piece]) -> i64 {
        pieces.iter().map(|p| p.end_ms - p.start_ms).sum()
    }

    #[test]
    fn without_retention_everything_is_raw_but_whole_hours_and_days_are_rolled_up() {
        let b = Bounds::default();
        let a = 10 * D + 30 * 60_000; // 00:30
        let e = 13 * D + 2 * H + 15 * 60_000; // three days later, 02:15
        let t = tile(&Utc, &b, a, e, true);
        assert_eq!(covered(&t), e - a);
        assert_eq!(
            t.iter().map(|p| p.layer).collect::<Vec<_>>(),
            vec![
                Layer::Raw,
                Layer::Hourly,
                Layer::Daily,
                Layer::Hourly,
                Layer::Raw
            ]
        );
        assert_eq!(t[2].start_ms, 11 * D);
        assert_eq!(t[2].end_ms, 13 * D);
        // Without days, the middle is hours.
        let t = tile(&Utc, &b, a, e, false);
        assert!(t.iter().all(|p| p.layer != Layer::Daily));
        assert_eq!(covered(&t), e - a);
    }

    #[test]
    fn widening_snaps_to_what_each_table_can_split() {
        let b = Bounds {
            raw_from_ms: Some(100 * D),
            hourly_from_ms: Some(50 * D),
            data_ms: None,
        };
        // Start among daily-only rows: to its midnight; end among raw rows: as is.
        assert_eq!(
            widen(&Utc, &b, 40 * D + 5 * H, 100 * D + 7),
            (40 * D, 100 * D + 7)
        );
        // Start among hourly rows: to its hour; end among hourly rows: to the next hour.
        assert_eq!(
            widen(&Utc, &b, 60 * D + 5 * H + 1, 70 * D + 1),
            (60 * D + 5 * H, 70 * D + H)
        );
        // An end exactly on the raw boundary is judged by the hour before it.
        assert_eq!(widen(&Utc, &b, 60 * D, 100 * D).1, 100 * D);
        assert!(splittable(&Utc, &b, 60 * D + H));
        assert!(!splittable(&Utc, &b, 60 * D + H + 1));
        assert!(!splittable(&Utc, &b, 40 * D + H));
        assert!(splittable(&Utc, &b, 100 * D + 1));
    }

    #[test]
    fn a_range_across_all_three_tables_is_tiled_without_overlap_or_hole() {
        let b = Bounds {
            raw_from_ms: Some(100 * D + 3 * H),
            hourly_from_ms: Some(50 * D),
            data_ms: None,
        };
        let (a, e) = widen(&Utc, &b, 40 * D + 5 * H, 100 * D + 5 * H + 17);
        let t = tile(&Utc, &b, a, e, false);
        assert_eq!(covered(&t), e - a);
        for w in t.windows(2) {
            assert_eq!(w[0].end_ms, w[1].start_ms);
        }
        // Daily only before hourly_from; raw only after raw_from.
        for p in &t {
            match p.layer {
                Layer::Daily => assert!(p.end_ms <= 50 * D),
                Layer::Raw => assert!(p.start_ms >= 100 * D + 3 * H),
                Layer::Hourly => assert!(p.start_ms >= 50 * D),
            }
        }
        assert_eq!(spans(&t, Layer::Daily), vec![(40 * D, 50 * D)]);
    }

    #[test]
    fn half_hour_zones_split_days_by_hour_where_hours_exist() {
        let ist = FixedOffset::east_opt(5 * 3600 + 1800).expect("tz");
        let b = Bounds::default();
        let a = day_floor(&ist, 10 * D); // 18:30 UTC
        let e = a + 3 * D;
        let t = tile(&ist, &b, a, e, true);
        assert_eq!(covered(&t), e - a);
        assert!(
            t.iter().all(|p| p.layer != Layer::Daily),
            "days not on hour edges come from hours: {t:?}"
        );
    }

    #[test]
    fn tiling_walks_only_the_recorded_days_however_wide_the_range() {
        let b = Bounds {
            raw_from_ms: None,
            hourly_from_ms: Some(i64::MAX),
            data_ms: Some((20_000 * D, 20_003 * D)),
        };
        // 8000 years each side of three recorded days: the pieces are those days'.
        let t = tile(&Utc, &b, -3_000_000 * D, 3_000_000 * D, true);
        assert!(t.len() <= 2 && !t.is_empty(), "{t:?}");
        assert!(
            t.iter()
                .all(|p| p.start_ms >= 20_000 * D && p.end_ms <= 20_004 * D)
        );
        let empty = Bounds {
            data_ms: Some((0, 0)),
            ..b
        };
        assert!(tile(&Utc, &empty, 0, 3_000_000 * D, true).is_empty());
        // A range inside the data is left as it is.
        assert_eq!(
            b.clamp(&Utc, 20_001 * D + 5, 20_002 * D),
            Some((20_001 * D + 5, 20_002 * D))
        );
        assert_eq!(b.clamp(&Utc, 0, 10 * D), None);
    }
}
