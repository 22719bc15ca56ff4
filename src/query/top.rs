//! `netmon top`: what is using the network right now, from the last few ticks a running
//! `netmon record` committed.
//!
//! Rates are bytes over the ticks' real elapsed time (`ticks.elapsed_ms`, monotonic), never
//! over wall-clock differences. The answer is only "live" when a recorder holds the database's
//! lock and its last tick is recent; otherwise it says why (nobody recording, a stalled
//! recorder, waiting for the first ticks) instead of showing old rates as current.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::apps::{self, Apps};
use super::range::Range;
use super::time::{day_floor, utc};
use super::{Db, Error, Kind};
use crate::store::lock;
use crate::text::units;

/// Rates average the ticks of this window unless told otherwise.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(15);

/// One application's current traffic. Field names are the JSON/CSV contract.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AppRate {
    pub app: String,
    pub kind: Kind,
    /// Bytes per second over the window.
    pub rate_in: f64,
    pub rate_out: f64,
    /// Bytes within the window.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Bytes since local midnight.
    pub today_in: u64,
    pub today_out: u64,
}

/// A snapshot of "now".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Top {
    /// A recorder is running and its last tick is recent: the rates are current.
    pub live: bool,
    /// One sentence: what is recording, or why nothing is shown as live.
    pub status: String,
    /// The pid of the recorder holding the database, if any.
    pub recorder_pid: Option<u32>,
    pub last_tick: Option<DateTime<Utc>>,
    /// The ticks the rates average: from the start of the first to the last (live only).
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    /// Monotonic time those ticks cover (the rates' denominator), ms.
    pub window_ms: i64,
    /// Total rates in bytes per second (null when not live).
    pub rate_in: Option<f64>,
    pub rate_out: Option<f64>,
    /// Since local midnight.
    pub today_start: DateTime<Utc>,
    pub today_in: u64,
    pub today_out: u64,
    /// Applications with traffic in the window, fastest first (empty when not live).
    pub apps: Vec<AppRate>,
}

struct LastTick {
    id: i64,
    at: i64,
    run_id: i64,
}

/// Take a snapshot at `now`.
pub fn snapshot<Tz: TimeZone>(
    db: &Db,
    db_path: &Path,
    tz: &Tz,
    now: DateTime<Utc>,
    window: Duration,
) -> Result<Top, Error> {
    let now_ms = now.timestamp_millis();
    let holder = lock::holder(db_path)?;
    let recorder_pid = holder.as_ref().and_then(|h| h.pid.parse::<u32>().ok());
    let last: Option<LastTick> = db
        .conn
        .query_row(
            "SELECT id, at, run_id FROM ticks ORDER BY id DESC LIMIT 1",
            [],
            |r| {
                Ok(LastTick {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    run_id: r.get(2)?,
                })
            },
        )
        .optional()?;
    let newest_run: Option<(i64, i64)> = db
        .conn
        .query_row(
            "SELECT id, interval_ms FROM runs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;

    let today_start = day_floor(tz, now_ms);
    let today: Apps = apps::apps(
        db,
        tz,
        Range::from_ms(today_start, now_ms.max(today_start + 1)),
        &apps::Options::default(),
    )?;
    let mut top = Top {
        live: false,
        status: String::new(),
        recorder_pid,
        last_tick: last.as_ref().map(|t| utc(t.at)),
        window_start: None,
        window_end: None,
        window_ms: 0,
        rate_in: None,
        rate_out: None,
        today_start: utc(today_start),
        today_in: today.all.bytes_in,
        today_out: today.all.bytes_out,
        apps: Vec::new(),
    };
    let ago = |at: i64| units::duration_ms(now_ms - at);
    let db_name = db_path.display();
    let Some(h) = holder else {
        top.status = match &last {
            Some(t) => format!(
                "not recording: no `netmon record` is writing to {db_name} (last tick {} ago)",
                ago(t.at)
            ),
            None => format!("not recording: no `netmon record` is writing to {db_name}"),
        };
        return Ok(top);
    };
    let interval_ms = newest_run.map_or(5000, |r| r.1);
    let current = last
        .as_ref()
        .filter(|t| newest_run.is_some_and(|(run, _)| run == t.run_id));
    let Some(last) = current else {
        top.status = format!(
            "waiting for the first ticks of netmon record (pid {})",
            h.pid
        );
        return Ok(top);
    };
    // A tick may take up to the sample timeout (10 s) on top of its interval.
    let stale_after = 3 * interval_ms + 10_000;
    if now_ms - last.at > stale_after {
        top.status = format!(
            "netmon record (pid {}) has committed no tick for {} (it ticks every {}): \
             its rates are not shown",
            h.pid,
            ago(last.at),
            units::duration_ms(interval_ms)
        );
        return Ok(top);
    }

    // The window: this run's ticks within `window` of its last one.
    let window_ms = window.as_millis() as i64;
    let (first_id, elapsed): (Option<i64>, Option<i64>) = db.conn.query_row(
        "SELECT min(id), sum(elapsed_ms) FROM ticks WHERE run_id = ?1 AND id <= ?2 AND at > ?3",
        params![last.run_id, last.id, last.at - window_ms],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (first_id, elapsed) = (first_id.unwrap_or(last.id), elapsed.unwrap_or(0));
    let (first_at, first_elapsed): (i64, i64) = db.conn.query_row(
        "SELECT at, elapsed_ms FROM ticks WHERE id = ?1",
        [first_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if elapsed <= 0 {
        top.status = format!(
            "waiting for the first ticks of netmon record (pid {})",
            h.pid
        );
        return Ok(top);
    }
    let mut by_app: HashMap<i64, (i64, i64)> = HashMap::new();
    {
        let mut st = db.conn.prepare_cached(
            "SELECT p.app_id, sum(s.bytes_in), sum(s.bytes_out) FROM samples s \
             JOIN processes p ON p.id = s.process_id \
             WHERE s.tick_id BETWEEN ?1 AND ?2 GROUP BY p.app_id",
        )?;
        let rows = st.query_map(params![first_id, last.id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for r in rows {
            let (app, bin, bout) = r?;
            let e = by_app.entry(app).or_default();
            e.0 += bin;
            e.1 += bout;
        }
    }
    let infos = db.apps()?;
    let today_by_name: HashMap<&str, (u64, u64)> = today
        .apps
        .iter()
        .map(|a| (a.app.as_str(), (a.bytes_in, a.bytes_out)))
        .collect();
    let mut by_name: HashMap<String, (Kind, i64, i64)> = HashMap::new();
    for (app, (bin, bout)) in by_app {
        let (name, kind) = infos
            .get(&app)
            .map(|a| (a.name.clone(), a.kind))
            .unwrap_or_else(|| (format!("(unknown app #{app})"), Kind::Application));
        let e = by_name.entry(name).or_insert((kind, 0, 0));
        e.1 += bin;
        e.2 += bout;
    }
    let per_s = |b: i64| b.max(0) as f64 * 1000.0 / elapsed as f64;
    let mut rows: Vec<AppRate> = by_name
        .into_iter()
        .filter(|(_, (_, i, o))| i + o > 0)
        .map(|(name, (kind, bin, bout))| {
            let t = today_by_name.get(name.as_str()).copied().unwrap_or((0, 0));
            AppRate {
                rate_in: per_s(bin),
                rate_out: per_s(bout),
                bytes_in: bin.max(0) as u64,
                bytes_out: bout.max(0) as u64,
                today_in: t.0,
                today_out: t.1,
                kind,
                app: name,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        (b.bytes_in + b.bytes_out)
            .cmp(&(a.bytes_in + a.bytes_out))
            .then_with(|| a.app.cmp(&b.app))
    });
    let (bin, bout) = rows
        .iter()
        .fold((0u64, 0u64), |(i, o), r| (i + r.bytes_in, o + r.bytes_out));
    top.live = true;
    top.status = format!(
        "recording: netmon record (pid {}), last tick {} ago",
        h.pid,
        ago(last.at)
    );
    top.window_start = Some(utc(first_at - first_elapsed));
    top.window_end = Some(utc(last.at));
    top.window_ms = elapsed;
    top.rate_in = Some(per_s(bin as i64));
    top.rate_out = Some(per_s(bout as i64));
    top.apps = rows;
    Ok(top)
}
