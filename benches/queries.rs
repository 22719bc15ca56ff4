//! Query speed on a year of history, printed as figures (never asserted):
//! `cargo bench --bench queries`.
//!
//! 1. Generates a deterministic year through the recorder's own write path
//!    (`netmon generate-history`: 300 applications, ~40 processes alive, 5-second ticks in the
//!    7-day raw window, a daily rhythm, nights asleep, weekly runs, then retention).
//! 2. Prints the database size and the bytes per raw sample row (SQLite's dbstat).
//! 3. Starts a real `netmon record` on it (fake nettop), so `top --once` sees a live writer and
//!    every query runs beside one, as it would on a laptop.
//! 4. Times whole-process runs (median of RUNS) of `apps --since 1h`, `apps --since 365d --json`,
//!    `timeline --since 30d --bucket 1h --json` and `top --once`, and the best SQL for the same
//!    answer in the `sqlite3` shell on the same file, and prints the ratio.
//!
//! NETMON_BENCH_DB=path reuses (or keeps) a generated database instead of a temporary one.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use chrono::{Local, Timelike, Utc};

const RUNS: usize = 21;
const TARGET_MS: f64 = 50.0;

#[path = "common/recorder.rs"]
mod recorder;
use recorder::start_recorder;

fn main() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_netmon"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = common::year_db(&bin, tmp.path());
    sizes(&db);

    let steps = tmp.path().join("steps");
    let mut recorder = start_recorder(&bin, &db, &steps);
    let now_ms = Utc::now().timestamp_millis();
    let sql = best_sql(now_ms);

    println!();
    println!(
        "{:<42} {:>10} {:>12} {:>7}   (median of {RUNS} whole-process runs; target < {TARGET_MS} ms)",
        "command", "netmon", "sqlite3", "ratio"
    );
    let cases: [(&[&str], &str); 4] = [
        (&["apps", "--since", "1h"], sql[0].as_str()),
        (&["apps", "--since", "365d", "--json"], sql[1].as_str()),
        (
            &["timeline", "--since", "30d", "--bucket", "1h", "--json"],
            sql[2].as_str(),
        ),
        (&["top", "--once"], sql[3].as_str()),
    ];
    for (args, sql) in cases {
        let ours = median_ms(|| {
            let out = Command::new(&bin)
                .env("NETMON_DB", &db)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .expect("run netmon");
            assert!(
                out.status.success(),
                "netmon {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        });
        let theirs = median_ms(|| {
            let out = Command::new("sqlite3")
                .arg("-readonly")
                .arg(&db)
                .arg(sql)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .expect("the sqlite3 shell (tests/install-deps.sh installs it)");
            assert!(
                out.status.success(),
                "sqlite3: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        });
        println!(
            "{:<42} {:>7.1} ms {:>9.1} ms {:>6.2}x{}",
            format!("netmon {}", args.join(" ")),
            ours,
            theirs,
            ours / theirs,
            if ours > TARGET_MS {
                "  OVER TARGET"
            } else {
                ""
            }
        );
    }
    stop(&mut recorder);
    println!();
    println!("best SQL used for the sqlite3 column:");
    for (i, s) in sql.iter().enumerate() {
        println!("  [{}] {s}", i + 1);
    }
}

fn median_ms(mut f: impl FnMut()) -> f64 {
    f(); // warm the page cache
    let mut v: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn sizes(db: &Path) {
    let conn = rusqlite::Connection::open(db).expect("open");
    let _: (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("checkpoint");
    let one = |sql: &str| -> i64 {
        conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
            .expect(sql)
            .unwrap_or(0)
    };
    let rows = one("SELECT count(*) FROM samples");
    let samples_bytes = one("SELECT sum(pgsize) FROM dbstat WHERE name = 'samples'");
    let ticks_bytes =
        one("SELECT sum(pgsize) FROM dbstat WHERE name IN ('ticks', 'ticks_by_time')");
    let file = std::fs::metadata(db).map(|m| m.len()).unwrap_or(0);
    println!(
        "database: {:.1} MB ({} bytes); raw window: {} ticks, {} sample rows",
        file as f64 / 1e6,
        file,
        one("SELECT count(*) FROM ticks"),
        rows
    );
    println!(
        "bytes per raw sample row: {:.1} (samples table {:.1} MB); ticks + index: {:.1} MB",
        samples_bytes as f64 / rows.max(1) as f64,
        samples_bytes as f64 / 1e6,
        ticks_bytes as f64 / 1e6
    );
    for t in ["hourly", "daily", "processes", "flow_samples"] {
        println!(
            "  {t}: {} rows, {:.1} MB",
            one(&format!("SELECT count(*) FROM {t}")),
            one(&format!(
                "SELECT sum(pgsize) FROM dbstat WHERE name = '{t}'"
            )) as f64
                / 1e6
        );
    }
}

fn stop(child: &mut Child) {
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let _ = child.wait();
}

/// The best SQL we know for each answer, with the boundaries computed here as literals: what
/// a hand-written query on the same file costs, including the sqlite3 shell's start-up.
fn best_sql(now_ms: i64) -> [String; 4] {
    let hour = now_ms - now_ms.rem_euclid(3_600_000);
    let local = chrono::DateTime::<Utc>::from_timestamp_millis(now_ms)
        .expect("now")
        .with_timezone(&Local);
    let midnight = now_ms
        - i64::from(local.num_seconds_from_midnight()) * 1000
        - i64::from(local.timestamp_subsec_millis());
    let year = now_ms - 365 * 86_400_000;
    let raw = |a: i64, b: i64| {
        format!(
            "SELECT p.app_id AS app_id, s.bytes_in AS i, s.bytes_out AS o FROM ticks t CROSS JOIN samples s \
             ON s.tick_id = t.id JOIN processes p ON p.id = s.process_id WHERE t.at >= {a} AND t.at < {b}"
        )
    };
    let by_name = |parts: &str| {
        format!(
            "SELECT a.name, sum(i), sum(o), sum(i) + sum(o) AS total FROM ({parts}) x \
             JOIN apps a ON a.id = x.app_id GROUP BY a.name ORDER BY total DESC"
        )
    };
    let apps_1h = by_name(&raw(now_ms - 3_600_000, now_ms));
    let year_day = {
        // The daily rows from the first whole day of the year up to hourly_from, whole days
        // of hourly rows from there to today, then today's hours and the current hour's ticks.
        let d0 = (year / 86_400_000) * 86_400;
        format!(
            "SELECT app_id, bytes_in AS i, bytes_out AS o FROM daily WHERE day >= {d0} AND day < {} \
             UNION ALL SELECT app_id, bytes_in, bytes_out FROM hourly WHERE hour >= {} AND hour < {} \
             UNION ALL {}",
            midnight / 1000,
            midnight / 1000,
            hour / 1000,
            raw(hour, now_ms)
        )
    };
    let apps_year = by_name(&year_day);
    let h30 = now_ms - 30 * 86_400_000;
    let timeline = format!(
        "SELECT hour, sum(bytes_in), sum(bytes_out) FROM hourly WHERE hour >= {} AND hour < {} GROUP BY hour \
         UNION ALL SELECT {}, sum(s.bytes_in), sum(s.bytes_out) FROM ticks t CROSS JOIN samples s ON s.tick_id = t.id \
         WHERE t.at >= {hour} AND t.at < {now_ms}",
        (h30 - h30.rem_euclid(3_600_000)) / 1000,
        hour / 1000,
        hour / 1000
    );
    let top = format!(
        "{}; {}",
        by_name(
            "SELECT p.app_id AS app_id, s.bytes_in AS i, s.bytes_out AS o FROM samples s \
             JOIN processes p ON p.id = s.process_id WHERE s.tick_id BETWEEN \
             (SELECT min(id) FROM ticks WHERE at > (SELECT max(at) FROM ticks) - 15000) \
             AND (SELECT max(id) FROM ticks)"
        ),
        by_name(&format!(
            "SELECT app_id, bytes_in AS i, bytes_out AS o FROM hourly WHERE hour >= {} AND hour < {} UNION ALL {}",
            midnight / 1000,
            hour / 1000,
            raw(hour, now_ms)
        ))
    );
    [apps_1h, apps_year, timeline, top]
}
