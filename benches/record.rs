//! Recorder costs, printed as figures (never asserted): `cargo bench --bench record`
//! (`-- chatter` runs only the loop scenarios whose name holds `chatter`).
//!
//! 1. Bytes on disk per sample row: ticks of ~40 active processes written through the
//!    recorder's own write path (`Writer::commit_tick`), measured with SQLite's dbstat.
//! 2. CPU time per tick and peak RSS of the real `netmon record` loop with the nettop source,
//!    fed by the fake nettop (tests/fake-nettop) replaying snapshots of 300 processes and
//!    600 connections whose counters grow every tick (idle: none; typical: ~50; busy: all).
//!    The figures come from the recorder's own getrusage (its `stopped` log line); the fake
//!    nettop's CPU is not included.
//! 3. Bytes written to the database files (what the recorder passed to write(2)) per tick
//!    and per day at the default settings (5 s ticks written every 10 minutes: 120 ticks a
//!    write), steady state: the difference between a run of one hour and one of two hours of
//!    simulated ticks, so creating the database is left out (it is printed too).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use netmon::delta::StateChanges;
use netmon::procinfo::App;
use netmon::source::CounterKey;
use netmon::store::write::{RunInfo, Tick, Writer};
use netmon::store::{self, Create};
use netmon::tick::{AppKind, ProcessRecord, ProcessTraffic};

#[path = "common/nettop_steps.rs"]
mod nettop_steps;

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// `cargo bench --bench record -- WORD…` runs only the loop scenarios whose name holds one of
/// the words (and skips the store figures); with no word, everything runs.
fn filters() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect()
}

fn chosen(name: &str) -> bool {
    let f = filters();
    f.is_empty() || f.iter().any(|w| name.contains(w.as_str()))
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    if filters().is_empty() {
        store_bytes_per_row(dir.path());
    }
    loop_cpu_per_tick(dir.path());
}

fn store_bytes_per_row(dir: &Path) {
    const TICKS: i64 = 20_000;
    const ACTIVE: usize = 40;
    let path = dir.join("rows.db");
    let mut w = Writer::new(store::open(&path, Create::IfMissing).expect("open"));
    let t0: i64 = 1_795_000_000_000;
    let run = w.begin_run(&RunInfo::new("bench", t0, 5000)).expect("run");
    let procs: Vec<ProcessRecord> = (0..300)
        .map(|i| ProcessRecord {
            pid: Some(1000 + i),
            name: format!("proc{i}"),
            start_time: None,
            exe: Some(format!("/usr/bin/proc{i}")),
            uid: Some(501),
            app: App {
                name: format!("App {}", i % 120),
                path: Some(format!("/Applications/App {}.app", i % 120)),
            },
            kind: AppKind::Application,
            container: None,
        })
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let state = StateChanges {
        upsert: (0..ACTIVE)
            .map(|i| (CounterKey(format!("bench/{i}")), 1, 1))
            .collect(),
        remove: vec![],
    };
    let started = Instant::now();
    for t in 0..TICKS {
        let base = rng.below(260) as usize;
        let traffic: Vec<ProcessTraffic> = (0..ACTIVE)
            .map(|k| {
                // Heavy-tailed sizes: most deltas are small, a few are megabytes.
                let scale = [100u64, 2_000, 50_000, 2_000_000][rng.below(4) as usize];
                ProcessTraffic {
                    interfaces: Vec::new(),
                    networks: Vec::new(),
                    process: procs[(base + k) % procs.len()].clone(),
                    bytes_in: 1 + rng.below(scale),
                    bytes_out: 1 + rng.below(scale / 4 + 1),
                    flows: vec![],
                }
            })
            .collect();
        let at = t0 + t * 5000;
        w.commit_tick(&Tick {
            run_id: run,
            at_ms: at,
            elapsed_ms: 5000,
            day: at.div_euclid(86_400_000) * 86_400,
            traffic: &traffic,
            web: &[],
            state: &state,
            net: None,
        })
        .expect("tick");
        // The recorder folds the counter journal every 5 minutes: every 60 ticks of 5 s.
        if t % 60 == 59 {
            w.fold_state().expect("fold");
        }
    }
    let took = started.elapsed();
    let conn = w.conn();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM samples", [], |r| r.get(0))
        .expect("rows");
    let table_bytes: i64 = conn
        .query_row(
            "SELECT sum(pgsize) FROM dbstat WHERE name = 'samples'",
            [],
            |r| r.get(0),
        )
        .expect("dbstat");
    let payload: i64 = conn
        .query_row(
            "SELECT sum(payload) FROM dbstat WHERE name = 'samples'",
            [],
            |r| r.get(0),
        )
        .expect("dbstat");
    let ticks_bytes: i64 = conn
        .query_row(
            "SELECT sum(pgsize) FROM dbstat WHERE name IN ('ticks', 'ticks_by_time')",
            [],
            |r| r.get(0),
        )
        .expect("dbstat");
    let file = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!("store: {TICKS} ticks x {ACTIVE} active processes = {rows} sample rows");
    println!(
        "store: samples table {:.1} bytes/row on disk ({:.1} bytes/row of record payload)",
        table_bytes as f64 / rows as f64,
        payload as f64 / rows as f64
    );
    println!(
        "store: ticks table + index {:.1} bytes/tick; whole file {:.1} bytes/sample row (rollups, state included)",
        ticks_bytes as f64 / TICKS as f64,
        file as f64 / rows as f64
    );
    println!(
        "store: commit_tick {:.0} us/tick (wall, {ACTIVE} processes, rollups and state included)",
        took.as_micros() as f64 / TICKS as f64
    );
}

fn loop_cpu_per_tick(dir: &Path) {
    // 300 processes with two connections each; either every counter grows every tick
    // ("busy"), or one connection in twelve does (about 50 a tick, "typical"), or none does
    // ("idle": the processes are there, nothing moves).
    for (name, every, chatter) in [
        ("idle", 0usize, 0u64),
        ("typical", 12, 0),
        ("busy", 1, 0),
        // Idle applications on a real network: the interface still carries a little every
        // tick (ARP, mDNS, router advertisements; about 100 B/s each way), so each tick has
        // interface bytes to store while no application moves any.
        ("idle, interface chatter", 0, 500),
    ] {
        if !chosen(name) {
            continue;
        }
        loop_scenario(dir, name, every, chatter);
    }
}

/// The default interval and write window: a batch every 120 ticks.
const DEFAULT_INTERVAL_S: f64 = 5.0;
const DEFAULT_WRITE_EVERY_S: f64 = 600.0;
/// The bench ticks every 50 ms (a tick's work, the fake nettop's included, fits in it even on
/// a loaded machine), so the same 120 ticks per write is a window of 6 s. It prints the ticks
/// per write it got in steady state: fewer than 120 means ticks ran late (skipped) and the
/// bytes-per-day figures are pessimistic.
const BENCH_INTERVAL_MS: u64 = 50;
/// 20 and 80 minutes of 5-second ticks (each run adds its first tick, a baseline): their
/// difference is an hour.
const SHORT: usize = 241;
const LONG: usize = 961;

/// What one `netmon record` run reported in its `stopped` line.
struct Run {
    cpu_ms: u64,
    rss_kib: u64,
    written: u64,
    writes: u64,
    wall: std::time::Duration,
}

fn loop_scenario(dir: &Path, name: &str, every: usize, chatter: u64) {
    const PROCS: usize = 300;
    let steps = dir.join(format!("steps-{}", name.replace([' ', ','], "-")));
    std::fs::create_dir_all(&steps).expect("steps");
    // One step per tick (and one to spare), so every tick sees the scripted change.
    for (s, out) in nettop_steps::steps(PROCS, every, LONG + 1)
        .iter()
        .enumerate()
    {
        let s = s + 1;
        // The machine's Ethernet carried what the applications moved, and a little more
        // (headers): the interface reader reads it as the fake nettop leaves it each step.
        let (app_in, app_out) = step_totals(out);
        let background = chatter * s as u64;
        write_net_step(
            &steps.join(format!("step-{s:04}.net")),
            app_in + app_in / 32 + background,
            app_out + app_out / 32 + background,
        );
        std::fs::write(steps.join(format!("step-{s:04}.csv")), out).expect("step");
    }
    let short = run_record(dir, &steps, name, SHORT);
    let long = run_record(dir, &steps, name, LONG);
    let changed = if every == 0 {
        0
    } else {
        (PROCS * 2).div_ceil(every)
    };
    let cpu_ms = long.cpu_ms as f64 / LONG as f64;
    let rss = long.rss_kib as f64 / 1024.0;
    let per_tick = long.written as f64 / LONG as f64;
    // What a tick costs once the recorder runs: the two runs differ only by 720 ticks, so
    // their difference leaves out creating the database and the run's start and stop.
    let steady = long.written.saturating_sub(short.written) as f64 / (LONG - SHORT) as f64;
    println!(
        "loop {name}: {LONG} ticks, {PROCS} processes / {} connections, ~{changed} changing per tick ({:.1} s wall)",
        PROCS * 2,
        long.wall.as_secs_f64()
    );
    println!(
        "loop {name}: {cpu_ms:.2} ms CPU per tick (netmon itself: parse, deltas, attribution, writes), \
         peak RSS {rss:.1} MiB, {:.0} ticks per write in steady state",
        // The runs' difference, as for the bytes: each run's last write (at its stop) is a
        // partial window, so LONG / writes would read low (961 / 9 = 107 for 120).
        (LONG - SHORT) as f64 / long.writes.saturating_sub(short.writes).max(1) as f64
    );
    println!(
        "loop {name}: bytes written: {steady:.0} per tick steady (a run of {LONG} ticks less one of {SHORT}), \
         {per_tick:.0} per tick over the whole {LONG}-tick run (creating the database included)"
    );
    println!(
        "loop {name}: at the default settings (a tick every 5 s, written every 10 min): \
         {:.3}% of one core, {:.2} MB written per day ({:.2} MB/day counting this run's start and stop)",
        cpu_ms / 5000.0 * 100.0,
        steady * 17_280.0 / 1e6,
        per_tick * 17_280.0 / 1e6
    );
}

/// Bytes in and out of a step's process rows (the lines without `<->`).
fn step_totals(step: &str) -> (u64, u64) {
    step.lines()
        .skip(1)
        .filter(|l| !l.contains("<->"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((
                f.get(3)?.parse::<u64>().ok()?,
                f.get(4)?.parse::<u64>().ok()?,
            ))
        })
        .fold((0, 0), |(a, b), (i, o)| (a + i, b + o))
}

/// A step's interface files (`NETMON_NET_ROOT` layout): one Ethernet interface, eth0, whose
/// counters stand at `bytes_in`/`bytes_out`, behind a default gateway.
fn write_net_step(root: &Path, bytes_in: u64, bytes_out: u64) {
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    write(
        "proc/net/dev",
        &format!(
            "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n\
             {:>6}: {bytes_in} 0 0 0 0 0 0 0 {bytes_out} 0 0 0 0 0 0 0\n",
            "eth0"
        ),
    );
    write(
        "proc/net/route",
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
         eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n",
    );
    write(
        "proc/net/arp",
        "IP address       HW type     Flags       HW address            Mask     Device\n\
         10.0.0.1         0x1         0x2         aa:bb:cc:dd:ee:01     *        eth0\n",
    );
    write("sys/class/net/eth0/ifindex", "2\n");
    write("sys/class/net/eth0/type", "1\n");
    write("sys/class/net/eth0/device/vendor", "0x8086\n");
}

/// Record `ticks` ticks of the scripted steps into a new database.
fn run_record(dir: &Path, steps: &Path, name: &str, ticks: usize) -> Run {
    let _ = std::fs::remove_file(steps.join(".n"));
    let fake = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fake-nettop");
    let db = dir.join(format!("loop-{}-{ticks}.db", name.replace([' ', ','], "-")));
    let started = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netmon"));
    cmd.env_clear();
    // The interfaces are the scripted ones (the fake nettop leaves each step's in
    // FAKE_NETTOP_DIR/net), not this machine's, whose traffic would make "idle" whatever the
    // machine did meanwhile. NETMON_BENCH_NET_ROOT=/nonexistent measures the loop without
    // interface counters (the reader fails at once), for the cost of reading them (issue 15).
    cmd.env(
        "NETMON_NET_ROOT",
        std::env::var_os("NETMON_BENCH_NET_ROOT").unwrap_or_else(|| steps.join("net").into()),
    );
    let out = cmd
        .args([
            "record",
            "--source",
            "nettop",
            "--interval",
            &format!("{BENCH_INTERVAL_MS}ms"),
            "--write-every",
            &format!(
                "{}ms",
                (DEFAULT_WRITE_EVERY_S / DEFAULT_INTERVAL_S) as u64 * BENCH_INTERVAL_MS
            ),
            "--ticks",
            &ticks.to_string(),
        ])
        .env("PATH", format!("{}:/usr/bin:/bin", fake.display()))
        .env("NETMON_DB", &db)
        .env("FAKE_NETTOP_DIR", steps)
        .env("RUST_LOG", "netmon=info")
        .output()
        .expect("run netmon");
    let wall = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "netmon record failed: {err}");
    let stopped = err
        .lines()
        .find(|l| l.contains(" stopped "))
        .expect("stopped line");
    let field = |name: &str| -> u64 {
        stopped
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Run {
        cpu_ms: field("cpu_ms"),
        rss_kib: field("max_rss_kib"),
        written: field("written_bytes"),
        writes: field("writes"),
        wall,
    }
}
