//! The SQL that reads traffic: one query per table span, summed per application or per row
//! key (tick, hour or day). Everything above this works on these sums.

use std::fmt::Write as _;

use rusqlite::{Connection, params};

use super::plan::Layer;

/// Traffic of one application within a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppSum {
    pub app_id: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    /// First and last tick with traffic (epoch ms).
    pub first_ms: i64,
    pub last_ms: i64,
}

/// Traffic at one row key (a tick's `at`, an hour's or a day's start, in epoch ms),
/// optionally of one application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySum {
    pub key_ms: i64,
    pub app_id: Option<i64>,
    pub bytes_in: i64,
    pub bytes_out: i64,
}

/// `ceil(ms / 1000)`: the first whole second at or after `ms`. Hour and day keys are seconds.
fn ceil_s(ms: i64) -> i64 {
    -(-ms).div_euclid(1000)
}

/// `AND <col> IN (1,2,3)`, or nothing. Ids are integers from the database, never user text.
fn app_filter(col: &str, apps: Option<&[i64]>) -> String {
    let Some(ids) = apps else {
        return String::new();
    };
    let mut s = format!(" AND {col} IN (");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{id}");
    }
    s.push(')');
    s
}

/// Per-application sums of one layer over `[a, b)`.
pub fn sum_by_app(
    conn: &Connection,
    layer: Layer,
    a: i64,
    b: i64,
    apps: Option<&[i64]>,
) -> rusqlite::Result<Vec<AppSum>> {
    let (sql, lo, hi) = match layer {
        // CROSS JOIN keeps ticks as the outer loop: a time range is a range of the ticks_by_time
        // index, and each tick's samples are one range of the clustered primary key.
        Layer::Raw => (
            format!(
                "SELECT p.app_id, sum(s.bytes_in), sum(s.bytes_out), min(t.at), max(t.at) \
                 FROM ticks t CROSS JOIN samples s ON s.tick_id = t.id \
                 JOIN processes p ON p.id = s.process_id \
                 WHERE t.at >= ?1 AND t.at < ?2{} GROUP BY p.app_id",
                app_filter("p.app_id", apps)
            ),
            a,
            b,
        ),
        Layer::Hourly => (
            format!(
                "SELECT app_id, sum(bytes_in), sum(bytes_out), min(first_at), max(last_at) \
                 FROM hourly WHERE hour >= ?1 AND hour < ?2{} GROUP BY app_id",
                app_filter("app_id", apps)
            ),
            ceil_s(a),
            ceil_s(b),
        ),
        Layer::Daily => (
            format!(
                "SELECT app_id, sum(bytes_in), sum(bytes_out), min(first_at), max(last_at) \
                 FROM daily WHERE day >= ?1 AND day < ?2{} GROUP BY app_id",
                app_filter("app_id", apps)
            ),
            ceil_s(a),
            ceil_s(b),
        ),
    };
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(params![lo, hi], |r| {
        Ok(AppSum {
            app_id: r.get(0)?,
            bytes_in: r.get(1)?,
            bytes_out: r.get(2)?,
            first_ms: r.get(3)?,
            last_ms: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// Sums of one layer over `[a, b)` per row key, and per application when `per_app`.
pub fn sum_by_key(
    conn: &Connection,
    layer: Layer,
    a: i64,
    b: i64,
    per_app: bool,
    apps: Option<&[i64]>,
) -> rusqlite::Result<Vec<KeySum>> {
    let app_col = if per_app { ", app_id" } else { ", NULL" };
    let group_app = if per_app { ", app_id" } else { "" };
    let (sql, lo, hi, scale) = match layer {
        Layer::Raw => {
            let need_process = per_app || apps.is_some();
            let (join, app) = if need_process {
                (
                    " JOIN processes p ON p.id = s.process_id",
                    if per_app { ", p.app_id" } else { ", NULL" },
                )
            } else {
                ("", ", NULL")
            };
            (
                format!(
                    "SELECT t.at{app}, sum(s.bytes_in), sum(s.bytes_out) \
                     FROM ticks t CROSS JOIN samples s ON s.tick_id = t.id{join} \
                     WHERE t.at >= ?1 AND t.at < ?2{} GROUP BY t.id{}",
                    app_filter("p.app_id", apps),
                    if per_app { ", p.app_id" } else { "" }
                ),
                a,
                b,
                1,
            )
        }
        Layer::Hourly => (
            format!(
                "SELECT hour{app_col}, sum(bytes_in), sum(bytes_out) FROM hourly \
                 WHERE hour >= ?1 AND hour < ?2{} GROUP BY hour{group_app}",
                app_filter("app_id", apps)
            ),
            ceil_s(a),
            ceil_s(b),
            1000,
        ),
        Layer::Daily => (
            format!(
                "SELECT day{app_col}, sum(bytes_in), sum(bytes_out) FROM daily \
                 WHERE day >= ?1 AND day < ?2{} GROUP BY day{group_app}",
                app_filter("app_id", apps)
            ),
            ceil_s(a),
            ceil_s(b),
            1000,
        ),
    };
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(params![lo, hi], |r| {
        Ok(KeySum {
            key_ms: r.get::<_, i64>(0)?.saturating_mul(scale),
            app_id: r.get(1)?,
            bytes_in: r.get(2)?,
            bytes_out: r.get(3)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_seconds_round_up_so_half_open_ranges_stay_half_open() {
        assert_eq!(ceil_s(3_600_000), 3600);
        assert_eq!(ceil_s(3_600_001), 3601);
        assert_eq!(ceil_s(-1), 0);
        assert_eq!(app_filter("x", Some(&[3, 4])), " AND x IN (3,4)");
        assert_eq!(app_filter("x", None), "");
    }
}
