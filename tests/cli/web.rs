//! Websites end to end: `netmon serve` receives observations and heartbeats, `netmon record`
//! (fake nettop) splits the browsers' bytes across hosts, and the per-host totals equal the
//! scripted bytes exactly, per method.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::util::{Env, Serve, finish, http, serve_token};

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

fn record_ticks(env: &Env, ticks: &str) {
    let child = env.spawn_record(&[
        "--source",
        "nettop",
        "--interval",
        "100ms",
        "--ticks",
        ticks,
    ]);
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
            {{"browser": "Firefox", "host": "a.example", "ip": "198.51.100.10", "time": "{t}"}},
            {{"browser": "Firefox", "host": "b.example", "ip": "198.51.100.11", "time": "{t}"}}
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
        row("firefox", "a.example", 1, 1010, 101),
        row("firefox", "b.example", 1, 2000, 200),
        row("firefox", "c.example", 2, 307, 30),
    ]
    .into_iter()
    .collect();
    assert_eq!(by_host(&env, "web_samples"), expected);
    assert_eq!(by_host(&env, "web_hourly"), expected, "hourly rollup");
    assert_eq!(by_host(&env, "web_daily"), expected, "daily rollup");
    // The browser's hosts add up to the browser, and curl (no browser) has none even though
    // it talked to a.example's address.
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
}
