//! Chart geometry: the report's data turned into SVG shapes (numbers only; every name and
//! label reaches the page through the autoescaping template). Bars of one series are one
//! `<path>`, so a 30-day chart is a few kilobytes and draws at once; colours come from CSS
//! classes, so light, dark and print themes restyle the same shapes.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeZone, Utc};
use serde::Serialize;

use super::data::{Heatmap, Report};
use crate::output::units;
use crate::query::time::{DAY_MS, HOUR_MS, midnight, utc};

/// The drawing width of every chart (viewBox units; the page scales it).
pub const WIDTH: f64 = 960.0;

/// The plot area inside a chart.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// An axis label at `pos` (x or y, in viewBox units).
#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    pub pos: f64,
    pub label: String,
}

/// One series: all its bars as one path, styled by `class`.
#[derive(Debug, Clone, Serialize)]
pub struct Shape {
    pub name: String,
    pub class: String,
    pub d: String,
}

/// A transparent column a pointer can hover: bucket `i`, described by `label`.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub i: usize,
    pub x: f64,
    pub w: f64,
    pub label: String,
}

/// A bar chart over time.
#[derive(Debug, Clone, Serialize)]
pub struct BarChart {
    pub height: f64,
    pub plot: Rect,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    pub series: Vec<Shape>,
    /// Buckets nobody recorded.
    pub unrecorded: String,
    /// Buckets longer than the nominal bucket (only rollups kept there), drawn as averages.
    pub merged: String,
    pub hits: Vec<Hit>,
}

/// The hour-of-day heatmap.
#[derive(Debug, Clone, Serialize)]
pub struct HeatChart {
    pub height: f64,
    pub x0: f64,
    pub y0: f64,
    pub cell_w: f64,
    pub cell_h: f64,
    pub cols: Vec<Tick>,
    pub rows: Vec<Tick>,
    /// Cells by level (index 0: recorded and quiet, then 1–6 by traffic).
    pub levels: Vec<String>,
    /// Hours nobody recorded.
    pub missing: String,
    /// Rows with daily totals only: (y, label).
    pub daily_only: Vec<Tick>,
    /// The legend's level bounds, low to high.
    pub legend: Vec<String>,
}

/// Round to one decimal for SVG, without a trailing `.0`.
fn n(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

/// Append a rectangle to a path.
fn rect(d: &mut String, x: f64, y: f64, w: f64, h: f64) {
    if w <= 0.0 || h <= 0.0 {
        return;
    }
    let _ = write!(d, "M{} {}h{}v{}h-{}z", n(x), n(y), n(w), n(h), n(w));
}

/// A round axis maximum and step for values up to `max`: steps of 1, 2, 2.5 or 5 × 10^k,
/// at most 5 of them.
pub fn nice_scale(max: u64) -> (u64, u64) {
    if max == 0 {
        return (1000, 250);
    }
    let raw = max as f64 / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
        .max(1.0) as u64;
    (max.div_ceil(step) * step, step)
}

/// Bytes on an axis: `0`, `250 MB`, `1.5 GB` (decimal units, no trailing zeros).
pub fn axis_bytes(v: u64) -> String {
    if v == 0 {
        return "0".into();
    }
    let s = units::bytes(v);
    match s.split_once(' ') {
        Some((num, unit)) if num.contains('.') => {
            format!("{} {unit}", num.trim_end_matches('0').trim_end_matches('.'))
        }
        _ => s,
    }
}

/// A time-axis spacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Hours(u32),
    Days(u32),
    Weeks,
    Months(u32),
}

impl Step {
    fn approx_ms(self) -> i64 {
        match self {
            Step::Hours(h) => i64::from(h) * HOUR_MS,
            Step::Days(d) => i64::from(d) * DAY_MS,
            Step::Weeks => 7 * DAY_MS,
            Step::Months(m) => i64::from(m) * 30 * DAY_MS,
        }
    }
}

/// Labelled instants for a time axis over `[a, b)`: local hours, midnights, Mondays or first
/// days of months, at most `max` of them.
pub fn time_ticks<Tz: TimeZone>(tz: &Tz, a: i64, b: i64, max: usize) -> Vec<(i64, String)> {
    const STEPS: [Step; 10] = [
        Step::Hours(1),
        Step::Hours(3),
        Step::Hours(6),
        Step::Hours(12),
        Step::Days(1),
        Step::Days(2),
        Step::Weeks,
        Step::Months(1),
        Step::Months(3),
        Step::Months(12),
    ];
    let span = (b - a).max(1);
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span / s.approx_ms() < max as i64)
        .unwrap_or(Step::Months(12));
    let date_of = |ms: i64| utc(ms).with_timezone(tz).date_naive();
    let (first, last) = (date_of(a), date_of(b - 1));
    let mut out = Vec::new();
    let mut push = |t: i64, label: String| {
        if t >= a && t < b {
            out.push((t, label));
        }
    };
    match step {
        Step::Hours(h) => {
            let mut d = first;
            while d <= last {
                for hour in (0..24).step_by(h as usize) {
                    let naive = d.and_hms_opt(hour, 0, 0).unwrap_or_default();
                    if let Some(t) = tz.from_local_datetime(&naive).earliest() {
                        let label = if hour == 0 {
                            d.format("%a %-d").to_string()
                        } else {
                            format!("{hour:02}:00")
                        };
                        push(t.timestamp_millis(), label);
                    }
                }
                d = d + Days::new(1);
            }
        }
        Step::Days(k) => {
            let mut d = first;
            while d <= last {
                if d.num_days_from_ce() % k as i32 == 0 {
                    push(midnight(tz, d), d.format("%-d %b").to_string());
                }
                d = d + Days::new(1);
            }
        }
        Step::Weeks => {
            let mut d = first;
            while d <= last {
                if d.weekday() == chrono::Weekday::Mon {
                    push(midnight(tz, d), d.format("%-d %b").to_string());
                }
                d = d + Days::new(1);
            }
        }
        Step::Months(k) => {
            let mut d = NaiveDate::from_ymd_opt(first.year(), first.month(), 1).unwrap_or(first);
            let mut labelled_year = false;
            while d <= last {
                if d.month0().is_multiple_of(k) {
                    let t = midnight(tz, d);
                    let label = if k == 12 {
                        d.format("%Y").to_string()
                    } else if d.month() == 1 || (!labelled_year && t >= a) {
                        labelled_year = labelled_year || t >= a;
                        d.format("%b %Y").to_string()
                    } else {
                        d.format("%b").to_string()
                    };
                    push(t, label);
                }
                d = d + Months::new(1);
            }
        }
    }
    out
}

/// A readable span of local time: `Mon 6 May 06:00–12:00`, `Mon 6 May`, `6–12 May`.
pub fn span_label<Tz: TimeZone>(tz: &Tz, start: DateTime<Utc>, end: DateTime<Utc>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let s = start.with_timezone(tz);
    let e = end.with_timezone(tz);
    let whole_days = crate::query::time::is_midnight(tz, start.timestamp_millis())
        && crate::query::time::is_midnight(tz, end.timestamp_millis());
    let e_incl = utc(end.timestamp_millis() - 1).with_timezone(tz);
    if whole_days {
        if s.date_naive() == e_incl.date_naive() {
            s.format("%a %-d %b %Y").to_string()
        } else {
            format!(
                "{} – {}",
                s.format("%a %-d %b"),
                e_incl.format("%a %-d %b %Y")
            )
        }
    } else if s.date_naive() == e.date_naive()
        || (s.date_naive() == e_incl.date_naive() && e.format("%H:%M").to_string() == "00:00")
    {
        let end_hm = if s.date_naive() == e.date_naive() {
            e.format("%H:%M").to_string()
        } else {
            "24:00".to_string()
        };
        format!("{} {}–{}", s.format("%a %-d %b"), s.format("%H:%M"), end_hm)
    } else {
        format!(
            "{} – {}",
            s.format("%a %-d %b %H:%M"),
            e.format("%a %-d %b %H:%M")
        )
    }
}

/// The report's range for its heading: whole days as dates, else times, with the year.
pub fn range_label<Tz: TimeZone>(tz: &Tz, start: DateTime<Utc>, end: DateTime<Utc>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let whole_days = crate::query::time::is_midnight(tz, start.timestamp_millis())
        && crate::query::time::is_midnight(tz, end.timestamp_millis());
    if whole_days {
        return span_label(tz, start, end);
    }
    let (s, e) = (start.with_timezone(tz), end.with_timezone(tz));
    if s.year() == e.year() {
        format!(
            "{} – {}",
            s.format("%a %-d %b %H:%M"),
            e.format("%a %-d %b %Y %H:%M")
        )
    } else {
        format!(
            "{} – {}",
            s.format("%a %-d %b %Y %H:%M"),
            e.format("%a %-d %b %Y %H:%M")
        )
    }
}

const TIMELINE_HEIGHT: f64 = 280.0;
const DAILY_HEIGHT: f64 = 200.0;
const MARGIN_LEFT: f64 = 64.0;
const MARGIN_RIGHT: f64 = 8.0;
const MARGIN_TOP: f64 = 10.0;
const MARGIN_BOTTOM: f64 = 26.0;

/// Columns over time: each entry is (start ms, end ms, values stacked bottom first), and the
/// bucket was recorded at all.
struct Columns<'a> {
    a: i64,
    b: i64,
    nominal_ms: i64,
    cols: &'a [(i64, i64, Vec<u64>, bool)],
    classes: &'a [(String, String)],
    labels: Vec<String>,
}

fn bar_chart<Tz: TimeZone>(tz: &Tz, c: Columns<'_>, height: f64) -> BarChart {
    let plot = Rect {
        x: MARGIN_LEFT,
        y: MARGIN_TOP,
        w: WIDTH - MARGIN_LEFT - MARGIN_RIGHT,
        h: height - MARGIN_TOP - MARGIN_BOTTOM,
    };
    let span = (c.b - c.a).max(1) as f64;
    let x_of = |t: i64| plot.x + (t - c.a) as f64 / span * plot.w;
    // A bucket longer than the nominal one (only rollups there) is drawn as its average per
    // nominal bucket, so a daily total is not a spike 24 hours tall.
    let scale = |s: i64, e: i64| -> f64 {
        if c.nominal_ms > 0 && e - s > c.nominal_ms {
            c.nominal_ms as f64 / (e - s) as f64
        } else {
            1.0
        }
    };
    let max = c
        .cols
        .iter()
        .map(|(s, e, v, _)| (v.iter().sum::<u64>() as f64 * scale(*s, *e)).ceil() as u64)
        .max()
        .unwrap_or(0);
    let (top, step) = nice_scale(max);
    let y_of = |v: f64| plot.y + plot.h - v / top as f64 * plot.h;
    let mut paths = vec![String::new(); c.classes.len()];
    let (mut unrecorded, mut merged) = (String::new(), String::new());
    let mut hits = Vec::with_capacity(c.cols.len());
    for (i, (s, e, values, recorded)) in c.cols.iter().enumerate() {
        let (x0, x1) = (x_of(*s), x_of(*e));
        let w = x1 - x0;
        // A hairline gap between wide bars; narrow ones touch.
        let gap = if w >= 4.0 { 1.0 } else { 0.0 };
        let k = scale(*s, *e);
        let mut acc = 0.0;
        for (j, v) in values.iter().enumerate() {
            if *v == 0 {
                continue;
            }
            let lo = y_of(acc);
            acc += *v as f64 * k;
            let hi = y_of(acc);
            if let Some(p) = paths.get_mut(j) {
                rect(p, x0 + gap / 2.0, hi, w - gap, lo - hi);
            }
        }
        if !recorded {
            rect(&mut unrecorded, x0, plot.y, w, plot.h);
        } else if k < 1.0 {
            rect(&mut merged, x0, plot.y, w, plot.h);
        }
        hits.push(Hit {
            i,
            x: (x0 * 10.0).round() / 10.0,
            w: (w * 10.0).round() / 10.0,
            label: c.labels.get(i).cloned().unwrap_or_default(),
        });
    }
    let y_ticks = (0..)
        .map(|i| i * step)
        .take_while(|v| *v <= top)
        .map(|v| Tick {
            pos: (y_of(v as f64) * 10.0).round() / 10.0,
            label: axis_bytes(v),
        })
        .collect();
    let x_ticks = time_ticks(tz, c.a, c.b, 9)
        .into_iter()
        .map(|(t, label)| Tick {
            pos: (x_of(t) * 10.0).round() / 10.0,
            label,
        })
        .collect();
    BarChart {
        height,
        plot,
        y_ticks,
        x_ticks,
        series: c
            .classes
            .iter()
            .zip(paths)
            .map(|((name, class), d)| Shape {
                name: name.clone(),
                class: class.clone(),
                d,
            })
            .collect(),
        unrecorded,
        merged,
        hits,
    }
}

/// The timeline, stacked by series (bottom: the largest application).
pub fn timeline<Tz: TimeZone>(tz: &Tz, r: &Report) -> BarChart
where
    Tz::Offset: std::fmt::Display,
{
    let t = &r.timeline;
    let cols: Vec<(i64, i64, Vec<u64>, bool)> = t
        .buckets
        .iter()
        .map(|b| {
            (
                b.bucket.start.timestamp_millis(),
                b.bucket.end.timestamp_millis(),
                b.series.iter().map(|[i, o]| i + o).collect(),
                b.bucket.recorded_ms > 0,
            )
        })
        .collect();
    let classes: Vec<(String, String)> = t
        .series
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let class = if t.other && i + 1 == t.series.len() {
                "so".to_string()
            } else {
                format!("s{i}")
            };
            (name.clone(), class)
        })
        .collect();
    let labels = t
        .buckets
        .iter()
        .map(|b| span_label(tz, b.bucket.start, b.bucket.end))
        .collect();
    bar_chart(
        tz,
        Columns {
            a: r.range.start_ms(),
            b: r.range.end_ms(),
            nominal_ms: t.bucket_ms,
            cols: &cols,
            classes: &classes,
            labels,
        },
        TIMELINE_HEIGHT,
    )
}

/// Daily totals, received below sent.
pub fn daily<Tz: TimeZone>(tz: &Tz, r: &Report) -> BarChart
where
    Tz::Offset: std::fmt::Display,
{
    let cols: Vec<(i64, i64, Vec<u64>, bool)> = r
        .days
        .iter()
        .map(|b| {
            (
                b.start.timestamp_millis(),
                b.end.timestamp_millis(),
                vec![b.bytes_in, b.bytes_out],
                b.recorded_ms > 0,
            )
        })
        .collect();
    let classes = vec![
        ("received".to_string(), "rx".to_string()),
        ("sent".to_string(), "tx".to_string()),
    ];
    let labels = r
        .days
        .iter()
        .map(|b| span_label(tz, b.start, b.end))
        .collect();
    bar_chart(
        tz,
        Columns {
            a: r.range.start_ms(),
            b: r.range.end_ms(),
            nominal_ms: DAY_MS,
            cols: &cols,
            classes: &classes,
            labels,
        },
        DAILY_HEIGHT,
    )
}

/// Heat levels above "quiet": 1–6.
const LEVELS: usize = 6;

/// The level of a cell of `v` bytes in a map whose largest cell is `max`: a square-root
/// scale, so a busy hour does not wash out every other one.
pub fn level(v: u64, max: u64) -> usize {
    if v == 0 || max == 0 {
        return 0;
    }
    let f = (v as f64 / max as f64).sqrt();
    1 + ((f * LEVELS as f64).ceil() as usize).clamp(1, LEVELS) - 1
}

pub fn heatmap(h: &Heatmap) -> HeatChart {
    let x0 = 104.0;
    let y0 = 22.0;
    let cell_w = (WIDTH - x0 - MARGIN_RIGHT) / 24.0;
    let cell_h = if h.rows_are == "weekdays" { 24.0 } else { 16.0 };
    let gap = 2.0;
    let mut levels = vec![String::new(); LEVELS + 1];
    let mut missing = String::new();
    let mut daily_only = Vec::new();
    for (r, row) in h.rows.iter().enumerate() {
        let y = y0 + r as f64 * cell_h;
        if row.daily_only && row.cells.iter().all(Option::is_none) {
            daily_only.push(Tick {
                pos: y,
                label: row.label.clone(),
            });
            continue;
        }
        for (c, cell) in row.cells.iter().enumerate() {
            let x = x0 + c as f64 * cell_w;
            match cell {
                Some(v) => rect(
                    &mut levels[level(*v, h.max)],
                    x + gap / 2.0,
                    y + gap / 2.0,
                    cell_w - gap,
                    cell_h - gap,
                ),
                None => rect(
                    &mut missing,
                    x + gap / 2.0,
                    y + gap / 2.0,
                    cell_w - gap,
                    cell_h - gap,
                ),
            }
        }
    }
    let cols = (0..24)
        .step_by(3)
        .map(|c| Tick {
            pos: x0 + c as f64 * cell_w + 2.0,
            label: format!("{c:02}:00"),
        })
        .collect();
    let rows = h
        .rows
        .iter()
        .enumerate()
        .map(|(r, row)| Tick {
            pos: y0 + (r as f64 + 0.5) * cell_h,
            label: row.label.clone(),
        })
        .collect();
    // What each level means: the largest value it can hold.
    let legend = (1..=LEVELS)
        .map(|l| {
            let f = l as f64 / LEVELS as f64;
            format!("≤ {}", axis_bytes((f * f * h.max as f64).round() as u64))
        })
        .collect();
    HeatChart {
        height: y0 + h.rows.len() as f64 * cell_h + 4.0,
        x0,
        y0,
        cell_w: (cell_w * 1000.0).round() / 1000.0,
        cell_h,
        cols,
        rows,
        levels,
        missing,
        daily_only,
        legend,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice_scale(0), (1000, 250));
        assert_eq!(nice_scale(9_000_000_000), (10_000_000_000, 2_000_000_000));
        assert_eq!(nice_scale(1_100), (1_250, 250));
        assert_eq!(nice_scale(1), (1, 1));
        let (top, step) = nice_scale(123_456_789);
        assert!(top >= 123_456_789 && top / step <= 5);
        assert_eq!(axis_bytes(2_500_000_000), "2.5 GB");
        assert_eq!(axis_bytes(500_000_000), "500 MB");
        assert_eq!(axis_bytes(1_000_000), "1 MB");
        assert_eq!(axis_bytes(0), "0");
    }

    #[test]
    fn svg_numbers_are_short() {
        assert_eq!(n(12.0), "12");
        assert_eq!(n(12.04), "12");
        assert_eq!(n(12.06), "12.1");
        let mut d = String::new();
        rect(&mut d, 1.0, 2.0, 3.5, 4.0);
        rect(&mut d, 1.0, 2.0, 0.0, 4.0);
        assert_eq!(d, "M1 2h3.5v4h-3.5z");
    }

    #[test]
    fn heat_levels_rise_with_traffic_and_zero_is_quiet() {
        assert_eq!(level(0, 100), 0);
        assert_eq!(level(100, 100), LEVELS);
        assert_eq!(level(1, 1_000_000), 1);
        let mut last = 0;
        for v in (1..=100).step_by(7) {
            let l = level(v, 100);
            assert!(l >= last && (1..=LEVELS).contains(&l));
            last = l;
        }
    }

    #[test]
    fn time_ticks_pick_a_spacing_that_fits() {
        let a = 1_714_521_600_000; // 2024-05-01T00:00Z, a Wednesday
        let day = time_ticks(&Utc, a, a + DAY_MS, 9);
        assert_eq!(day.len(), 8, "every 3 hours: {day:?}");
        assert_eq!(day[0], (a, "Wed 1".to_string()));
        assert_eq!(day[1].1, "03:00");
        let month = time_ticks(&Utc, a, a + 30 * DAY_MS, 9);
        assert!(month.iter().all(|(_, l)| l.contains("May")), "{month:?}");
        assert!(month.len() <= 9 && month.len() >= 4);
        let year = time_ticks(&Utc, a, a + 365 * DAY_MS, 9);
        assert_eq!(year[0].1, "Jul 2024");
        assert!(year.iter().any(|(_, l)| l == "Jan 2025"));
        assert!(year.len() <= 9);
    }

    #[test]
    fn spans_read_as_local_times() {
        let a = utc(1_714_521_600_000); // 2024-05-01T00:00Z
        let h = |x: i64| utc(a.timestamp_millis() + x * HOUR_MS);
        assert_eq!(span_label(&Utc, h(6), h(12)), "Wed 1 May 06:00–12:00");
        assert_eq!(span_label(&Utc, h(18), h(24)), "Wed 1 May 18:00–24:00");
        assert_eq!(span_label(&Utc, a, h(24)), "Wed 1 May 2024");
        assert_eq!(span_label(&Utc, a, h(48)), "Wed 1 May – Thu 2 May 2024");
        let tz = chrono::FixedOffset::east_opt(2 * 3600).expect("tz");
        assert_eq!(span_label(&tz, h(6), h(12)), "Wed 1 May 08:00–14:00");
        assert_eq!(
            range_label(&Utc, h(6), h(24 * 400)),
            "Wed 1 May 2024 06:00 – Thu 5 Jun 2025 00:00"
        );
        assert_eq!(
            range_label(&Utc, h(6), h(30)),
            "Wed 1 May 06:00 – Thu 2 May 2024 06:00"
        );
    }
}
