//! `/metrics` scraped by the real engine (issue 18): Debian's `prometheus`, started on free
//! loopback ports with the configurations the README shows (read from the README itself, with
//! only ports, paths and the interval changed), answers PromQL over its HTTP API with the same
//! per-application totals as `netmon apps --json`, and `increase()` over a window equal to
//! `netmon apps --from … --until …` for that window within one scrape interval's traffic: once
//! scraping `netmon serve` directly, once in the fleet shape (an agent scraping netmon and
//! remote-writing to a central Prometheus with its receiver enabled).

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::metrics::{APPS, apps_all_time, apps_json, metrics_token, record_ticks, traffic_steps};
use crate::networks;
use crate::util::{Env, Serve, parse_reply, wait_until};

const PROMETHEUS: &str = "/usr/bin/prometheus";
/// The scrape interval the tests use instead of the README's 15 s.
const SCRAPE: Duration = Duration::from_secs(1);
/// The window of the `increase()` check.
const WINDOW_S: i64 = 10;

/// A Prometheus process on a loopback port, killed when dropped.
struct Prom {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Drop for Prom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prom {
    /// Start `prometheus ARGS --web.listen-address=127.0.0.1:PORT` in `dir` and wait until it
    /// says it is ready. Prometheus cannot be given port 0 and tell which port it got, so a
    /// port is picked free (bound and released) and, should another process take it first,
    /// picked again, at most five times.
    fn start(dir: &Path, name: &str, args: &[String]) -> Prom {
        assert!(
            Path::new(PROMETHEUS).exists(),
            "{PROMETHEUS} is missing: the /metrics tests need Debian's prometheus package; \
             run `bash tests/install-deps.sh`"
        );
        let mut last_log = String::new();
        for attempt in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
            let log = dir.join(format!("{name}-{attempt}.log"));
            let child = Command::new(PROMETHEUS)
                .args(args)
                .arg(format!("--web.listen-address={addr}"))
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(File::create(&log).expect("log"))
                .stderr(File::create(&log).expect("log"))
                .spawn()
                .expect("start prometheus");
            let mut prom = Prom { child, addr, log };
            let ready = wait_until(Duration::from_secs(60), || {
                prom.child.try_wait().ok().flatten().is_some()
                    || get(addr, "/-/ready").is_some_and(|(status, _)| status == 200)
            });
            if ready && prom.child.try_wait().ok().flatten().is_none() {
                return prom;
            }
            last_log = std::fs::read_to_string(&prom.log).unwrap_or_default();
            let _ = prom.child.kill();
            if !last_log.contains("address already in use") {
                break;
            }
        }
        panic!("{name} did not start: {last_log}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An instant query at `time` (Unix seconds); the result vector.
    fn query(&self, promql: &str, time: f64) -> Vec<Value> {
        let path = format!("/api/v1/query?query={}&time={time:.3}", encode(promql));
        let (status, body) = get(self.addr, &path)
            .unwrap_or_else(|| panic!("no answer to {promql}: {}", self.log()));
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(status, 200, "{promql}: {body}");
        assert_eq!(v["status"], "success", "{promql}: {body}");
        v["data"]["result"].as_array().expect("vector").clone()
    }
}

/// One HTTP/1.0 GET (so the answer is not chunked); `None` when nobody answers.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let r = parse_reply(&out);
    Some((r.status, r.body))
}

/// Percent-encode a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// The fenced block after `<!-- metrics:NAME -->` in the README.
fn readme_block(name: &str) -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let marker = format!("<!-- metrics:{name} -->");
    let after = readme
        .split_once(&marker)
        .unwrap_or_else(|| panic!("README has no {marker}"))
        .1;
    let body = after
        .split_once("```yaml\n")
        .expect("a yaml block")
        .1
        .split_once("```")
        .expect("its end")
        .0;
    body.to_string()
}

/// The README's configuration with this test's port, token file and interval: every
/// replacement must find its text, so the README cannot drift from what is tested.
fn configure(block: &str, replacements: &[(&str, String)]) -> String {
    let mut s = block.to_string();
    for (from, to) in replacements {
        assert!(s.contains(from), "the README's configuration lost {from:?}");
        s = s.replace(from, to);
    }
    s
}

/// `sum by (app, direction)` of a query's vector: app → (in, out).
fn by_app(result: &[Value]) -> BTreeMap<String, (f64, f64)> {
    let mut m: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for r in result {
        let app = r["metric"]["app"].as_str().expect("app").to_string();
        let v: f64 = r["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .expect("value");
        let e = m.entry(app).or_default();
        match r["metric"]["direction"].as_str() {
            Some("in") => e.0 += v,
            Some("out") => e.1 += v,
            d => panic!("direction {d:?}"),
        }
    }
    m
}

fn now_s() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

/// Everything both shapes share: a database with scripted traffic, `netmon serve`, and the
/// token file the scrape configuration points at.
struct World {
    env: Env,
    serve: Serve,
    token_file: PathBuf,
}

fn world() -> World {
    let env = Env::new();
    // Enough steps for the recorder of the moving phase to keep counting for a minute.
    traffic_steps(&env, 400);
    // eth0 behind router A carries 1000/100 a tick over the first six (the first reading is
    // its baseline), then nothing more: its series is exact whenever it is asked.
    for n in 1..=6u64 {
        networks::interfaces(
            &env,
            n as usize,
            &[("lo", 1, 0, 0), ("eth0", 2, 1000 * n, 100 * n)],
            networks::GW_A,
        );
    }
    let serve = Serve::start(&env, &["--metrics-min-bytes", "0"]);
    record_ticks(&env, 6);
    let token_file = env.dir.path().join("netmon.token");
    std::fs::write(&token_file, metrics_token(&env)).expect("token file");
    World {
        env,
        serve,
        token_file,
    }
}

/// The two checks, asked of `prom` (the one scraping, or the central one): totals equal
/// `netmon apps --json` while nothing records; then, with a recorder running,
/// `increase()` over a window equals `netmon apps` over that window within one scrape
/// interval's traffic. `selector` picks this machine's series.
fn check(w: &World, prom: &Prom, selector: &str) {
    // Still: the stored history does not change, so the answers must be equal.
    let totals = format!("netmon_app_bytes_total{selector}");
    let expected = apps_all_time(&w.env);
    assert_eq!(expected.len(), APPS.len(), "{expected:?}");
    let mut got = BTreeMap::new();
    let arrived = wait_until(Duration::from_secs(60), || {
        got = by_app(&prom.query(&totals, now_s()));
        expected
            .iter()
            .all(|(app, (i, o))| got.get(app) == Some(&(*i as f64, *o as f64)))
    });
    assert!(
        arrived,
        "PromQL {totals} gave {got:?}, netmon apps --json {expected:?}: {}",
        prom.log()
    );
    assert_eq!(
        got.get("(other)"),
        Some(&(0.0, 0.0)),
        "nothing is in (other)"
    );
    // One network series (issue 15), as `netmon networks --json` lists the pair.
    let listed = networks::by_network(&w.env, &["--since", "1h"]);
    let want = listed
        .get(&("gw:aa:bb:cc:dd:ee:01".to_string(), "eth0".to_string()))
        .copied();
    assert_eq!(want, Some((5000, 500)), "{listed:?}");
    let inner = selector.trim_start_matches('{').trim_end_matches('}');
    let eth0 = format!(
        "sum by (direction) (netmon_network_bytes_total{{{inner},network=\"gw:aa:bb:cc:dd:ee:01\",\
         interface=\"eth0\",kind=\"ethernet\"}})"
    );
    let mut net = (0.0, 0.0);
    let arrived = wait_until(Duration::from_secs(60), || {
        for r in prom.query(&eth0, now_s()) {
            let v: f64 = r["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(-1.0);
            match r["metric"]["direction"].as_str() {
                Some("in") => net.0 = v,
                Some("out") => net.1 = v,
                _ => {}
            }
        }
        net == (5000.0, 500.0)
    });
    assert!(arrived, "PromQL {eth0} gave {net:?}: {}", prom.log());

    // Moving: a recorder ticking every 200 ms; Prometheus scrapes every second.
    let recorder = w
        .env
        .spawn_record(&["--source", "nettop", "--interval", "200ms"]);
    let started = now_s();
    let window = WINDOW_S as f64;
    // The window's end: a moment well after the recorder started and before now.
    let end = started + window + 3.0;
    let increase = format!(
        "sum by (app, direction) (increase(netmon_app_bytes_total{selector}[{WINDOW_S}s]))"
    );
    // Wait until Prometheus (or the central one, behind the agent's remote write) holds
    // samples past the window's end.
    let newest = format!("max(timestamp(netmon_bytes_total{selector}))");
    let seen = wait_until(Duration::from_secs(90), || {
        now_s() > end + 1.0
            && prom.query(&newest, now_s()).first().is_some_and(|r| {
                r["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok())
                    .is_some_and(|t| t >= end + SCRAPE.as_secs_f64())
            })
    });
    let (code, stderr) = stop_recorder(recorder);
    assert!(seen, "no samples after the window arrived: {}", prom.log());
    assert_eq!(code, Some(0), "{stderr}");
    let prom_window = by_app(&prom.query(&increase, end));
    let fmt = |t: f64| {
        chrono::DateTime::from_timestamp_millis((t * 1000.0) as i64)
            .expect("time")
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let netmon_window = apps_json(
        &w.env,
        &["--from", &fmt(end - window), "--until", &fmt(end)],
    );
    for (name, _, bin, bout) in APPS {
        let (i, o) = netmon_window
            .get(*name)
            .copied()
            .unwrap_or_else(|| panic!("{name} has no traffic in the window: {netmon_window:?}"));
        assert!(i > 0, "{name}: the recorder counted in the window");
        // One scrape interval's traffic, at the rate the window saw (and never under one
        // tick's bytes, for the slowest application).
        let tol = |bytes: u64, per_tick: u64| {
            (bytes as f64 * SCRAPE.as_secs_f64() / window).max(per_tick as f64)
        };
        let (pi, po) = prom_window.get(*name).copied().unwrap_or_default();
        eprintln!("{name}: increase() ({pi:.0}, {po:.0}), netmon apps ({i}, {o})");
        assert!(
            (pi - i as f64).abs() <= tol(i, *bin) && (po - o as f64).abs() <= tol(o, *bout),
            "{name}: increase() over [{}, {}) = ({pi}, {po}), netmon apps = ({i}, {o})",
            fmt(end - window),
            fmt(end)
        );
    }
}

fn stop_recorder(child: Child) -> (Option<i32>, String) {
    crate::util::signal(&child, libc::SIGTERM);
    crate::util::finish(child, Duration::from_secs(30))
}

/// The README's PromQL runs and answers per machine and program.
fn readme_queries(prom: &Prom, instance: &str) {
    let top = prom.query(
        "topk(10, sum by (instance, app) (increase(netmon_app_bytes_total[30d])))",
        now_s(),
    );
    assert!(
        top.iter()
            .any(|r| r["metric"]["instance"] == instance && r["metric"]["app"] == "firefox"),
        "{top:?}"
    );
    let hotspot = prom.query(
        &format!(
            "sort_desc(sum by (instance) (increase(netmon_bytes_total[2m] @ {:.0})))",
            now_s()
        ),
        now_s(),
    );
    assert_eq!(hotspot.len(), 1, "{hotspot:?}");
    assert_eq!(hotspot[0]["metric"]["instance"], instance);
    // Per network, named through the info series (issue 15): the world's eth0 behind router A.
    let named = prom.query(
        "sum by (instance, network, name) (increase(netmon_network_bytes_total[30d])\n  \
         * on (instance, network) group_left (name) netmon_network_info)",
        now_s(),
    );
    assert!(
        named.iter().any(|r| r["metric"]["instance"] == instance
            && r["metric"]["network"] == "gw:aa:bb:cc:dd:ee:01"
            && r["metric"]["name"] == "ethernet via gateway aa:bb:cc:dd:ee:01"),
        "{named:?}"
    );
    // The explained share and the caps past 80% are valid PromQL (no cap is set here).
    let share = prom.query(
        "sum by (instance) (increase(netmon_bytes_total[1d]))\n  \
         / sum by (instance) (increase(netmon_network_bytes_total{kind!~\"loopback|vpn|bridge\"}[1d]))",
        now_s(),
    );
    assert_eq!(share.len(), 1, "{share:?}");
    assert!(
        prom.query(
            "netmon_network_cap_used_bytes / netmon_network_cap_bytes > 0.8",
            now_s()
        )
        .is_empty()
    );
    // The recorder has stopped: the next scrapes say so.
    let mut stopped = Vec::new();
    let said = wait_until(Duration::from_secs(30), || {
        stopped = prom.query("netmon_recorder_state{state=\"running\"} == 0", now_s());
        stopped.len() == 1
    });
    assert!(said, "the stopped recorder was not reported: {stopped:?}");
}

#[test]
fn prometheus_scraping_serve_answers_what_netmon_apps_answers() {
    let w = world();
    let dir = w.env.dir.path().join("prometheus");
    std::fs::create_dir_all(&dir).expect("dir");
    let config = configure(
        &readme_block("scrape-config"),
        &[
            ("scrape_interval: 15s", "scrape_interval: 1s".into()),
            (
                "/etc/prometheus/netmon.token",
                w.token_file.display().to_string(),
            ),
            ("127.0.0.1:7500", w.serve.addr.to_string()),
        ],
    );
    std::fs::write(dir.join("prometheus.yml"), config).expect("config");
    let prom = Prom::start(
        &dir,
        "prometheus",
        &[
            "--config.file=prometheus.yml".into(),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
        ],
    );
    let up = format!("up{{instance=\"{}\"}}", w.serve.addr);
    assert!(
        wait_until(Duration::from_secs(60), || {
            prom.query(&up, now_s())
                .first()
                .is_some_and(|r| r["value"][1] == "1")
        }),
        "Prometheus never scraped netmon serve: {}",
        prom.log()
    );
    check(&w, &prom, "{job=\"netmon\"}");
    readme_queries(&prom, &w.serve.addr.to_string());
}

#[test]
fn an_agent_remote_writing_to_a_central_prometheus_answers_the_same() {
    let w = world();
    let central_dir = w.env.dir.path().join("central");
    let agent_dir = w.env.dir.path().join("agent");
    for d in [&central_dir, &agent_dir] {
        std::fs::create_dir_all(d).expect("dir");
    }
    std::fs::write(central_dir.join("prometheus.yml"), "global: {}\n").expect("config");
    let central = Prom::start(
        &central_dir,
        "central",
        &[
            "--web.enable-remote-write-receiver".into(),
            "--config.file=prometheus.yml".into(),
            format!("--storage.tsdb.path={}", central_dir.join("data").display()),
        ],
    );
    let config = configure(
        &readme_block("agent-config"),
        &[
            ("scrape_interval: 15s", "scrape_interval: 1s".into()),
            (
                "/etc/prometheus/netmon.token",
                w.token_file.display().to_string(),
            ),
            ("127.0.0.1:7500", w.serve.addr.to_string()),
            (
                "http://prometheus.home.arpa:9090/api/v1/write",
                format!("http://{}/api/v1/write", central.addr),
            ),
        ],
    );
    std::fs::write(agent_dir.join("netmon-agent.yml"), config).expect("config");
    let agent = Prom::start(
        &agent_dir,
        "agent",
        &[
            "--enable-feature=agent".into(),
            "--config.file=netmon-agent.yml".into(),
            format!("--storage.agent.path={}", agent_dir.join("wal").display()),
        ],
    );
    let selector = "{instance=\"anna-laptop\"}";
    let started = Instant::now();
    check(&w, &central, selector);
    // An agent keeps no queryable database: the answers came from the central one.
    let (status, _) = get(agent.addr, "/api/v1/query?query=up").expect("agent answers");
    assert_ne!(status, 200, "the agent answered a query: {}", agent.log());
    readme_queries(&central, "anna-laptop");
    eprintln!("fleet checks took {:?}", started.elapsed());
}
