//! `netmon generate-history` (hidden): a deterministic year of history for the benchmark,
//! written through the recorder's write path (`crate::synth::generate`).

use std::path::Path;
use std::time::Instant;

use chrono::{Local, Timelike, Utc};

use crate::cli::GenerateArgs;
use crate::record::clock::local_day_start;
use crate::synth::{self, GenOptions};

pub fn run(db_path: &Path, a: &GenerateArgs) -> anyhow::Result<()> {
    if db_path.exists() {
        return Err(crate::exit::user(format!(
            "{} exists: generate-history only fills a new database (delete it, or pass another --db)",
            db_path.display()
        )));
    }
    let end = a.end.unwrap_or_else(Utc::now);
    let opts = GenOptions {
        end_ms: end.timestamp_millis(),
        days: a.days,
        apps: a.apps.max(1),
        active: a.active.min(a.apps.max(1)),
        seed: a.seed,
        ..GenOptions::default()
    };
    let started = Instant::now();
    let stats = synth::generate(
        db_path,
        &opts,
        |ms| local_day_start(crate::query::time::utc(ms)),
        |ms| crate::query::time::utc(ms).with_timezone(&Local).hour(),
        |t| {
            eprintln!(
                "generate-history: at {}",
                crate::query::time::utc(t).format("%Y-%m-%d %H:%M")
            )
        },
    )?;
    eprintln!(
        "generate-history: {} ticks, {} sample rows, {} runs, {} gaps in {:.1} s",
        stats.ticks,
        stats.sample_rows,
        stats.runs,
        stats.gaps,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
