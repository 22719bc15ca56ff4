//! The retention pass, run by the recorder about once an hour (vnstat's `db_removeoldentries`).
//!
//! Raw ticks and samples older than the raw window and hourly rollups older than the hourly
//! window are deleted; daily rollups, runs and gaps are kept. Websites follow the same rules:
//! per-tick host samples, active-tab intervals and address observations go with the raw
//! window, per-host hourly totals with the hourly window, per-host daily totals stay. Cut-offs are aligned (raw to a
//! UTC hour, hourly to a local midnight) and recorded in `meta` (`raw_from_ms`, `hourly_from`),
//! so queries can stitch raw, hourly and daily data without counting any byte twice or
//! missing one. Freed pages are handed back to the file system (incremental auto-vacuum), so
//! the file shrinks instead of only not growing.

use std::time::Duration;

use rusqlite::{Connection, params};

use super::Error;
use super::meta::{self, Key};

/// How long each table keeps its rows; `None` keeps them forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub raw: Option<Duration>,
    pub hourly: Option<Duration>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            raw: Some(Duration::from_secs(7 * 86_400)),
            hourly: Some(Duration::from_secs(90 * 86_400)),
        }
    }
}

/// Where the deletions stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Raw rows with `at` below this (epoch ms, on a UTC hour) go.
    pub raw_before_ms: Option<i64>,
    /// Hourly rows with `hour` below this (epoch s, a local midnight) go.
    pub hourly_before: Option<i64>,
}

/// What one pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub ticks: usize,
    pub samples: usize,
    pub flow_samples: usize,
    pub web_samples: usize,
    pub hourly: usize,
    pub web_hourly: usize,
    /// Active-tab intervals and address observations.
    pub web_activity: usize,
    pub processes: usize,
    pub pages_freed: i64,
}

/// Compute the cut-offs for `now_ms`. `day_floor` maps an epoch second to the epoch second of
/// the local midnight starting its day (the recorder passes the local time zone's).
pub fn cutoffs(policy: &Policy, now_ms: i64, day_floor: impl Fn(i64) -> i64) -> Cutoffs {
    let raw_before_ms = policy.raw.map(|keep| {
        let t = now_ms - keep.as_millis() as i64;
        t.div_euclid(3_600_000) * 3_600_000
    });
    let hourly_before = policy.hourly.map(|keep| {
        let t = now_ms.div_euclid(1000) - keep.as_secs() as i64;
        day_floor(t)
    });
    Cutoffs {
        raw_before_ms,
        hourly_before,
    }
}

/// A process whose `last_at` is older than this before the raw cut-off has no samples left
/// (`last_at` is refreshed at most once a minute while the process has traffic).
const PROCESS_SLACK_MS: i64 = 120_000;

/// Delete what the cut-offs say, record the new boundaries, and shrink the file.
pub fn apply(conn: &mut Connection, c: &Cutoffs) -> Result<Stats, Error> {
    let mut stats = Stats::default();
    let tx = conn.transaction()?;
    if let Some(before) = c.raw_before_ms {
        let doomed = "SELECT id FROM ticks WHERE at < ?1";
        stats.samples = tx.execute(
            &format!("DELETE FROM samples WHERE tick_id IN ({doomed})"),
            [before],
        )?;
        stats.flow_samples = tx.execute(
            &format!("DELETE FROM flow_samples WHERE tick_id IN ({doomed})"),
            [before],
        )?;
        stats.web_samples = tx.execute(
            &format!("DELETE FROM web_samples WHERE tick_id IN ({doomed})"),
            [before],
        )?;
        stats.ticks = tx.execute("DELETE FROM ticks WHERE at < ?1", [before])?;
        stats.web_activity = tx.execute("DELETE FROM web_activity WHERE end_at < ?1", [before])?
            + tx.execute("DELETE FROM web_addresses WHERE last_at < ?1", [before])?;
        stats.processes = tx.execute(
            "DELETE FROM processes WHERE last_at < ?1",
            params![before - PROCESS_SLACK_MS],
        )?;
        let old = meta::get_i64(&tx, Key::RawFromMs)?.unwrap_or(i64::MIN);
        meta::set(&tx, Key::RawFromMs, &before.max(old).to_string())?;
    }
    if let Some(before) = c.hourly_before {
        stats.hourly = tx.execute("DELETE FROM hourly WHERE hour < ?1", [before])?;
        stats.web_hourly = tx.execute("DELETE FROM web_hourly WHERE hour < ?1", [before])?;
        // Networks' hourly rows go with the applications' (sql/0007_networks.sql).
        tx.execute("DELETE FROM net_hourly WHERE hour < ?1", [before])?;
        tx.execute("DELETE FROM app_net_hourly WHERE hour < ?1", [before])?;
        tx.execute(
            "DELETE FROM net_primary WHERE span = 0 AND start < ?1",
            [before],
        )?;
        let old = meta::get_i64(&tx, Key::HourlyFromS)?.unwrap_or(i64::MIN);
        meta::set(&tx, Key::HourlyFromS, &before.max(old).to_string())?;
    }
    tx.commit()?;
    let free_before: i64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    // Each step of incremental_vacuum frees one page: run it to the end.
    {
        let mut st = conn.prepare("PRAGMA incremental_vacuum")?;
        let mut rows = st.query([])?;
        while rows.next()?.is_some() {}
    }
    let free_after: i64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    stats.pages_freed = free_before - free_after;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_hourly_rows_go_with_the_applications_and_daily_ones_stay() {
        let mut conn = crate::store::open_in_memory().expect("db");
        for hour in [3600, 7200] {
            conn.execute(
                "INSERT INTO net_hourly VALUES (?1, 1, 1, 10, 10, 0, 0)",
                [hour],
            )
            .expect("net_hourly");
            conn.execute("INSERT INTO app_net_hourly VALUES (?1, 1, 2, 5, 5)", [hour])
                .expect("app_net_hourly");
            conn.execute("INSERT INTO net_primary VALUES (0, ?1, 1)", [hour])
                .expect("net_primary");
        }
        conn.execute("INSERT INTO net_daily VALUES (0, 1, 1, 20, 20, 0, 0)", [])
            .expect("net_daily");
        conn.execute("INSERT INTO net_primary VALUES (1, 0, 1)", [])
            .expect("day primary");
        apply(
            &mut conn,
            &Cutoffs {
                raw_before_ms: None,
                hourly_before: Some(7200),
            },
        )
        .expect("retention");
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
        assert_eq!(count("SELECT count(*) FROM net_hourly"), 1);
        assert_eq!(count("SELECT count(*) FROM app_net_hourly"), 1);
        assert_eq!(count("SELECT count(*) FROM net_primary WHERE span = 0"), 1);
        assert_eq!(count("SELECT count(*) FROM net_primary WHERE span = 1"), 1);
        assert_eq!(count("SELECT count(*) FROM net_daily"), 1);
    }

    #[test]
    fn cutoffs_align_raw_to_an_hour_and_hourly_to_a_day() {
        let now_ms = 1_700_000_000_000 + 1_234_567; // not on any boundary
        let c = cutoffs(&Policy::default(), now_ms, |s| {
            s.div_euclid(86_400) * 86_400
        });
        let raw = c.raw_before_ms.expect("raw");
        assert_eq!(raw % 3_600_000, 0);
        assert!(raw <= now_ms - 7 * 86_400_000 && raw > now_ms - 7 * 86_400_000 - 3_600_000);
        let hourly = c.hourly_before.expect("hourly");
        assert_eq!(hourly % 86_400, 0);
        let none = cutoffs(
            &Policy {
                raw: None,
                hourly: None,
            },
            now_ms,
            |s| s,
        );
        assert_eq!(
            none,
            Cutoffs {
                raw_before_ms: None,
                hourly_before: None
            }
        );
    }
}
