//! Website costs, printed as figures (never asserted): `cargo bench --bench web`.
//!
//! 1. Heartbeat ingest: a week of one browser's heartbeats (one every 30 s, the host changing
//!    every few minutes) stored in batches of 100 through `store::web`, as `serve` does.
//! 2. Attribution per tick: the recorder's split of one browser's traffic (150 connections
//!    over 60 addresses) against that week of stays and 5,000 address reports, and the extra
//!    cost of committing the resulting per-host rows in the tick's transaction.
//! 3. `netmon serve` round trips: the real binary on loopback, one heartbeat POST per
//!    connection, as the extension sends them; latency percentiles.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netmon::delta::StateChanges;
use netmon::store::web::{self as ingest, Heartbeat, Observation};
use netmon::store::write::{RunInfo, Tick, Writer};
use netmon::store::{self, Create};
use netmon::tick::{App, AppKind, Flow, ProcessRecord, ProcessTraffic, RemoteRecord};
use netmon::web::attribute::HostSplitter;

const T0: i64 = 1_795_000_000_000;
const WEEK_S: i64 = 7 * 86_400;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("web.db");
    let mut conn = store::open(&db, Create::IfMissing).expect("open");
    ingest_week(&mut conn);
    attribution_per_tick(conn);
    serve_round_trips(dir.path());
}

fn ingest_week(conn: &mut rusqlite::Connection) {
    let beats: Vec<Heartbeat> = (0..WEEK_S / 30)
        .map(|i| Heartbeat {
            browser: "Firefox".into(),
            host: Some(format!("site{}.example", (i / 7) % 40)),
            time_ms: T0 + i * 30_000,
            duration_ms: 30_000,
            private: false,
        })
        .collect();
    let started = Instant::now();
    for batch in beats.chunks(100) {
        ingest::record_heartbeats(conn, batch, T0).expect("ingest");
    }
    let took = started.elapsed();
    let intervals: i64 = conn
        .query_row("SELECT count(*) FROM web_activity", [], |r| r.get(0))
        .expect("count");
    let obs: Vec<Observation> = (0..5000)
        .map(|i| Observation {
            browser: "Firefox".into(),
            host: format!("site{}.example", i % 40),
            ip: format!("198.51.{}.{}", i / 250, i % 250)
                .parse()
                .expect("ip"),
            time_ms: T0 + WEEK_S * 1000 - 3_600_000,
        })
        .collect();
    for batch in obs.chunks(500) {
        ingest::record_observations(conn, batch, T0).expect("observations");
    }
    println!(
        "ingest: {} heartbeats in batches of 100: {:.0} us/batch, {:.1} us/heartbeat; merged into {intervals} stays",
        beats.len(),
        took.as_secs_f64() * 1e6 / (beats.len() as f64 / 100.0),
        took.as_secs_f64() * 1e6 / beats.len() as f64
    );
}

fn attribution_per_tick(conn: rusqlite::Connection) {
    const TICKS: i64 = 2000;
    let mut w = Writer::new(conn);
    let run = w.begin_run(&RunInfo::new("bench", T0, 5000)).expect("run");
    let process = ProcessRecord {
        pid: Some(4242),
        name: "firefox".into(),
        start_time: None,
        exe: None,
        uid: None,
        app: App {
            name: "firefox".into(),
            path: Some("/usr/lib/firefox/firefox".into()),
        },
        kind: AppKind::Application,
        container: None,
    };
    let flows: Vec<Flow> = (0..150u64)
        .map(|i| Flow {
            remote: RemoteRecord {
                proto: "tcp",
                // Two thirds of the addresses were reported, a third were not.
                host: format!("198.51.{}.{}", (i % 60) / 40 * 30, i % 60),
                port: 443,
            },
            bytes_in: 1000 + i,
            bytes_out: 100 + i,
        })
        .collect();
    let traffic = vec![ProcessTraffic {
        interfaces: Vec::new(),
        networks: Vec::new(),
        process,
        bytes_in: flows.iter().map(|f| f.bytes_in).sum(),
        bytes_out: flows.iter().map(|f| f.bytes_out).sum(),
        flows,
    }];
    let state = StateChanges::default();
    let mut attributor = HostSplitter::default();
    let end = T0 + WEEK_S * 1000 - 600_000;
    let mut split_time = Duration::ZERO;
    let mut with_web = Duration::ZERO;
    let mut without_web = Duration::ZERO;
    let mut rows = 0usize;
    for t in 0..TICKS {
        let at = end + t * 5000;
        let started = Instant::now();
        let web = attributor
            .split_tick(w.conn(), &traffic, (at - 5000, at))
            .expect("attribute");
        split_time += started.elapsed();
        rows += web.len();
        let day = at.div_euclid(86_400_000) * 86_400;
        let (web, timer) = if t % 2 == 0 {
            (&web[..], &mut with_web)
        } else {
            (&[][..], &mut without_web)
        };
        let started = Instant::now();
        w.commit_tick(&Tick {
            run_id: run,
            at_ms: at,
            elapsed_ms: 5000,
            day,
            traffic: &traffic,
            web,
            state: &state,
            net: None,
        })
        .expect("tick");
        *timer += started.elapsed();
    }
    let half = (TICKS / 2) as f64;
    println!(
        "attribution: {:.0} us/tick to split 150 connections over 60 addresses ({:.1} hosts/tick) \
         against a week of stays and 5000 address reports",
        split_time.as_secs_f64() * 1e6 / TICKS as f64,
        rows as f64 / TICKS as f64
    );
    println!(
        "attribution: commit_tick {:.0} us with the per-host rows, {:.0} us without",
        with_web.as_secs_f64() * 1e6 / half,
        without_web.as_secs_f64() * 1e6 / half
    );
}

fn serve_round_trips(dir: &Path) {
    const REQUESTS: usize = 500;
    let db = dir.join("serve.db");
    let bin = env!("CARGO_BIN_EXE_netmon");
    let token = Command::new(bin)
        .args(["--db"])
        .arg(&db)
        .args(["serve", "--print-token"])
        .output()
        .expect("print-token");
    let token = String::from_utf8(token.stdout)
        .expect("utf8")
        .trim()
        .to_string();
    let mut child = Command::new(bin)
        .args(["--db"])
        .arg(&db)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr: SocketAddr = loop {
        let line = lines.next().expect("serve exited").expect("line");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest
                .split(',')
                .next()
                .and_then(|a| a.parse().ok())
                .expect("address");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let mut latencies = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let body = format!(
            r#"{{"heartbeats": [{{"browser": "Firefox", "host": "site{}.example", "time": "{time}", "duration": 1}}]}}"#,
            i / 50
        );
        let req = format!(
            "POST /v1/heartbeats HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let started = Instant::now();
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(req.as_bytes()).expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        latencies.push(started.elapsed());
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    }
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    println!(
        "serve: {REQUESTS} heartbeat POSTs, one connection each: p50 {:.0} us, p90 {:.0} us, p99 {:.0} us",
        p(0.5),
        p(0.9),
        p(0.99)
    );
}
