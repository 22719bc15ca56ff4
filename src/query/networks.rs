//! `netmon networks`: what each interface carried per network over a range, the share of it
//! netmon attributed to applications, and the application sums limited to one network
//! (`apps --network`). Tiled like `apps` (see `plan`): whole days from `net_daily`, whole hours
//! from `net_hourly`, the edges from the ticks' `net` column.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::coverage::{self, Coverage};
use super::plan::{self, Layer};
use super::range::Range;
use super::scan::{self, AppSum};
use super::time::utc;
use super::{Db, Error};
use crate::live;
use crate::source::interfaces::Kind;
use crate::store::networks::decode;

/// One network and interface in the range. Field names are the JSON/CSV contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkUsage {
    /// The user's name for the network, else its label (Wi-Fi name, gateway, interface);
    /// `(loopback)` for traffic that stayed on this machine.
    pub network: String,
    /// The id `netmon networks name` and `cap` take; 0 for loopback.
    pub network_id: i64,
    /// How the network was identified: `wifi:SSID`, `gw:MAC` (default gateway's hardware
    /// address), `vpn:IF`, `if:IF`; empty for loopback.
    pub key: String,
    pub interface: String,
    /// wifi, ethernet, cellular, vpn, bridge, virtual, loopback or other.
    pub kind: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub bytes_total: u64,
    /// Whether these bytes count in what the interfaces carried (not loopback, tunnels or
    /// bridges, whose bytes cross another interface too).
    pub counted: bool,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

impl Default for NetworkUsage {
    fn default() -> Self {
        NetworkUsage {
            network: String::new(),
            network_id: 0,
            key: String::new(),
            interface: String::new(),
            kind: String::new(),
            bytes_in: 0,
            bytes_out: 0,
            bytes_total: 0,
            counted: false,
            first_seen: DateTime::<Utc>::UNIX_EPOCH,
            last_seen: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

/// How much of what the interfaces carried netmon attributed to applications.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Explained {
    /// Bytes (in + out) applications were counted for.
    pub app_bytes: u64,
    /// Bytes (in + out) the counted interfaces carried.
    pub interface_bytes: u64,
}

impl Explained {
    /// `app_bytes / interface_bytes`; `None` when the interfaces carried nothing (or were not
    /// recorded: databases from before interface counters).
    pub fn share(&self) -> Option<f64> {
        (self.interface_bytes > 0).then(|| self.app_bytes as f64 / self.interface_bytes as f64)
    }
}

/// The answer to `networks`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Networks {
    pub requested: Range,
    pub range: Range,
    pub coverage: Coverage,
    /// Largest first; loopback last.
    pub rows: Vec<NetworkUsage>,
    pub explained: Explained,
    /// Every data cap, measured now.
    pub caps: Vec<CapUsage>,
}

/// A data cap and where it stands. Field names are the `status --json` contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapUsage {
    /// The network's name or label, or `all networks`.
    pub network: String,
    /// The network's id; `None` for the cap over all networks.
    pub network_id: Option<i64>,
    pub cap_bytes: u64,
    /// `day`, `week` or `month`.
    pub period: String,
    pub resets_on: u32,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// What the counted interfaces carried in the period so far.
    pub used_bytes: u64,
    /// `cap_bytes - used_bytes`, 0 once over.
    pub left_bytes: u64,
    /// Usage at the period's end if the pace so far goes on.
    pub forecast_bytes: u64,
}

/// Every cap, measured at `now_ms` (periods in the local time zone `tz`) from what the
/// database holds.
pub fn caps<Tz: TimeZone>(conn: &Connection, tz: &Tz, now_ms: i64) -> Result<Vec<CapUsage>, Error> {
    caps_with(conn, tz, now_ms, &[])
}

/// What the running recorder of `db` holds unwritten, per tick and network, for
/// [`caps_with`]; empty when none answers. Ask it before reading the database.
pub fn unwritten(db: &Path) -> Vec<live::NetBytes> {
    let Ok(Some(holder)) = crate::store::lock::holder(db) else {
        return Vec::new();
    };
    let pid = holder.pid.parse::<u32>().ok();
    live::read(
        db,
        &live::Request {
            nets: true,
            ..live::Request::default()
        },
    )
    .filter(|v| Some(v.pid) == pid)
    .map(|v| v.nets)
    .unwrap_or_default()
}

/// [`caps`] plus the recorder's unwritten ticks ([`unwritten`], asked first): each counts when
/// it is in the cap's period and newer than every tick the database snapshot holds (older
/// ones were written since the recorder answered, and are in the database already), as the
/// recorder's own alerts count them.
pub fn caps_with<Tz: TimeZone>(
    conn: &Connection,
    tz: &Tz,
    now_ms: i64,
    unwritten: &[live::NetBytes],
) -> Result<Vec<CapUsage>, Error> {
    // One snapshot for the newest tick and every cap's usage.
    let _snapshot = if conn.is_autocommit() {
        Some(conn.unchecked_transaction()?)
    } else {
        None
    };
    let newest: Option<i64> = conn.query_row("SELECT max(at) FROM ticks", [], |r| r.get(0))?;
    let unwritten: Vec<&live::NetBytes> = unwritten
        .iter()
        .filter(|u| newest.is_none_or(|n| u.at_ms > n))
        .collect();
    let names = infos(conn)?;
    let mut out = Vec::new();
    for c in crate::store::networks::caps(conn)? {
        let network_id = c.scope.parse::<i64>().ok();
        let period =
            crate::calendar::Period::parse(&c.period).unwrap_or(crate::calendar::Period::Month);
        let (start, end) = crate::calendar::period_bounds(tz, period, c.resets_on, now_ms);
        let key = network_id
            .and_then(|id| names.get(&id))
            .map(|n| n.key.as_str());
        let pending: u64 = unwritten
            .iter()
            .filter(|u| u.at_ms >= start && (network_id.is_none() || key == Some(&u.network)))
            .map(|u| u.bytes)
            .sum();
        let used = crate::store::networks::carried_since(conn, network_id, start / 1000)?
            .saturating_add(pending);
        let elapsed = (now_ms - start).max(1);
        let forecast = (used as f64 * ((end - start) as f64 / elapsed as f64)) as u64;
        out.push(CapUsage {
            network: match network_id {
                None => "all networks".to_string(),
                Some(id) => names
                    .get(&id)
                    .map_or_else(|| format!("(network #{id})"), NetworkInfo::display),
            },
            network_id,
            cap_bytes: c.bytes,
            period: c.period,
            resets_on: c.resets_on,
            period_start: utc(start),
            period_end: utc(end),
            used_bytes: used,
            left_bytes: c.bytes.saturating_sub(used),
            forecast_bytes: forecast.max(used),
        });
    }
    Ok(out)
}

/// A stored network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    pub id: i64,
    pub key: String,
    pub label: String,
    pub name: Option<String>,
}

impl NetworkInfo {
    pub fn display(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.label.clone())
    }
}

/// Every network ever seen, by id.
pub fn infos(conn: &Connection) -> rusqlite::Result<HashMap<i64, NetworkInfo>> {
    let mut st = conn.prepare_cached("SELECT id, key, label, name FROM networks")?;
    st.query_map([], |r| {
        Ok(NetworkInfo {
            id: r.get(0)?,
            key: r.get(1)?,
            label: r.get(2)?,
            name: r.get(3)?,
        })
    })?
    .map(|r| r.map(|n| (n.id, n)))
    .collect()
}

/// The network a user means: its id, its name, its label or its key (names and labels
/// case-insensitively).
pub fn resolve(db: &Db, what: &str) -> Result<NetworkInfo, Error> {
    let all = infos(&db.conn)?;
    let by_id = what.parse::<i64>().ok().and_then(|id| all.get(&id));
    let lower = what.to_lowercase();
    let found = by_id
        .or_else(|| {
            all.values()
                .find(|n| n.name.as_deref().is_some_and(|m| m.to_lowercase() == lower))
        })
        .or_else(|| all.values().find(|n| n.label.to_lowercase() == lower))
        .or_else(|| all.values().find(|n| n.key == what));
    match found {
        Some(n) => Ok(n.clone()),
        None => {
            let mut known: Vec<String> = all
                .values()
                .map(|n| format!("{} ({})", n.display(), n.id))
                .collect();
            known.sort();
            Err(Error::Invalid(format!(
                "no network called {what:?}: `netmon networks` lists them ({})",
                if known.is_empty() {
                    "none recorded yet".to_string()
                } else {
                    known.join(", ")
                }
            )))
        }
    }
}

/// Per network and interface over `range`; the caps add `unwritten` ([`caps_with`]).
pub fn networks<Tz: TimeZone>(
    db: &Db,
    tz: &Tz,
    range: Range,
    unwritten: &[live::NetBytes],
) -> Result<Networks, Error> {
    let (a, b) = plan::widen(tz, &db.bounds, range.start_ms(), range.end_ms());
    let sums = interface_sums(db, tz, a, b)?;
    let infos = infos(&db.conn)?;
    let ifaces: HashMap<i64, (String, String)> = {
        let mut st = db
            .conn
            .prepare_cached("SELECT id, name, kind FROM interfaces")?;
        st.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
            .collect::<Result<_, _>>()?
    };
    let mut rows: Vec<NetworkUsage> = sums
        .into_iter()
        .map(|((nid, iid), s)| {
            let (interface, kind) = ifaces
                .get(&iid)
                .cloned()
                .unwrap_or_else(|| (format!("(interface #{iid})"), "other".to_string()));
            let info = infos.get(&nid);
            NetworkUsage {
                network: info.map_or_else(|| "(loopback)".to_string(), NetworkInfo::display),
                network_id: nid,
                key: info.map(|n| n.key.clone()).unwrap_or_default(),
                counted: Kind::parse(&kind).carries_off_machine(),
                interface,
                kind,
                bytes_in: s.bytes_in,
                bytes_out: s.bytes_out,
                bytes_total: s.bytes_in + s.bytes_out,
                first_seen: utc(s.first_ms),
                last_seen: utc(s.last_ms),
            }
        })
        .collect();
    rows.sort_by(|x, y| {
        (x.network_id == 0)
            .cmp(&(y.network_id == 0))
            .then(y.bytes_total.cmp(&x.bytes_total))
            .then_with(|| x.network.cmp(&y.network))
            .then_with(|| x.interface.cmp(&y.interface))
    });
    let interface_bytes = rows
        .iter()
        .filter(|r| r.counted)
        .map(|r| r.bytes_total)
        .sum();
    let app_bytes = app_total(db, tz, counted_from(db, tz, a)?.unwrap_or(a), b)?;
    let recorded = coverage::recorded(&db.conn, a, b)?;
    Ok(Networks {
        requested: range,
        range: Range::from_ms(a, b),
        coverage: recorded.coverage(a, b),
        rows,
        explained: Explained {
            app_bytes,
            interface_bytes,
        },
        caps: caps_with(&db.conn, tz, Utc::now().timestamp_millis(), unwritten)?,
    })
}

/// The explained share over `[a, b)` (already widened), over every network or one.
/// `app_bytes`: the applications' total (`apps`' own, which may be limited to the network).
pub fn explained<Tz: TimeZone>(
    db: &Db,
    tz: &Tz,
    a: i64,
    b: i64,
    network: Option<i64>,
    app_bytes: u64,
) -> Result<Explained, Error> {
    let mut sums = interface_sums(db, tz, a, b)?;
    if let Some(n) = network {
        sums.retain(|(nid, _), _| *nid == n);
    }
    // Applications' bytes from before interfaces were counted (a database older than issue 15)
    // have nothing to be compared with: the share covers only the time both were counted.
    let app_bytes = match (network, counted_from(db, tz, a)?) {
        (None, Some(from)) => app_total(db, tz, from, b)?,
        _ => app_bytes,
    };
    let kinds: HashMap<i64, String> = {
        let mut st = db.conn.prepare_cached("SELECT id, kind FROM interfaces")?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    let interface_bytes = sums
        .iter()
        .filter(|((_, iid), _)| {
            kinds
                .get(iid)
                .is_some_and(|k| Kind::parse(k).carries_off_machine())
        })
        .map(|(_, s)| s.bytes_in + s.bytes_out)
        .sum();
    Ok(Explained {
        app_bytes,
        interface_bytes,
    })
}

/// Where interface counting began, when that is after `a`: the first tick any interface row
/// holds, moved forward to where the tables can split (an hour, a day) once raw ticks are gone.
fn counted_from<Tz: TimeZone>(db: &Db, tz: &Tz, a: i64) -> Result<Option<i64>, Error> {
    let first: Option<i64> = db
        .conn
        .query_row("SELECT min(first_at) FROM net_daily", [], |r| r.get(0))?;
    Ok(first.filter(|f| *f > a).map(|f| {
        if db.bounds.raw_at(f) {
            f
        } else if db.bounds.hourly_at(f) {
            crate::calendar::ceil_hour(f)
        } else {
            crate::calendar::day_ceil(tz, f)
        }
    }))
}

fn app_total<Tz: TimeZone>(db: &Db, tz: &Tz, a: i64, b: i64) -> Result<u64, Error> {
    if a >= b {
        return Ok(0);
    }
    let pieces = plan::tile(tz, &db.bounds, a, b, true);
    let mut total = 0u64;
    for layer in [Layer::Daily, Layer::Hourly, Layer::Raw] {
        for (s, e) in plan::spans(&pieces, layer) {
            for r in scan::sum_by_app(&db.conn, layer, s, e, None)? {
                total += (r.bytes_in.max(0) + r.bytes_out.max(0)) as u64;
            }
        }
    }
    Ok(total)
}

#[derive(Debug, Clone, Copy)]
struct Sum {
    bytes_in: u64,
    bytes_out: u64,
    first_ms: i64,
    last_ms: i64,
}

/// Bytes per (network id, interface id) over `[a, b)`.
fn interface_sums<Tz: TimeZone>(
    db: &Db,
    tz: &Tz,
    a: i64,
    b: i64,
) -> Result<HashMap<(i64, i64), Sum>, Error> {
    let pieces = plan::tile(tz, &db.bounds, a, b, true);
    let mut acc: HashMap<(i64, i64), Sum> = HashMap::new();
    let mut add = |k: (i64, i64), bin: u64, bout: u64, first: i64, last: i64| {
        acc.entry(k)
            .and_modify(|s| {
                s.bytes_in += bin;
                s.bytes_out += bout;
                s.first_ms = s.first_ms.min(first);
                s.last_ms = s.last_ms.max(last);
            })
            .or_insert(Sum {
                bytes_in: bin,
                bytes_out: bout,
                first_ms: first,
                last_ms: last,
            });
    };
    for layer in [Layer::Daily, Layer::Hourly, Layer::Raw] {
        for (s, e) in plan::spans(&pieces, layer) {
            match layer {
                Layer::Raw => {
                    let mut st = db.conn.prepare_cached(
                        "SELECT at, net FROM ticks WHERE at >= ?1 AND at < ?2 AND net IS NOT NULL",
                    )?;
                    let mut rows = st.query(params![s, e])?;
                    while let Some(r) = rows.next()? {
                        let at: i64 = r.get(0)?;
                        let blob: Vec<u8> = r.get(1)?;
                        for (n, i, bin, bout) in decode(&blob).map(|d| d.rows).unwrap_or_default() {
                            add((n, i), bin, bout, at, at);
                        }
                    }
                }
                Layer::Hourly | Layer::Daily => {
                    let sql = if layer == Layer::Hourly {
                        "SELECT network_id, interface_id, bytes_in, bytes_out, first_at, last_at \
                         FROM net_hourly WHERE hour >= ?1 AND hour < ?2"
                    } else {
                        "SELECT network_id, interface_id, bytes_in, bytes_out, first_at, last_at \
                         FROM net_daily WHERE day >= ?1 AND day < ?2"
                    };
                    let mut st = db.conn.prepare_cached(sql)?;
                    let mut rows = st.query(params![ceil_s(s), ceil_s(e)])?;
                    while let Some(r) = rows.next()? {
                        let (bin, bout): (i64, i64) = (r.get(2)?, r.get(3)?);
                        add(
                            (r.get(0)?, r.get(1)?),
                            bin.max(0) as u64,
                            bout.max(0) as u64,
                            r.get(4)?,
                            r.get(5)?,
                        );
                    }
                }
            }
        }
    }
    Ok(acc)
}

fn ceil_s(ms: i64) -> i64 {
    ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0)
}

/// Application sums of one layer over `[a, b)`, limited to the bytes counted on `network`.
pub fn sum_by_app_on(
    conn: &Connection,
    layer: Layer,
    a: i64,
    b: i64,
    network: i64,
) -> rusqlite::Result<Vec<AppSum>> {
    let mut acc: HashMap<i64, AppSum> = HashMap::new();
    for r in rows_on(conn, layer, a, b, network)? {
        let t = acc.entry(r.app_id).or_insert(AppSum {
            app_id: r.app_id,
            bytes_in: 0,
            bytes_out: 0,
            first_ms: r.first_ms,
            last_ms: r.last_ms,
        });
        t.bytes_in += r.bytes_in;
        t.bytes_out += r.bytes_out;
        t.first_ms = t.first_ms.min(r.first_ms);
        t.last_ms = t.last_ms.max(r.last_ms);
    }
    acc.retain(|_, t| t.bytes_in != 0 || t.bytes_out != 0);
    Ok(acc.into_values().collect())
}

/// [`scan::sum_by_key`] limited to the bytes counted on `network`: per row key (tick, hour or
/// day start), and per application when `per_app`; only `apps` when given.
pub fn sum_by_key_on(
    conn: &Connection,
    layer: Layer,
    a: i64,
    b: i64,
    per_app: bool,
    apps: Option<&[i64]>,
    network: i64,
) -> rusqlite::Result<Vec<scan::KeySum>> {
    let mut acc: HashMap<(i64, Option<i64>), (i64, i64)> = HashMap::new();
    for r in rows_on(conn, layer, a, b, network)? {
        if apps.is_some_and(|ids| !ids.contains(&r.app_id)) {
            continue;
        }
        let e = acc
            .entry((r.key_ms, per_app.then_some(r.app_id)))
            .or_default();
        e.0 += r.bytes_in;
        e.1 += r.bytes_out;
    }
    Ok(acc
        .into_iter()
        .filter(|(_, (i, o))| *i != 0 || *o != 0)
        .map(|((key_ms, app_id), (bytes_in, bytes_out))| scan::KeySum {
            key_ms,
            app_id,
            bytes_in,
            bytes_out,
        })
        .collect())
}

/// One application's bytes on the network in one row of a layer.
struct OnNetwork {
    /// The tick's time, or the hour's or day's start (epoch ms).
    key_ms: i64,
    app_id: i64,
    bytes_in: i64,
    bytes_out: i64,
    first_ms: i64,
    last_ms: i64,
}

/// Every (row, application) of a layer over `[a, b)` with the bytes counted on `network`.
/// Raw: a process's sample in ticks whose app network it is, less what the tick's split lists
/// on other networks, plus what the split lists on it (sql/0008_app_network_split.sql).
/// Hourly and daily: the bucket's total less what other networks got where it is the bucket's
/// primary network, else what `app_net_hourly`/`app_net_daily` list for it
/// (sql/0007_networks.sql).
fn rows_on(
    conn: &Connection,
    layer: Layer,
    a: i64,
    b: i64,
    network: i64,
) -> rusqlite::Result<Vec<OnNetwork>> {
    let mut out = Vec::new();
    match layer {
        Layer::Raw => {
            let process_app: HashMap<i64, i64> = {
                let mut st = conn.prepare_cached("SELECT id, app_id FROM processes")?;
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?
            };
            // The ticks with application bytes on the network (their app network, or some
            // listed in their split), then their samples: a process's bytes on its tick's app
            // network are its sample less what the split lists for it on other networks.
            type Listed = Vec<(i64, i64, u64, u64)>;
            let mut ticks: Vec<(i64, i64, bool, Listed)> = Vec::new();
            {
                let mut st = conn.prepare_cached(
                    "SELECT id, at, net FROM ticks WHERE at >= ?1 AND at < ?2 AND net IS NOT NULL",
                )?;
                let mut rows = st.query(params![a, b])?;
                while let Some(r) = rows.next()? {
                    let blob: Vec<u8> = r.get(2)?;
                    let Some(d) = decode(&blob) else { continue };
                    let on_app = d.app_network == network;
                    if on_app || d.split.iter().any(|x| x.1 == network) {
                        ticks.push((r.get(0)?, r.get(1)?, on_app, d.split));
                    }
                }
            }
            let mut st = conn.prepare_cached(
                "SELECT process_id, bytes_in, bytes_out FROM samples WHERE tick_id = ?1",
            )?;
            for (tick, at, on_app, split) in ticks {
                let mut rows = st.query([tick])?;
                while let Some(r) = rows.next()? {
                    let process: i64 = r.get(0)?;
                    let Some(&app) = process_app.get(&process) else {
                        continue;
                    };
                    let (mut bin, mut bout): (i64, i64) = (0, 0);
                    if on_app {
                        bin = r.get(1)?;
                        bout = r.get(2)?;
                    }
                    for &(_, nid, i, o) in split.iter().filter(|x| x.0 == process) {
                        let sign = if nid == network {
                            1
                        } else if on_app {
                            -1
                        } else {
                            0
                        };
                        bin += sign * i as i64;
                        bout += sign * o as i64;
                    }
                    if bin != 0 || bout != 0 {
                        out.push(OnNetwork {
                            key_ms: at,
                            app_id: app,
                            bytes_in: bin,
                            bytes_out: bout,
                            first_ms: at,
                            last_ms: at,
                        });
                    }
                }
            }
        }
        Layer::Hourly | Layer::Daily => {
            let (span, table, split, col) = if layer == Layer::Hourly {
                (0, "hourly", "app_net_hourly", "hour")
            } else {
                (1, "daily", "app_net_daily", "day")
            };
            let (s, e) = (ceil_s(a), ceil_s(b));
            // Bytes listed on other networks than the bucket's primary, per bucket and app.
            let mut moved: HashMap<(i64, i64), (i64, i64)> = HashMap::new();
            let mut listed: Vec<(i64, i64, i64, i64)> = Vec::new();
            {
                let mut st = conn.prepare_cached(&format!(
                    "SELECT {col}, app_id, network_id, bytes_in, bytes_out FROM {split} \
                     WHERE {col} >= ?1 AND {col} < ?2"
                ))?;
                let mut rows = st.query(params![s, e])?;
                while let Some(r) = rows.next()? {
                    let (bucket, app, nid, bin, bout): (i64, i64, i64, i64, i64) =
                        (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
                    let m = moved.entry((bucket, app)).or_default();
                    m.0 += bin;
                    m.1 += bout;
                    if nid == network {
                        listed.push((bucket, app, bin, bout));
                    }
                }
            }
            let primaries: HashMap<i64, i64> = {
                let mut st = conn.prepare_cached(
                    "SELECT start, network_id FROM net_primary WHERE span = ?1 \
                     AND start >= ?2 AND start < ?3",
                )?;
                st.query_map(params![span, s, e], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?
            };
            let mut st = conn.prepare_cached(&format!(
                "SELECT {col}, app_id, bytes_in, bytes_out, first_at, last_at FROM {table} \
                 WHERE {col} >= ?1 AND {col} < ?2"
            ))?;
            let mut first_last: HashMap<(i64, i64), (i64, i64)> = HashMap::new();
            let mut rows = st.query(params![s, e])?;
            while let Some(r) = rows.next()? {
                let (bucket, app): (i64, i64) = (r.get(0)?, r.get(1)?);
                let (first, last): (i64, i64) = (r.get(4)?, r.get(5)?);
                first_last.insert((bucket, app), (first, last));
                if primaries.get(&bucket) == Some(&network) {
                    let (bin, bout): (i64, i64) = (r.get(2)?, r.get(3)?);
                    let m = moved.get(&(bucket, app)).copied().unwrap_or_default();
                    out.push(OnNetwork {
                        key_ms: bucket * 1000,
                        app_id: app,
                        bytes_in: bin - m.0,
                        bytes_out: bout - m.1,
                        first_ms: first,
                        last_ms: last,
                    });
                }
            }
            for (bucket, app, bin, bout) in listed {
                if primaries.get(&bucket) != Some(&network) {
                    let (first, last) = first_last
                        .get(&(bucket, app))
                        .copied()
                        .unwrap_or((bucket * 1000, bucket * 1000));
                    out.push(OnNetwork {
                        key_ms: bucket * 1000,
                        app_id: app,
                        bytes_in: bin,
                        bytes_out: bout,
                        first_ms: first,
                        last_ms: last,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Which rule put the applications' bytes on networks in a range, as the runs that recorded
/// it say (`runs.network_split`, sql/0008): per connection where the source said which
/// interface each connection used (nettop, from that version on), else the network that
/// carried the most bytes off the machine in each tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SplitRules {
    /// Some of the range was recorded by a source that names each connection's interface.
    pub per_connection: bool,
    /// Some of it was recorded by a source that does not (sockdiag, ebpf).
    pub busiest_per_tick: bool,
}

impl SplitRules {
    /// The rule as one word for JSON and CSV rows: `connection` (every connection on its own
    /// interface's network), `tick` (each tick's bytes on its busiest network) or `mixed`
    /// (both, from runs of different sources).
    pub fn word(self) -> &'static str {
        match (self.per_connection, self.busiest_per_tick) {
            (true, false) => "connection",
            (true, true) => "mixed",
            _ => "tick",
        }
    }
}

/// The [`SplitRules`] of the runs that overlap `[a, b)`.
pub fn split_rules(conn: &Connection, a: i64, b: i64) -> rusqlite::Result<SplitRules> {
    let mut st = conn.prepare_cached(
        "SELECT DISTINCT network_split FROM runs WHERE started_at < ?2 \
         AND coalesce(last_tick_at, stopped_at, started_at) >= ?1",
    )?;
    let mut rules = SplitRules::default();
    for rule in st.query_map(params![a, b], |r| r.get::<_, String>(0))? {
        if rule? == "connection" {
            rules.per_connection = true;
        } else {
            rules.busiest_per_tick = true;
        }
    }
    Ok(rules)
}

/// The network's name for an id, for messages.
pub fn name_of(conn: &Connection, id: i64) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT coalesce(name, label) FROM networks WHERE id = ?1",
        [id],
        |r| r.get(0),
    )
    .optional()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::StateChanges;
    use crate::store::write::{Gap, RunInfo, Tick, Writer};
    use crate::tick::{
        App, AppKind, InterfaceTraffic, NetTraffic, Network, NetworkBytes, ProcessRecord,
        ProcessTraffic,
    };

    const T0: i64 = 1_763_942_400_000; // 2025-11-24T00:00:00Z

    fn network(key: &str) -> Network {
        Network {
            key: key.into(),
            label: key.into(),
        }
    }

    fn app(pid: u32, name: &str, bytes: (u64, u64), on: &[(&str, u64, u64)]) -> ProcessTraffic {
        ProcessTraffic {
            process: ProcessRecord {
                pid: Some(pid),
                name: name.into(),
                start_time: None,
                exe: None,
                uid: None,
                app: App {
                    name: name.into(),
                    path: None,
                },
                kind: AppKind::Application,
                container: None,
            },
            bytes_in: bytes.0,
            bytes_out: bytes.1,
            flows: vec![],
            interfaces: vec![],
            networks: on
                .iter()
                .map(|&(k, i, o)| NetworkBytes {
                    network: Some(network(k)),
                    bytes_in: i,
                    bytes_out: o,
                })
                .collect(),
        }
    }

    fn net(app_network: &str) -> NetTraffic {
        NetTraffic {
            interfaces: vec![InterfaceTraffic {
                interface: "en0".into(),
                kind: "wifi",
                network: Some(network(app_network)),
                bytes_in: 1,
                bytes_out: 1,
            }],
            app_network: Some(network(app_network)),
        }
    }

    /// Per app id: (bytes in, bytes out) on `network` in `layer` over the whole day.
    fn on(conn: &Connection, layer: Layer, network: i64) -> HashMap<i64, (i64, i64)> {
        let day = T0 - 86_400_000;
        sum_by_app_on(conn, layer, day, T0 + 2 * 86_400_000, network)
            .expect("sums")
            .into_iter()
            .map(|s| (s.app_id, (s.bytes_in, s.bytes_out)))
            .collect()
    }

    #[test]
    fn the_split_rule_is_the_one_each_run_recorded_with() {
        let mut w = Writer::new(crate::store::open_in_memory().expect("db"));
        let run = |w: &mut Writer, at: i64, source: &str| {
            let id = w.begin_run(&RunInfo::new(source, at, 5000)).expect("run");
            w.conn()
                .execute(
                    "UPDATE runs SET last_tick_at = ?1 + 1000, stopped_at = ?1 + 2000 WHERE id = ?2",
                    params![at, id],
                )
                .expect("span");
            id
        };
        let hour = 3_600_000;
        let old = run(&mut w, T0, "nettop");
        // A nettop run recorded before sql/0008 split by the busiest network per tick.
        w.conn()
            .execute(
                "UPDATE runs SET network_split = 'tick' WHERE id = ?1",
                [old],
            )
            .expect("old run");
        run(&mut w, T0 + hour, "nettop");
        run(&mut w, T0 + 2 * hour, "sockdiag");
        let rules = |a: i64, b: i64| split_rules(w.conn(), a, b).expect("rules");
        let busiest = SplitRules {
            per_connection: false,
            busiest_per_tick: true,
        };
        let connection = SplitRules {
            per_connection: true,
            busiest_per_tick: false,
        };
        assert_eq!(rules(T0, T0 + hour - 1), busiest, "the old nettop run");
        assert_eq!(rules(T0 + hour, T0 + 2 * hour - 1), connection);
        assert_eq!(rules(T0 + 2 * hour, T0 + 3 * hour), busiest, "sockdiag");
        assert_eq!(
            rules(T0, T0 + 3 * hour),
            SplitRules {
                per_connection: true,
                busiest_per_tick: true
            }
        );
        assert_eq!(rules(T0 + 5 * hour, T0 + 6 * hour), SplitRules::default());
        // The words JSON and CSV rows carry.
        assert_eq!(rules(T0, T0 + hour - 1).word(), "tick");
        assert_eq!(rules(T0 + hour, T0 + 2 * hour - 1).word(), "connection");
        assert_eq!(rules(T0, T0 + 3 * hour).word(), "mixed");
    }

    #[test]
    fn apps_on_each_network_add_up_to_their_totals_in_raw_hourly_and_daily_rows() {
        let mut w = Writer::new(crate::store::open_in_memory().expect("db"));
        let run_id = w.begin_run(&RunInfo::new("nettop", T0, 5000)).expect("run");
        let state = StateChanges::default();
        // curl: connections on A and B; ssh: only on the tick's busiest network; the busiest
        // network changes from A to B in the second hour.
        let ticks = [
            (
                T0 + 1000,
                vec![
                    app(1, "curl", (1000, 100), &[("gw:b", 300, 30)]),
                    app(2, "ssh", (50, 5), &[]),
                ],
                net("gw:a"),
            ),
            (
                T0 + 6000,
                vec![app(1, "curl", (400, 40), &[("gw:b", 400, 40)])],
                net("gw:a"),
            ),
            (
                T0 + 3_601_000,
                vec![
                    app(1, "curl", (500, 50), &[("gw:a", 200, 20)]),
                    app(2, "ssh", (70, 7), &[]),
                ],
                net("gw:b"),
            ),
        ];
        let batch: Vec<(Tick<'_>, &[Gap])> = ticks
            .iter()
            .map(|(at, t, n)| {
                (
                    Tick {
                        run_id,
                        at_ms: *at,
                        elapsed_ms: 5000,
                        day: T0 / 1000,
                        traffic: t,
                        web: &[],
                        state: &state,
                        net: Some(n),
                    },
                    &[][..],
                )
            })
            .collect();
        w.commit_batch(&batch).expect("batch");
        let conn = w.conn();
        let id = |key: &str| -> i64 {
            conn.query_row("SELECT id FROM networks WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .expect("network")
        };
        let app_id = |name: &str| -> i64 {
            conn.query_row("SELECT id FROM apps WHERE name = ?1", [name], |r| r.get(0))
                .expect("app")
        };
        let (a, b) = (id("gw:a"), id("gw:b"));
        let (curl, ssh) = (app_id("curl"), app_id("ssh"));
        for layer in [Layer::Raw, Layer::Hourly, Layer::Daily] {
            let (on_a, on_b) = (on(conn, layer, a), on(conn, layer, b));
            // curl on A: 700 + 0 + 200; on B: 300 + 400 + 300.
            assert_eq!(on_a.get(&curl), Some(&(900, 90)), "{layer:?}");
            assert_eq!(on_b.get(&curl), Some(&(1000, 100)), "{layer:?}");
            assert_eq!(on_a.get(&ssh), Some(&(50, 5)), "{layer:?}");
            assert_eq!(on_b.get(&ssh), Some(&(70, 7)), "{layer:?}");
        }
    }

    use crate::synth::{Flow, Synth};

    /// 2026-01-01T12:00:00Z
    const T: i64 = 1_767_268_800_000;

    fn nb(at_ms: i64, network: &str, bytes: u64) -> live::NetBytes {
        live::NetBytes {
            at_ms,
            network: network.into(),
            bytes,
        }
    }

    #[test]
    fn unwritten_ticks_count_once_in_their_caps_period_and_network() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("n.db");
        let mut s = Synth::create(&path, Synth::utc_days).expect("synth");
        s.begin_run(T - 1000, 5000).expect("run");
        let home = Network {
            key: "gw:01".into(),
            label: "home".into(),
        };
        let net = NetTraffic {
            interfaces: vec![InterfaceTraffic {
                interface: "eth0".into(),
                kind: "ethernet",
                network: Some(home),
                bytes_in: 700,
                bytes_out: 300,
            }],
            app_network: None,
        };
        s.tick_with_net(T, 5000, &[Flow::new("curl", 10, 1, 1)], &net)
            .expect("tick");
        let conn = crate::store::open(&path, crate::store::Create::Never).expect("open");
        crate::store::networks::set_cap(&conn, "*", 10_000, "day", 1).expect("cap");
        let id: i64 = conn
            .query_row("SELECT id FROM networks WHERE key = 'gw:01'", [], |r| {
                r.get(0)
            })
            .expect("id");
        crate::store::networks::set_cap(&conn, &id.to_string(), 10_000, "day", 1).expect("cap");
        let unwritten = [
            // Written since the recorder answered: the snapshot holds it already.
            nb(T, "gw:01", 1000),
            nb(T + 5000, "gw:01", 40),
            nb(T + 10_000, "wifi:Cafe", 2),
            // Yesterday (UTC): another period.
            nb(T - 13 * 3_600_000, "gw:01", 900),
        ];
        let with = caps_with(&conn, &Utc, T + 20_000, &unwritten).expect("caps");
        let used: Vec<(Option<i64>, u64)> =
            with.iter().map(|c| (c.network_id, c.used_bytes)).collect();
        assert_eq!(used, [(None, 1000 + 40 + 2), (Some(id), 1000 + 40)]);
        let written_only = caps(&conn, &Utc, T + 20_000).expect("caps");
        assert_eq!(written_only[0].used_bytes, 1000);
    }
}
