//! Websites end to end: `netmon serve` receives observations and heartbeats, `netmon record`
//! (fake nettop) splits the browsers' bytes across hosts, and the per-host totals equal the
//! scripted bytes exactly, per method.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::util::{Env, Serve, finish, http, record_nettop, serve_token};

const H: &str = ",interface,state,bytes_in,bytes_out,\n";

fn ago(s: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(s))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Firefox with three connections (two to addresses the extension saw serving a host, one
/// to an address it never reported), and curl, which is no browser.
fn firefox(a: (u64, u64), b: (u64, u64), other: (u64, u64), curl: (u64, u64)) -> String {
    format!(
        "{H}firefox.5000010,,,{},{},\n\
         tcp4 192.0.2.1:50000<->198.51.100.10:443,en0,Established,{},{},\n\
         tcp4 192.0.2.1:50001<->198.51.100.11:443,en0,Established,{},{},\n\
         udp4 192.0.2.1:50002<->203.0.113.9:443,en0,,{},{},\n\
         curl.5000011,,,{},{},\n\
         tcp4 192.0.2.1:50003<->198.51.100.10:443,en0,Established,{},{},\n",
        a.0 + b.0 + other.0,
        a.1 + b.1 + other.1,
        a.0,
        a.1,
        b.0,
        b.1,
        other.0,
        other.1,
        curl.0,
        curl.1,
        curl.0,
        curl.1
    )
}

/// (app, host, method) → (bytes in, bytes out), from the per-tick rows.
fn by_host(env: &Env, table: &str) -> BTreeMap<(String, String, i64), (i64, i64)> {
    let conn = env.sql();
    let mut st = conn
        .prepare(&format!(
            "SELECT a.name, h.name, w.method, sum(w.bytes_in), sum(w.bytes_out) FROM {table} w \
             JOIN apps a ON a.id = w.app_id JOIN web_hosts h ON h.id = w.host_id \
             GROUP BY a.name, h.name, w.method"
        ))
        .expect("prepare");
    st.query_map([], |r| {
        Ok(((r.get(0)?, r.get(1)?, r.get(2)?), (r.get(3)?, r.get(4)?)))
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// `netmon domains --json` with extra args (and `--since 1h` unless they give a range),
/// parsed.
fn domains_json(env: &Env, args: &[&str]) -> Vec<Value> {
    let since: &[&str] = if args.contains(&"--from") {
        &[]
    } else {
        &["--since", "1h"]
    };
    let out = env
        .netmon()
        .args(["domains", "--json"])
        .args(since)
        .args(args)
        .output()
        .expect("run domains");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    v.as_array().expect("an array").clone()
}

/// name → (bytes in, bytes out, connection share), by the `domain` field.
fn totals(rows: &[Value]) -> BTreeMap<String, (u64, u64, f64)> {
    totals_by(rows, "domain")
}

fn totals_by(rows: &[Value], key: &str) -> BTreeMap<String, (u64, u64, f64)> {
    rows.iter()
        .map(|r| {
            (
                r[key].as_str().unwrap_or_default().to_string(),
                (
                    r["bytes_in"].as_u64().expect("in"),
                    r["bytes_out"].as_u64().expect("out"),
                    r["connection_share"].as_f64().expect("share"),
                ),
            )
        })
        .collect()
}

fn record_ticks(env: &Env, ticks: &str) {
    let child = env.spawn_record(&record_nettop(ticks)[1..]);
    let (code, stderr) = finish(child, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{stderr}");
}

fn row(app: &str, host: &str, method: i64, i: i64, o: i64) -> ((String, String, i64), (i64, i64)) {
    ((app.into(), host.into(), method), (i, o))
}

#[test]
fn browser_bytes_split_by_observed_connection_then_by_active_tab_exactly() {
    let env = Env::new();
    // 1: baselines. 2: a +1000/+100, b +2000/+200, unobserved +300/+30, curl +50/+5.
    // 3: a +10/+1, unobserved +7/+0.
    env.step(
        1,
        "csv",
        &firefox((100, 10), (100, 10), (100, 10), (100, 10)),
    );
    env.step(
        2,
        "csv",
        &firefox((1100, 110), (2100, 210), (400, 40), (150, 15)),
    );
    env.step(
        3,
        "csv",
        &firefox((1110, 111), (2100, 210), (407, 40), (150, 15)),
    );

    let serve = Serve::start(&env, &[]);
    let token = serve_token(&env);
    let obs = format!(
        r#"{{"observations": [
            {{"browser": "Firefox", "host": "www.news.example", "ip": "198.51.100.10", "time": "{t}"}},
            {{"browser": "Firefox", "host": "static.news.example", "ip": "198.51.100.11", "time": "{t}"}}
        ]}}"#,
        t = ago(30)
    );
    let r = http(serve.addr, "POST", "/v1/observations", Some(&token), &obs);
    assert_eq!(r.status, 200, "{}", r.body);
    // The user has been on c.example for 10 s (and the stay goes on: no heartbeat ended it).
    let hb = format!(
        r#"{{"heartbeats": [{{"browser": "Firefox", "host": "c.example", "time": "{}", "duration": 10}}]}}"#,
        ago(10)
    );
    let r = http(serve.addr, "POST", "/v1/heartbeats", Some(&token), &hb);
    assert_eq!(r.status, 200, "{}", r.body);

    record_ticks(&env, "3");
    serve.stop();

    let expected: BTreeMap<_, _> = [
        row("firefox", "static.news.example", 1, 2000, 200),
        row("firefox", "www.news.example", 1, 1010, 101),
        row("firefox", "c.example", 2, 307, 30),
    ]
    .into_iter()
    .collect();
    assert_eq!(by_host(&env, "web_samples"), expected);
    assert_eq!(by_host(&env, "web_hourly"), expected, "hourly rollup");
    assert_eq!(by_host(&env, "web_daily"), expected, "daily rollup");
    // `netmon domains`: hosts roll up to their registrable domain, with the method's share.
    let rows = domains_json(&env, &[]);
    assert_eq!(
        totals(&rows),
        [
            ("news.example".to_string(), (3010, 301, 1.0)),
            ("c.example".to_string(), (307, 30, 0.0)),
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(rows[0]["domain"], "news.example", "largest first");
    assert_eq!(rows[0]["bytes_by_connection"], 3311);
    assert_eq!(rows[1]["bytes_by_active_tab"], 337);
    assert_eq!(rows[0]["apps"], "firefox");
    assert!(rows[0]["host"].is_null());
    // Per host, and hosts under their domain on request.
    let hosts = domains_json(&env, &["--no-rollup"]);
    assert_eq!(
        totals_by(&hosts, "host"),
        [
            ("www.news.example".to_string(), (1010, 101, 1.0)),
            ("static.news.example".to_string(), (2000, 200, 1.0)),
            ("c.example".to_string(), (307, 30, 0.0)),
        ]
        .into_iter()
        .collect()
    );
    let nested = domains_json(&env, &["--hosts"]);
    let news = nested
        .iter()
        .find(|r| r["domain"] == "news.example")
        .expect("news.example");
    let under: Vec<&str> = news["hosts"]
        .as_array()
        .expect("nested hosts")
        .iter()
        .map(|h| h["host"].as_str().expect("host"))
        .collect();
    assert_eq!(under, ["static.news.example", "www.news.example"]);
    // CSV lists the hosts after their domain, with the same columns.
    let csv = env
        .netmon()
        .args(["domains", "--since", "1h", "--hosts", "--csv"])
        .output()
        .expect("csv");
    let text = String::from_utf8(csv.stdout).expect("utf8");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("domain,host,kind,apps,bytes_in,"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("news.example,,site,firefox,3010,301,"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("news.example,static.news.example,site,firefox,2000,"),
        "{text}"
    );
    // The table names the methods.
    let table = env
        .netmon()
        .args(["domains", "--since", "1h", "--bytes"])
        .output()
        .expect("table");
    let table = String::from_utf8(table.stdout).expect("utf8");
    assert!(
        table.contains("news.example") && table.contains("3311"),
        "{table}"
    );
    assert!(table.contains("by connection 90.8%"), "{table}");
    // The browser's hosts add up to the browser, and curl (no browser) has none even though
    // it talked to www.news.example's address.
    assert_eq!(
        env.one(
            "SELECT sum(bytes_in) FROM hourly h JOIN apps a ON a.id = h.app_id WHERE a.name = 'firefox'"
        ),
        1010 + 2000 + 307
    );
    assert_eq!(
        env.one(
            "SELECT sum(bytes_in) FROM hourly h JOIN apps a ON a.id = h.app_id WHERE a.name = 'curl'"
        ),
        50
    );
}

#[test]
fn without_connections_the_active_tab_takes_the_bytes_and_idle_time_keeps_them_unattributed() {
    let env = Env::new();
    // chromium and zen give process rows only (no per-connection rows).
    let rows = |c: (u64, u64), z: (u64, u64)| {
        format!(
            "{H}chromium.5000020,,,{},{},\nzen.5000021,,,{},{},\n",
            c.0, c.1, z.0, z.1
        )
    };
    env.step(1, "csv", &rows((10, 1), (10, 1)));
    env.step(2, "csv", &rows((510, 51), (110, 11)));
    env.step(3, "csv", &rows((1510, 151), (111, 12)));

    let serve = Serve::start(&env, &[]);
    let token = serve_token(&env);
    // Chromium shows x.example; Zen has no active tab (no window focused).
    let hb = format!(
        r#"{{"heartbeats": [
            {{"browser": "Chromium", "host": "x.example", "time": "{t}", "duration": 10}},
            {{"browser": "Zen", "host": null, "time": "{t}", "duration": 10}}
        ]}}"#,
        t = ago(10)
    );
    let r = http(serve.addr, "POST", "/v1/heartbeats", Some(&token), &hb);
    assert_eq!(r.status, 200, "{}", r.body);
    record_ticks(&env, "3");
    serve.stop();

    let expected: BTreeMap<_, _> = [
        row("chromium", "x.example", 2, 1500, 150),
        row("zen", "", 0, 101, 11),
    ]
    .into_iter()
    .collect();
    assert_eq!(by_host(&env, "web_samples"), expected);
    assert_eq!(by_host(&env, "web_daily"), expected);
    // Each browser on its own with --app; bytes with no site are their own, last, row.
    let rows = domains_json(&env, &["--app", "chromium"]);
    assert_eq!(
        totals(&rows),
        [("x.example".to_string(), (1500, 150, 0.0))]
            .into_iter()
            .collect()
    );
    assert_eq!(rows[0]["bytes_by_active_tab"], 1650);
    let rows = domains_json(&env, &[]);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["domain"], "(no active tab)");
    assert_eq!(rows[1]["kind"], "unattributed");
    assert_eq!(
        (rows[1]["bytes_in"].as_u64(), rows[1]["bytes_out"].as_u64()),
        (Some(101), Some(11))
    );
    assert_eq!(rows[1]["apps"], "zen");
}

/// `netmon domains --json | head -0`: a reader that closed the pipe is not an error (exit 0,
/// nothing on stderr), for every machine format.
#[test]
fn a_closed_pipe_is_not_an_error() {
    use std::os::fd::FromRawFd;
    let env = Env::new();
    let rows = |c: (u64, u64)| format!("{H}chromium.5000020,,,{},{},\n", c.0, c.1);
    env.step(1, "csv", &rows((10, 1)));
    env.step(2, "csv", &rows((510, 51)));
    let serve = Serve::start(&env, &[]);
    let token = serve_token(&env);
    let hb = format!(
        r#"{{"heartbeats": [{{"browser": "Chromium", "host": "x.example", "time": "{}", "duration": 10}}]}}"#,
        ago(10)
    );
    assert_eq!(
        http(serve.addr, "POST", "/v1/heartbeats", Some(&token), &hb).status,
        200
    );
    record_ticks(&env, "2");
    serve.stop();
    for format in ["--json", "--ndjson", "--csv", "--bytes"] {
        let mut fds = [0i32; 2];
        // SAFETY: pipe(2) fills two descriptors we then own.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the read end is ours to close: every write to the pipe now fails (EPIPE).
        unsafe { libc::close(fds[0]) };
        // SAFETY: the write end is ours; Stdio takes ownership of it.
        let stdout = unsafe { std::process::Stdio::from_raw_fd(fds[1]) };
        let out = env
            .std_netmon()
            .args(["domains", "--since", "1h", format])
            .stdout(stdout)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// 2024-04-01T00:00Z.
const D0: i64 = 1_711_929_600_000;

/// Twelve days of 20-minute ticks from D0, each giving Firefox's bytes to one of three hosts
/// (two under a.example) or to no site, written through the store's own write path; then a
/// retention pass leaves daily totals before day 5, hourly totals from there and raw ticks
/// from day 9, 05:00. Returns (tick time, host, in, out) of every row, and the run's end.
fn web_history(env: &Env) -> (Vec<(i64, &'static str, u64, u64)>, i64) {
    use netmon::store::retention::Cutoffs;
    use netmon::synth::{Flow, Synth, WebFlow};
    use netmon::web::Method;
    let hosts = ["www.a.example", "cdn.a.example", "b.example", ""];
    let mut synth = Synth::create(&env.db, Synth::utc_days).expect("synth");
    synth.begin_run(D0, 20 * MIN).expect("run");
    synth.tick(D0, 0, &[]).expect("baseline");
    let mut written = Vec::new();
    let mut at = D0 + 20 * MIN;
    let mut k = 0u64;
    while at < D0 + 12 * DAY {
        k += 1;
        let t = if k.is_multiple_of(4) { at + 7_000 } else { at };
        let host = hosts[(k % 4) as usize];
        let method = match host {
            "" => Method::None,
            "www.a.example" => Method::Connection,
            _ => Method::ActiveTab,
        };
        let (i, o) = (1000 + k % 13, 10 + k % 7);
        synth
            .tick_with_web(
                t,
                20 * MIN,
                &[Flow::new("Firefox", 10, i, o)],
                &[WebFlow::new("Firefox", host, method, i, o)],
            )
            .expect("tick");
        written.push((t, host, i, o));
        at += 20 * MIN;
    }
    synth.end_run(at).expect("end");
    synth
        .retention(Cutoffs {
            raw_before_ms: Some(RAW_FROM),
            hourly_before: Some(HOURLY_FROM / 1000),
        })
        .expect("retention");
    (written, at)
}

const HOURLY_FROM: i64 = D0 + 5 * DAY;
const RAW_FROM: i64 = D0 + 9 * DAY + 5 * HOUR;

/// Per-host rows go through the same raw/hourly/daily tables and retention as applications,
/// and `domains` stitches them the same way: totals over ranges that cross the retention
/// boundaries equal the ticks' bytes exactly.
#[test]
fn domain_totals_stitch_across_raw_hourly_and_daily_tables() {
    let env = Env::new();
    let (written, at) = web_history(&env);
    let expected = |a: i64, b: i64| -> BTreeMap<String, (u64, u64)> {
        let mut m = BTreeMap::new();
        for (t, host, i, o) in &written {
            if *t >= a && *t < b {
                let d = match *host {
                    "" => "(no active tab)",
                    "b.example" => "b.example",
                    _ => "a.example",
                };
                let e = m.entry(d.to_string()).or_insert((0, 0));
                e.0 += i;
                e.1 += o;
            }
        }
        m
    };
    let rfc = |ms: i64| {
        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
            .expect("time")
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let got = |a: i64, b: i64| -> (BTreeMap<String, (u64, u64)>, Value) {
        let rows = domains_json(&env, &["--from", &rfc(a), "--until", &rfc(b)]);
        let first = rows.first().cloned().unwrap_or(Value::Null);
        (
            totals(&rows)
                .into_iter()
                .map(|(k, (i, o, _))| (k, (i, o)))
                .collect(),
            first,
        )
    };
    // Inside raw ticks, to the millisecond.
    let (a, b) = (
        RAW_FROM + 2 * HOUR + 7_000,
        D0 + 11 * DAY + 3 * HOUR + 17 * MIN,
    );
    assert_eq!(got(a, b).0, expected(a, b));
    // Across the raw/hourly boundary: the start widens to its hour, and says so.
    let (a, b) = (
        D0 + 7 * DAY + 10 * HOUR + 30 * MIN,
        D0 + 10 * DAY + 7 * HOUR + 23 * MIN,
    );
    let (totals_ab, first) = got(a, b);
    assert_eq!(totals_ab, expected(D0 + 7 * DAY + 10 * HOUR, b));
    let start = chrono::DateTime::parse_from_rfc3339(first["range_start"].as_str().expect("str"))
        .expect("rfc 3339")
        .timestamp_millis();
    assert_eq!(start, D0 + 7 * DAY + 10 * HOUR);
    // Across the hourly/daily boundary: whole days before it.
    let (a, b) = (D0 + 2 * DAY + 13 * HOUR, D0 + 6 * DAY + 5 * HOUR + 10 * MIN);
    assert_eq!(got(a, b).0, expected(D0 + 2 * DAY, D0 + 6 * DAY + 6 * HOUR));
    // Everything.
    assert_eq!(got(D0, at).0, expected(D0, at));
}

#[test]
fn without_a_browser_reporting_domains_says_what_to_set_up() {
    let env = Env::new();
    env.netmon()
        .args(["domains"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("netmon record"));
    env.step(1, "csv", &format!("{H}curl.5000011,,,1,1,\n"));
    env.step(2, "csv", &format!("{H}curl.5000011,,,9,9,\n"));
    record_ticks(&env, "2");
    let out = env.netmon().args(["domains"]).output().expect("table");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf8");
    assert!(
        text.contains("no browser has reported yet") && text.contains("--print-token"),
        "{text}"
    );
    let out = env
        .netmon()
        .args(["domains", "--json"])
        .output()
        .expect("json");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    assert!(String::from_utf8_lossy(&out.stderr).contains("netmon serve"));
    env.netmon()
        .args(["domains", "--hosts", "--no-rollup"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("cannot be used with"));
}

#[test]
fn domains_table() {
    let env = Env::new();
    web_history(&env);
    let table = |args: &[&str]| {
        let out = env
            .netmon()
            .args(["domains", "--from", "2024-04-11", "--until", "2024-04-11"])
            .args(args)
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    };
    insta::assert_snapshot!("domains_table_hosts", table(&["--hosts"]));
    insta::assert_snapshot!(
        "domains_table_no_rollup_bytes",
        table(&["--no-rollup", "--bytes"])
    );
}

/// The HTML report's websites panel is `netmon domains` over the same range (sites only).
#[test]
fn the_report_shows_the_same_websites_as_domains() {
    let env = Env::new();
    web_history(&env);
    let range = ["--from", "2024-04-11", "--until", "2024-04-11"];
    let out = env
        .netmon()
        .args(["report", "html", "-o", "-"])
        .args(range)
        .output()
        .expect("report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = String::from_utf8(out.stdout).expect("utf8");
    let open = "<script type=\"application/json\" id=\"netmon-data\">";
    let start = page.find(open).expect("data element") + open.len();
    let len = page[start..].find("</script>").expect("end of data");
    let data: Value = serde_json::from_str(&page[start..start + len]).expect("embedded JSON");
    let sites: Vec<(String, u64)> = data["websites"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["domain"].as_str().expect("domain").to_string(),
                r["bytes_total"].as_u64().expect("total"),
            )
        })
        .collect();
    let expected: Vec<(String, u64)> = domains_json(&env, &range)
        .iter()
        .filter(|r| r["kind"] == "site")
        .map(|r| {
            (
                r["domain"].as_str().expect("domain").to_string(),
                r["bytes_total"].as_u64().expect("total"),
            )
        })
        .collect();
    assert_eq!(sites, expected);
    assert_eq!(sites[0].0, "a.example");
    assert_eq!(data["headline"]["top_website"]["domain"], "a.example");
    assert!(page.contains("Top website"));
}

/// Issue 14: Safari's bytes are made by WebKit's networking service, an XPC service in
/// WebKit.framework that nettop lists as `com.apple.WebKi`. A Safari-like process tree (the
/// service, Safari responsible for it) is credited to Safari in `apps`, and `domains` splits
/// those bytes by the hosts the extension reported. The tree comes from a process table (the
/// hidden `--process-table`), since this machine has no Safari.
#[test]
fn issue_14_webkits_networking_service_is_credited_to_safari_and_split_by_host() {
    let env = Env::new();
    const NET: &str = "/System/Volumes/Preboot/Cryptexes/OS/System/Library/Frameworks/WebKit.framework/Versions/A/XPCServices/com.apple.WebKit.Networking.xpc/Contents/MacOS/com.apple.WebKit.Networking";
    let table = env.dir.path().join("processes.json");
    std::fs::write(
        &table,
        format!(
            r#"[{{"pid": 5000600, "exe": "/Applications/Safari.app/Contents/MacOS/Safari", "name": "Safari", "responsible_pid": 5000600}},
               {{"pid": 5000700, "exe": "{NET}", "name": "com.apple.WebKit.Networking", "responsible_pid": 5000600}},
               {{"pid": 5000800, "exe": "/usr/bin/curl", "name": "curl", "responsible_pid": 5000900}},
               {{"pid": 5000900, "exe": "/System/Applications/Utilities/Terminal.app/Contents/MacOS/Terminal", "name": "Terminal"}}]"#
        ),
    )
    .expect("table");
    let tick = |a: (u64, u64), b: (u64, u64), curl: (u64, u64)| {
        format!(
            "{H}com.apple.WebKi.5000700,,,{},{},\n\
             quic4 192.0.2.1:50000<->198.51.100.10:443,en0,,{},{},\n\
             tcp4 192.0.2.1:50001<->198.51.100.11:443,en0,Established,{},{},\n\
             Safari.5000600,,,0,0,\n\
             curl.5000800,,,{},{},\n\
             tcp4 192.0.2.1:50003<->198.51.100.10:443,en0,Established,{},{},\n",
            a.0 + b.0,
            a.1 + b.1,
            a.0,
            a.1,
            b.0,
            b.1,
            curl.0,
            curl.1,
            curl.0,
            curl.1
        )
    };
    env.step(1, "csv", &tick((100, 10), (100, 10), (100, 10)));
    env.step(2, "csv", &tick((5100, 510), (2100, 210), (150, 15)));
    env.step(3, "csv", &tick((5200, 520), (2100, 210), (150, 15)));

    let serve = Serve::start(&env, &[]);
    let token = serve_token(&env);
    let obs = format!(
        r#"{{"observations": [
            {{"browser": "Safari", "host": "www.news.example", "ip": "198.51.100.10", "time": "{t}"}},
            {{"browser": "Safari", "host": "video.example", "ip": "198.51.100.11", "time": "{t}"}}
        ]}}"#,
        t = ago(30)
    );
    let r = http(serve.addr, "POST", "/v1/observations", Some(&token), &obs);
    assert_eq!(r.status, 200, "{}", r.body);
    let child = env.spawn_record(&[
        "--source",
        "nettop",
        "--interval",
        "100ms",
        "--ticks",
        "3",
        "--process-table",
        table.to_str().expect("utf8 path"),
    ]);
    let (code, stderr) = finish(child, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{stderr}");
    serve.stop();

    // `apps`: the service's bytes are Safari's; curl typed in Terminal stays curl.
    let out = env
        .netmon()
        .args(["apps", "--json", "--since", "1h"])
        .output()
        .expect("apps");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let apps: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    let totals: BTreeMap<String, (u64, u64)> = apps
        .iter()
        .map(|a| {
            (
                a["app"].as_str().expect("app").to_string(),
                (
                    a["bytes_in"].as_u64().expect("in"),
                    a["bytes_out"].as_u64().expect("out"),
                ),
            )
        })
        .collect();
    assert_eq!(
        totals,
        [
            ("Safari".to_string(), (5100 + 2000, 510 + 200)),
            ("curl".to_string(), (50, 5)),
        ]
        .into_iter()
        .collect()
    );
    // The process keeps nettop's name and its own path.
    let (name, exe): (String, String) = env
        .sql()
        .query_row(
            "SELECT p.name, p.exe FROM processes p JOIN apps a ON a.id = p.app_id \
             WHERE a.name = 'Safari'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("Safari's process");
    assert_eq!((name.as_str(), exe.as_str()), ("com.apple.WebKi", NET));
    // `domains`: Safari's bytes by the hosts the extension saw at each address.
    let rows = domains_json(&env, &["--no-rollup"]);
    assert_eq!(
        totals_by(&rows, "host"),
        [
            ("www.news.example".to_string(), (5100, 510, 1.0)),
            ("video.example".to_string(), (2000, 200, 1.0)),
        ]
        .into_iter()
        .collect()
    );
    assert!(rows.iter().all(|r| r["apps"] == "Safari"), "{rows:?}");
}
