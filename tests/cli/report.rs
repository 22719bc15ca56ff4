//! `netmon report html` (issue 7): the figures embedded in the page equal what `apps --json`
//! and `timeline --json` print for the same range (on the three-table fixture, so raw,
//! hourly and daily rows all take part), empty databases and ranges give a page that says
//! so, names cannot break out of the page, and the page opens in a real headless Chromium from
//! file:// with no console error and no network request (screenshots in light, dark, narrow
//! and print, under target/tmp/report-screenshots/).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::browser::Browser;
use crate::history::{D0, DAY, GAP, HOUR, HOURLY_FROM, fixture, rfc};
use crate::util::{Env, json_array, u};

/// "Now" for relative ranges: 2024-05-10 12:00 UTC, inside the fixture's raw window.
const NOW: &str = "2024-05-10T12:00:00Z";

/// Run `netmon report html … -o -` and return the page.
fn page(env: &Env, args: &[&str]) -> String {
    page_in("UTC", env, args)
}

/// The same in time zone `tz`.
fn page_in(tz: &str, env: &Env, args: &[&str]) -> String {
    let out = env
        .netmon()
        .env("TZ", tz)
        .args(["report", "html", "-o", "-"])
        .args(args)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

/// The JSON embedded in a page.
fn embedded(page: &str) -> Value {
    let open = "<script type=\"application/json\" id=\"netmon-data\">";
    let start = page.find(open).expect("data element") + open.len();
    let len = page[start..].find("</script>").expect("end of data");
    serde_json::from_str(&page[start..start + len]).expect("embedded JSON")
}

fn json(env: &Env, args: &[&str]) -> Vec<Value> {
    json_in("UTC", env, args)
}

fn json_in(tz: &str, env: &Env, args: &[&str]) -> Vec<Value> {
    json_array(env.netmon().env("TZ", tz), args)
}

/// A bucket without the fields the report adds (`series`).
fn plain(b: &Value) -> Value {
    let mut b = b.clone();
    if let Some(o) = b.as_object_mut() {
        o.remove("series");
    }
    b
}

#[test]
fn issue_7_every_figure_in_the_report_equals_apps_and_timeline_json() {
    figures_equal_the_cli("UTC");
}

/// Local days and hours move with the zone: the report still says what the CLI says there
/// (New York: days from 04:00 or 05:00 UTC; India: from 18:30 UTC, off the UTC hours).
#[test]
fn the_report_equals_the_cli_in_other_time_zones_too() {
    figures_equal_the_cli("America/New_York");
    figures_equal_the_cli("Asia/Kolkata");
}

fn figures_equal_the_cli(tz: &str) {
    let utc = tz == "UTC";
    let env = fixture();
    let range = ["--since", "30d", "--now", NOW];
    let data = embedded(&page_in(tz, &env, &range));
    // The zone really applied (a missing zone database would silently mean UTC).
    let offset = match tz {
        "America/New_York" => "-04:00",
        "Asia/Kolkata" => "+05:30",
        _ => "+00:00",
    };
    assert_eq!(data["utc_offset"], offset, "{tz}: is tzdata installed?");
    let with = |extra: &[&str]| -> Vec<String> {
        range
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        json_in(tz, &env, &a)
    };

    // The range starts among daily-only rows and ends among raw ticks.
    let start = chrono::DateTime::parse_from_rfc3339(data["range"]["start"].as_str().expect("s"))
        .expect("t")
        .timestamp_millis();
    assert!(start < HOURLY_FROM);

    // Applications: the same rows, in the same order, with the same fields.
    let mut args = vec!["apps".to_string()];
    args.extend(with(&["--json"]));
    let apps = run(args);
    let ours = data["apps"].as_array().expect("apps");
    assert_eq!(ours.len(), apps.len());
    assert!(ours.len() >= 4, "the fixture has four rows: {ours:?}");
    for (o, a) in ours.iter().zip(&apps) {
        for k in [
            "app",
            "kind",
            "path",
            "bytes_in",
            "bytes_out",
            "bytes_total",
            "share",
            "first_seen",
            "last_seen",
        ] {
            assert_eq!(o[k], a[k], "{k} of {}", a["app"]);
        }
        assert_eq!(data["range"]["start"], a["range_start"]);
        assert_eq!(data["range"]["end"], a["range_end"]);
        assert_eq!(data["recorded_ms"], a["recorded_ms"]);
        assert_eq!(data["coverage"], a["coverage"]);
    }
    let sum = |rows: &[Value], k: &str| rows.iter().map(|r| u(r, k)).sum::<u64>();
    assert_eq!(u(&data["totals"], "bytes_in"), sum(&apps, "bytes_in"));
    assert_eq!(u(&data["totals"], "bytes_out"), sum(&apps, "bytes_out"));
    assert_eq!(data["totals"]["apps"], json!(apps.len()));

    // Daily totals: exactly `timeline --bucket 1d`.
    let mut args = vec!["timeline".to_string()];
    args.extend(with(&["--bucket", "1d", "--json"]));
    let days = run(args);
    assert_eq!(data["days"].as_array().expect("days"), &days);
    assert!(days.len() >= 30);

    // The stacked timeline: its buckets are `timeline --bucket B`, its series split them as
    // `timeline --bucket B --per-app` does.
    let bucket = data["timeline"]["bucket"]
        .as_str()
        .expect("bucket")
        .to_string();
    assert_eq!(bucket, "6h", "30 days are drawn in 6-hour columns");
    let mut args = vec!["timeline".to_string()];
    args.extend(with(&["--bucket", &bucket, "--json"]));
    let buckets = run(args);
    let ours = data["timeline"]["buckets"].as_array().expect("buckets");
    assert_eq!(
        ours.iter().map(plain).collect::<Vec<_>>(),
        buckets,
        "timeline buckets"
    );
    if utc {
        assert_eq!(data["timeline"]["merged"], json!(true), "daily-only days");
    }
    let mut args = vec!["timeline".to_string()];
    args.extend(with(&["--bucket", &bucket, "--per-app", "--json"]));
    let per_app = run(args);
    let series: Vec<String> = data["timeline"]["series"]
        .as_array()
        .expect("series")
        .iter()
        .map(|s| s.as_str().expect("name").to_string())
        .collect();
    let other = data["timeline"]["other"].as_bool().expect("other");
    let mut want: BTreeMap<(String, usize), (u64, u64)> = BTreeMap::new();
    for r in &per_app {
        let i = buckets
            .iter()
            .position(|b| b["start"] == r["start"])
            .expect("bucket of a per-app row");
        let name = r["app"].as_str().expect("app");
        let s = if series.iter().any(|n| n == name) && !(other && name == "other") {
            name.to_string()
        } else {
            "other".to_string()
        };
        let e = want.entry((s, i)).or_default();
        e.0 += u(r, "bytes_in");
        e.1 += u(r, "bytes_out");
    }
    let mut got: BTreeMap<(String, usize), (u64, u64)> = BTreeMap::new();
    for (i, b) in ours.iter().enumerate() {
        for (k, v) in b["series"].as_array().expect("series").iter().enumerate() {
            let (bin, bout) = (v[0].as_u64().expect("in"), v[1].as_u64().expect("out"));
            if bin + bout > 0 {
                got.insert((series[k].clone(), i), (bin, bout));
            }
        }
        let (sin, sout) = b["series"]
            .as_array()
            .expect("series")
            .iter()
            .fold((0, 0), |t, v| {
                (
                    t.0 + v[0].as_u64().expect("in"),
                    t.1 + v[1].as_u64().expect("out"),
                )
            });
        assert_eq!(
            (sin, sout),
            (u(b, "bytes_in"), u(b, "bytes_out")),
            "bucket {i}"
        );
    }
    assert_eq!(got, want, "per-series bytes");

    // The heatmap: each cell is a 1-hour bucket of `timeline --bucket 1h`; days with only a
    // daily total have no cells.
    let mut args = vec!["timeline".to_string()];
    args.extend(with(&["--bucket", "1h", "--json"]));
    let hours = run(args);
    let heat = &data["heatmap"];
    assert_eq!(heat["rows_are"], "dates");
    let cells: u64 = heat["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .flat_map(|r| r["cells"].as_array().expect("cells").clone())
        .filter_map(|c| c.as_u64())
        .sum();
    let hourly: u64 = hours
        .iter()
        .filter(|b| {
            let s =
                chrono::DateTime::parse_from_rfc3339(b["start"].as_str().expect("s")).expect("t");
            let e = chrono::DateTime::parse_from_rfc3339(b["end"].as_str().expect("e")).expect("t");
            (e - s).num_milliseconds() <= HOUR
        })
        .map(|b| u(b, "bytes_total"))
        .sum();
    assert_eq!(cells, hourly);
    assert!(cells > 0);
    if utc {
        let daily_only = heat["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .filter(|r| r["daily_only"] == json!(true))
            .count();
        // From the range start (2024-04-10) to HOURLY_FROM (2024-04-21): 11 days.
        assert_eq!(daily_only, 11);
        // The gap's hours (day 33, 06:00–12:00 UTC) are not recorded: null, not zero.
        let gap_row = &heat["rows"][((GAP.0 - start) / DAY) as usize];
        assert_eq!(gap_row["cells"][7], Value::Null, "{gap_row}");
        assert!(gap_row["cells"][13].as_u64().is_some());
    }

    // Headline figures are the largest day, the first application, and the total over the
    // recorded days.
    let busiest = days
        .iter()
        .max_by_key(|d| {
            (
                u(d, "bytes_total"),
                std::cmp::Reverse(d["start"].to_string()),
            )
        })
        .expect("a day");
    assert_eq!(data["headline"]["busiest_day"], *busiest);
    assert_eq!(data["headline"]["top_app"]["app"], apps[0]["app"]);
    let recorded_days = days.iter().filter(|d| u(d, "recorded_ms") > 0).count() as u64;
    assert_eq!(
        u(&data["headline"]["average_per_day"], "bytes_total"),
        (sum(&apps, "bytes_in") + sum(&apps, "bytes_out")) / recorded_days
    );
    assert_eq!(data["websites"]["available"], json!(false));
    assert_eq!(data["headline"]["top_website"], Value::Null);
}

#[test]
fn monthly_totals_equal_apps_over_each_month() {
    let env = fixture();
    let data = embedded(&page(&env, &["--since", "61d", "--now", NOW]));
    let months = data["months"].as_array().expect("months");
    let names: Vec<&str> = months
        .iter()
        .map(|m| m["month"].as_str().expect("m"))
        .collect();
    // The range asked for starts on 2024-03-10, before recording began (2024-04-01): the page
    // is drawn from the day it began (issue 13: its cost follows the data, not the range).
    assert_eq!(names, ["2024-04", "2024-05"]);
    assert_eq!(data["range"]["start"], "2024-04-01T00:00:00Z");
    assert_eq!(data["requested"]["start"], "2024-03-10T12:00:00Z");
    for (m, from, until) in [
        (&months[0], "2024-04-01", "2024-04-30"),
        (&months[1], "2024-05-01", NOW),
    ] {
        let apps = json(
            &env,
            &[
                "apps", "--from", from, "--until", until, "--now", NOW, "--json",
            ],
        );
        let total: u64 = apps.iter().map(|a| u(a, "bytes_total")).sum();
        assert_eq!(u(m, "bytes_total"), total, "{}", m["month"]);
        assert!(total > 0);
    }
    // Over the 40 recorded days the heatmap has a row per date; the timeline is drawn in 6h.
    assert_eq!(data["heatmap"]["rows_are"], "dates");
    assert_eq!(data["timeline"]["bucket"], "6h");
}

#[test]
fn a_range_before_the_recording_or_an_empty_database_gives_a_page_that_says_so() {
    let env = fixture();
    let html = page(
        &env,
        &[
            "--from",
            "2024-01-01",
            "--until",
            "2024-01-31",
            "--now",
            NOW,
        ],
    );
    assert!(
        html.contains("Nothing was recorded in this range"),
        "{html}"
    );
    let data = embedded(&html);
    assert_eq!(data["empty"], "not_recorded");
    assert_eq!(data["apps"], json!([]));
    assert!(html.contains("</html>"));

    let empty = Env::new();
    drop(netmon::synth::Synth::create(&empty.db, netmon::synth::Synth::utc_days).expect("db"));
    let html = page(&empty, &[]);
    assert!(html.contains("Nothing recorded yet"), "{html}");
    assert!(html.contains("netmon record"));
    assert_eq!(embedded(&html)["empty"], "nothing_recorded");
}

#[test]
fn a_missing_database_or_a_directory_as_output_is_a_user_error() {
    let env = Env::new();
    env.netmon()
        .args(["report", "html", "-o", "-"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("netmon record"));
    let env = fixture();
    env.netmon()
        .args(["report", "html", "--now", NOW, "-o"])
        .arg(env.dir.path())
        .assert()
        .code(1)
        .stderr(predicates::str::contains("is a directory"));
}

#[test]
fn the_default_file_is_written_whole_in_the_current_directory_and_help_says_so() {
    let env = fixture();
    let out = env
        .netmon()
        .current_dir(env.dir.path())
        .args(["report", "html", "--now", NOW])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let file = env.dir.path().join("netmon-report.html");
    let html = std::fs::read_to_string(&file).expect("netmon-report.html");
    assert!(html.ends_with("</html>\n"));
    let data = embedded(&html);
    // The default range is 30 days.
    let (s, e) = (
        chrono::DateTime::parse_from_rfc3339(data["requested"]["start"].as_str().expect("s"))
            .expect("t"),
        chrono::DateTime::parse_from_rfc3339(data["requested"]["end"].as_str().expect("e"))
            .expect("t"),
    );
    assert_eq!((e - s).num_days(), 30);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("wrote netmon-report.html"), "{stderr}");
    // No temporary file is left beside it.
    let left: Vec<_> = std::fs::read_dir(env.dir.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    let help = env
        .netmon()
        .env("COLUMNS", "100")
        .env_remove("NETMON_DB")
        .args(["report", "html", "--help"])
        .output()
        .expect("help");
    let help = String::from_utf8(help.stdout).expect("utf8");
    assert!(help.contains("netmon-report.html"));
    assert!(help.contains("last 30 days"));
    assert!(help.contains("1000 kB"));
    insta::assert_snapshot!("help_report_html", help);
}

/// A small database whose application names try to break out of HTML, of the JSON element
/// and of the script.
fn hostile(env: &Env) -> Vec<&'static str> {
    let names = vec![
        "</script><script>alert(1)</script>",
        "<img src=x onerror=alert(2)>",
        "\"quoted\" & 'apostrophes' <!--",
        "Ünïcödé \u{2028} app",
    ];
    let mut s = netmon::synth::Synth::create(&env.db, netmon::synth::Synth::utc_days).expect("db");
    s.begin_run(D0 - 60_000, 600_000).expect("run");
    s.tick(D0, 0, &[]).expect("baseline");
    for k in 1..=12i64 {
        let flows: Vec<netmon::synth::Flow> = names
            .iter()
            .enumerate()
            .map(|(i, n)| netmon::synth::Flow::new(n, 10 + i as u32, 1000 * (i as u64 + 1), 10))
            .collect();
        s.tick(D0 + k * 600_000, 600_000, &flows).expect("tick");
    }
    s.end_run(D0 + 12 * 600_000 + 1).expect("stop");
    names
}

#[test]
fn names_are_text_in_the_page_and_exact_in_the_data() {
    let env = Env::new();
    let names = hostile(&env);
    let html = page(
        &env,
        &["--from", &rfc(D0), "--until", &rfc(D0 + DAY), "--now", NOW],
    );
    assert!(!html.contains("<script>alert"));
    assert!(!html.contains("<img src=x"));
    assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;"));
    assert_eq!(
        html.matches("<script").count(),
        2,
        "the data and the page's own script"
    );
    let data = embedded(&html);
    let got: Vec<&str> = data["apps"]
        .as_array()
        .expect("apps")
        .iter()
        .map(|a| a["app"].as_str().expect("app"))
        .collect();
    for n in &names {
        assert!(got.contains(n), "{n} in {got:?}");
    }
}

#[test]
fn the_page_forbids_every_request_and_runs_only_its_own_script() {
    let env = fixture();
    let html = page(&env, &["--now", NOW]);
    let csp_at = html.find("Content-Security-Policy").expect("a CSP");
    let csp = &html[csp_at..html[csp_at..].find('>').map_or(html.len(), |e| csp_at + e)];
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(
        !csp.contains("unsafe-eval") && !csp.contains("http"),
        "{csp}"
    );
    // Nothing in the page points anywhere.
    for needle in ["http://", "https://", "//cdn", "src=\"", "href=\""] {
        assert!(!html.contains(needle), "{needle} in the page");
    }
}

/// Where the browser test leaves its screenshots for people to look at.
fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// Problems the page reported while loading: exceptions, console messages, browser log
/// warnings and errors, and any request for something other than the page itself.
fn problems(b: &Browser, url: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in &b.events {
        let p = &e["params"];
        match e["method"].as_str().unwrap_or("") {
            "Runtime.exceptionThrown" => out.push(format!("exception: {}", p["exceptionDetails"])),
            "Runtime.consoleAPICalled" => out.push(format!("console.{}: {}", p["type"], p["args"])),
            "Log.entryAdded"
                if p["entry"]["level"] == "error" || p["entry"]["level"] == "warning" =>
            {
                out.push(format!("log: {}", p["entry"]))
            }
            "Network.requestWillBeSent" => {
                let req = p["request"]["url"].as_str().unwrap_or("");
                if req != url && !req.starts_with("data:") {
                    out.push(format!("request: {req}"));
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn issue_7_the_report_opens_from_file_in_headless_chromium_without_errors_or_requests() {
    let env = fixture();
    let file = env.dir.path().join("usage.html");
    env.netmon()
        .args(["report", "html", "--since", "30d", "--now", NOW, "-o"])
        .arg(&file)
        .assert()
        .success();
    let url = format!("file://{}", file.display());
    let shots = screenshots();
    let mut b = Browser::launch(env.dir.path());

    for (name, width, dark, media) in [
        ("light", 1280, false, "screen"),
        ("dark", 1280, true, "screen"),
        ("narrow", 390, false, "screen"),
        ("print", 1000, false, "print"),
    ] {
        b.emulate(width, 900, dark, media);
        b.navigate(&url);
        b.settle();
        let found = problems(&b, &url);
        assert!(found.is_empty(), "{name}: {found:#?}");
        assert_eq!(
            b.eval("document.documentElement.getAttribute('data-ready')"),
            json!("1"),
            "{name}: the page's own script ran under its policy"
        );
        let requests = b
            .events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .count();
        assert_eq!(requests, 1, "{name}: only the page itself was loaded");
        if name == "narrow" {
            let overflow = b.eval("document.documentElement.scrollWidth - window.innerWidth");
            assert!(
                overflow.as_i64().is_some_and(|o| o <= 0),
                "the page is wider than a {width}px window by {overflow}px"
            );
        }
        b.screenshot(&shots.join(format!("{name}.png")));
        eprintln!(
            "screenshot: {}",
            shots.join(format!("{name}.png")).display()
        );
    }

    // Hovering a timeline column shows its exact figures.
    b.emulate(1280, 900, false, "screen");
    b.navigate(&url);
    let at = b.eval(
        "(() => { const r = document.querySelector('#tl-svg .hits rect:nth-child(60)'); \
         r.scrollIntoView({block: 'center'}); const b = r.getBoundingClientRect(); \
         return [b.x + b.width / 2, b.y + b.height / 2, +r.getAttribute('data-i')]; })()",
    );
    let (x, y) = (at[0].as_f64().expect("x"), at[1].as_f64().expect("y"));
    b.call(
        "Input.dispatchMouseEvent",
        json!({"type": "mouseMoved", "x": x, "y": y}),
    );
    let tip = b.eval(
        "(() => { const t = document.getElementById('tip'); return t.hidden ? null : t.textContent; })()",
    );
    let tip = tip.as_str().expect("a tooltip is shown");
    assert!(tip.contains("Total") && tip.contains("bytes"), "{tip}");
    b.screenshot_viewport(&shots.join("hover.png"));

    // Sorting by name puts the rows in name order; sorting again reverses it.
    let first = |b: &mut Browser| {
        b.eval("document.querySelector('#apps-table tbody tr th').textContent")
            .as_str()
            .expect("name")
            .to_string()
    };
    assert_ne!(first(&mut b), "(unattributed: no socket owner)");
    b.eval("document.querySelector('#apps-table button[data-key=app]').click()");
    assert_eq!(first(&mut b), "(unattributed: no socket owner)");
    b.eval("document.querySelector('#apps-table button[data-key=app]').click()");
    assert_eq!(first(&mut b), "Safari");

    // It prints: a PDF comes out, with the print styles.
    b.call("Emulation.clearDeviceMetricsOverride", json!({}));
    b.emulate_media(false, "print");
    let pdf = shots.join("report.pdf");
    b.pdf(&pdf);
    let head = std::fs::read(&pdf).expect("pdf");
    assert!(head.starts_with(b"%PDF"), "not a PDF");

    // The policy refuses a request the page did not make itself.
    b.settle();
    b.events.clear();
    let refused = b.eval(
        "new Promise(done => { \
           document.addEventListener('securitypolicyviolation', e => done(e.effectiveDirective), {once: true}); \
           fetch('http://127.0.0.1:9/').then(() => done('sent'), () => {}); \
         })",
    );
    assert_eq!(refused, json!("connect-src"), "the policy must refuse it");

    // Hostile names stay text in the browser too.
    let env2 = Env::new();
    hostile(&env2);
    let evil = env.dir.path().join("evil.html");
    env2.netmon()
        .args([
            "report",
            "html",
            "--from",
            &rfc(D0),
            "--until",
            &rfc(D0 + DAY),
            "--now",
            NOW,
        ])
        .arg("-o")
        .arg(&evil)
        .assert()
        .success();
    let evil_url = format!("file://{}", evil.display());
    b.navigate(&evil_url);
    b.settle();
    let found = problems(&b, &evil_url);
    assert!(found.is_empty(), "hostile names: {found:#?}");
    assert_eq!(b.eval("document.querySelectorAll('img').length"), json!(0));
    assert_eq!(
        b.eval("document.querySelectorAll('script').length"),
        json!(2)
    );
    let names = b.eval(
        "Array.from(document.querySelectorAll('#apps-table tbody th')).map(t => t.textContent)",
    );
    assert!(
        names
            .as_array()
            .expect("names")
            .contains(&json!("<img src=x onerror=alert(2)>")),
        "{names}"
    );
}
