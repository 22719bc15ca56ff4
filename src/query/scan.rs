//! The SQL that reads traffic: one query per table span, summed per application or per row
//! key (tick, hour or day). Everything above this works on these sums.

use std::collections::HashMap;
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
///
/// Rows are summed here rather than with SQL's GROUP BY: the rows arrive in key order, and
/// grouping them by application in SQLite costs a sort (a temp b-tree) that was most of the
/// time of `apps --since 365d`; a hash map over a few hundred applications is cheaper.
pub fn sum_by_app(
    conn: &Connection,
    layer: Layer,
    a: i64,
    b: i64,
    apps: Option<&[i64]>,
) -> rusqlite::Result<Vec<AppSum>> {
    let mut acc: HashMap<i64, AppSum> = HashMap::new();
    let keep = |app: i64| apps.is_none_or(|ids| ids.binary_search(&app).is_ok());
    let mut add = |app_id: i64, bin: i64, bout: i64, first: i64, last: i64| {
        acc.entry(app_id)
            .and_modify(|t| {
                t.bytes_in += bin;
                t.bytes_out += bout;
                t.first_ms = t.first_ms.min(first);
                t.last_ms = t.last_ms.max(last);
            })
            .or_insert(AppSum {
                app_id,
                bytes_in: bin,
                bytes_out: bout,
                first_ms: first,
                last_ms: last,
            });
    };
    match layer {
        Layer::Raw => {
            // Processes are few (retention drops old ones): map them to applications here
            // instead of joining every sample row.
            let process_app: HashMap<i64, i64> = {
                let mut st = conn.prepare_cached("SELECT id, app_id FROM processes")?;
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?
            };
            // CROSS JOIN keeps ticks as the outer loop: a time range is a range of the
            // ticks_by_time index, and each tick's samples one range of the primary key.
            let mut st = conn.prepare_cached(
                "SELECT s.process_id, s.bytes_in, s.bytes_out, t.at \
                 FROM ticks t CROSS JOIN samples s ON s.tick_id = t.id \
                 WHERE t.at >= ?1 AND t.at < ?2",
            )?;
            let mut rows = st.query(params![a, b])?;
            while let Some(r) = rows.next()? {
                let Some(&app) = process_app.get(&r.get::<_, i64>(0)?) else {
                    continue;
                };
                if keep(app) {
                    let at: i64 = r.get(3)?;
                    add(app, r.get(1)?, r.get(2)?, at, at);
                }
            }
        }
        Layer::Hourly | Layer::Daily => {
            let sql = if layer == Layer::Hourly {
                "SELECT app_id, bytes_in, bytes_out, first_at, last_at FROM hourly \
                 WHERE hour >= ?1 AND hour < ?2"
            } else {
                "SELECT app_id, bytes_in, bytes_out, first_at, last_at FROM daily \
                 WHERE day >= ?1 AND day < ?2"
            };
            let mut st = conn.prepare_cached(sql)?;
            let mut rows = st.query(params![ceil_s(a), ceil_s(b)])?;
            while let Some(r) = rows.next()? {
                let app: i64 = r.get(0)?;
                if keep(app) {
                    add(app, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
                }
            }
        }
    }
    Ok(acc.into_values().collect())
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
