//! `GET /metrics` on `netmon serve` over loopback: its token and refusals, both exposition
//! formats (the text one linted by Debian's `promtool`), counters equal to `netmon apps
//! --json` and `netmon domains --json`, and the bounded set of applications with their own
//! series, across restarts of `serve` (issue 18).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::networks;
use crate::util::{Env, Serve, finish, http, http_raw, record_nettop, serve_token};

const H: &str = ",interface,state,bytes_in,bytes_out,\n";

/// Applications of the scripted traffic: name, pid, bytes in and out per tick.
pub const APPS: &[(&str, u32, u64, u64)] = &[
    ("firefox", 5_000_010, 5_000, 500),
    ("curl", 5_000_011, 1_000, 10),
    ("ssh", 5_000_012, 300, 300),
];

/// Write fake nettop steps 1..=n: tick k has every application at k times its per-tick bytes
/// (so each tick after the first adds exactly its per-tick bytes). Firefox talks to
/// 198.51.100.10, which the tests report serving www.news.example.
pub fn traffic_steps(env: &Env, n: u64) {
    for k in 1..=n {
        let mut s = String::from(H);
        for (name, pid, bin, bout) in APPS {
            let (i, o) = (k * bin, k * bout);
            s.push_str(&format!(
                "{name}.{pid},,,{i},{o},\ntcp4 192.0.2.1:{}<->198.51.100.10:443,en0,Established,{i},{o},\n",
                40_000 + pid % 1000
            ));
        }
        env.step(k as usize, "csv", &s);
    }
}

/// Tell `serve` that 198.51.100.10 serves www.news.example for Firefox.
pub fn observe(serve: &Serve, env: &Env) {
    let t = (chrono::Utc::now() - chrono::Duration::seconds(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let body = format!(
        r#"{{"observations": [{{"browser": "Firefox", "host": "www.news.example", "ip": "198.51.100.10", "time": "{t}"}}]}}"#
    );
    let r = http(
        serve.addr,
        "POST",
        "/v1/observations",
        Some(&serve_token(env)),
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Run `netmon record` (fake nettop) for `ticks` ticks.
pub fn record_ticks(env: &Env, ticks: u64) {
    let child = env.spawn_record(&[
        "--source",
        "nettop",
        "--interval",
        "50ms",
        "--ticks",
        &ticks.to_string(),
    ]);
    let (code, stderr) = finish(child, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{stderr}");
}

/// The read-only token of `/metrics`.
pub fn metrics_token(env: &Env) -> String {
    let out = env
        .netmon()
        .args(["serve", "--print-metrics-token"])
        .output()
        .expect("print-metrics-token");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string()
}

/// `GET /metrics` with a token and an Accept header.
pub fn get(serve: &Serve, token: Option<&str>, accept: Option<&str>) -> crate::util::HttpReply {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    http_raw(
        serve.addr,
        format!(
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{auth}{accept}Connection: close\r\n\r\n",
            serve.addr.port()
        )
        .as_bytes(),
    )
}

/// One sample of an exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parse the samples of an exposition (either format), undoing label escapes.
pub fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => panic!("no value: {line}"),
        };
        let mut labels = BTreeMap::new();
        let mut rest = rest;
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices();
            let mut key = String::new();
            let end = loop {
                let (i, c) = chars.next().expect("unterminated labels");
                match c {
                    '}' => break i,
                    ',' => {}
                    '=' => {
                        assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                        let mut value = String::new();
                        loop {
                            match chars.next().expect("unterminated value").1 {
                                '\\' => match chars.next().expect("escape").1 {
                                    'n' => value.push('\n'),
                                    c => value.push(c),
                                },
                                '"' => break,
                                c => value.push(c),
                            }
                        }
                        labels.insert(std::mem::take(&mut key), value);
                    }
                    c => key.push(c),
                }
            };
            rest = &body[end + 1..];
        }
        let value = rest
            .trim()
            .parse::<f64>()
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        out.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    out
}

/// The value of the sample named `name` whose labels include `labels`.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

/// `netmon apps --json` over all time: application → (bytes in, bytes out).
pub fn apps_all_time(env: &Env) -> BTreeMap<String, (u64, u64)> {
    apps_json(env, &["--since", "3650d"])
}

/// `netmon apps --json ARGS`: application → (bytes in, bytes out), applications only.
pub fn apps_json(env: &Env, args: &[&str]) -> BTreeMap<String, (u64, u64)> {
    let out = env
        .netmon()
        .args(["apps", "--json"])
        .args(args)
        .output()
        .expect("apps");
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    v.as_array()
        .expect("array")
        .iter()
        .filter(|r| r["kind"] == "application")
        .map(|r| {
            (
                r["app"].as_str().expect("app").to_string(),
                (
                    r["bytes_in"].as_u64().expect("in"),
                    r["bytes_out"].as_u64().expect("out"),
                ),
            )
        })
        .collect()
}

/// Per-application bytes as `/metrics` says: app label → (in, out).
fn app_series(samples: &[Sample]) -> BTreeMap<String, (u64, u64)> {
    let mut m: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for s in samples
        .iter()
        .filter(|s| s.name == "netmon_app_bytes_total")
    {
        let e = m.entry(s.labels["app"].clone()).or_default();
        match s.labels["direction"].as_str() {
            "in" => e.0 = s.value as u64,
            "out" => e.1 = s.value as u64,
            d => panic!("direction {d}"),
        }
    }
    m
}

#[test]
fn metrics_take_their_own_read_only_token_and_the_usual_host_and_origin_checks() {
    let env = Env::new();
    let serve = Serve::start(&env, &[]);
    let token = serve_token(&env);
    let metrics = metrics_token(&env);
    assert_ne!(token, metrics, "two tokens");
    assert_eq!(metrics.len(), 64);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(env.dir.path().join("netmon.db.metrics-token"))
            .expect("token file")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let r = get(&serve, None, None);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.header("www-authenticate").as_deref(), Some("Bearer"));
    assert!(r.body.contains("--print-metrics-token"), "{}", r.body);
    let r = get(&serve, Some(&token), None);
    assert_eq!(r.status, 401, "the extension's token does not read metrics");
    let r = http(serve.addr, "POST", "/v1/heartbeats", Some(&metrics), "{}");
    assert_eq!(r.status, 401, "the metrics token writes nothing");
    let r = http(serve.addr, "POST", "/metrics", Some(&metrics), "");
    assert_eq!(r.status, 405, "{}", r.body);
    assert_eq!(r.header("allow").as_deref(), Some("GET"));

    for (header, status) in [
        ("Host: evil.example\r\n", 403),
        ("Host: 127.0.0.1\r\nOrigin: https://evil.example\r\n", 403),
    ] {
        let r = http_raw(
            serve.addr,
            format!(
                "GET /metrics HTTP/1.1\r\n{header}Authorization: Bearer {metrics}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(r.status, status, "{header}: {}", r.body);
    }

    let r = get(&serve, Some(&metrics), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(
        r.body.contains("# TYPE netmon_app_bytes_total counter"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("# EOF"));
    let r = get(
        &serve,
        Some(&metrics),
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(
        r.body
            .contains("# TYPE netmon_app_bytes counter\n# UNIT netmon_app_bytes bytes")
    );
    assert!(r.body.ends_with("# EOF\n"), "{}", r.body);
    // Nothing recorded yet: every counter there is, at zero, and the recorder never ran.
    let s = parse(&r.body);
    assert_eq!(
        value(&s, "netmon_recorder_state", &[("state", "never")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "netmon_app_bytes_total",
            &[("app", "(other)"), ("direction", "in")]
        ),
        Some(0.0)
    );

    let stderr = serve.stop();
    assert!(stderr.contains("/metrics"), "{stderr}");
    assert!(!stderr.contains(&metrics), "the metrics token was logged");
}

#[test]
fn metrics_equal_apps_and_domains_and_pass_promtool() {
    let env = Env::new();
    traffic_steps(&env, 6);
    let serve = Serve::start(&env, &["--metrics-min-bytes", "0"]);
    observe(&serve, &env);
    record_ticks(&env, 6);
    let token = metrics_token(&env);
    let r = get(&serve, Some(&token), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let samples = parse(&r.body);

    let mut expected = apps_all_time(&env);
    assert_eq!(expected.len(), APPS.len(), "{expected:?}");
    for (name, _, bin, bout) in APPS {
        assert_eq!(
            expected[*name],
            (5 * bin, 5 * bout),
            "{name}: the scripted bytes"
        );
    }
    expected.insert("(other)".into(), (0, 0));
    assert_eq!(app_series(&samples), expected);
    let total_in: u64 = APPS.iter().map(|a| 5 * a.2).sum();
    assert_eq!(
        value(&samples, "netmon_bytes_total", &[("direction", "in")]),
        Some(total_in as f64)
    );

    // Firefox's bytes went to 198.51.100.10, which served www.news.example: the domain's row.
    let out = env
        .netmon()
        .args(["domains", "--json", "--since", "1h"])
        .output()
        .expect("domains");
    let rows: Value = serde_json::from_slice(&out.stdout).expect("json");
    let news = rows
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["domain"] == "news.example")
        .expect("news.example")
        .clone();
    for (dir, field) in [("in", "bytes_in"), ("out", "bytes_out")] {
        assert_eq!(
            value(
                &samples,
                "netmon_website_bytes_total",
                &[("domain", "news.example"), ("direction", dir)]
            ),
            news[field].as_f64(),
            "{dir}"
        );
    }
    assert_eq!(
        value(&samples, "netmon_recorder_state", &[("state", "stopped")]),
        Some(1.0)
    );
    assert_eq!(
        value(&samples, "netmon_recorder_info", &[("source", "nettop")]),
        Some(1.0)
    );
    assert!(
        samples
            .iter()
            .any(|s| s.name == "netmon_recorder_not_counted_info"),
        "what nettop cannot see"
    );
    assert!(value(&samples, "netmon_recorded_seconds_total", &[]).is_some_and(|v| v > 0.0));

    promtool(&r.body);
    serve.stop();
}

#[test]
fn the_set_of_apps_with_series_is_capped_kept_across_restarts_and_other_never_drops() {
    let env = Env::new();
    traffic_steps(&env, 12);
    record_ticks(&env, 6);
    let token = metrics_token(&env);
    // Room for one application: firefox, the largest. The rest is (other).
    let serve = Serve::start(&env, &["--metrics-apps", "1", "--metrics-min-bytes", "0"]);
    let first = app_series(&parse(&get(&serve, Some(&token), None).body));
    serve.stop();
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        ["(other)", "firefox"],
        "{first:?}"
    );
    let all = apps_all_time(&env);
    assert_eq!(first["firefox"], all["firefox"]);
    assert_eq!(
        first["(other)"],
        (all["curl"].0 + all["ssh"].0, all["curl"].1 + all["ssh"].1)
    );

    // More traffic; a restart with room for two: curl joins, from zero, and its bytes so far
    // stay in (other).
    record_ticks(&env, 3);
    let serve = Serve::start(&env, &["--metrics-apps", "2", "--metrics-min-bytes", "0"]);
    let second = app_series(&parse(&get(&serve, Some(&token), None).body));
    assert_eq!(
        second.keys().collect::<Vec<_>>(),
        ["(other)", "curl", "firefox"]
    );
    assert_eq!(
        second["curl"],
        (0, 0),
        "a late member counts from when it joined"
    );
    for (name, v) in &first {
        assert!(
            second[name].0 >= v.0 && second[name].1 >= v.1,
            "{name} went down: {v:?} -> {:?}",
            second[name]
        );
    }
    let all = apps_all_time(&env);
    let sum = second.values().fold((0, 0), |a, v| (a.0 + v.0, a.1 + v.1));
    let expected = all.values().fold((0, 0), |a, v| (a.0 + v.0, a.1 + v.1));
    assert_eq!(
        sum, expected,
        "the series add up to every application's bytes"
    );
    serve.stop();

    // A restart with room for one again removes nobody.
    record_ticks(&env, 3);
    let serve = Serve::start(&env, &["--metrics-apps", "1", "--metrics-min-bytes", "0"]);
    let third = app_series(&parse(&get(&serve, Some(&token), None).body));
    assert_eq!(
        third.keys().collect::<Vec<_>>(),
        ["(other)", "curl", "firefox"]
    );
    let (curl_in, curl_out) = (APPS[1].2, APPS[1].3);
    assert_eq!(
        third["curl"],
        (3 * curl_in, 3 * curl_out),
        "curl's bytes since it joined"
    );
    assert!(third["(other)"].0 >= second["(other)"].0);
    serve.stop();
}

/// Prometheus' own linter, from the same Debian package as the server the other tests run,
/// finds nothing to say about `body`.
fn promtool(body: &str) {
    let mut lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "promtool is missing: run `bash tests/install-deps.sh` (Debian's prometheus package)",
        );
    std::io::Write::write_all(lint.stdin.as_mut().expect("stdin"), body.as_bytes())
        .expect("feed promtool");
    let out = lint.wait_with_output().expect("promtool");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Per-network bytes as `/metrics` says: (network, interface, kind) → (in, out).
pub fn network_series(samples: &[Sample]) -> BTreeMap<(String, String, String), (u64, u64)> {
    let mut m: BTreeMap<(String, String, String), (u64, u64)> = BTreeMap::new();
    for s in samples
        .iter()
        .filter(|s| s.name == "netmon_network_bytes_total")
    {
        let key = (
            s.labels["network"].clone(),
            s.labels["interface"].clone(),
            s.labels["kind"].clone(),
        );
        let e = m.entry(key).or_default();
        match s.labels["direction"].as_str() {
            "in" => e.0 = s.value as u64,
            "out" => e.1 = s.value as u64,
            d => panic!("direction {d}"),
        }
    }
    m
}

fn series(rows: &[(&str, &str, &str, u64, u64)]) -> BTreeMap<(String, String, String), (u64, u64)> {
    rows.iter()
        .map(|(n, i, k, a, b)| ((n.to_string(), i.to_string(), k.to_string()), (*a, *b)))
        .collect()
}

/// Issue 15 on `/metrics`: the scripted interfaces of tests/cli/networks.rs (an interface
/// unplugged and back under a new index, a counter reset, a change of router), recorded in two
/// runs with a scrape between them (so the second answer continues the first's sums from the
/// ticks' `net` column), give per-network counters equal to `netmon networks --json`, exact to
/// the byte; the pairs beyond `--metrics-networks` are counted in `(other)` per kind; nothing
/// goes down; the name and the data cap are there.
#[test]
fn issue_15_network_series_equal_netmon_networks_and_pairs_beyond_the_cap_are_other_per_kind() {
    let env = Env::new();
    networks::scenario(&env);
    env.netmon()
        .args(record_nettop("2"))
        .arg("--include-loopback")
        .assert()
        .success();
    let token = metrics_token(&env);
    let serve = Serve::start(
        &env,
        &["--metrics-min-bytes", "0", "--metrics-networks", "2"],
    );
    let first = network_series(&parse(&get(&serve, Some(&token), None).body));
    // The two largest pairs join on the first answer, with their whole history.
    assert_eq!(
        first,
        series(&[
            ("(other)", "(other)", "loopback", 10, 10),
            ("gw:aa:bb:cc:dd:ee:01", "eth0", "ethernet", 2000, 200),
            ("if:usb0", "usb0", "cellular", 1000, 100),
        ])
    );

    env.netmon()
        .args(record_nettop("3"))
        .arg("--include-loopback")
        .assert()
        .success();
    env.netmon()
        .args(["networks", "name", "gw:aa:bb:cc:dd:ee:01", "Home router"])
        .assert()
        .success();
    env.netmon()
        .args(["networks", "cap", "Home router", "10kB", "--period", "day"])
        .assert()
        .success();
    let r = get(&serve, Some(&token), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let samples = parse(&r.body);
    let second = network_series(&samples);
    // Network B's eth0 came after the set was full: (other), under its kind.
    assert_eq!(
        second,
        series(&[
            ("(other)", "(other)", "ethernet", 1000, 100),
            ("(other)", "(other)", "loopback", 10, 10),
            ("gw:aa:bb:cc:dd:ee:01", "eth0", "ethernet", 3500, 350),
            ("if:usb0", "usb0", "cellular", 1200, 120),
        ])
    );
    for (k, v) in &first {
        assert!(
            second[k].0 >= v.0 && second[k].1 >= v.1,
            "{k:?} went down: {v:?} -> {:?}",
            second[k]
        );
    }
    // Member series equal `netmon networks --json` for their pair, and all series add up to
    // every byte it lists.
    let listed = networks::by_network(&env, &["--since", "1h"]);
    for ((network, interface, _), v) in second.iter().filter(|(k, _)| k.0 != "(other)") {
        assert_eq!(Some(v), listed.get(&(network.clone(), interface.clone())));
    }
    let sum =
        |it: &mut dyn Iterator<Item = &(u64, u64)>| it.fold((0, 0), |a, v| (a.0 + v.0, a.1 + v.1));
    assert_eq!(sum(&mut second.values()), sum(&mut listed.values()));

    assert_eq!(
        value(
            &samples,
            "netmon_network_info",
            &[("network", "gw:aa:bb:cc:dd:ee:01"), ("name", "Home router")]
        ),
        Some(1.0)
    );
    let cap = [("network", "gw:aa:bb:cc:dd:ee:01"), ("period", "day")];
    assert_eq!(
        value(&samples, "netmon_network_cap_bytes", &cap),
        Some(10_000.0)
    );
    assert_eq!(
        value(&samples, "netmon_network_cap_used_bytes", &cap),
        Some(3850.0),
        "what network A's counted interfaces carried today"
    );
    assert_eq!(
        value(&samples, "netmon_tracked_names", &[("family", "network")]),
        Some(2.0)
    );
    promtool(&r.body);
    let om = get(
        &serve,
        Some(&token),
        Some("application/openmetrics-text;version=1.0.0"),
    );
    assert!(
        om.body
            .contains("# TYPE netmon_network_bytes counter\n# UNIT netmon_network_bytes bytes"),
        "{}",
        om.body
    );
    assert_eq!(network_series(&parse(&om.body)), second);
    serve.stop();
}

#[test]
fn bad_metrics_options_are_user_errors_naming_the_range() {
    let env = Env::new();
    for (flag, value) in [
        ("--metrics-apps", "10001"),
        ("--metrics-websites", "-1"),
        ("--metrics-networks", "10001"),
        ("--metrics-min-bytes", "lots"),
        ("--metrics-min-bytes", "1000000000000001"),
    ] {
        let out = env
            .netmon()
            .args(["serve", &format!("{flag}={value}")])
            .output()
            .expect("serve");
        assert_eq!(out.status.code(), Some(1), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "{flag}: {err}");
    }
    let out = env
        .netmon()
        .args(["serve", "--metrics-apps", "10001"])
        .output()
        .expect("serve");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("from 0 to 10000"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
