//! `netmon top`: what is using the network right now, from the last few ticks a running
//! `netmon record` took.
//!
//! The recorder writes its ticks in batches (`--write-every`); the ones it has not written yet
//! it tells over its live socket (`crate::live`). Rates and today's totals take from the
//! database what is at or before the newest written tick and from the recorder what came
//! after, so a tick is never counted twice (at worst a batch written between the two reads is
//! missing from one refresh).
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
use crate::live;
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
    // Asked first: what the database holds is read after, bounded by what it said was written.
    let live = recorder_pid
        .and_then(|_| {
            live::read(
                db_path,
                &live::Request {
                    window_ms: window.as_millis() as i64,
                    ..live::Request::default()
                },
            )
        })
        .filter(|v| Some(v.pid) == recorder_pid);
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
    let newest_run: Option<(i64, i64, i64)> = db
        .conn
        .query_row(
            "SELECT id, interval_ms, started_at FROM runs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;

    let today_start = day_floor(tz, now_ms);
    // With a live view, the database's part ends at the newest written tick (or, when this
    // run has written nothing yet, where the previous run's data ends: its start).
    let written_until = live.as_ref().map(|v| {
        v.durable_ms
            .map(|d| d + 1)
            .or(newest_run.map(|r| r.2))
            .unwrap_or(now_ms)
    });
    let today_end = written_until.unwrap_or(now_ms).min(now_ms);
    let mut today: Apps = apps::apps(
        db,
        tz,
        Range::from_ms(today_start, today_end.max(today_start + 1)),
        &apps::Options::default(),
    )?;
    if let Some(v) = &live {
        add_unwritten_today(&mut today, v, today_start);
    }
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
    if let Some(v) = &live
        && let Some(newest) = v.last_tick_ms
        && (v.unwritten > 0 || last.is_none())
    {
        let run_id = newest_run.map_or(0, |r| r.0);
        return live_rates(db, top, &h, v, newest, run_id, window, &today, now_ms);
    }
    let current = last
        .as_ref()
        .filter(|t| newest_run.is_some_and(|(run, _, _)| run == t.run_id));
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
    let mut by_name: HashMap<String, (Kind, i64, i64)> = HashMap::new();
    add_written(db, first_id, last.id, &mut by_name)?;
    let status = format!(
        "recording: netmon record (pid {}), last tick {} ago",
        h.pid,
        ago(last.at)
    );
    Ok(fill(
        top,
        status,
        by_name,
        &today,
        elapsed,
        first_at - first_elapsed,
        last.at,
    ))
}

/// Rates over the window from the ticks the recorder has not written yet (its live view) and,
/// for the part of the window before them, the ticks in the database.
#[allow(clippy::too_many_arguments)]
fn live_rates(
    db: &Db,
    mut top: Top,
    h: &lock::Holder,
    v: &live::View,
    newest: i64,
    run_id: i64,
    window: Duration,
    today: &Apps,
    now_ms: i64,
) -> Result<Top, Error> {
    let ago = |at: i64| units::duration_ms(now_ms - at);
    top.last_tick = Some(utc(newest));
    let stale_after = 3 * v.interval_ms + 10_000;
    if now_ms - newest > stale_after {
        top.status = format!(
            "netmon record (pid {}) has taken no tick for {} (it ticks every {}): \
             its rates are not shown",
            h.pid,
            ago(newest),
            units::duration_ms(v.interval_ms)
        );
        return Ok(top);
    }
    let mut by_name: HashMap<String, (Kind, i64, i64)> = HashMap::new();
    for a in &v.window.apps {
        let kind = if a.unattributed {
            Kind::Unattributed
        } else {
            Kind::Application
        };
        let e = by_name.entry(a.app.clone()).or_insert((kind, 0, 0));
        e.1 += a.bytes_in as i64;
        e.2 += a.bytes_out as i64;
    }
    let mut elapsed = v.window.elapsed_ms;
    let mut start = v
        .window
        .first_at_ms
        .map_or(newest, |at| at - v.window.first_elapsed_ms);
    // The rest of the window, from the database: this run's written ticks.
    if let Some(durable) = v.durable_ms {
        let from = newest - window.as_millis() as i64;
        let (first_id, last_id, db_elapsed): (Option<i64>, Option<i64>, Option<i64>) =
            db.conn.query_row(
                "SELECT min(id), max(id), sum(elapsed_ms) FROM ticks \
                 WHERE run_id = ?1 AND at > ?2 AND at <= ?3",
                params![run_id, from, durable],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
        if let (Some(first_id), Some(last_id)) = (first_id, last_id) {
            elapsed += db_elapsed.unwrap_or(0);
            let (first_at, first_elapsed): (i64, i64) = db.conn.query_row(
                "SELECT at, elapsed_ms FROM ticks WHERE id = ?1",
                [first_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            start = start.min(first_at - first_elapsed);
            add_written(db, first_id, last_id, &mut by_name)?;
        }
    }
    if elapsed <= 0 {
        top.status = format!(
            "waiting for the first ticks of netmon record (pid {})",
            h.pid
        );
        return Ok(top);
    }
    let status = format!(
        "recording: netmon record (pid {}), last tick {} ago",
        h.pid,
        ago(newest)
    );
    Ok(fill(top, status, by_name, today, elapsed, start, newest))
}

/// Add the written ticks `first_id..=last_id`' bytes per application name.
fn add_written(
    db: &Db,
    first_id: i64,
    last_id: i64,
    by_name: &mut HashMap<String, (Kind, i64, i64)>,
) -> Result<(), Error> {
    let infos = db.apps()?;
    let mut st = db.conn.prepare_cached(
        "SELECT p.app_id, sum(s.bytes_in), sum(s.bytes_out) FROM samples s \
         JOIN processes p ON p.id = s.process_id \
         WHERE s.tick_id BETWEEN ?1 AND ?2 GROUP BY p.app_id",
    )?;
    let rows = st.query_map(params![first_id, last_id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for r in rows {
        let (app, bin, bout) = r?;
        let (name, kind) = infos
            .get(&app)
            .map(|a| (a.name.clone(), a.kind))
            .unwrap_or_else(|| (format!("(unknown app #{app})"), Kind::Application));
        let e = by_name.entry(name).or_insert((kind, 0, 0));
        e.1 += bin;
        e.2 += bout;
    }
    Ok(())
}

/// Today's totals plus what the recorder has not written yet of today.
fn add_unwritten_today(today: &mut Apps, v: &live::View, today_start_ms: i64) {
    for d in v.days.iter().filter(|d| d.day * 1000 >= today_start_ms) {
        for a in &d.apps {
            today.all.bytes_in += a.bytes_in;
            today.all.bytes_out += a.bytes_out;
            match today.apps.iter_mut().find(|r| r.app == a.app) {
                Some(r) => {
                    r.bytes_in += a.bytes_in;
                    r.bytes_out += a.bytes_out;
                    r.bytes_total += a.bytes_in + a.bytes_out;
                }
                None => today.apps.push(apps::AppUsage {
                    app: a.app.clone(),
                    kind: if a.unattributed {
                        Kind::Unattributed
                    } else {
                        Kind::Application
                    },
                    bytes_in: a.bytes_in,
                    bytes_out: a.bytes_out,
                    bytes_total: a.bytes_in + a.bytes_out,
                    ..apps::AppUsage::default()
                }),
            }
        }
    }
}

/// The rows of a live answer: applications with bytes in the window, fastest first.
fn fill(
    mut top: Top,
    status: String,
    by_name: HashMap<String, (Kind, i64, i64)>,
    today: &Apps,
    elapsed: i64,
    window_start_ms: i64,
    last_at: i64,
) -> Top {
    let today_by_name: HashMap<&str, (u64, u64)> = today
        .apps
        .iter()
        .map(|a| (a.app.as_str(), (a.bytes_in, a.bytes_out)))
        .collect();
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
    top.status = status;
    top.last_tick = Some(utc(last_at));
    top.window_start = Some(utc(window_start_ms));
    top.window_end = Some(utc(last_at));
    top.window_ms = elapsed;
    top.rate_in = Some(per_s(bin as i64));
    top.rate_out = Some(per_s(bout as i64));
    top.apps = rows;
    top
}
