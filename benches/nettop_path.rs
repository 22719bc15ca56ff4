//! Where the nettop path's CPU goes, stage by stage, in-process and without the database:
//! `cargo bench --bench nettop_path`.
//!
//! Replays the record benchmark's nettop output (300 processes, 600 connections; "busy":
//! every counter grows every tick, "typical": one connection in twelve, about 50 a tick)
//! through the stages the recorder runs each tick, and prints the CPU time per tick and per
//! nettop row of each (the thread's own CPU clock, so other sessions on the machine barely
//! show): parsing the text, turning the sample into counters (keys), dropping loopback
//! counters, the delta engine, and grouping deltas into per-process traffic (attribution,
//! with the real process lookup the recorder does), and parsing plus counters the way the
//! source runs them, with the row cache (`nettop::rows`). The first tick (baselines, first lookups)
//! is left out. Then `sample()` of the real nettop source, fed by tests/fake-nettop, adds the
//! child's spawn and the reading of its pipes (this process's CPU, all threads; the fake
//! nettop's own CPU is not included).

use std::path::PathBuf;
use std::time::Duration;

use netmon::delta::{Config, Engine};
use netmon::record::attribute::ProcessResolver;
use netmon::source::nettop::{self, parse};
use netmon::source::{Cancel, SourceKind, SourceOptions};

#[path = "common/nettop_steps.rs"]
mod nettop_steps;

const TICKS: usize = 200;
const PROCS: usize = 300;

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

const STAGES: [&str; 5] = ["parse", "snapshot", "loopback", "delta", "attribute"];

fn main() {
    // Before any thread starts: the real source finds the fake nettop on PATH.
    let fake = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fake-nettop");
    let path = std::env::var("PATH").unwrap_or_default();
    // SAFETY: single-threaded here; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("PATH", format!("{}:{path}", fake.display())) };
    let dir = tempfile::tempdir().expect("tempdir");

    for (name, every) in [("busy", 1usize), ("typical", 12)] {
        let steps = nettop_steps::steps(PROCS, every, TICKS + 1);
        let rows = steps[0].lines().count() - 1;
        let mut spent = [Duration::ZERO; STAGES.len()];
        let mut engine = Engine::new(Config::default());
        let mut resolver = ProcessResolver::default();
        let mut deltas = 0usize;
        let mut cache = nettop::rows::RowCache::default();
        let mut cached = Duration::ZERO;
        for (tick, text) in steps.iter().take(TICKS).enumerate() {
            // What the source does: the last sample's unchanged rows come from its cache.
            let t = thread_cpu();
            let from_cache = cache.snapshot(text).expect("the plain case");
            let spent_cached = thread_cpu() - t;
            let mut at = [Duration::ZERO; STAGES.len() + 1];
            at[0] = thread_cpu();
            let parsed = parse::parse(text).expect("parses");
            at[1] = thread_cpu();
            let block = parsed.blocks.last().expect("a block");
            let mut snap = nettop::to_snapshot(block);
            at[2] = thread_cpu();
            assert_eq!(from_cache, snap, "the cache gives what the parser gives");
            snap.counters.retain(|c| !c.loopback);
            at[3] = thread_cpu();
            let outcome = engine.apply(&snap, Duration::from_millis(20));
            at[4] = thread_cpu();
            let traffic = resolver.group(&outcome.deltas);
            at[5] = thread_cpu();
            std::hint::black_box(&traffic);
            if tick == 0 {
                continue; // baselines and first lookups
            }
            deltas += outcome.deltas.len();
            cached += spent_cached;
            for (s, w) in at.windows(2).enumerate() {
                spent[s] += w[1] - w[0];
            }
        }
        let ticks = (TICKS - 1) as f64;
        let total: Duration = spent.iter().sum();
        println!(
            "nettop_path {name}: {rows} nettop rows per tick, {:.0} deltas per tick, {} ticks",
            deltas as f64 / ticks,
            TICKS - 1
        );
        for (stage, d) in STAGES.iter().zip(spent) {
            let us = d.as_secs_f64() * 1e6 / ticks;
            println!(
                "nettop_path {name}: {stage:<9} {us:8.1} us/tick {:6.3} us/row",
                us / rows as f64
            );
        }
        let us = total.as_secs_f64() * 1e6 / ticks;
        println!(
            "nettop_path {name}: total     {us:8.1} us/tick {:6.3} us/row (without spawn, pipes, database)",
            us / rows as f64
        );
        let us = cached.as_secs_f64() * 1e6 / ticks;
        println!(
            "nettop_path {name}: row cache {us:8.1} us/tick {:6.3} us/row (parse + snapshot as the source runs them: unchanged rows from the last sample)",
            us / rows as f64
        );
        let us = (total - spent[0] - spent[1] + cached).as_secs_f64() * 1e6 / ticks;
        println!(
            "nettop_path {name}: total with the row cache {us:8.1} us/tick {:6.3} us/row",
            us / rows as f64
        );
        sample_cost(dir.path(), name, &steps);
    }
}

/// CPU of `sample()` on the real nettop source (spawn, pipes, parse, counters), this process only.
fn sample_cost(dir: &std::path::Path, name: &str, steps: &[String]) {
    const SAMPLES: usize = 50;
    let steps_dir = dir.join(format!("steps-{name}"));
    std::fs::create_dir_all(&steps_dir).expect("steps dir");
    for (s, text) in steps.iter().take(SAMPLES + 1).enumerate() {
        std::fs::write(steps_dir.join(format!("step-{:04}.csv", s + 1)), text).expect("step");
    }
    // SAFETY: no other thread is running between samples (each sample joins its readers).
    unsafe { std::env::set_var("FAKE_NETTOP_DIR", &steps_dir) };
    let mut source = netmon::source::open(
        SourceKind::Nettop,
        &SourceOptions {
            sample_timeout: Duration::from_secs(10),
        },
    )
    .expect("nettop source (tests/fake-nettop)");
    let cancel = Cancel::new();
    let _ = source.sample(&cancel).expect("first sample");
    let before = netmon::procinfo::usage::cpu_time();
    for _ in 0..SAMPLES {
        let snap = source.sample(&cancel).expect("sample");
        std::hint::black_box(&snap);
    }
    let us = (netmon::procinfo::usage::cpu_time() - before).as_secs_f64() * 1e6 / SAMPLES as f64;
    println!(
        "nettop_path {name}: sample()  {us:8.1} us/tick (spawn + pipes + parse + snapshot; process CPU, all threads)"
    );
}
