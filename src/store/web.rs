//! The websites' tables: what `netmon serve` stores (heartbeats merged into activity
//! intervals, host↔address observations), and what the recorder reads back each tick to split
//! browser bytes across hosts (`crate::web::attribute`).
//!
//! Heartbeats are merged the way mature activity trackers merge them (ActivityWatch's
//! "pulsetime"): a heartbeat showing the same host as the interval in force at its time, and
//! no later than [`PULSE_MS`] after that interval's end, extends it; anything else starts a new
//! interval, and ends the previous one where the new state was observed (when that is within
//! the pulse: a longer silence is not activity). Heartbeats may come late and out of order (a
//! queue flushed after the server was down); they are merged by their own time, and the
//! intervals of one browser never overlap.

use std::net::IpAddr;

use rusqlite::{Connection, OptionalExtension, params};

/// How long after an interval's last heartbeat the same host still extends it, and how far
/// the recorder assumes the newest interval still runs when no heartbeat has closed it.
pub const PULSE_MS: i64 = 60_000;

/// One report of a browser's active tab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub browser: String,
    /// The active tab's host; `None`: no tab is active (ends the current activity).
    pub host: Option<String>,
    /// When the state was first observed (epoch ms).
    pub time_ms: i64,
    /// How long it had lasted when sent.
    pub duration_ms: i64,
    pub private: bool,
}

/// A host served from an address, as the browser saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub browser: String,
    pub host: String,
    pub ip: IpAddr,
    pub time_ms: i64,
}

/// The form addresses are stored and matched in: IPv4-mapped IPv6 addresses as IPv4.
pub fn canonical_ip(ip: IpAddr) -> String {
    ip.to_canonical().to_string()
}

/// Store a batch of heartbeats in one transaction; returns how many were stored.
pub fn record_heartbeats(
    conn: &mut Connection,
    beats: &[Heartbeat],
    now_ms: i64,
) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Oldest first, so a batch merges the same as the heartbeats sent one by one.
    let mut sorted: Vec<&Heartbeat> = beats.iter().collect();
    sorted.sort_by_key(|b| b.time_ms);
    for b in sorted {
        let browser = browser_id(&tx, &b.browser, now_ms)?;
        merge(&tx, browser, b)?;
    }
    tx.commit()?;
    Ok(beats.len())
}

/// Store a batch of observations in one transaction; returns how many were stored.
pub fn record_observations(
    conn: &mut Connection,
    obs: &[Observation],
    now_ms: i64,
) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for o in obs {
        browser_id(&tx, &o.browser, now_ms)?;
        tx.prepare_cached(
            "INSERT INTO web_addresses(ip, host, first_at, last_at) VALUES (?1, ?2, ?3, ?3) \
             ON CONFLICT(ip, host) DO UPDATE SET seen = seen + 1, \
             first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at)",
        )?
        .execute(params![canonical_ip(o.ip), o.host, o.time_ms])?;
    }
    tx.commit()?;
    Ok(obs.len())
}

fn browser_id(conn: &Connection, name: &str, now_ms: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO web_browsers(name, first_at, last_at) VALUES (?1, ?2, ?2) \
         ON CONFLICT(name) DO UPDATE SET last_at = max(last_at, excluded.last_at)",
    )?
    .execute(params![name, now_ms])?;
    conn.prepare_cached("SELECT id FROM web_browsers WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
}

struct Interval {
    id: i64,
    host: String,
    end_at: i64,
}

/// Merge one heartbeat into its browser's intervals.
fn merge(conn: &Connection, browser: i64, b: &Heartbeat) -> rusqlite::Result<()> {
    let host = b.host.as_deref().unwrap_or("");
    let t = b.time_ms;
    let end = t.saturating_add(b.duration_ms.max(0));
    // The interval in force at t, and the first one after it.
    let prev = conn
        .prepare_cached(
            "SELECT id, host, end_at FROM web_activity WHERE browser_id = ?1 AND start_at <= ?2 \
             ORDER BY start_at DESC LIMIT 1",
        )?
        .query_row(params![browser, t], |r| {
            Ok(Interval {
                id: r.get(0)?,
                host: r.get(1)?,
                end_at: r.get(2)?,
            })
        })
        .optional()?;
    let next: Option<(i64, String, i64)> = conn
        .prepare_cached(
            "SELECT id, host, start_at FROM web_activity WHERE browser_id = ?1 AND start_at > ?2 \
             ORDER BY start_at LIMIT 1",
        )?
        .query_row(params![browser, t], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let next_start = next.as_ref().map(|n| n.2);

    if let Some(p) = &prev
        && p.host == host
        && t <= p.end_at.saturating_add(PULSE_MS)
    {
        let joins_next = next.as_ref().is_some_and(|(_, next_host, start)| {
            *next_host == host && p.end_at.max(end).saturating_add(PULSE_MS) >= *start
        });
        let new_end = settle_end(p.end_at.max(end), next_start);
        conn.prepare_cached(
            "UPDATE web_activity SET end_at = ?2, heartbeats = heartbeats + 1, \
             private = max(private, ?3) WHERE id = ?1",
        )?
        .execute(params![p.id, new_end, b.private as i64])?;
        if let (true, Some((next_id, _, _))) = (joins_next, &next) {
            join(conn, p.id, *next_id)?;
        }
        return Ok(());
    }
    // A different state: the previous one lasted until this one was observed.
    if let Some(p) = &prev
        && (p.end_at > t || t - p.end_at <= PULSE_MS)
    {
        conn.prepare_cached("UPDATE web_activity SET end_at = ?2 WHERE id = ?1")?
            .execute(params![p.id, t])?;
    }
    // A late heartbeat just before an interval of the same host extends it backwards.
    if let Some((next_id, next_host, start)) = &next
        && *next_host == host
        && end.saturating_add(PULSE_MS) >= *start
    {
        conn.prepare_cached(
            "UPDATE web_activity SET start_at = ?2, heartbeats = heartbeats + 1, \
             private = max(private, ?3) WHERE id = ?1",
        )?
        .execute(params![next_id, t, b.private as i64])?;
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO web_activity(browser_id, host, start_at, end_at, private) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        browser,
        host,
        t,
        settle_end(end, next_start),
        b.private as i64
    ])?;
    Ok(())
}

/// Where an interval ends given the start of the next one: never past it, and up to it when
/// the silence between them is within the pulse (the state lasted until the next was seen).
fn settle_end(end: i64, next_start: Option<i64>) -> i64 {
    match next_start {
        Some(next) if end >= next || next - end <= PULSE_MS => next,
        _ => end,
    }
}

/// Fold interval `later` into `earlier` (same browser, same host, close enough).
fn join(conn: &Connection, earlier: i64, later: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE web_activity SET \
         end_at = max(end_at, (SELECT end_at FROM web_activity WHERE id = ?2)), \
         heartbeats = heartbeats + (SELECT heartbeats FROM web_activity WHERE id = ?2), \
         private = max(private, (SELECT private FROM web_activity WHERE id = ?2)) \
         WHERE id = ?1",
    )?
    .execute(params![earlier, later])?;
    conn.prepare_cached("DELETE FROM web_activity WHERE id = ?1")?
        .execute([later])?;
    Ok(())
}

/// Every browser the extension has reported, as (id, name as reported).
pub fn browsers(conn: &Connection) -> rusqlite::Result<Vec<(i64, String)>> {
    let mut st = conn.prepare_cached("SELECT id, name FROM web_browsers")?;
    let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    rows.collect()
}

/// Every host observed served from `ip`, with when it was last seen there (epoch ms).
pub fn hosts_served_from(conn: &Connection, ip: IpAddr) -> rusqlite::Result<Vec<(String, i64)>> {
    // No freshness test in SQL: SQLite re-prepares a statement whose non-index terms compare
    // against a bound value each time that value changes, and the recorder's cut-off changes
    // every tick (the re-prepare cost more than everything else in a tick).
    let mut st = conn.prepare_cached("SELECT host, last_at FROM web_addresses WHERE ip = ?1")?;
    let rows = st.query_map([canonical_ip(ip)], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    rows.collect()
}

/// One stored activity interval of a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub id: i64,
    pub host: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// The id of a browser's newest activity interval, if it has any.
pub fn newest_activity(conn: &Connection, browser: i64) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT id FROM web_activity WHERE browser_id = ?1 ORDER BY start_at DESC LIMIT 1",
    )?
    .query_row([browser], |r| r.get(0))
    .optional()
}

/// A browser's activity intervals that may reach into `[from_ms, to_ms]`: the last to start
/// before `from_ms` and every one starting inside.
pub fn activity_near(
    conn: &Connection,
    browser: i64,
    from_ms: i64,
    to_ms: i64,
) -> rusqlite::Result<Vec<Activity>> {
    // Intervals of one browser never overlap, so the only one that starts before the window
    // and reaches into it is the last to start before it: two index range scans instead of a
    // walk over the browser's whole history.
    let mut st = conn.prepare_cached(
        "SELECT * FROM (SELECT id, host, start_at, end_at FROM web_activity \
         WHERE browser_id = ?1 AND start_at < ?2 ORDER BY start_at DESC LIMIT 1) \
         UNION ALL \
         SELECT id, host, start_at, end_at FROM web_activity \
         WHERE browser_id = ?1 AND start_at >= ?2 AND start_at <= ?3",
    )?;
    let rows = st.query_map(params![browser, from_ms, to_ms], |r| {
        Ok(Activity {
            id: r.get(0)?,
            host: r.get(1)?,
            start_ms: r.get(2)?,
            end_ms: r.get(3)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_in_memory;

    const T: i64 = 1_763_942_400_000;

    fn hb(host: Option<&str>, t_s: i64, dur_s: i64) -> Heartbeat {
        Heartbeat {
            browser: "Firefox".into(),
            host: host.map(str::to_string),
            time_ms: T + t_s * 1000,
            duration_ms: dur_s * 1000,
            private: false,
        }
    }

    /// (host, start s, end s) of every interval, in order.
    fn intervals(conn: &Connection) -> Vec<(String, i64, i64)> {
        let mut st = conn
            .prepare("SELECT host, start_at, end_at FROM web_activity ORDER BY start_at")
            .expect("prepare");
        st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                (r.get::<_, i64>(1)? - T) / 1000,
                (r.get::<_, i64>(2)? - T) / 1000,
            ))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    }

    fn iv(h: &str, s: i64, e: i64) -> (String, i64, i64) {
        (h.to_string(), s, e)
    }

    #[test]
    fn repeated_heartbeats_of_one_stay_are_merged_not_multiplied() {
        let mut c = open_in_memory().expect("db");
        for d in [0, 20, 40, 60] {
            record_heartbeats(&mut c, &[hb(Some("a.com"), 0, d)], T).expect("hb");
        }
        // A sender that restarts the clock each time merges the same way.
        record_heartbeats(
            &mut c,
            &[hb(Some("a.com"), 60, 20), hb(Some("a.com"), 80, 20)],
            T,
        )
        .expect("hb");
        assert_eq!(intervals(&c), vec![iv("a.com", 0, 100)]);
        let n: i64 = c
            .query_row("SELECT heartbeats FROM web_activity", [], |r| r.get(0))
            .expect("n");
        assert_eq!(n, 6);
    }

    #[test]
    fn a_new_host_ends_the_previous_stay_where_it_was_observed() {
        let mut c = open_in_memory().expect("db");
        record_heartbeats(
            &mut c,
            &[
                hb(Some("a.com"), 0, 20),
                hb(Some("b.com"), 30, 10),
                hb(Some("a.com"), 50, 0),
                hb(None, 70, 0),
            ],
            T,
        )
        .expect("hb");
        assert_eq!(
            intervals(&c),
            vec![
                iv("a.com", 0, 30),
                iv("b.com", 30, 50),
                iv("a.com", 50, 70),
                iv("", 70, 70)
            ]
        );
    }

    #[test]
    fn a_silence_longer_than_the_pulse_is_not_activity() {
        let mut c = open_in_memory().expect("db");
        record_heartbeats(
            &mut c,
            &[hb(Some("a.com"), 0, 10), hb(Some("a.com"), 200, 0)],
            T,
        )
        .expect("hb");
        record_heartbeats(&mut c, &[hb(Some("b.com"), 400, 0)], T).expect("hb");
        assert_eq!(
            intervals(&c),
            vec![
                iv("a.com", 0, 10),
                iv("a.com", 200, 200),
                iv("b.com", 400, 400)
            ]
        );
    }

    #[test]
    fn late_heartbeats_merge_as_if_they_had_come_in_order() {
        let in_order = {
            let mut c = open_in_memory().expect("db");
            for b in [
                hb(Some("a.com"), 0, 10),
                hb(Some("a.com"), 10, 10),
                hb(Some("b.com"), 25, 5),
                hb(Some("a.com"), 40, 0),
            ] {
                record_heartbeats(&mut c, &[b], T).expect("hb");
            }
            intervals(&c)
        };
        let shuffled = {
            let mut c = open_in_memory().expect("db");
            for b in [
                hb(Some("a.com"), 40, 0),
                hb(Some("b.com"), 25, 5),
                hb(Some("a.com"), 10, 10),
                hb(Some("a.com"), 0, 10),
            ] {
                record_heartbeats(&mut c, &[b], T).expect("hb");
            }
            intervals(&c)
        };
        assert_eq!(
            in_order,
            vec![iv("a.com", 0, 25), iv("b.com", 25, 40), iv("a.com", 40, 40)]
        );
        assert_eq!(shuffled, in_order);
    }

    #[test]
    fn browsers_have_their_own_intervals() {
        let mut c = open_in_memory().expect("db");
        let mut z = hb(Some("b.com"), 5, 10);
        z.browser = "Zen".into();
        record_heartbeats(&mut c, &[hb(Some("a.com"), 0, 20), z], T).expect("hb");
        assert_eq!(intervals(&c), vec![iv("a.com", 0, 20), iv("b.com", 5, 15)]);
        let n: i64 = c
            .query_row("SELECT count(*) FROM web_browsers", [], |r| r.get(0))
            .expect("n");
        assert_eq!(n, 2);
    }

    #[test]
    fn observations_are_upserted_by_address_and_host() {
        let mut c = open_in_memory().expect("db");
        let o = |ip: &str, t: i64| Observation {
            browser: "Firefox".into(),
            host: "a.com".into(),
            ip: ip.parse().expect("ip"),
            time_ms: T + t,
        };
        record_observations(&mut c, &[o("192.0.2.1", 5), o("::ffff:192.0.2.1", 1)], T)
            .expect("obs");
        let row: (String, i64, i64, i64) = c
            .query_row(
                "SELECT ip, first_at, last_at, seen FROM web_addresses",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .expect("one row");
        assert_eq!(row, ("192.0.2.1".to_string(), T + 1, T + 5, 2));
    }
}
