//! The recorder's alerts: data caps crossing 80% and 100% (once per threshold and period, kept
//! in `cap_alerts` so a restart does not repeat them), and one application above
//! `--alert-rate` for a sustained minute (then quiet for a cool-down). Each alert is a `warn`
//! log line, always, and a desktop notification through the ordinary tool: `notify-send` on
//! Linux, `osascript` on macOS (a missing tool is logged once, not an error).
//!
//! Cap usage is a running total in memory: the caps and each period's usage so far are read
//! from the database when the recorder starts, once a minute (caps set or changed meanwhile
//! with `netmon networks cap`) and when a period ends; every tick only adds its bytes.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Local;
use rusqlite::Connection;
use tracing::{debug, error, warn};

use crate::calendar::{Period, period_bounds};
use crate::source::interfaces::Kind;
use crate::store::networks::{self as net_store, Cap};
use crate::text::units;
use crate::tick::{NetTraffic, ProcessTraffic};

/// Thresholds announced, in percent of a cap.
pub const THRESHOLDS: [u32; 2] = [80, 100];
/// How often the caps are read again.
const RELOAD_EVERY: Duration = Duration::from_secs(60);
/// How long an application must stay above the rate limit.
pub const SUSTAINED_MS: i64 = 60_000;
/// After a rate alert, the same application is not announced again for this long.
pub const COOL_DOWN_MS: i64 = 15 * 60_000;

/// One cap and its running usage in the current period.
#[derive(Debug, Clone)]
struct Tracked {
    cap: Cap,
    network_id: Option<i64>,
    /// The current period, epoch ms.
    start_ms: i64,
    end_ms: i64,
    used: u64,
    announced: Vec<u32>,
}

/// Thresholds crossed when usage goes to `used` on a cap of `cap` bytes, not yet `announced`.
pub fn crossed(used: u64, cap: u64, announced: &[u32]) -> Vec<u32> {
    THRESHOLDS
        .iter()
        .copied()
        .filter(|p| (used as u128) * 100 >= (*p as u128) * (cap as u128) && !announced.contains(p))
        .collect()
}

/// Applications above a rate for a sustained minute.
#[derive(Debug, Default)]
pub struct RateWatch {
    limit: u64,
    /// Since when (epoch ms) each application has been above the limit without a break.
    above_since: HashMap<String, i64>,
    last_alert: HashMap<String, i64>,
}

impl RateWatch {
    pub fn new(limit: u64) -> Self {
        RateWatch {
            limit,
            ..RateWatch::default()
        }
    }

    /// One tick covering `covers` and ending at `wall_ms`, with its bytes per application:
    /// the applications to announce now, with their rate (bytes/s).
    pub fn tick(
        &mut self,
        per_app: &HashMap<String, u64>,
        covers: Duration,
        wall_ms: i64,
    ) -> Vec<(String, u64)> {
        let secs = covers.as_secs_f64();
        let mut out = Vec::new();
        if secs <= 0.0 {
            return out;
        }
        let start = wall_ms - covers.as_millis() as i64;
        self.above_since
            .retain(|app, _| per_app.get(app).is_some_and(|b| *b as f64 / secs > 0.0));
        for (app, bytes) in per_app {
            let rate = (*bytes as f64 / secs) as u64;
            if rate <= self.limit {
                self.above_since.remove(app);
                continue;
            }
            let since = *self.above_since.entry(app.clone()).or_insert(start);
            let cooled = self
                .last_alert
                .get(app)
                .is_none_or(|t| wall_ms - t >= COOL_DOWN_MS);
            if wall_ms - since >= SUSTAINED_MS && cooled {
                self.last_alert.insert(app.clone(), wall_ms);
                out.push((app.clone(), rate));
            }
        }
        out
    }
}

/// Caps and the rate watch of one recorder.
#[derive(Debug, Default)]
pub struct Alerts {
    caps: Vec<Tracked>,
    loaded_at: Option<Instant>,
    rate: Option<RateWatch>,
    notifier_missing: bool,
    /// The interface deltas of ticks the database does not hold yet (the recorder writes in
    /// batches), with their times: a cap's usage read from the database adds them.
    unwritten: Vec<(i64, NetTraffic)>,
    /// Tests: keep the notifications here instead of spawning the tool.
    #[cfg(test)]
    sent: Option<Vec<String>>,
}

impl Alerts {
    pub fn new(alert_rate: Option<u64>) -> Self {
        Alerts {
            rate: alert_rate.map(RateWatch::new),
            ..Alerts::default()
        }
    }

    /// The ticks given so far are in the database now.
    pub fn written(&mut self) {
        self.unwritten.clear();
    }

    /// After a tick (written or not yet): add its bytes, announce what crossed.
    pub fn after_commit(
        &mut self,
        conn: &Connection,
        net: Option<&NetTraffic>,
        traffic: &[ProcessTraffic],
        covers: Duration,
        wall_ms: i64,
    ) {
        if let Some(net) = net {
            self.unwritten.push((wall_ms, net.clone()));
        }
        if self.loaded_at.is_none_or(|t| t.elapsed() >= RELOAD_EVERY) {
            if let Err(e) = self.reload(conn, net, wall_ms) {
                error!(error = %e, "reading the data caps failed; retried in a minute");
            }
            self.loaded_at = Some(Instant::now());
        } else if let Some(net) = net {
            for t in &mut self.caps {
                t.used += counted(net, t.cap.network_key.as_deref(), t.cap.scope == "*");
            }
        }
        let mut fire: Vec<(String, String)> = Vec::new();
        for i in 0..self.caps.len() {
            if wall_ms >= self.caps[i].end_ms {
                // A new period: its usage so far comes from the database.
                match self.track(
                    conn,
                    self.caps[i].cap.clone(),
                    self.caps[i].network_id,
                    wall_ms,
                ) {
                    Ok(t) => self.caps[i] = t,
                    Err(e) => error!(error = %e, "reading a cap's usage failed"),
                }
            }
            let t = &mut self.caps[i];
            for p in crossed(t.used, t.cap.bytes, &t.announced) {
                t.announced.push(p);
                if let Err(e) =
                    net_store::note_alert(conn, &t.cap.scope, t.start_ms / 1000, p, wall_ms)
                {
                    error!(error = %e, "could not note a cap alert; it may be repeated");
                }
                let who = t
                    .cap
                    .network_key
                    .clone()
                    .unwrap_or_else(|| "all networks".into());
                let msg = format!(
                    "{p}% of the data cap used on {who}: {} of {} this {} (until {})",
                    units::bytes(t.used),
                    units::bytes(t.cap.bytes),
                    t.cap.period,
                    crate::calendar::utc(t.end_ms)
                        .with_timezone(&Local)
                        .format("%Y-%m-%d %H:%M")
                );
                warn!(scope = %t.cap.scope, percent = p, used = t.used, cap = t.cap.bytes, "{msg}");
                fire.push(("netmon: data cap".to_string(), msg));
            }
        }
        if let Some(rate) = &mut self.rate {
            let mut per_app: HashMap<String, u64> = HashMap::new();
            for t in traffic {
                *per_app.entry(t.process.app.name.clone()).or_default() += t.bytes_in + t.bytes_out;
            }
            for (app, r) in rate.tick(&per_app, covers, wall_ms) {
                let msg = format!(
                    "{app} has used more than {}/s for a minute ({}/s now)",
                    units::bytes(rate.limit),
                    units::bytes(r)
                );
                warn!(app = %app, rate = r, limit = rate.limit, "{msg}");
                fire.push(("netmon: high rate".to_string(), msg));
            }
        }
        for (title, body) in fire {
            self.notify(&title, &body);
        }
    }

    /// Read the caps again; a cap unchanged in the same period keeps its running total (plus
    /// this tick's bytes), a new or changed one reads its period's usage (this tick included).
    fn reload(
        &mut self,
        conn: &Connection,
        net: Option<&NetTraffic>,
        wall_ms: i64,
    ) -> rusqlite::Result<()> {
        let mut next = Vec::new();
        for cap in net_store::caps(conn)? {
            let network_id = if cap.scope == "*" {
                None
            } else {
                match cap.scope.parse::<i64>() {
                    Ok(id) => Some(id),
                    Err(_) => continue,
                }
            };
            // The same cap in the same period keeps its running total.
            let same = self
                .caps
                .iter()
                .find(|t| t.cap == cap && wall_ms >= t.start_ms && wall_ms < t.end_ms);
            next.push(match same {
                Some(t) => {
                    let mut t = t.clone();
                    if let Some(net) = net {
                        t.used += counted(net, t.cap.network_key.as_deref(), t.cap.scope == "*");
                    }
                    t
                }
                None => self.track(conn, cap, network_id, wall_ms)?,
            });
        }
        self.caps = next;
        Ok(())
    }

    /// A cap's period at `wall_ms`, and its usage and announcements so far (this tick
    /// included: it is committed).
    fn track(
        &self,
        conn: &Connection,
        cap: Cap,
        network_id: Option<i64>,
        wall_ms: i64,
    ) -> rusqlite::Result<Tracked> {
        let period = Period::parse(&cap.period).unwrap_or(Period::Month);
        let (start_ms, end_ms) = period_bounds(&Local, period, cap.resets_on, wall_ms);
        // What the database holds, plus the ticks it does not hold yet (this one included).
        let unwritten: u64 = self
            .unwritten
            .iter()
            .filter(|(at, _)| *at >= start_ms)
            .map(|(_, n)| counted(n, cap.network_key.as_deref(), cap.scope == "*"))
            .sum();
        Ok(Tracked {
            used: net_store::carried_since(conn, network_id, start_ms / 1000)? + unwritten,
            announced: net_store::alerted(conn, &cap.scope, start_ms / 1000)?,
            cap,
            network_id,
            start_ms,
            end_ms,
        })
    }

    fn notify(&mut self, title: &str, body: &str) {
        #[cfg(test)]
        if let Some(sent) = &mut self.sent {
            sent.push(format!("{title}: {body}"));
            return;
        }
        let mut cmd = if cfg!(target_os = "macos") {
            let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
            let mut c = Command::new("osascript");
            c.arg("-e").arg(format!(
                "display notification \"{}\" with title \"{}\"",
                quote(body),
                quote(title)
            ));
            c
        } else {
            let mut c = Command::new("notify-send");
            c.args(["--app-name=netmon", title, body]);
            c
        };
        match cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(mut child) => {
                // Reaped off the loop, and killed if the notification service hangs.
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        if !matches!(child.try_wait(), Ok(None)) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                });
            }
            Err(e) => {
                if !self.notifier_missing {
                    debug!(error = %e, "no desktop notification tool; alerts are log lines only");
                }
                self.notifier_missing = true;
            }
        }
    }
}

/// Bytes this tick's counted interfaces carried on the network `key` (or on all).
fn counted(net: &NetTraffic, key: Option<&str>, all: bool) -> u64 {
    net.interfaces
        .iter()
        .filter(|i| Kind::parse(i.kind).carries_off_machine())
        .filter(|i| all || i.network.as_ref().map(|n| n.key.as_str()) == key)
        .map(|i| i.bytes_in + i.bytes_out)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::StateChanges;
    use crate::store::write::{RunInfo, Tick, Writer};
    use crate::tick::{InterfaceTraffic, Network};

    fn net(bytes: u64) -> NetTraffic {
        let home = Network {
            key: "gw:aa:bb:cc:dd:ee:01".into(),
            label: "home".into(),
        };
        NetTraffic {
            interfaces: vec![
                InterfaceTraffic {
                    interface: "eth0".into(),
                    kind: "ethernet",
                    network: Some(home.clone()),
                    bytes_in: bytes,
                    bytes_out: 0,
                },
                // Loopback is not network use: never counted against a cap.
                InterfaceTraffic {
                    interface: "lo".into(),
                    kind: "loopback",
                    network: None,
                    bytes_in: 1_000_000,
                    bytes_out: 1_000_000,
                },
            ],
            app_network: Some(home),
        }
    }

    /// A day's noon in the local zone the recorder uses (TZ is whatever the test runs under).
    fn noon(day: u32) -> i64 {
        use chrono::TimeZone;
        Local
            .with_ymd_and_hms(2026, 3, day, 12, 0, 0)
            .earliest()
            .expect("a local noon")
            .timestamp_millis()
    }

    #[test]
    fn a_cap_crossing_is_announced_once_per_threshold_and_again_next_period() {
        let mut w = Writer::new(crate::store::open_in_memory().expect("db"));
        let run = w
            .begin_run(&RunInfo::new("test", noon(1), 5000))
            .expect("run");
        net_store::set_cap(w.conn(), "*", 1000, "day", 1).expect("cap");
        let mut alerts = Alerts::new(None);
        alerts.sent = Some(Vec::new());
        let state = StateChanges::default();
        let tick = |w: &mut Writer, alerts: &mut Alerts, at: i64, bytes: u64| {
            let n = net(bytes);
            // As the recorder does: the tick is announced as it is taken, then written.
            alerts.after_commit(w.conn(), Some(&n), &[], Duration::from_secs(5), at);
            w.commit_tick(&Tick {
                run_id: run,
                at_ms: at,
                elapsed_ms: 5000,
                day: crate::record::clock::local_day_start(crate::calendar::utc(at)),
                traffic: &[],
                web: &[],
                state: &state,
                net: Some(&n),
            })
            .expect("commit");
            alerts.written();
        };
        for (i, bytes) in [500, 350, 100, 100, 100, 500].into_iter().enumerate() {
            tick(&mut w, &mut alerts, noon(1) + i as i64 * 5000, bytes);
        }
        // A reload of unchanged caps keeps counting: the running total equals the database's.
        alerts.loaded_at = None;
        tick(&mut w, &mut alerts, noon(1) + 40_000, 7);
        let used = net_store::carried_since(
            w.conn(),
            None,
            crate::record::clock::local_day_start(crate::calendar::utc(noon(1))),
        )
        .expect("carried");
        assert_eq!(alerts.caps[0].used, used);
        assert_eq!(used, 1657);
        let sent = alerts.sent.clone().unwrap_or_default();
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(
            sent[0].contains("80% of the data cap used on all networks: 850 B of 1.00 kB"),
            "{sent:?}"
        );
        assert!(sent[1].contains("100% of the data cap"), "{sent:?}");
        // A restarted recorder knows what was announced this period.
        let mut fresh = Alerts::new(None);
        fresh.sent = Some(Vec::new());
        tick(&mut w, &mut fresh, noon(1) + 60_000, 100);
        assert_eq!(fresh.sent.clone().unwrap_or_default(), Vec::<String>::new());
        // The next day is a new period: announced again.
        tick(&mut w, &mut fresh, noon(2), 1100);
        let again = fresh.sent.clone().unwrap_or_default();
        assert_eq!(again.len(), 2, "{again:?}");
    }

    #[test]
    fn each_threshold_is_crossed_once() {
        assert_eq!(crossed(79, 100, &[]), Vec::<u32>::new());
        assert_eq!(crossed(80, 100, &[]), vec![80]);
        assert_eq!(crossed(120, 100, &[80]), vec![100]);
        assert_eq!(crossed(120, 100, &[80, 100]), Vec::<u32>::new());
        assert_eq!(crossed(u64::MAX, u64::MAX, &[]), vec![80, 100]);
    }

    #[test]
    fn a_rate_alert_needs_a_sustained_minute_and_then_cools_down() {
        let mut w = RateWatch::new(1_000);
        let tick = Duration::from_secs(10);
        let fast: HashMap<String, u64> = [("curl".to_string(), 20_000u64)].into();
        let slow: HashMap<String, u64> = [("curl".to_string(), 100u64)].into();
        let mut t = 0;
        let mut fired = Vec::new();
        for _ in 0..5 {
            t += 10_000;
            fired.extend(w.tick(&fast, tick, t));
        }
        assert!(fired.is_empty(), "50 s is not a minute");
        // A dip resets the minute.
        t += 10_000;
        assert!(w.tick(&slow, tick, t).is_empty());
        for _ in 0..6 {
            t += 10_000;
            fired.extend(w.tick(&fast, tick, t));
        }
        assert_eq!(fired, vec![("curl".to_string(), 2_000)]);
        // Still fast: quiet for the cool-down, then again.
        let mut again = Vec::new();
        for _ in 0..(COOL_DOWN_MS / 10_000) {
            t += 10_000;
            again.extend(w.tick(&fast, tick, t));
        }
        assert_eq!(again.len(), 1);
    }
}
