//! `netmon serve` under a slow-client flood (issue 13), printed as figures (never asserted):
//! `cargo bench --bench serve`.
//!
//! The real binary on loopback with its default client timeout (5 s). 50 connections each
//! send one byte of a request every 2 s and connect again when the server times them out;
//! meanwhile one valid client sends `GET /v1/status` 5 times a second for 60 s
//! (`NETMON_BENCH_SECS` to change) and times each whole answer. The target: at least 99% of
//! its requests answered, p99 under 50 ms.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "../tests/cli/flood.rs"]
mod flood;

fn main() {
    let secs: u64 = std::env::var("NETMON_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
        .clamp(5, 600);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("serve.db");
    let bin = env!("CARGO_BIN_EXE_netmon");
    let token = Command::new(bin)
        .arg("--db")
        .arg(&db)
        .args(["serve", "--print-token"])
        .output()
        .expect("print-token");
    let token = String::from_utf8(token.stdout)
        .expect("utf8")
        .trim()
        .to_string();
    let mut child = Command::new(bin)
        .arg("--db")
        .arg(&db)
        .args(["--log-level", "warn", "serve", "--listen", "127.0.0.1:0"])
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
    let f = flood::Flood {
        slow: 50,
        trickle: Duration::from_secs(2),
        rate: 5,
        duration: Duration::from_secs(secs),
    };
    println!(
        "serve under a slow-client flood: {} slow connections (a byte every {:?}, client \
         timeout 5s), a valid client at {} requests/s for {secs} s",
        f.slow, f.trickle, f.rate
    );
    let out = flood::run(addr, &token, f);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "  valid client: {} sent, {} answered 200 ({:.2}%), failures {:?}",
        out.sent,
        out.answered,
        out.answered_share() * 100.0,
        out.failed
    );
    println!(
        "  latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target: >= 99% answered, p99 < 50 ms)",
        ms(out.percentile(50.0)),
        ms(out.percentile(99.0)),
        ms(out.percentile(100.0))
    );
    println!(
        "  slow clients opened {} connections in all (each timed out and came back)",
        out.slow_connections
    );
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
}
