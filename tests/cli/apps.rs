//! `netmon apps` against databases written through the store: exact totals inside raw ticks,
//! across raw/hourly and hourly/daily boundaries, the JSON and CSV contracts, the table, and
//! errors that say what to do.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::history::{
    self, D0, DAY, GAP, HOUR, HOURLY_FROM, MIN, RAW_FROM, RUN, UNATTRIBUTED, expected, rfc,
};
use crate::util::Env;

fn fixture() -> Env {
    let env = Env::new();
    history::three_tables(&env.db);
    env
}

/// `apps --json` for `[from, until)`, parsed.
fn apps_json(env: &Env, from: i64, until: i64) -> Vec<Value> {
    let out = env
        .netmon()
        .args([
            "apps",
            "--json",
            "--from",
            &rfc(from),
            "--until",
            &rfc(until),
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    v.as_array().expect("an array").clone()
}

fn totals(rows: &[Value]) -> BTreeMap<String, (u64, u64)> {
    rows.iter()
        .map(|r| {
            (
                r["app"].as_str().expect("app").to_string(),
                (
                    r["bytes_in"].as_u64().expect("in"),
                    r["bytes_out"].as_u64().expect("out"),
                ),
            )
        })
        .collect()
}

#[test]
fn totals_inside_raw_ticks_are_exact_to_the_millisecond() {
    let env = fixture();
    // Starts on a tick that sits 7 s past a 10-minute mark, ends mid-hour: no widening.
    let (a, b) = (
        D0 + 35 * DAY + 10 * HOUR + 7_000,
        D0 + 36 * DAY + 3 * HOUR + 17 * MIN,
    );
    let rows = apps_json(&env, a, b);
    assert_eq!(totals(&rows), expected(a, b));
    assert_eq!(rows[0]["range_start"], rfc(a));
    assert_eq!(rows[0]["range_end"], rfc(b));
    // Half-open: a tick exactly at the end is not counted, one exactly at the start is.
    let t = history::ticks()
        .iter()
        .find(|t| t.at > a + HOUR)
        .expect("a tick")
        .at;
    assert_ne!(expected(a, t), expected(a, t + 1));
    assert_eq!(totals(&apps_json(&env, a, t)), expected(a, t));
    assert_eq!(totals(&apps_json(&env, t, b)), expected(t, b));
}

#[test]
fn totals_across_the_raw_and_hourly_boundary_stitch_without_loss_or_double_count() {
    let env = fixture();
    let (a, b) = (
        D0 + 25 * DAY + 10 * HOUR + 30 * MIN,
        D0 + 32 * DAY + 7 * HOUR + 23 * MIN,
    );
    assert!(a < RAW_FROM && b > RAW_FROM);
    let rows = apps_json(&env, a, b);
    // The start falls where only hourly totals remain: widened to its hour, and said so.
    let start = D0 + 25 * DAY + 10 * HOUR;
    assert_eq!(totals(&rows), expected(start, b));
    assert_eq!(rows[0]["range_start"], rfc(start));
    assert_eq!(rows[0]["range_end"], rfc(b));
    // Exactly at the boundary, from both sides.
    assert_eq!(
        totals(&apps_json(&env, RAW_FROM - 5 * HOUR, RAW_FROM)),
        expected(RAW_FROM - 5 * HOUR, RAW_FROM)
    );
    assert_eq!(
        totals(&apps_json(&env, RAW_FROM, RAW_FROM + 5 * HOUR + 1)),
        expected(RAW_FROM, RAW_FROM + 5 * HOUR + 1)
    );
}

#[test]
fn totals_across_the_hourly_and_daily_boundary_use_whole_days_before_it() {
    let env = fixture();
    let (a, b) = (
        D0 + 15 * DAY + 13 * HOUR + 20 * MIN,
        D0 + 27 * DAY + 5 * HOUR + 10 * MIN,
    );
    assert!(a < HOURLY_FROM && b > HOURLY_FROM && b < RAW_FROM);
    let rows = apps_json(&env, a, b);
    let (start, end) = (D0 + 15 * DAY, D0 + 27 * DAY + 6 * HOUR);
    assert_eq!(totals(&rows), expected(start, end));
    assert_eq!(rows[0]["range_start"], rfc(start));
    assert_eq!(rows[0]["range_end"], rfc(end));
    // All three tables at once, and the whole recording.
    let (a, b) = (D0 + 3 * DAY + HOUR, D0 + 38 * DAY + 2 * HOUR + 5 * MIN);
    assert_eq!(totals(&apps_json(&env, a, b)), expected(D0 + 3 * DAY, b));
    assert_eq!(totals(&apps_json(&env, D0, RUN.1)), expected(D0, RUN.1));
}

#[test]
fn json_rows_follow_the_documented_schema() {
    let env = fixture();
    let (a, b) = (D0 + 32 * DAY, D0 + 34 * DAY);
    let rows = apps_json(&env, a, b);
    assert!(rows.len() >= 3);
    let keys: Vec<&str> = rows[0]
        .as_object()
        .expect("object")
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "app",
            "kind",
            "path",
            "container",
            "bytes_in",
            "bytes_out",
            "bytes_total",
            "share",
            "first_seen",
            "last_seen",
            "range_start",
            "range_end",
            "recorded_ms",
            "coverage"
        ]
    );
    let mut share = 0.0;
    for r in &rows {
        let (i, o, t) = (
            r["bytes_in"].as_u64().expect("u64"),
            r["bytes_out"].as_u64().expect("u64"),
            r["bytes_total"].as_u64().expect("u64"),
        );
        assert_eq!(i + o, t);
        share += r["share"].as_f64().expect("share");
        for k in ["first_seen", "last_seen", "range_start", "range_end"] {
            let s = r[k].as_str().expect("time string");
            assert!(s.ends_with('Z'), "{k} is UTC: {s}");
            chrono::DateTime::parse_from_rfc3339(s).expect("RFC 3339");
        }
        assert!(r["kind"] == "application" || r["kind"] == "unattributed");
    }
    assert!((share - 1.0).abs() < 1e-4, "shares sum to 1: {share}");
    // Sorted by total, largest first.
    let t: Vec<u64> = rows
        .iter()
        .map(|r| r["bytes_total"].as_u64().expect("t"))
        .collect();
    assert!(t.windows(2).all(|w| w[0] >= w[1]), "{t:?}");
    // Coverage: the range minus the 6-hour gap, on every row.
    let recorded = (b - a) - (GAP.1 - GAP.0);
    for r in &rows {
        assert_eq!(r["recorded_ms"].as_i64(), Some(recorded));
        assert!(
            (r["coverage"].as_f64().expect("f") - recorded as f64 / (b - a) as f64).abs() < 1e-6
        );
    }
    // Unattributed bytes are a row of their own, labelled.
    let un = rows
        .iter()
        .find(|r| r["kind"] == "unattributed")
        .expect("unattributed row");
    assert_eq!(un["app"], UNATTRIBUTED);
    assert!(un["path"].is_null());
    let safari = rows.iter().find(|r| r["app"] == "Safari").expect("Safari");
    assert_eq!(safari["path"], "/Applications/Safari.app");
}

#[test]
fn ndjson_and_csv_carry_the_same_rows_as_json() {
    let env = fixture();
    let (a, b) = (rfc(D0 + 10 * DAY), rfc(D0 + 39 * DAY));
    let args = |fmt: &str| {
        let out = env
            .netmon()
            .args(["apps", fmt, "--from", &a, "--until", &b])
            .output()
            .expect("run");
        assert!(out.status.success());
        String::from_utf8(out.stdout).expect("utf8")
    };
    let json: Vec<Value> = serde_json::from_str(&args("--json")).expect("json");
    let nd: Vec<Value> = args("--ndjson")
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    assert_eq!(json, nd);
    let csv_text = args("--csv");
    let mut rdr = csv::Reader::from_reader(csv_text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(headers[0], "app");
    let records: Vec<csv::StringRecord> = rdr.records().map(|r| r.expect("record")).collect();
    assert_eq!(records.len(), json.len());
    for (rec, j) in records.iter().zip(&json) {
        for (h, cell) in headers.iter().zip(rec.iter()) {
            let expect = match &j[h.as_str()] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            assert_eq!(cell, expect, "column {h}");
        }
    }
}

#[test]
fn limit_sort_and_app_filter_shape_the_rows() {
    let env = fixture();
    let (a, b) = (rfc(D0 + 30 * DAY), rfc(D0 + 39 * DAY));
    let run = |extra: &[&str]| -> Vec<Value> {
        let out = env
            .netmon()
            .args(["apps", "--json", "--from", &a, "--until", &b])
            .args(extra)
            .output()
            .expect("run");
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let all = run(&[]);
    assert_eq!(all.len(), 4, "Safari, curl, Mail, unattributed");
    assert_eq!(run(&["--limit", "2"]).len(), 2);
    assert_eq!(run(&["--limit", "0"]).len(), 4);
    let by_name: Vec<String> = run(&["--sort", "name"])
        .iter()
        .map(|r| r["app"].as_str().expect("s").to_string())
        .collect();
    assert_eq!(
        by_name,
        ["(unattributed: no socket owner)", "curl", "Mail", "Safari"]
    );
    let out = run(&["--sort", "out"]);
    let outs: Vec<u64> = out
        .iter()
        .map(|r| r["bytes_out"].as_u64().expect("o"))
        .collect();
    assert!(outs.windows(2).all(|w| w[0] >= w[1]));
    let only = run(&["--app", "SAF"]);
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["app"], "Safari");
    assert_eq!(run(&["--app", "m*l"]).len(), 1);
}

#[test]
fn table_output_is_plain_columns_when_piped() {
    let env = fixture();
    let out = env
        .netmon()
        .args([
            "apps",
            "--from",
            "2024-05-02 00:00",
            "--until",
            "2024-05-04",
        ])
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf8");
    insta::assert_snapshot!("apps_table", text);
    let exact = env
        .netmon()
        .args([
            "apps",
            "--bytes",
            "--from",
            "2024-05-02",
            "--until",
            "2024-05-04",
        ])
        .output()
        .expect("run");
    insta::assert_snapshot!(
        "apps_table_bytes",
        String::from_utf8(exact.stdout).expect("utf8")
    );
}

#[test]
fn a_range_with_no_traffic_says_how_much_of_it_was_recorded() {
    let env = fixture();
    let out = env
        .netmon()
        .args(["apps", "--from", "2024-03-01", "--until", "2024-03-02"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf8");
    assert!(text.contains("No traffic in this range"), "{text}");
    // --until with a date means the end of that day: two whole days.
    assert!(text.contains("recorded 0s of 2d (0%)"), "{text}");
    let out = env
        .netmon()
        .args([
            "apps",
            "--json",
            "--from",
            "2024-03-01",
            "--until",
            "2024-03-02",
        ])
        .output()
        .expect("run");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    assert!(String::from_utf8_lossy(&out.stderr).contains("0% of it was recorded"));
}

#[test]
fn bad_ranges_and_missing_or_empty_databases_are_user_errors() {
    let env = fixture();
    let fail = |args: &[&str], needle: &str| {
        let out = env.netmon().args(args).output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        // One line says it all (clap adds its usual "try --help" tip below a flag error).
        let first = err.lines().next().unwrap_or("");
        assert!(first.contains(needle), "{args:?}: {err}");
        assert!(
            err.lines().filter(|l| l.contains("error:")).count() == 1,
            "{err}"
        );
    };
    fail(&["apps", "--since", "5x"], "90m");
    fail(&["apps", "--since", "24"], "24h");
    fail(
        &["apps", "--from", "2024-05-03", "--until", "2024-05-01"],
        "not before --until",
    );
    fail(&["apps", "--from", "2999-01-01"], "in the future");
    fail(&["apps", "--from", "May 1st"], "2024-05-01");
    fail(&["apps", "--db", "/nonexistent/dir/n.db"], "netmon record");
    // A database that exists but holds nothing recorded.
    let empty = Env::new();
    netmon::store::open(&empty.db, netmon::store::Create::IfMissing).expect("create");
    let out = empty.netmon().arg("apps").output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no recorded traffic yet"));
}

#[test]
fn since_counts_back_from_now() {
    // A recording of the last two hours, written as the recorder would.
    let env = Env::new();
    let now = chrono::Utc::now().timestamp_millis();
    let mut s = netmon::synth::Synth::create(&env.db, netmon::synth::Synth::utc_days).expect("db");
    s.begin_run(now - 2 * HOUR - MIN, 5000).expect("run");
    s.tick(now - 2 * HOUR, 0, &[]).expect("baseline");
    let mut t = now - 2 * HOUR;
    while t + 60_000 < now {
        t += 60_000;
        s.tick(
            t,
            60_000,
            &[netmon::synth::Flow::new("Safari", 7, 1000, 10)],
        )
        .expect("tick");
    }
    drop(s);
    let out = env
        .netmon()
        .args(["apps", "--since", "90m", "--json"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    let n = rows[0]["bytes_in"].as_u64().expect("in") / 1000;
    // 90 one-minute ticks, give or take the one at the edge as the clock moved on.
    assert!((89..=90).contains(&n), "{n} ticks in the last 90 minutes");
}

#[test]
fn a_fixed_width_wraps_names_and_keeps_numbers_and_times_whole() {
    let env = fixture();
    let out = env
        .netmon()
        .env("COLUMNS", "72")
        .args(["apps", "--from", "2024-05-02", "--until", "2024-05-03"])
        .output()
        .expect("run");
    assert!(out.status.success());
    insta::assert_snapshot!(
        "apps_table_72_columns",
        String::from_utf8(out.stdout).expect("utf8")
    );
}

#[test]
fn names_with_control_characters_are_escaped_in_tables_but_exact_in_json() {
    let env = Env::new();
    let evil = "evil\u{1b}[2J\u{202e}name";
    let mut s = netmon::synth::Synth::create(&env.db, netmon::synth::Synth::utc_days).expect("db");
    s.begin_run(D0 - MIN, 5000).expect("run");
    s.tick(D0, 0, &[]).expect("baseline");
    s.tick(D0 + MIN, MIN, &[netmon::synth::Flow::new(evil, 9, 1234, 5)])
        .expect("tick");
    s.end_run(D0 + 2 * MIN).expect("stop");
    drop(s);
    let range = ["--from", "2024-04-01", "--until", "2024-04-01"];
    let table = env.netmon().arg("apps").args(range).output().expect("run");
    let text = String::from_utf8(table.stdout).expect("utf8");
    assert!(text.contains("evil\\x1b[2J\\u{202e}name"), "{text}");
    assert!(!text.contains('\u{1b}') && !text.contains('\u{202e}'));
    let json = env
        .netmon()
        .args(["apps", "--json"])
        .args(range)
        .output()
        .expect("run");
    let rows: Vec<Value> = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(rows[0]["app"], evil);
    assert_eq!(rows[0]["bytes_in"], 1234);
}
