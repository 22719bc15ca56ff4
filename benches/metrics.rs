//! What a Prometheus scrape of `/metrics` costs on a year of history, printed as figures (never
//! asserted): `cargo bench --bench metrics`.
//!
//! 1. Generates the deterministic benchmark year (`netmon generate-history`, as
//!    `cargo bench --bench queries` does), or reuses NETMON_BENCH_DB=path. The database is
//!    copied first: the first scrape stores which applications get series of their own.
//! 2. Starts a real `netmon record` on it (fake nettop, 40 processes, a tick every 5 s), so
//!    scrapes run beside a committing recorder, and `netmon serve` on a free loopback port.
//! 3. Times whole requests as a scraper sees them (connect, send, read the whole answer) over
//!    RUNS scrapes in each format, after the first one (which also stores the member set),
//!    and prints the median, the slowest, the body size and the number of series.
//! 4. Times the first scrape of FULL_READS fresh servers: each reads the daily totals in full,
//!    which every server also does once an hour.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 101;
/// Scrapes that read the daily totals in full (each the first of a fresh server).
const FULL_READS: usize = 11;
const TARGET_MS: f64 = 20.0;

#[path = "common/recorder.rs"]
mod recorder;
use recorder::start_recorder;

fn main() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_netmon"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let year = std::env::var_os("NETMON_BENCH_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("year.db"));
    if !year.exists() {
        let t = Instant::now();
        let out = Command::new(&bin)
            .args(["generate-history", "--db"])
            .arg(&year)
            .output()
            .expect("run generate-history");
        assert!(
            out.status.success(),
            "generate-history failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!(
            "generated one year in {:.1} s into {}",
            t.elapsed().as_secs_f64(),
            year.display()
        );
    } else {
        println!("reusing {}", year.display());
    }
    let db = tmp.path().join("scraped.db");
    {
        // A consistent copy, whatever state the source's WAL is in.
        let src = rusqlite::Connection::open(&year).expect("open year");
        src.execute("VACUUM INTO ?1", [db.display().to_string()])
            .expect("copy the year");
    }
    let conn = rusqlite::Connection::open(&db).expect("open copy");
    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
    println!(
        "database: {} applications, {} daily rows, {} raw ticks",
        one("SELECT count(*) FROM apps"),
        one("SELECT count(*) FROM daily"),
        one("SELECT count(*) FROM ticks")
    );
    drop(conn);

    let mut recorder = start_recorder(&bin, &db, &tmp.path().join("steps"));
    let (mut serve, addr) = start_serve(&bin, &db);
    let token = String::from_utf8(
        Command::new(&bin)
            .args(["serve", "--print-metrics-token", "--db"])
            .arg(&db)
            .output()
            .expect("token")
            .stdout,
    )
    .expect("utf8")
    .trim()
    .to_string();

    let t = Instant::now();
    let first = scrape(addr, &token, None);
    println!(
        "first scrape (stores the member set): {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let series = first.lines().filter(|l| !l.starts_with('#')).count();
    let app_series = first
        .lines()
        .filter(|l| l.starts_with("netmon_app_bytes_total{"))
        .count();
    println!(
        "{series} series ({app_series} of them per application: 100 members and (other), \
         received and sent)"
    );
    println!();
    println!(
        "{:<34} {:>10} {:>10} {:>9}   (whole requests, {RUNS} scrapes; target < {TARGET_MS} ms)",
        "scrape", "median", "slowest", "body"
    );
    for (label, accept) in [
        ("GET /metrics (text 0.0.4)", None),
        (
            "GET /metrics (OpenMetrics)",
            Some("application/openmetrics-text;version=1.0.0"),
        ),
    ] {
        let mut times = Vec::with_capacity(RUNS);
        let mut size = 0;
        for _ in 0..RUNS {
            let t = Instant::now();
            let body = scrape(addr, &token, accept);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            size = body.len();
        }
        times.sort_by(f64::total_cmp);
        let median = times[RUNS / 2];
        println!(
            "{label:<34} {median:>7.1} ms {:>7.1} ms {:>6} kB{}",
            times[RUNS - 1],
            size / 1000,
            if median > TARGET_MS {
                "  OVER TARGET"
            } else {
                ""
            }
        );
    }
    stop(&mut serve);

    // What the hourly full read costs: the first scrape of a fresh `netmon serve` reads the
    // daily totals in full, as every scrape does once an hour (the member set is stored
    // already, so nothing is written).
    let mut times = Vec::with_capacity(FULL_READS);
    for _ in 0..FULL_READS {
        let (mut serve, addr) = start_serve(&bin, &db);
        let t = Instant::now();
        scrape(addr, &token, None);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        stop(&mut serve);
    }
    times.sort_by(f64::total_cmp);
    let median = times[FULL_READS / 2];
    println!(
        "{:<34} {median:>7.1} ms {:>7.1} ms           ({FULL_READS} fresh servers){}",
        "GET /metrics, full read (hourly)",
        times[FULL_READS - 1],
        if median > TARGET_MS {
            "  OVER TARGET"
        } else {
            ""
        }
    );
    stop(&mut recorder);
}

/// One whole request; the body.
fn scrape(addr: SocketAddr, token: &str, accept: Option<&str>) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!(
            "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n{accept}Connection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let (head, body) = out.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}

fn start_serve(bin: &Path, db: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let err = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(err).lines();
    let mut said = String::new();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("netmon serve exited before listening: {said}");
        };
        said.push_str(&line);
        said.push('\n');
        if let Some(a) = line
            .split("listening on http://")
            .nth(1)
            .and_then(|r| r.split(',').next())
        {
            break a.parse().expect("address");
        }
    };
    // Keep reading its stderr so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

fn stop(child: &mut Child) {
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
}
