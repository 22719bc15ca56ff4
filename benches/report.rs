//! How fast `netmon report html` is and how big its file gets, on the one-year benchmark
//! history, printed as figures (never asserted): `cargo bench --bench report`.
//!
//! 1. Generates the deterministic year (`netmon generate-history`: 300 applications, 5-second
//!    ticks in the 7-day raw window, hourly totals for 90 days, daily before), or reuses
//!    NETMON_BENCH_DB=path.
//! 2. For 24 hours, 7, 30, 90 and 365 days: the median whole-process time of
//!    `netmon report html --since R -o FILE` over RUNS runs, the file's size, and its size
//!    gzipped (what a mail attachment or an archive stores).

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

const RUNS: usize = 11;

fn main() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_netmon"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = common::year_db(&bin, tmp.path());
    let file = tmp.path().join("report.html");
    println!(
        "{:<32} {:>10} {:>10} {:>10} {:>6}   (median of {RUNS} whole-process runs)",
        "command", "time", "file", "gzip -9", "apps"
    );
    for since in ["24h", "7d", "30d", "90d", "365d"] {
        let mut times: Vec<f64> = (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                let out = Command::new(&bin)
                    .env("NETMON_DB", &db)
                    .args(["report", "html", "--since", since, "-o"])
                    .arg(&file)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .output()
                    .expect("run netmon");
                assert!(
                    out.status.success(),
                    "report --since {since}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let page = std::fs::read(&file).expect("report file");
        let apps = count_apps(&page);
        println!(
            "{:<32} {:>7.1} ms {:>7} kB {:>7} kB {:>6}",
            format!("netmon report html --since {since}"),
            times[RUNS / 2],
            page.len() / 1000,
            gzip_len(&page) / 1000,
            apps
        );
    }
}

/// Rows of the applications table.
fn count_apps(page: &[u8]) -> usize {
    String::from_utf8_lossy(page).matches("<tr data-i=").count()
}

/// The size of `bytes` after `gzip -9`.
fn gzip_len(bytes: &[u8]) -> usize {
    let mut child = Command::new("gzip")
        .arg("-9c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("gzip output");
    let _ = writer.join();
    out.stdout.len()
}
