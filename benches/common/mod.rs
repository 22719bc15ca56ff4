//! What several benchmarks share: the deterministic benchmark year.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The benchmark year's database: `NETMON_BENCH_DB` if set (reused when it exists), else a
/// new file in `tmp`. A missing one is generated through the recorder's write path
/// (`netmon generate-history`: 300 applications, 5-second ticks in the 7-day raw window,
/// hourly totals for 90 days, daily before), and what that took is printed.
pub fn year_db(bin: &Path, tmp: &Path) -> PathBuf {
    let db = std::env::var_os("NETMON_BENCH_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.join("year.db"));
    if db.exists() {
        println!("reusing {}", db.display());
        return db;
    }
    let t = Instant::now();
    let out = Command::new(bin)
        .args(["generate-history", "--db"])
        .arg(&db)
        .output()
        .expect("run generate-history");
    assert!(
        out.status.success(),
        "generate-history failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stderr);
    println!(
        "generated one year in {:.1} s into {}: {}",
        t.elapsed().as_secs_f64(),
        db.display(),
        summary
            .lines()
            .last()
            .unwrap_or("")
            .trim_start_matches("generate-history: ")
    );
    db
}
