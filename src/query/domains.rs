//! `netmon domains`: browser traffic per website over a range.
//!
//! The recorder splits each browser application's bytes across hosts every tick and keeps
//! them, with the method that attributed them, in `web_samples`, `web_hourly` and `web_daily`
//! (sql/0002_web.sql). This reads them exactly as `apps` reads its tables: the range widened to
//! what the tables can split, tiled into raw, hourly and daily pieces (`plan`), summed per
//! (application, host, method). Hosts are then rolled up to their registrable domain
//! (`crate::web::domain`, the Public Suffix List) unless `--no-rollup`. Bytes no host could be
//! given (no active tab) stay a row of their own, so rows add up to the browsers' traffic.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, params};
use serde::Serialize;

use super::apps::Sort;
use super::coverage::{self, Coverage};
use super::plan::{self, Layer};
use super::range::Range;
use super::time::utc;
use super::{Db, Error, Matcher};
use crate::web::{Method, domain};

/// The name of the row holding browser bytes that no host could be given.
pub const NO_SITE: &str = "(no active tab)";

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub sort: Sort,
    /// At most this many rows (after sorting); `None`: all.
    pub limit: Option<usize>,
    /// Only browsers (applications) whose name matches.
    pub app: Option<Matcher>,
    /// One row per registrable domain (true) or per host (false).
    pub rollup: bool,
    /// With `rollup`: list each domain's hosts under it.
    pub hosts: bool,
}

/// Whether a row is a website or the browsers' bytes with no site.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SiteKind {
    #[default]
    Site,
    /// Browser bytes with no active tab and no matching connection.
    Unattributed,
}

/// One website's traffic in the range. Field names are the JSON/CSV contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainUsage {
    /// The registrable domain (`bbc.co.uk`); `(no active tab)` for bytes with no site.
    pub domain: String,
    /// The host, on per-host rows (`--no-rollup`, and the hosts under a domain); else null.
    pub host: Option<String>,
    pub kind: SiteKind,
    /// The browsers (application names) whose bytes these are, comma-separated.
    pub apps: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub bytes_total: u64,
    /// Share of the listed browsers' traffic in the range (0.0–1.0), before `--limit`.
    pub share: f64,
    /// Bytes given to this site because their connection's address was seen serving it.
    pub bytes_by_connection: u64,
    /// Bytes split by the time the site was the active tab.
    pub bytes_by_active_tab: u64,
    /// `bytes_by_connection` as a share (0.0–1.0) of `bytes_total`.
    pub connection_share: f64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// With `--hosts`, in JSON: this domain's hosts (per-host rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<DomainUsage>>,
}

impl Default for DomainUsage {
    fn default() -> Self {
        DomainUsage {
            domain: String::new(),
            host: None,
            kind: SiteKind::Site,
            apps: String::new(),
            bytes_in: 0,
            bytes_out: 0,
            bytes_total: 0,
            share: 0.0,
            bytes_by_connection: 0,
            bytes_by_active_tab: 0,
            connection_share: 0.0,
            first_seen: DateTime::<Utc>::UNIX_EPOCH,
            last_seen: DateTime::<Utc>::UNIX_EPOCH,
            hosts: None,
        }
    }
}

/// Bytes per attribution method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ByMethod {
    pub connection: u64,
    pub active_tab: u64,
    pub none: u64,
}

impl ByMethod {
    pub fn total(&self) -> u64 {
        self.connection + self.active_tab + self.none
    }
}

/// The answer to `domains`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Domains {
    pub requested: Range,
    pub range: Range,
    pub coverage: Coverage,
    /// Sorted, limited.
    pub rows: Vec<DomainUsage>,
    /// How many rows there were before `--limit`.
    pub matched_rows: usize,
    /// The listed browsers' bytes by method (in + out).
    pub by_method: ByMethod,
    /// Bytes received and sent by the listed browsers.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The browsers that have ever reported (empty: the extension never reached `serve`).
    pub browsers_reporting: Vec<String>,
}

/// One (application, host, method) sum of a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WebSum {
    app_id: i64,
    host_id: i64,
    method: i64,
    bytes_in: i64,
    bytes_out: i64,
    first_ms: i64,
    last_ms: i64,
}

/// Website traffic over `range`.
pub fn domains<Tz: TimeZone>(
    db: &Db,
    tz: &Tz,
    range: Range,
    opts: &Options,
) -> Result<Domains, Error> {
    let (a, b) = plan::widen(tz, &db.bounds, range.start_ms(), range.end_ms());
    let pieces = plan::tile(tz, &db.bounds, a, b, true);
    let apps = db.apps()?;
    let wanted: Option<Vec<i64>> = opts.app.as_ref().map(|m| {
        apps.iter()
            .filter(|(_, info)| m.matches(&info.name))
            .map(|(id, _)| *id)
            .collect()
    });
    let mut sums: HashMap<(i64, i64, i64), WebSum> = HashMap::new();
    for layer in [Layer::Daily, Layer::Hourly, Layer::Raw] {
        for (s, e) in plan::spans(&pieces, layer) {
            for r in sum_web(&db.conn, layer, s, e)? {
                if wanted.as_ref().is_some_and(|w| !w.contains(&r.app_id)) {
                    continue;
                }
                sums.entry((r.app_id, r.host_id, r.method))
                    .and_modify(|t| {
                        t.bytes_in += r.bytes_in;
                        t.bytes_out += r.bytes_out;
                        t.first_ms = t.first_ms.min(r.first_ms);
                        t.last_ms = t.last_ms.max(r.last_ms);
                    })
                    .or_insert(r);
            }
        }
    }
    let hosts = host_names(&db.conn)?;
    let app_name = |id: i64| {
        apps.get(&id)
            .map_or_else(|| format!("(unknown app #{id})"), |a| a.name.clone())
    };

    let mut by_method = ByMethod::default();
    let (mut bytes_in, mut bytes_out) = (0u64, 0u64);
    // Per host first; domains are sums of their hosts.
    let mut per_host: HashMap<String, Acc> = HashMap::new();
    for s in sums.values() {
        let (bin, bout) = (s.bytes_in.max(0) as u64, s.bytes_out.max(0) as u64);
        bytes_in += bin;
        bytes_out += bout;
        let method = Method::from_code(s.method);
        match method {
            Method::Connection => by_method.connection += bin + bout,
            Method::ActiveTab => by_method.active_tab += bin + bout,
            Method::None => by_method.none += bin + bout,
        }
        let host = hosts.get(&s.host_id).cloned().unwrap_or_default();
        per_host.entry(host).or_default().add(
            bin,
            bout,
            method,
            s.first_ms,
            s.last_ms,
            app_name(s.app_id),
        );
    }
    let total = bytes_in + bytes_out;
    let mut host_rows: Vec<DomainUsage> = per_host
        .into_iter()
        .map(|(host, acc)| {
            let site = !host.is_empty();
            acc.row(
                if site {
                    domain::registrable(&host)
                } else {
                    NO_SITE.to_string()
                },
                site.then_some(host),
                total,
            )
        })
        .collect();

    let mut rows = if opts.rollup {
        let mut per_domain: HashMap<String, (Acc, Vec<DomainUsage>)> = HashMap::new();
        for r in host_rows.drain(..) {
            let e = per_domain.entry(r.domain.clone()).or_default();
            e.0.merge(&r);
            e.1.push(r);
        }
        per_domain
            .into_iter()
            .map(|(d, (acc, mut hosts))| {
                let mut row = acc.row(d, None, total);
                if opts.hosts && row.kind == SiteKind::Site {
                    sort(&mut hosts, opts.sort);
                    row.hosts = Some(hosts);
                }
                row
            })
            .collect()
    } else {
        host_rows
    };
    sort(&mut rows, opts.sort);
    let matched_rows = rows.len();
    if let Some(n) = opts.limit {
        rows.truncate(n);
    }
    let recorded = coverage::recorded(&db.conn, a, b)?;
    Ok(Domains {
        requested: range,
        range: Range::from_ms(a, b),
        coverage: recorded.coverage(a, b),
        rows,
        matched_rows,
        by_method,
        bytes_in,
        bytes_out,
        browsers_reporting: browsers(&db.conn)?,
    })
}

/// A row being summed.
#[derive(Debug, Default)]
struct Acc {
    bytes_in: u64,
    bytes_out: u64,
    by_connection: u64,
    by_active_tab: u64,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
    apps: BTreeSet<String>,
}

impl Acc {
    fn add(&mut self, bin: u64, bout: u64, m: Method, first: i64, last: i64, app: String) {
        self.bytes_in += bin;
        self.bytes_out += bout;
        match m {
            Method::Connection => self.by_connection += bin + bout,
            Method::ActiveTab => self.by_active_tab += bin + bout,
            Method::None => {}
        }
        self.first_ms = Some(self.first_ms.map_or(first, |f| f.min(first)));
        self.last_ms = Some(self.last_ms.map_or(last, |l| l.max(last)));
        self.apps.insert(app);
    }

    fn merge(&mut self, r: &DomainUsage) {
        self.bytes_in += r.bytes_in;
        self.bytes_out += r.bytes_out;
        self.by_connection += r.bytes_by_connection;
        self.by_active_tab += r.bytes_by_active_tab;
        let (f, l) = (
            r.first_seen.timestamp_millis(),
            r.last_seen.timestamp_millis(),
        );
        self.first_ms = Some(self.first_ms.map_or(f, |x| x.min(f)));
        self.last_ms = Some(self.last_ms.map_or(l, |x| x.max(l)));
        self.apps.extend(
            r.apps
                .split(", ")
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
    }

    fn row(self, domain: String, host: Option<String>, total: u64) -> DomainUsage {
        let bytes_total = self.bytes_in + self.bytes_out;
        let kind = if domain == NO_SITE && host.is_none() {
            SiteKind::Unattributed
        } else {
            SiteKind::Site
        };
        DomainUsage {
            domain,
            host,
            kind,
            apps: self.apps.into_iter().collect::<Vec<_>>().join(", "),
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            bytes_total,
            share: fraction(bytes_total, total),
            bytes_by_connection: self.by_connection,
            bytes_by_active_tab: self.by_active_tab,
            connection_share: fraction(self.by_connection, bytes_total),
            first_seen: utc(self.first_ms.unwrap_or(0)),
            last_seen: utc(self.last_ms.unwrap_or(0)),
            hosts: None,
        }
    }
}

fn fraction(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn sort(rows: &mut [DomainUsage], by: Sort) {
    rows.sort_by(|a, b| {
        // The no-site row goes last whatever its size: it is what is left, not a site.
        let unattributed =
            (a.kind == SiteKind::Unattributed).cmp(&(b.kind == SiteKind::Unattributed));
        let key = match by {
            Sort::Total => b.bytes_total.cmp(&a.bytes_total),
            Sort::In => b.bytes_in.cmp(&a.bytes_in),
            Sort::Out => b.bytes_out.cmp(&a.bytes_out),
            Sort::Name => std::cmp::Ordering::Equal,
        };
        let name = |r: &DomainUsage| r.host.clone().unwrap_or_else(|| r.domain.clone());
        unattributed.then(key).then_with(|| name(a).cmp(&name(b)))
    });
}

/// `ceil(ms / 1000)`: hour and day keys are seconds (as in `scan`).
fn ceil_s(ms: i64) -> i64 {
    -(-ms).div_euclid(1000)
}

/// Per (application, host, method) sums of one layer over `[a, b)`.
fn sum_web(conn: &Connection, layer: Layer, a: i64, b: i64) -> rusqlite::Result<Vec<WebSum>> {
    let (sql, lo, hi) = match layer {
        // Ticks outer (a time range is a range of ticks_by_time), each tick's rows one range
        // of the clustered primary key.
        Layer::Raw => (
            "SELECT w.app_id, w.host_id, w.method, sum(w.bytes_in), sum(w.bytes_out), \
             min(t.at), max(t.at) FROM ticks t CROSS JOIN web_samples w ON w.tick_id = t.id \
             WHERE t.at >= ?1 AND t.at < ?2 GROUP BY w.app_id, w.host_id, w.method",
            a,
            b,
        ),
        Layer::Hourly => (
            "SELECT app_id, host_id, method, sum(bytes_in), sum(bytes_out), min(first_at), \
             max(last_at) FROM web_hourly WHERE hour >= ?1 AND hour < ?2 \
             GROUP BY app_id, host_id, method",
            ceil_s(a),
            ceil_s(b),
        ),
        Layer::Daily => (
            "SELECT app_id, host_id, method, sum(bytes_in), sum(bytes_out), min(first_at), \
             max(last_at) FROM web_daily WHERE day >= ?1 AND day < ?2 \
             GROUP BY app_id, host_id, method",
            ceil_s(a),
            ceil_s(b),
        ),
    };
    let mut st = conn.prepare_cached(sql)?;
    let rows = st.query_map(params![lo, hi], |r| {
        Ok(WebSum {
            app_id: r.get(0)?,
            host_id: r.get(1)?,
            method: r.get(2)?,
            bytes_in: r.get(3)?,
            bytes_out: r.get(4)?,
            first_ms: r.get(5)?,
            last_ms: r.get(6)?,
        })
    })?;
    rows.collect()
}

fn host_names(conn: &Connection) -> rusqlite::Result<HashMap<i64, String>> {
    let mut st = conn.prepare_cached("SELECT id, name FROM web_hosts")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

fn browsers(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare_cached("SELECT name FROM web_browsers ORDER BY name")?;
    let rows = st.query_map([], |r| r.get(0))?;
    rows.collect()
}
