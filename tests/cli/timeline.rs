//! `netmon timeline` against the three-table fixture: buckets add up to `apps` over the same
//! range (across raw, hourly and daily rows), exact per-bucket totals, merged buckets where
//! only rollups remain, unrecorded buckets that say so, and the JSON/CSV contract.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::history::{D0, DAY, GAP, HOUR, HOURLY_FROM, RAW_FROM, expected, fixture, rfc};
use crate::util::{Env, json_array, u};

/// "Now" for relative ranges: 2024-05-10 12:00 UTC, inside the fixture's raw window.
const NOW: &str = "2024-05-10T12:00:00Z";

fn json(env: &Env, args: &[&str]) -> Vec<Value> {
    json_array(&mut env.netmon(), args)
}

#[test]
fn apps_since_30d_equals_the_sum_of_timeline_since_30d_by_day_across_all_three_tables() {
    let env = fixture();
    let apps = json(&env, &["apps", "--since", "30d", "--now", NOW, "--json"]);
    let days = json(
        &env,
        &[
            "timeline", "--since", "30d", "--bucket", "1d", "--now", NOW, "--json",
        ],
    );
    // The range starts where only daily totals are kept and ends among raw ticks.
    let start = chrono::DateTime::parse_from_rfc3339(days[0]["start"].as_str().expect("s"))
        .expect("t")
        .timestamp_millis();
    assert!(start < HOURLY_FROM);
    assert_eq!(days[0]["start"], apps[0]["range_start"]);
    assert_eq!(days.last().expect("last")["end"], apps[0]["range_end"]);
    let sum = |rows: &[Value], k: &str| rows.iter().map(|r| u(r, k)).sum::<u64>();
    assert_eq!(sum(&apps, "bytes_in"), sum(&days, "bytes_in"));
    assert_eq!(sum(&apps, "bytes_out"), sum(&days, "bytes_out"));
    assert!(sum(&days, "bytes_in") > 0);
    // And both are the exact truth.
    let end = chrono::DateTime::parse_from_rfc3339(NOW)
        .expect("now")
        .timestamp_millis();
    let truth: u64 = expected(start, end).values().map(|(i, _)| i).sum();
    assert_eq!(sum(&days, "bytes_in"), truth);
    // Per application too.
    let per_app = json(
        &env,
        &[
            "timeline",
            "--since",
            "30d",
            "--bucket",
            "1d",
            "--now",
            NOW,
            "--per-app",
            "--json",
        ],
    );
    let mut by_app: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in &per_app {
        let e = by_app
            .entry(r["app"].as_str().expect("app").to_string())
            .or_default();
        e.0 += u(r, "bytes_in");
        e.1 += u(r, "bytes_out");
    }
    let apps_map: BTreeMap<String, (u64, u64)> = apps
        .iter()
        .map(|r| {
            (
                r["app"].as_str().expect("app").to_string(),
                (u(r, "bytes_in"), u(r, "bytes_out")),
            )
        })
        .collect();
    assert_eq!(by_app, apps_map);
}

#[test]
fn hourly_buckets_among_raw_ticks_are_exact_and_unrecorded_hours_say_so() {
    let env = fixture();
    let (a, b) = (D0 + 33 * DAY, D0 + 34 * DAY);
    assert!(a > RAW_FROM);
    let rows = json(
        &env,
        &[
            "timeline",
            "--from",
            &rfc(a),
            "--until",
            &rfc(b),
            "--bucket",
            "1h",
            "--json",
        ],
    );
    assert_eq!(rows.len(), 24);
    for (i, r) in rows.iter().enumerate() {
        let s = a + i as i64 * HOUR;
        assert_eq!(r["start"], rfc(s));
        assert_eq!(r["end"], rfc(s + HOUR));
        let want: u64 = expected(s, s + HOUR).values().map(|(i, _)| i).sum();
        assert_eq!(u(r, "bytes_in"), want, "hour {i}");
        let in_gap = s >= GAP.0 && s < GAP.1;
        assert_eq!(
            u(r, "recorded_ms"),
            if in_gap { 0 } else { HOUR as u64 },
            "hour {i}"
        );
        assert_eq!(r["coverage"].as_f64(), Some(if in_gap { 0.0 } else { 1.0 }));
    }
    let table = env
        .netmon()
        .args([
            "timeline",
            "--from",
            &rfc(a),
            "--until",
            &rfc(b),
            "--bucket",
            "1h",
        ])
        .output()
        .expect("run");
    let text = String::from_utf8(table.stdout).expect("utf8");
    let unrecorded = text.lines().filter(|l| l.ends_with("not recorded")).count();
    assert_eq!(unrecorded, 6, "{text}");
    insta::assert_snapshot!("timeline_hours_with_gap", text);
}

#[test]
fn buckets_finer_than_the_kept_data_are_merged_not_invented() {
    let env = fixture();
    // Two days where only daily totals remain, then one with hourly totals, by the hour.
    let (a, b) = (HOURLY_FROM - 2 * DAY, HOURLY_FROM + DAY);
    let rows = json(
        &env,
        &[
            "timeline",
            "--from",
            &rfc(a),
            "--until",
            &rfc(b),
            "--bucket",
            "1h",
            "--json",
        ],
    );
    assert_eq!(rows.len(), 2 + 24);
    assert_eq!(rows[0]["start"], rfc(a));
    assert_eq!(rows[0]["end"], rfc(a + DAY));
    assert_eq!(rows[2]["end"], rfc(HOURLY_FROM + HOUR));
    for r in &rows {
        let s = chrono::DateTime::parse_from_rfc3339(r["start"].as_str().expect("s"))
            .expect("t")
            .timestamp_millis();
        let e = chrono::DateTime::parse_from_rfc3339(r["end"].as_str().expect("e"))
            .expect("t")
            .timestamp_millis();
        let want: u64 = expected(s, e).values().map(|(i, _)| i).sum();
        assert_eq!(u(r, "bytes_in"), want);
    }
}

#[test]
fn json_and_csv_follow_the_documented_schema() {
    let env = fixture();
    let args = [
        "--from",
        "2024-05-05",
        "--until",
        "2024-05-06",
        "--bucket",
        "6h",
    ];
    let rows = json(&env, &[&["timeline", "--json"][..], &args].concat());
    let keys: Vec<&str> = rows[0]
        .as_object()
        .expect("object")
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "start",
            "end",
            "bytes_in",
            "bytes_out",
            "bytes_total",
            "recorded_ms",
            "coverage"
        ]
    );
    let per_app = json(
        &env,
        &[&["timeline", "--json", "--per-app"][..], &args].concat(),
    );
    assert_eq!(
        per_app[0]
            .as_object()
            .expect("o")
            .keys()
            .nth(2)
            .map(|k| k.as_str()),
        Some("app")
    );
    let csv_out = env
        .netmon()
        .args([&["timeline", "--csv", "--per-app"][..], &args].concat())
        .output()
        .expect("run");
    let mut rdr = csv::Reader::from_reader(&csv_out.stdout[..]);
    assert_eq!(
        rdr.headers().expect("h").iter().collect::<Vec<_>>(),
        [
            "start",
            "end",
            "app",
            "bytes_in",
            "bytes_out",
            "bytes_total",
            "recorded_ms",
            "coverage"
        ]
    );
    let n = rdr
        .records()
        .collect::<Result<Vec<_>, _>>()
        .expect("records")
        .len();
    assert_eq!(n, per_app.len());
    // --app filters before summing.
    let safari = json(
        &env,
        &[&["timeline", "--json", "--app", "safari"][..], &args].concat(),
    );
    // --until with a date is the end of that day: 2024-05-05 and 2024-05-06.
    let (a, b) = (D0 + 34 * DAY, D0 + 36 * DAY);
    let want = expected(a, b)["Safari"].0;
    assert_eq!(safari.iter().map(|r| u(r, "bytes_in")).sum::<u64>(), want);
}

#[test]
fn bad_buckets_are_user_errors() {
    let env = fixture();
    for (bucket, needle) in [("7m", "divide a day"), ("x", "1h")] {
        let out = env
            .netmon()
            .args(["timeline", "--bucket", bucket])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains(needle));
    }
    let out = env
        .netmon()
        .args(["timeline", "--bucket", "1s", "--from", "2024-04-01"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("too small"));
}
