//! The recorder's writes for networks (issue 15): interface deltas per tick, their hourly and
//! daily rollups per network and interface, and the split of application bytes by network,
//! all in the tick's transaction. Layout and why: `sql/0007_networks.sql` and
//! `sql/0008_app_network_split.sql`.
//!
//! Called from `write::Writer` in two steps: [`prepare`] before the tick row is inserted
//! (ids resolved, the `ticks.net` BLOB encoded), [`roll_up`] after the per-app totals are
//! known, which adds the tick's rollups to the batch's [`Sums`] (written once per bucket row
//! when the batch is written, [`Sums::write`]).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use crate::tick::{NetTraffic, Network, NetworkBytes, ProcessTraffic};

/// Ids and the current buckets' primary networks, cached across ticks.
#[derive(Debug, Default)]
pub struct Cache {
    networks: HashMap<String, i64>,
    interfaces: HashMap<(String, &'static str), i64>,
    /// (span, start) → primary network id; span 0 hour, 1 day.
    primary: HashMap<(i64, i64), i64>,
}

impl Cache {
    /// Forget every id (a rolled-back transaction may have inserted them).
    pub fn clear(&mut self) {
        *self = Cache::default();
    }
}

/// One tick's interface rows with their ids, and its `ticks.net` value.
#[derive(Debug, Default)]
pub struct Prepared {
    /// `ticks.net`: `None` when nothing moved and no network is known.
    pub blob: Option<Vec<u8>>,
    /// (network id, interface id, bytes in, bytes out).
    rows: Vec<(i64, i64, u64, u64)>,
    /// The network application bytes are counted on (0: none known).
    app_network: i64,
    /// Application bytes on other networks than `app_network`: (app id, network id, bytes
    /// in, bytes out).
    split: Vec<(i64, i64, u64, u64)>,
}

/// One process's bytes on networks other than its tick's app network, as `write` knows it.
pub struct ProcessSplit<'a> {
    pub process_id: i64,
    pub app_id: i64,
    pub networks: &'a [NetworkBytes],
}

/// Resolve the tick's network and interface ids (inserting new ones) and encode `ticks.net`
/// (`traffic`: the tick's application bytes; their network is stored only when they moved;
/// `split`: the processes with bytes on other networks than the app network).
pub fn prepare(
    conn: &Connection,
    cache: &mut Cache,
    net: Option<&NetTraffic>,
    traffic: &[ProcessTraffic],
    split: &[ProcessSplit<'_>],
    at_ms: i64,
) -> rusqlite::Result<Prepared> {
    let Some(net) = net else {
        return Ok(Prepared::default());
    };
    let mut p = Prepared {
        app_network: match &net.app_network {
            Some(n) => network_id(conn, cache, n, at_ms)?,
            None => 0,
        },
        ..Prepared::default()
    };
    for i in &net.interfaces {
        if i.bytes_in == 0 && i.bytes_out == 0 {
            continue;
        }
        let nid = match &i.network {
            Some(n) => network_id(conn, cache, n, at_ms)?,
            None => 0,
        };
        let iid = interface_id(conn, cache, &i.interface, i.kind)?;
        p.rows.push((nid, iid, i.bytes_in, i.bytes_out));
    }
    let apps_moved = traffic.iter().any(|t| t.bytes_in > 0 || t.bytes_out > 0);
    if !apps_moved {
        p.app_network = 0;
    }
    // (process id, network id, bytes in, bytes out) for the BLOB.
    let mut by_process: Vec<(i64, i64, u64, u64)> = Vec::new();
    for s in split {
        for n in s.networks {
            if n.bytes_in == 0 && n.bytes_out == 0 {
                continue;
            }
            let nid = match &n.network {
                Some(n) => network_id(conn, cache, n, at_ms)?,
                None => 0,
            };
            // Bytes listed on the app network are its anyway (a merged tick may list them).
            if nid == p.app_network {
                continue;
            }
            by_process.push((s.process_id, nid, n.bytes_in, n.bytes_out));
            p.split.push((s.app_id, nid, n.bytes_in, n.bytes_out));
        }
    }
    if !p.rows.is_empty() || p.app_network != 0 || !by_process.is_empty() {
        p.blob = Some(encode(p.app_network, &p.rows, &by_process));
    }
    Ok(p)
}

/// The `ticks.net` BLOB: the app network, the interface rows, then, only when some
/// application bytes are on another network, a `0 0` marker (no interface has id 0) and
/// (process id, network id, bytes in, bytes out) per process and network.
fn encode(
    app_network: i64,
    rows: &[(i64, i64, u64, u64)],
    split: &[(i64, i64, u64, u64)],
) -> Vec<u8> {
    let mut b = Vec::with_capacity(2 + (rows.len() + split.len()) * 10);
    put(&mut b, app_network as u64);
    for &(n, i, bin, bout) in rows {
        put(&mut b, n as u64);
        put(&mut b, i as u64);
        put(&mut b, bin);
        put(&mut b, bout);
    }
    if !split.is_empty() {
        put(&mut b, 0);
        put(&mut b, 0);
        for &(pid, n, bin, bout) in split {
            put(&mut b, pid as u64);
            put(&mut b, n as u64);
            put(&mut b, bin);
            put(&mut b, bout);
        }
    }
    b
}

/// (span: 0 hour, 1 day; bucket start; then two ids).
type BucketKey = (i64, i64, i64, i64);

/// A batch's network rollups, summed per bucket row and written once ([`Sums::write`]).
#[derive(Debug, Default)]
pub struct Sums {
    /// (span, bucket start, network id, interface id) → (in, out, first at, last at).
    net: HashMap<BucketKey, (u64, u64, i64, i64)>,
    /// (span, bucket start, app id, network id) → (in, out).
    app_net: HashMap<BucketKey, (u64, u64)>,
}

impl Sums {
    fn add_app(&mut self, key: BucketKey, bytes_in: u64, bytes_out: u64) {
        if bytes_in == 0 && bytes_out == 0 {
            return;
        }
        let e = self.app_net.entry(key).or_default();
        e.0 += bytes_in;
        e.1 += bytes_out;
    }

    /// Upsert every summed row.
    pub fn write(&self, conn: &Connection) -> rusqlite::Result<()> {
        for (&(span, start, nid, iid), &(bin, bout, first, last)) in &self.net {
            let sql = if span == 0 {
                UPSERT_NET_HOURLY
            } else {
                UPSERT_NET_DAILY
            };
            conn.prepare_cached(sql)?.execute(params![
                start,
                nid,
                iid,
                bin as i64,
                bout as i64,
                first,
                last
            ])?;
        }
        for (&(span, start, app_id, nid), &(bin, bout)) in &self.app_net {
            let sql = if span == 0 {
                UPSERT_APP_NET_HOURLY
            } else {
                UPSERT_APP_NET_DAILY
            };
            conn.prepare_cached(sql)?.execute(params![
                start,
                app_id,
                nid,
                bin as i64,
                bout as i64
            ])?;
        }
        Ok(())
    }
}

/// Add the tick's interface rows to the batch's `net_hourly`/`net_daily` sums, and the
/// application bytes that are not on their hour's (day's) primary network to its
/// `app_net_hourly`/`app_net_daily` sums. `per_app`: the tick's bytes per application id.
#[allow(clippy::too_many_arguments)]
pub fn roll_up(
    conn: &Connection,
    cache: &mut Cache,
    sums: &mut Sums,
    p: &Prepared,
    hour: i64,
    day: i64,
    at_ms: i64,
    per_app: &HashMap<i64, (u64, u64)>,
) -> rusqlite::Result<()> {
    for &(nid, iid, bin, bout) in &p.rows {
        for (span, bucket) in [(0, hour), (1, day)] {
            let e = sums
                .net
                .entry((span, bucket, nid, iid))
                .or_insert((0, 0, at_ms, at_ms));
            e.0 += bin;
            e.1 += bout;
            e.2 = e.2.min(at_ms);
            e.3 = e.3.max(at_ms);
        }
    }
    if per_app.is_empty() {
        return Ok(());
    }
    // What of each application's bytes is on other networks; the rest is on the app network.
    let mut moved: HashMap<i64, (u64, u64)> = HashMap::new();
    for &(app_id, _, bin, bout) in &p.split {
        let m = moved.entry(app_id).or_default();
        m.0 += bin;
        m.1 += bout;
    }
    for (span, start) in [(0, hour), (1, day)] {
        let primary = primary(conn, cache, span, start, p.app_network)?;
        for &(app_id, nid, bin, bout) in &p.split {
            if nid != primary {
                sums.add_app((span, start, app_id, nid), bin, bout);
            }
        }
        if primary == p.app_network {
            continue;
        }
        for (app_id, (bin, bout)) in per_app {
            let m = moved.get(app_id).copied().unwrap_or_default();
            sums.add_app(
                (span, start, *app_id, p.app_network),
                bin.saturating_sub(m.0),
                bout.saturating_sub(m.1),
            );
        }
    }
    Ok(())
}

/// The bucket's primary network, set to `candidate` if it has none yet.
fn primary(
    conn: &Connection,
    cache: &mut Cache,
    span: i64,
    start: i64,
    candidate: i64,
) -> rusqlite::Result<i64> {
    if let Some(id) = cache.primary.get(&(span, start)) {
        return Ok(*id);
    }
    let found: Option<i64> = conn
        .prepare_cached("SELECT network_id FROM net_primary WHERE span = ?1 AND start = ?2")?
        .query_row(params![span, start], |r| r.get(0))
        .optional()?;
    let id = match found {
        Some(id) => id,
        None => {
            conn.prepare_cached(
                "INSERT INTO net_primary(span, start, network_id) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![span, start, candidate])?;
            candidate
        }
    };
    // Only the current buckets matter: ticks move forward.
    cache.primary.retain(|(s, _), _| *s != span);
    cache.primary.insert((span, start), id);
    Ok(id)
}

fn network_id(
    conn: &Connection,
    cache: &mut Cache,
    n: &Network,
    at_ms: i64,
) -> rusqlite::Result<i64> {
    if let Some(id) = cache.networks.get(&n.key) {
        return Ok(*id);
    }
    conn.prepare_cached(
        "INSERT INTO networks(key, label, first_at) VALUES (?1, ?2, ?3) ON CONFLICT(key) DO NOTHING",
    )?
    .execute(params![n.key, n.label, at_ms])?;
    let id = conn
        .prepare_cached("SELECT id FROM networks WHERE key = ?1")?
        .query_row([&n.key], |r| r.get(0))?;
    cache.networks.insert(n.key.clone(), id);
    Ok(id)
}

fn interface_id(
    conn: &Connection,
    cache: &mut Cache,
    name: &str,
    kind: &'static str,
) -> rusqlite::Result<i64> {
    if let Some(id) = cache.interfaces.get(&(name.to_string(), kind)) {
        return Ok(*id);
    }
    conn.prepare_cached(
        "INSERT INTO interfaces(name, kind) VALUES (?1, ?2) ON CONFLICT(name, kind) DO NOTHING",
    )?
    .execute(params![name, kind])?;
    let id = conn
        .prepare_cached("SELECT id FROM interfaces WHERE name = ?1 AND kind = ?2")?
        .query_row(params![name, kind], |r| r.get(0))?;
    cache.interfaces.insert((name.to_string(), kind), id);
    Ok(id)
}

/// Name a network (`netmon networks name`); an empty name removes it. Returns false when no
/// network has that id. Fails when another network already has the name.
pub fn rename(conn: &Connection, id: i64, name: &str) -> Result<bool, super::Error> {
    let name = name.trim();
    let taken: Option<i64> = conn
        .query_row(
            "SELECT id FROM networks WHERE lower(name) = lower(?1) AND id != ?2",
            params![name, id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(other) = taken.filter(|_| !name.is_empty()) {
        return Err(super::Error::Invalid(format!(
            "network {other} is already called {name:?}: pick another name, or rename that one first"
        )));
    }
    let changed = conn.execute(
        "UPDATE networks SET name = ?2 WHERE id = ?1",
        params![id, (!name.is_empty()).then_some(name)],
    )?;
    Ok(changed > 0)
}

/// A data cap as stored: `scope` is a network id as text, or `*` for all networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cap {
    pub scope: String,
    /// The network's key (`None` for `*`, or a network that no longer exists).
    pub network_key: Option<String>,
    pub bytes: u64,
    /// `day`, `week` or `month`.
    pub period: String,
    pub resets_on: u32,
}

/// Every cap.
pub fn caps(conn: &Connection) -> rusqlite::Result<Vec<Cap>> {
    let mut st = conn.prepare_cached(
        "SELECT c.scope, n.key, c.bytes, c.period, c.resets_on FROM caps c \
         LEFT JOIN networks n ON c.scope != '*' AND n.id = CAST(c.scope AS INTEGER) \
         ORDER BY c.scope",
    )?;
    st.query_map([], |r| {
        Ok(Cap {
            scope: r.get(0)?,
            network_key: r.get(1)?,
            bytes: r.get::<_, i64>(2)?.max(0) as u64,
            period: r.get(3)?,
            resets_on: r.get::<_, i64>(4)?.clamp(1, 31) as u32,
        })
    })?
    .collect()
}

/// Set (or replace) the cap of `scope`.
pub fn set_cap(
    conn: &Connection,
    scope: &str,
    bytes: u64,
    period: &str,
    resets_on: u32,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO caps(scope, bytes, period, resets_on) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT(scope) DO UPDATE SET bytes = excluded.bytes, period = excluded.period, \
         resets_on = excluded.resets_on",
        params![scope, bytes as i64, period, resets_on],
    )?;
    Ok(())
}

/// Remove the cap of `scope`; false when there was none.
pub fn remove_cap(conn: &Connection, scope: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM caps WHERE scope = ?1", [scope])? > 0)
}

/// What the counted interfaces (not loopback, tunnels, bridges) carried on the days from local
/// midnight `from_day` (epoch s) on, on one network or on all.
pub fn carried_since(
    conn: &Connection,
    network_id: Option<i64>,
    from_day: i64,
) -> rusqlite::Result<u64> {
    let v: i64 = conn
        .prepare_cached(
            "SELECT coalesce(sum(n.bytes_in + n.bytes_out), 0) FROM net_daily n \
             JOIN interfaces i ON i.id = n.interface_id \
             WHERE n.day >= ?1 AND (?2 IS NULL OR n.network_id = ?2) \
             AND i.kind NOT IN ('loopback', 'vpn', 'bridge')",
        )?
        .query_row(params![from_day, network_id], |r| r.get(0))?;
    Ok(v.max(0) as u64)
}

/// The thresholds (percent) of `scope` already announced in the period starting `start`.
pub fn alerted(conn: &Connection, scope: &str, start: i64) -> rusqlite::Result<Vec<u32>> {
    let mut st = conn
        .prepare_cached("SELECT percent FROM cap_alerts WHERE scope = ?1 AND period_start = ?2")?;
    st.query_map(params![scope, start], |r| r.get(0))?.collect()
}

/// Remember that `percent` of `scope`'s cap was announced in the period starting `start`.
pub fn note_alert(
    conn: &Connection,
    scope: &str,
    start: i64,
    percent: u32,
    at_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO cap_alerts(scope, period_start, percent, at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT DO NOTHING",
    )?
    .execute(params![scope, start, percent, at_ms])?;
    Ok(())
}

/// A decoded `ticks.net`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    pub app_network: i64,
    /// (network id, interface id, bytes in, bytes out).
    pub rows: Vec<(i64, i64, u64, u64)>,
    /// Application bytes on other networks than `app_network`: (process id, network id, bytes
    /// in, bytes out). Empty in BLOBs written before `sql/0008_app_network_split.sql`.
    pub split: Vec<(i64, i64, u64, u64)>,
}

/// Decode a `ticks.net` BLOB; `None` when it is malformed (a truncated varint, a row cut
/// short).
pub fn decode(blob: &[u8]) -> Option<Decoded> {
    let mut at = 0usize;
    let app_network = get(blob, &mut at)? as i64;
    let mut rows = Vec::new();
    let mut split = Vec::new();
    while at < blob.len() {
        let n = get(blob, &mut at)? as i64;
        let i = get(blob, &mut at)? as i64;
        if n == 0 && i == 0 {
            // The marker: what follows is the application split.
            while at < blob.len() {
                let pid = get(blob, &mut at)? as i64;
                let nid = get(blob, &mut at)? as i64;
                let bin = get(blob, &mut at)?;
                let bout = get(blob, &mut at)?;
                split.push((pid, nid, bin, bout));
            }
            break;
        }
        let bin = get(blob, &mut at)?;
        let bout = get(blob, &mut at)?;
        rows.push((n, i, bin, bout));
    }
    Some(Decoded {
        app_network,
        rows,
        split,
    })
}

/// Unsigned LEB128.
fn put(b: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            b.push(byte);
            return;
        }
        b.push(byte | 0x80);
    }
}

fn get(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

const UPSERT_NET_HOURLY: &str = "INSERT INTO net_hourly(hour, network_id, interface_id, \
     bytes_in, bytes_out, first_at, last_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
     ON CONFLICT(hour, network_id, interface_id) DO UPDATE SET \
     bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out, \
     first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at)";

const UPSERT_NET_DAILY: &str = "INSERT INTO net_daily(day, network_id, interface_id, \
     bytes_in, bytes_out, first_at, last_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
     ON CONFLICT(day, network_id, interface_id) DO UPDATE SET \
     bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out, \
     first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at)";

const UPSERT_APP_NET_HOURLY: &str = "INSERT INTO app_net_hourly(hour, app_id, network_id, \
     bytes_in, bytes_out) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(hour, app_id, network_id) \
     DO UPDATE SET bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out";

const UPSERT_APP_NET_DAILY: &str = "INSERT INTO app_net_daily(day, app_id, network_id, \
     bytes_in, bytes_out) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(day, app_id, network_id) \
     DO UPDATE SET bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blob_round_trips_large_counts() {
        let mut b = Vec::new();
        for v in [3u64, 1, 2, u64::MAX, 0, 0, 7, 300, 1 << 40] {
            put(&mut b, v);
        }
        let d = decode(&b).expect("decodes");
        assert_eq!(d.app_network, 3);
        assert_eq!(d.rows, vec![(1, 2, u64::MAX, 0), (0, 7, 300, 1 << 40)]);
    }

    #[test]
    fn the_application_split_round_trips_and_an_old_blob_has_none() {
        let rows = vec![(1, 2, 500, 50), (3, 4, 300, 30)];
        let split = vec![(7, 3, 300, 30), (9, 0, 5, 5)];
        let d = decode(&encode(1, &rows, &split)).expect("decodes");
        assert_eq!(
            d,
            Decoded {
                app_network: 1,
                rows: rows.clone(),
                split
            }
        );
        // A BLOB as 0007 wrote it (no marker) decodes as it did.
        let old = encode(1, &rows, &[]);
        assert_eq!(decode(&old).expect("decodes").split, vec![]);
        assert_eq!(decode(&old).expect("decodes").rows, rows);
        // Split with no interface rows (the interfaces were idle).
        let d = decode(&encode(2, &[], &[(7, 3, 1, 0)])).expect("decodes");
        assert_eq!((d.rows.len(), d.split), (0, vec![(7, 3, 1, 0)]));
        // A split cut short is malformed.
        let b = encode(1, &rows, &[(7, 3, 300, 30)]);
        assert_eq!(decode(&b[..b.len() - 1]), None);
    }

    #[test]
    fn a_truncated_blob_is_malformed_not_a_panic() {
        assert_eq!(decode(&[0x80]), None);
        assert_eq!(decode(&[1, 2, 3]), None);
        assert_eq!(decode(&[0xff; 12]), None);
    }
}
