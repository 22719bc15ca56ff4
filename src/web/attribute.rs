//! Per tick, a browser application's bytes split across the hosts it served.
//!
//! 1. By connection: a connection's remote address that the browser reported serving a host
//!    (an observation no older than [`OBSERVATION_TTL_MS`]; the newest wins when several hosts
//!    share an address) gives that connection's bytes to that host.
//! 2. By active tab: whatever is left (connections with no observation, and sources without
//!    per-connection rows) is split by the share of the tick each host was the browser's
//!    active tab. The newest interval, unless a heartbeat closed it, is taken to run on for up
//!    to the pulse ([`PULSE_MS`]) after its last heartbeat, since the next heartbeat has not
//!    come yet.
//! 3. The share of the tick with no active tab stays with the browser under host `''`
//!    (method `none`), so a browser's hosts always add up to its bytes.
//!
//! Splits are exact: integer bytes by largest remainder, never a byte made up or lost.

use std::collections::HashMap;
use std::net::IpAddr;

use rusqlite::Connection;

use super::names;
use crate::store::web::{self as web_store, PULSE_MS};
use crate::tick::{App, AppKind, HostTraffic, Method, ProcessTraffic};

/// How long an address↔host observation is used to match connections after it was last seen.
pub const OBSERVATION_TTL_MS: i64 = 24 * 3_600_000;

/// A stretch of time a host was the active tab (`''`: none was).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub host: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// One host's part of a split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub host: String,
    pub method: Method,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Split one browser application's bytes for one tick.
///
/// `total` is everything the application moved; `flows` its per-connection bytes with the
/// host their address was observed serving, if any; `spans` its active-tab intervals near the
/// tick `window` (start, end in epoch ms).
pub fn split(
    total: (u64, u64),
    flows: &[(Option<&str>, u64, u64)],
    spans: &[Span],
    window: (i64, i64),
) -> Vec<Part> {
    let mut parts: Vec<Part> = Vec::new();
    let mut by_conn: Vec<(&str, u64, u64)> = Vec::new();
    for (host, bin, bout) in flows {
        if let Some(h) = host {
            match by_conn.iter_mut().find(|(x, _, _)| x == h) {
                Some(e) => {
                    e.1 += bin;
                    e.2 += bout;
                }
                None => by_conn.push((h, *bin, *bout)),
            }
        }
    }
    let (mut conn_in, mut conn_out) = (0u64, 0u64);
    for (host, bin, bout) in by_conn {
        conn_in += bin;
        conn_out += bout;
        parts.push(Part {
            host: host.to_string(),
            method: Method::Connection,
            bytes_in: bin,
            bytes_out: bout,
        });
    }
    // A source's process total is at least the sum of its connections; if one ever said
    // less, the connections are what was measured.
    let rest = (
        total.0.saturating_sub(conn_in),
        total.1.saturating_sub(conn_out),
    );
    if rest == (0, 0) {
        return parts;
    }
    let (start, end) = (window.0.min(window.1), window.1);
    let mut hosts: Vec<(&str, u64)> = Vec::new();
    fn add<'a>(hosts: &mut Vec<(&'a str, u64)>, host: &'a str, w: u64) {
        if w == 0 || host.is_empty() {
            return;
        }
        match hosts.iter_mut().find(|(h, _)| *h == host) {
            Some(e) => e.1 += w,
            None => hosts.push((host, w)),
        }
    }
    let length = (end - start) as u64;
    if length == 0 {
        // No duration to share: the host active at that instant takes it all.
        if let Some(s) = spans
            .iter()
            .find(|s| s.start_ms <= end && end <= s.end_ms && !s.host.is_empty())
        {
            add(&mut hosts, &s.host, 1);
        }
    } else {
        for s in spans {
            let overlap = s.end_ms.min(end) - s.start_ms.max(start);
            if overlap > 0 {
                add(&mut hosts, &s.host, overlap as u64);
            }
        }
    }
    let covered: u64 = hosts.iter().map(|(_, w)| w).sum();
    let denominator = if length == 0 { 1 } else { length };
    // Spans of two browsers that share an application may overlap: then they share the
    // whole tick in proportion, and nothing is left uncovered.
    let uncovered = denominator.saturating_sub(covered);
    let mut weights: Vec<u64> = hosts.iter().map(|(_, w)| *w).collect();
    weights.push(uncovered);
    let ins = split_exact(rest.0, &weights);
    let outs = split_exact(rest.1, &weights);
    for (i, (host, _)) in hosts.iter().enumerate() {
        if ins[i] > 0 || outs[i] > 0 {
            parts.push(Part {
                host: host.to_string(),
                method: Method::ActiveTab,
                bytes_in: ins[i],
                bytes_out: outs[i],
            });
        }
    }
    let last = weights.len() - 1;
    if ins[last] > 0 || outs[last] > 0 {
        parts.push(Part {
            host: String::new(),
            method: Method::None,
            bytes_in: ins[last],
            bytes_out: outs[last],
        });
    }
    parts
}

/// Split `total` in proportion to `weights`, exactly (largest remainder; ties to the first).
/// All-zero weights give everything to the last one.
pub fn split_exact(total: u64, weights: &[u64]) -> Vec<u64> {
    let mut out = vec![0u64; weights.len()];
    let sum: u128 = weights.iter().map(|w| *w as u128).sum();
    if weights.is_empty() {
        return out;
    }
    if sum == 0 {
        let last = out.len() - 1;
        out[last] = total;
        return out;
    }
    let mut given: u64 = 0;
    let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let exact = total as u128 * *w as u128;
        out[i] = (exact / sum) as u64;
        given += out[i];
        remainders.push((exact % sum, i));
    }
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders.into_iter().take((total - given) as usize) {
        out[i] += 1;
    }
    out
}

/// The recorder's side: which applications are browsers, and their spans and observations.
#[derive(Debug, Default)]
pub struct HostSplitter {
    /// Canonical browser key → browser ids, refreshed every tick (the table is tiny).
    browsers: HashMap<String, Vec<i64>>,
}

impl HostSplitter {
    /// Split this tick's browser traffic across hosts. `window` is the wall-clock span the
    /// tick's deltas cover (previous tick, this tick), in epoch ms.
    pub fn split_tick(
        &mut self,
        conn: &Connection,
        traffic: &[ProcessTraffic],
        window: (i64, i64),
    ) -> rusqlite::Result<Vec<HostTraffic>> {
        if traffic.is_empty() {
            return Ok(Vec::new());
        }
        self.refresh(conn)?;
        if self.browsers.is_empty() {
            return Ok(Vec::new());
        }
        // Each browser application's processes, in first-seen order.
        let mut apps: Vec<(&App, Vec<i64>, Vec<&ProcessTraffic>)> = Vec::new();
        for t in traffic {
            if t.process.kind != AppKind::Application {
                continue;
            }
            if let Some(e) = apps.iter_mut().find(|(a, _, _)| **a == t.process.app) {
                e.2.push(t);
                continue;
            }
            if let Some(ids) = self.browsers.get(&names::canonical(&t.process.app.name)) {
                apps.push((&t.process.app, ids.clone(), vec![t]));
            }
        }
        let mut out = Vec::new();
        let mut hosts_of: HashMap<String, Option<String>> = HashMap::new();
        for (app, ids, procs) in apps {
            let mut total = (0u64, 0u64);
            let mut flows: Vec<(String, u64, u64)> = Vec::new();
            for p in &procs {
                total.0 += p.bytes_in;
                total.1 += p.bytes_out;
                for f in &p.flows {
                    flows.push((f.remote.host.clone(), f.bytes_in, f.bytes_out));
                }
            }
            for (addr, _, _) in &flows {
                if !hosts_of.contains_key(addr) {
                    let host = observed_host(conn, addr, window.1)?;
                    hosts_of.insert(addr.clone(), host);
                }
            }
            let matched: Vec<(Option<&str>, u64, u64)> = flows
                .iter()
                .map(|(addr, bin, bout)| {
                    (hosts_of.get(addr).and_then(|h| h.as_deref()), *bin, *bout)
                })
                .collect();
            let spans = spans(conn, &ids, window)?;
            for part in split(total, &matched, &spans, window) {
                out.push(HostTraffic {
                    app: app.clone(),
                    host: part.host,
                    method: part.method,
                    bytes_in: part.bytes_in,
                    bytes_out: part.bytes_out,
                });
            }
        }
        Ok(out)
    }

    fn refresh(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        self.browsers.clear();
        for (id, name) in web_store::browsers(conn)? {
            let key = names::canonical(&name);
            if !key.is_empty() {
                self.browsers.entry(key).or_default().push(id);
            }
        }
        Ok(())
    }
}

/// The host most recently observed served from `addr`, if any observation is fresh enough.
fn observed_host(conn: &Connection, addr: &str, now_ms: i64) -> rusqlite::Result<Option<String>> {
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return Ok(None);
    };
    let mut best: Option<(String, i64)> = None;
    for (host, last_at) in web_store::hosts_served_from(conn, ip)? {
        if last_at >= now_ms - OBSERVATION_TTL_MS && best.as_ref().is_none_or(|b| last_at > b.1) {
            best = Some((host, last_at));
        }
    }
    Ok(best.map(|b| b.0))
}

/// The browsers' active-tab spans near `window`, the newest one extended by the pulse.
fn spans(conn: &Connection, browsers: &[i64], window: (i64, i64)) -> rusqlite::Result<Vec<Span>> {
    let mut out = Vec::new();
    for &id in browsers {
        let newest = web_store::newest_activity(conn, id)?;
        for a in web_store::activity_near(conn, id, window.0 - PULSE_MS, window.1)? {
            let mut end_ms = a.end_ms;
            if newest == Some(a.id) && !a.host.is_empty() {
                end_ms = end_ms.max(window.1.min(end_ms.saturating_add(PULSE_MS)));
            }
            out.push(Span {
                host: a.host,
                start_ms: a.start_ms,
                end_ms,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(h: &str, s: i64, e: i64) -> Span {
        Span {
            host: h.into(),
            start_ms: s,
            end_ms: e,
        }
    }

    fn part(h: &str, m: Method, i: u64, o: u64) -> Part {
        Part {
            host: h.into(),
            method: m,
            bytes_in: i,
            bytes_out: o,
        }
    }

    #[test]
    fn matched_connections_go_to_their_host_and_the_rest_by_active_tab() {
        let parts = split(
            (1000, 100),
            &[
                (Some("a.com"), 600, 60),
                (Some("a.com"), 100, 10),
                (Some("b.com"), 200, 20),
                (None, 100, 10),
            ],
            &[span("c.com", 0, 5000)],
            (0, 5000),
        );
        assert_eq!(
            parts,
            vec![
                part("a.com", Method::Connection, 700, 70),
                part("b.com", Method::Connection, 200, 20),
                part("c.com", Method::ActiveTab, 100, 10),
            ]
        );
    }

    #[test]
    fn time_share_follows_the_tab_and_leaves_idle_time_unattributed() {
        // a.com for 2 s, b.com for 1 s, nothing for 2 s of a 5 s tick.
        let parts = split(
            (1001, 10),
            &[],
            &[
                span("a.com", -3000, 2000),
                span("b.com", 2000, 3000),
                span("", 3000, 9000),
            ],
            (0, 5000),
        );
        assert_eq!(
            parts,
            vec![
                part("a.com", Method::ActiveTab, 401, 4),
                part("b.com", Method::ActiveTab, 200, 2),
                part("", Method::None, 400, 4),
            ]
        );
        let sum_in: u64 = parts.iter().map(|p| p.bytes_in).sum();
        assert_eq!(sum_in, 1001, "every byte is placed exactly once");
    }

    #[test]
    fn a_zero_length_tick_goes_to_the_host_active_at_that_instant() {
        let parts = split((10, 1), &[], &[span("a.com", 0, 100)], (50, 50));
        assert_eq!(parts, vec![part("a.com", Method::ActiveTab, 10, 1)]);
        let parts = split((10, 1), &[], &[], (50, 50));
        assert_eq!(parts, vec![part("", Method::None, 10, 1)]);
    }

    #[test]
    fn overlapping_spans_share_the_tick_in_proportion() {
        let parts = split(
            (90, 0),
            &[],
            &[span("a.com", 0, 100), span("b.com", 0, 50)],
            (0, 100),
        );
        assert_eq!(
            parts,
            vec![
                part("a.com", Method::ActiveTab, 60, 0),
                part("b.com", Method::ActiveTab, 30, 0),
            ]
        );
    }

    #[test]
    fn exact_split_never_loses_or_invents_a_byte() {
        assert_eq!(split_exact(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(split_exact(0, &[1, 2]), vec![0, 0]);
        assert_eq!(split_exact(7, &[0, 0]), vec![0, 7]);
        assert_eq!(
            split_exact(u64::MAX, &[u64::MAX, 1]).iter().sum::<u64>(),
            u64::MAX
        );
    }

    mod with_a_database {
        use super::super::*;
        use crate::procinfo::App;
        use crate::store::open_in_memory;
        use crate::store::web::{self as ingest, Heartbeat, Observation};
        use crate::tick::{AppKind, Flow, ProcessRecord, ProcessTraffic, RemoteRecord};

        const T: i64 = 1_763_942_400_000;

        fn firefox(flows: &[(&str, u64)], extra: u64) -> Vec<ProcessTraffic> {
            let total: u64 = flows.iter().map(|f| f.1).sum::<u64>() + extra;
            vec![ProcessTraffic {
                interfaces: Vec::new(),
                networks: Vec::new(),
                process: ProcessRecord {
                    pid: Some(7),
                    name: "firefox-esr".into(),
                    start_time: None,
                    exe: None,
                    uid: None,
                    app: App {
                        name: "firefox-esr".into(),
                        path: None,
                    },
                    kind: AppKind::Application,
                    container: None,
                },
                bytes_in: total,
                bytes_out: 0,
                flows: flows
                    .iter()
                    .map(|(ip, n)| Flow {
                        remote: RemoteRecord {
                            proto: "tcp",
                            host: (*ip).into(),
                            port: 443,
                        },
                        bytes_in: *n,
                        bytes_out: 0,
                    })
                    .collect(),
            }]
        }

        fn beat(host: Option<&str>, at: i64, dur: i64) -> Heartbeat {
            Heartbeat {
                browser: "Firefox".into(),
                host: host.map(String::from),
                time_ms: at,
                duration_ms: dur,
                private: false,
            }
        }

        fn parts(v: &[HostTraffic]) -> Vec<(String, Method, u64)> {
            v.iter()
                .map(|h| (h.host.clone(), h.method, h.bytes_in))
                .collect()
        }

        #[test]
        fn nothing_is_split_until_a_browser_has_reported() {
            let c = open_in_memory().expect("db");
            let mut a = HostSplitter::default();
            let out = a
                .split_tick(&c, &firefox(&[("192.0.2.1", 10)], 0), (T, T + 5000))
                .expect("split");
            assert!(out.is_empty());
        }

        #[test]
        fn observations_expire_and_the_newest_host_of_an_address_wins() {
            let mut c = open_in_memory().expect("db");
            let obs = |host: &str, at: i64| Observation {
                browser: "Firefox".into(),
                host: host.into(),
                ip: "192.0.2.1".parse().expect("ip"),
                time_ms: at,
            };
            let now = T + 2 * OBSERVATION_TTL_MS;
            ingest::record_observations(
                &mut c,
                &[
                    obs("old.example", T),
                    obs("a.example", now - 1000),
                    obs("b.example", now - 500),
                ],
                now,
            )
            .expect("obs");
            let mut a = HostSplitter::default();
            let out = a
                .split_tick(
                    &c,
                    &firefox(&[("192.0.2.1", 10), ("::ffff:192.0.2.1", 5)], 0),
                    (now - 5000, now),
                )
                .expect("split");
            assert_eq!(
                parts(&out),
                vec![("b.example".into(), Method::Connection, 15)]
            );
            // Once every report is older than the TTL, the address matches nothing.
            let later = now + OBSERVATION_TTL_MS + 1000;
            let out = a
                .split_tick(&c, &firefox(&[("192.0.2.1", 10)], 0), (later - 5000, later))
                .expect("split");
            assert_eq!(parts(&out), vec![("".into(), Method::None, 10)]);
        }

        #[test]
        fn the_newest_stay_runs_on_for_the_pulse_but_a_closed_one_does_not() {
            let mut c = open_in_memory().expect("db");
            // Last heartbeat 30 s before the tick: the stay is taken to go on.
            ingest::record_heartbeats(&mut c, &[beat(Some("a.example"), T, 10_000)], T)
                .expect("hb");
            let mut a = HostSplitter::default();
            let tick = (T + 35_000, T + 40_000);
            let out = a.split_tick(&c, &firefox(&[], 100), tick).expect("split");
            assert_eq!(
                parts(&out),
                vec![("a.example".into(), Method::ActiveTab, 100)]
            );
            // Past the pulse, it is not.
            let late = (T + 75_000, T + 80_000);
            let out = a.split_tick(&c, &firefox(&[], 100), late).expect("split");
            assert_eq!(parts(&out), vec![("".into(), Method::None, 100)]);
            // A null heartbeat ends it where it was seen.
            ingest::record_heartbeats(&mut c, &[beat(None, T + 20_000, 0)], T).expect("hb");
            let out = a.split_tick(&c, &firefox(&[], 100), tick).expect("split");
            assert_eq!(parts(&out), vec![("".into(), Method::None, 100)]);
            let half = (T + 15_000, T + 25_000);
            let out = a.split_tick(&c, &firefox(&[], 100), half).expect("split");
            assert_eq!(
                parts(&out),
                vec![
                    ("a.example".into(), Method::ActiveTab, 50),
                    ("".into(), Method::None, 50)
                ]
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn splits_always_add_up(
            total_in in 0u64..1_000_000_000,
            total_out in 0u64..1_000_000,
            flows in proptest::collection::vec((proptest::option::of(0usize..3), 0u64..1000, 0u64..1000), 0..6),
            spans in proptest::collection::vec((0usize..4, -5000i64..10000, 0i64..6000), 0..6),
            window in (0i64..5000, 0i64..6000),
        ) {
            let hosts = ["a.com", "b.com", "c.com", ""];
            let flows: Vec<(Option<&str>, u64, u64)> =
                flows.iter().map(|(h, i, o)| (h.map(|h| hosts[h]), *i, *o)).collect();
            let conn: (u64, u64) = flows.iter().fold((0, 0), |a, f| (a.0 + f.1, a.1 + f.2));
            let total = (total_in + conn.0, total_out + conn.1);
            let spans: Vec<Span> =
                spans.iter().map(|(h, s, l)| span(hosts[*h], *s, s + l)).collect();
            let parts = split(total, &flows, &spans, (window.0, window.0 + window.1));
            let sum = parts.iter().fold((0, 0), |a, p| (a.0 + p.bytes_in, a.1 + p.bytes_out));
            proptest::prop_assert_eq!(sum, total);
        }
    }
}
