use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::query::{Db, RangeSpec, apps, range};
use crate::store::metrics as members;
use crate::store::retention::Cutoffs;
use crate::synth::{Flow, Synth, WebFlow};
use crate::tick::{InterfaceTraffic, Method, NetTraffic, Network};

const H: i64 = 3_600_000;
const D: i64 = 24 * H;
/// 2026-01-01T00:00:00Z
const T0: i64 = 1_767_225_600_000;

fn b(bytes_in: u64, bytes_out: u64) -> Bytes {
    Bytes {
        bytes_in,
        bytes_out,
    }
}

fn totals(v: &[(&str, u64, u64)]) -> BTreeMap<String, Bytes> {
    v.iter()
        .map(|(n, i, o)| (n.to_string(), b(*i, *o)))
        .collect()
}

/// Apply joins to a set as `store::metrics::add` would.
fn apply(t: &mut Tracked, joins: &[Join], now_ms: i64) {
    t.since_ms.get_or_insert(now_ms);
    for j in joins {
        t.members
            .entry((j.family, j.name.clone()))
            .or_insert(j.member);
    }
}

fn scrape(h: &History, t: &mut Tracked, limits: &Limits, now_ms: i64) -> Split {
    let j = joins(h, t, limits, now_ms);
    apply(t, &j, now_ms);
    split(&h.apps, t, Family::App)
}

#[test]
fn the_first_answer_gives_the_largest_apps_their_whole_history() {
    let h = History {
        apps: totals(&[
            ("Firefox", 9_000_000, 100),
            ("curl", 2_000_000, 0),
            ("ssh", 500_000, 0),
            ("Mail", 3_000_000, 1),
        ]),
        ..History::default()
    };
    let limits = Limits {
        apps: 2,
        websites: 2,
        networks: 2,
        min_bytes: 1_000_000,
    };
    let mut t = Tracked::default();
    let s = scrape(&h, &mut t, &limits, 10);
    assert_eq!(
        s.members.keys().collect::<Vec<_>>(),
        ["Firefox", "Mail"],
        "the two largest"
    );
    assert_eq!(
        s.members["Firefox"],
        b(9_000_000, 100),
        "with all their bytes"
    );
    assert_eq!(s.other, b(2_500_000, 0), "the rest is (other)");
}

#[test]
fn a_late_member_starts_from_zero_and_other_keeps_what_it_counted() {
    let limits = Limits {
        apps: 5,
        websites: 5,
        networks: 5,
        min_bytes: 1_000_000,
    };
    let mut t = Tracked::default();
    let mut h = History {
        apps: totals(&[("Firefox", 5_000_000, 0), ("curl", 400_000, 40)]),
        ..History::default()
    };
    let s1 = scrape(&h, &mut t, &limits, 10);
    assert_eq!(s1.other, b(400_000, 40));
    // curl passes the threshold.
    h.apps = totals(&[("Firefox", 5_000_000, 0), ("curl", 1_200_000, 50)]);
    let s2 = scrape(&h, &mut t, &limits, 20);
    assert_eq!(s2.members["curl"], b(0, 0), "counts from when it joined");
    assert_eq!(s2.other, b(1_200_000, 50), "(other) did not go down");
    h.apps = totals(&[("Firefox", 5_000_000, 0), ("curl", 1_300_000, 55)]);
    let s3 = scrape(&h, &mut t, &limits, 30);
    assert_eq!(s3.members["curl"], b(100_000, 5));
    assert_eq!(s3.other, s2.other);
}

#[test]
fn three_thousand_programs_give_at_most_the_cap_plus_other() {
    let apps: BTreeMap<String, Bytes> = (0..3000u64)
        .map(|i| (format!("prog-{i:04}"), b(1_000_000 + i * 1000, i)))
        .collect();
    let h = History {
        apps,
        ..History::default()
    };
    let mut t = Tracked::default();
    let s = scrape(&h, &mut t, &Limits::default(), 1);
    assert_eq!(s.members.len(), Limits::default().apps);
    let m = metrics(&h, &recorder_never(), &t, &Limits::default());
    let app = m
        .families
        .iter()
        .find(|f| f.name == "netmon_app_bytes")
        .expect("family");
    assert_eq!(app.samples.len(), 2 * (Limits::default().apps + 1));
    let sum: u64 = app
        .samples
        .iter()
        .filter(|s| {
            s.labels
                .iter()
                .any(|l| l == &("direction", "in".to_string()))
        })
        .map(|s| match s.value {
            Value::Int(v) => v,
            Value::Float(_) => 0,
        })
        .sum();
    assert_eq!(
        sum,
        h.apps.values().map(|b| b.bytes_in).sum::<u64>(),
        "the series add up to the exact total"
    );
}

#[test]
fn reserved_names_never_get_a_series_of_their_own() {
    let h = History {
        apps: totals(&[("(other)", 5_000_000, 0), ("git", 2_000_000, 0)]),
        ..History::default()
    };
    let mut t = Tracked::default();
    let s = scrape(&h, &mut t, &Limits::default(), 1);
    assert_eq!(s.members.keys().collect::<Vec<_>>(), ["git"]);
    assert_eq!(
        s.other,
        b(5_000_000, 0),
        "a program called (other) is in (other)"
    );
}

fn recorder_never() -> Recorder {
    Recorder {
        state: RecorderState::Never,
        running: false,
        last_tick_ms: None,
        started_ms: None,
        source: None,
        interval_ms: None,
        version: None,
        not_counted: Vec::new(),
    }
}

proptest! {
    /// Whatever order applications appear and grow in, and whenever the top list would
    /// change, no series ever goes down between answers, and they always add up to the total.
    #[test]
    fn no_series_ever_goes_down(
        steps in prop::collection::vec(
            prop::collection::vec((0usize..12, 0u64..2_000_000, 0u64..50_000), 0..6),
            1..30,
        ),
        cap in 0usize..5,
        min_bytes in 0u64..3_000_000,
    ) {
        let limits = Limits { apps: cap, websites: cap, networks: cap, min_bytes };
        let mut t = Tracked::default();
        let mut h = History::default();
        let mut last: Option<Split> = None;
        for (n, step) in steps.iter().enumerate() {
            for (app, bin, bout) in step {
                let e = h.apps.entry(format!("app-{app}")).or_default();
                *e = e.plus(b(*bin, *bout));
            }
            let s = scrape(&h, &mut t, &limits, n as i64);
            prop_assert!(s.members.len() <= cap);
            let sum = s.members.values().fold(s.other, |a, m| a.plus(*m));
            let all = h.apps.values().fold(Bytes::default(), |a, m| a.plus(*m));
            prop_assert_eq!(sum, all);
            if let Some(prev) = &last {
                prop_assert!(s.other.bytes_in >= prev.other.bytes_in);
                prop_assert!(s.other.bytes_out >= prev.other.bytes_out);
                for (name, v) in &prev.members {
                    let now = s.members.get(name).copied();
                    prop_assert!(now.is_some(), "{} lost its series", name);
                    let now = now.unwrap_or_default();
                    prop_assert!(now.bytes_in >= v.bytes_in && now.bytes_out >= v.bytes_out);
                }
            }
            last = Some(s);
        }
    }
}

#[test]
fn gap_reasons_are_a_few_stable_words() {
    for (stored, r) in [
        ("machine asleep or clock stepped forward", GapReason::Asleep),
        ("recorder not running", GapReason::NotRunning),
        ("recorder crashed", GapReason::Crashed),
        (
            "3 tick(s) failed: nettop exited with status 1",
            GapReason::FailedTicks,
        ),
        ("something new", GapReason::Other),
    ] {
        assert_eq!(GapReason::of(stored), r, "{stored}");
    }
}

#[test]
fn the_recorder_state_follows_netmon_status() {
    let run = |stopped: Option<i64>, reason: Option<&str>, last_tick: Option<i64>| Run {
        pid: 42,
        started_ms: 1000,
        last_tick_ms: last_tick,
        stopped_ms: stopped,
        stop_reason: reason.map(str::to_string),
        source: "nettop".into(),
        interval_ms: 5000,
        version: "x".into(),
        notes: None,
        write_every_ms: 0,
    };
    let r = run(None, None, Some(100_000));
    assert_eq!(
        classify(true, Some(42), None, Some(&r), 100_000 + 65_000),
        RecorderState::Running
    );
    assert_eq!(
        classify(true, Some(42), None, Some(&r), 100_000 + 65_001),
        RecorderState::Stalled
    );
    // A recorder that writes every 10 minutes is running until its window (plus an interval
    // and the minute) has passed without a write.
    let batched = Run {
        write_every_ms: 600_000,
        ..r.clone()
    };
    assert_eq!(
        classify(true, Some(42), None, Some(&batched), 100_000 + 665_000),
        RecorderState::Running
    );
    assert_eq!(
        classify(true, Some(42), None, Some(&batched), 100_000 + 665_001),
        RecorderState::Stalled
    );
    // A new holder whose run row is not written yet: judged by the lock's own time.
    assert_eq!(
        classify(true, Some(7), Some(200_000), Some(&r), 210_000),
        RecorderState::Running
    );
    assert_eq!(
        classify(false, None, None, Some(&r), 0),
        RecorderState::Crashed
    );
    let stopped = run(Some(5000), Some("signal SIGTERM"), Some(4000));
    assert_eq!(
        classify(false, None, None, Some(&stopped), 0),
        RecorderState::Stopped
    );
    let crashed = run(Some(5000), Some("crashed"), Some(4000));
    assert_eq!(
        classify(false, None, None, Some(&crashed), 0),
        RecorderState::Crashed
    );
    assert_eq!(classify(false, None, None, None, 0), RecorderState::Never);
}

/// A database with two runs, a gap, unattributed bytes and browser bytes per host, written
/// through the recorder's write path.
fn fixture(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("n.db");
    let mut s = Synth::create(&path, Synth::utc_days).expect("synth");
    s.begin_run(T0, 5000).expect("run");
    s.tick(T0, 0, &[]).expect("baseline");
    for i in 1..=4 {
        let at = T0 + i * D / 4;
        if i == 2 {
            // Written as the recorder does: when the sleep ends, before the next tick.
            s.gap(
                T0 + D / 4 + 1000,
                T0 + D / 4 + 61_000,
                "machine asleep or clock stepped forward",
            )
            .expect("gap");
        }
        s.tick_with_web(
            at,
            5000,
            &[
                Flow::new("Firefox", 10, 1000 * i as u64, 10),
                Flow::new("curl", 11, 7, 3),
                Flow::new("(unattributed: socket closed before it was seen)", 0, 5, 1),
            ],
            &[
                WebFlow::new("Firefox", "www.bbc.co.uk", Method::Connection, 600, 6),
                WebFlow::new("Firefox", "news.bbc.co.uk", Method::ActiveTab, 300, 3),
                WebFlow::new("Firefox", "", Method::None, 100 * i as u64, 1),
            ],
        )
        .expect("tick");
    }
    s.end_run(T0 + D + 1000).expect("end");
    s.begin_run(T0 + 2 * D, 5000).expect("run 2");
    s.tick(T0 + 2 * D, 0, &[]).expect("baseline 2");
    s.tick(T0 + 2 * D + 5000, 5000, &[Flow::new("curl", 12, 70, 30)])
        .expect("tick");
    s.end_run(T0 + 2 * D + 6000).expect("end 2");
    path
}

#[test]
fn all_time_totals_equal_netmon_apps_and_survive_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = fixture(dir.path());
    let conn = crate::store::open(&path, crate::store::Create::Never).expect("open");
    let h = history(&conn).expect("history");

    let db = Db::open(&path).expect("db");
    let now = crate::query::time::utc(T0 + 3 * D);
    let all = range::resolve(
        &RangeSpec {
            since: Some(std::time::Duration::from_secs(3650 * 86_400)),
            ..RangeSpec::default()
        },
        now,
        &chrono::Utc,
        T0,
    )
    .expect("range");
    let a = apps::apps(&db, &chrono::Utc, all, &apps::Options::default()).expect("apps");
    for row in &a.apps {
        let got = match row.kind {
            crate::query::Kind::Application => h.apps.get(&row.app),
            crate::query::Kind::Unattributed => h.unattributed.get(
                row.app
                    .trim_start_matches("(unattributed: ")
                    .trim_end_matches(')'),
            ),
        };
        assert_eq!(
            got.copied(),
            Some(b(row.bytes_in, row.bytes_out)),
            "{}",
            row.app
        );
    }
    assert_eq!(h.apps.len() + h.unattributed.len(), a.apps.len());
    assert_eq!(
        h.websites["bbc.co.uk"],
        b(3600, 36),
        "hosts roll up to domains"
    );
    assert_eq!(h.no_site, b(1000, 4));
    assert!(h.any_web);
    // Recorded: both runs from their first to their last tick, minus the one-minute gap.
    assert_eq!(h.recorded_ms, (D - 60_000 + 5000) as u64);
    assert_eq!(
        h.gaps[&GapReason::Asleep],
        Gaps {
            count: 1,
            ms: 60_000
        }
    );
    assert_eq!(
        h.gaps[&GapReason::NotRunning].ms,
        D as u64,
        "from the first run's last tick to the second's start"
    );

    // Retention deletes every raw and hourly row: nothing a counter reads changes.
    drop(conn);
    let mut s = Synth::create(&path, Synth::utc_days).expect("reopen");
    s.retention(Cutoffs {
        raw_before_ms: Some(T0 + 10 * D),
        hourly_before: Some((T0 + 10 * D) / 1000),
    })
    .expect("retention");
    let conn = crate::store::open(&path, crate::store::Create::Never).expect("open");
    let n: i64 = conn
        .query_row("SELECT (SELECT count(*) FROM samples) + (SELECT count(*) FROM hourly) + (SELECT count(*) FROM web_hourly)", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 0, "retention removed the raw and hourly rows");
    assert_eq!(history(&conn).expect("after"), h);
}

#[test]
fn the_recorder_facts_come_from_the_last_run_and_the_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = fixture(dir.path());
    let conn = crate::store::open(&path, crate::store::Create::Never).expect("open");
    let r = recorder(&conn, &path, T0 + 3 * D).expect("recorder");
    assert_eq!(r.state, RecorderState::Stopped);
    assert!(!r.running);
    assert_eq!(r.last_tick_ms, Some(T0 + 2 * D + 5000));
    assert_eq!(r.started_ms, Some(T0 + 2 * D));
    assert_eq!(r.source.as_deref(), Some("synthetic"));
    assert_eq!(r.interval_ms, Some(5000));
    let lock =
        crate::store::lock::RecorderLock::acquire(&path, "2026-01-03T00:00:00Z").expect("lock");
    let r = recorder(&conn, &path, T0 + 2 * D + 10_000).expect("recorder");
    assert!(r.running);
    assert_eq!(r.state, RecorderState::Running);
    drop(lock);
}

#[test]
fn members_are_stored_and_the_exposition_uses_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = fixture(dir.path());
    let mut conn = crate::store::open(&path, crate::store::Create::Never).expect("open");
    let limits = Limits {
        apps: 1,
        websites: 1,
        networks: 1,
        min_bytes: 0,
    };
    let tx = conn.transaction().expect("tx");
    let h = history(&tx).expect("history");
    let t = members::tracked(&tx).expect("tracked");
    let j = joins(&h, &t, &limits, 5);
    assert_eq!(
        j.iter()
            .map(|j| (j.family, j.name.as_str()))
            .collect::<Vec<_>>(),
        [(Family::App, "Firefox"), (Family::Website, "bbc.co.uk")]
    );
    members::add(&tx, &j, 5).expect("add");
    tx.commit().expect("commit");
    let t = members::tracked(&conn).expect("tracked");
    assert_eq!(t.since_ms, Some(5));
    let m = metrics(&h, &recorder_never(), &t, &limits);
    let find = |family: &str, label: (&str, &str)| -> Vec<u64> {
        m.families
            .iter()
            .find(|f| f.name == family)
            .expect(family)
            .samples
            .iter()
            .filter(|s| s.labels.iter().any(|(k, v)| *k == label.0 && v == label.1))
            .map(|s| match s.value {
                Value::Int(v) => v,
                Value::Float(f) => f as u64,
            })
            .collect()
    };
    assert_eq!(find("netmon_app_bytes", ("app", "Firefox")), [10_000, 40]);
    assert_eq!(
        find("netmon_app_bytes", ("app", "(other)")),
        [28 + 70, 12 + 30]
    );
    assert_eq!(
        find("netmon_website_bytes", ("domain", "bbc.co.uk")),
        [3600, 36]
    );
    assert_eq!(
        find("netmon_website_bytes", ("domain", "(no active tab)")),
        [1000, 4]
    );
    assert_eq!(
        find(
            "netmon_unattributed_bytes",
            ("reason", "socket closed before it was seen")
        ),
        [20, 4]
    );
    assert_eq!(
        find("netmon_bytes", ("direction", "in")),
        [10_000 + 98 + 20]
    );
    assert_eq!(find("netmon_recorder_state", ("state", "never")), [1]);
    assert_eq!(find("netmon_gaps", ("reason", "asleep")), [1]);
}

#[test]
fn recorded_time_never_goes_back_across_stops_restarts_failures_and_sleep() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("n.db");
    let mut s = Synth::create(&path, Synth::utc_days).expect("synth");
    let conn = crate::store::open(&path, crate::store::Create::Never).expect("open");
    let mut last = 0u64;
    let mut check = |what: &str| {
        let now = history(&conn).expect("history").recorded_ms;
        assert!(
            now >= last,
            "{what}: recorded time went from {last} to {now}"
        );
        last = now;
    };
    s.begin_run(T0, 5000).expect("run");
    s.tick(T0, 0, &[]).expect("baseline");
    s.tick(T0 + 5000, 5000, &[]).expect("tick");
    check("ticks");
    // Ticks fail from T0+5 s; the streak's gap is written before the tick that ends it.
    s.gap(T0 + 5000, T0 + 30_000, "5 tick(s) failed: nettop exited")
        .expect("gap");
    check("failure gap");
    s.tick(T0 + 30_000, 5000, &[]).expect("tick");
    check("recovered");
    // The machine sleeps: the gap starts where the last tick's interval ends.
    s.gap(
        T0 + 35_000,
        T0 + 600_000,
        "machine asleep or clock stepped forward",
    )
    .expect("gap");
    check("asleep");
    s.tick(T0 + 605_000, 5000, &[]).expect("tick");
    check("woke");
    s.end_run(T0 + 608_000).expect("stop");
    check("stopped");
    s.begin_run(T0 + 700_000, 5000).expect("restart");
    check("restarted");
    s.tick(T0 + 700_500, 0, &[]).expect("baseline");
    s.tick(T0 + 705_500, 5000, &[]).expect("tick");
    check("ticking again");
    assert_eq!(
        last,
        5000 + 5000 + 5000 + 5000,
        "what was recorded, and nothing else"
    );
}

/// The wall clock stepped back a minute and forward again (an NTP correction of a wrong
/// step): the recorder's gaps then start before ticks already counted, in this run or in an
/// earlier one, and must not take that time back (a counter that drops is a reset to
/// Prometheus, and `increase()` would count the whole of it again).
#[test]
fn recorded_time_never_goes_back_when_the_clock_steps_back_and_forward() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("n.db");
    let mut s = Synth::create(&path, Synth::utc_days).expect("synth");
    let conn = crate::store::open(&path, crate::store::Create::Never).expect("open");
    let mut last = 0u64;
    let mut check = |what: &str| {
        let now = history(&conn).expect("history").recorded_ms;
        assert!(
            now >= last,
            "{what}: recorded time went from {last} to {now}"
        );
        last = now;
    };
    s.begin_run(T0, 5000).expect("run");
    s.tick(T0, 0, &[]).expect("baseline");
    for i in 1..=12 {
        s.tick(T0 + i * 5000, 5000, &[]).expect("tick");
    }
    check("a minute of ticks");
    // Stepped back 60 s: ticks are labelled inside the minute already counted.
    s.tick(T0 + 5000, 5000, &[]).expect("tick");
    s.tick(T0 + 10_000, 5000, &[]).expect("tick");
    check("after the step back");
    // Stepped forward 60 s again: the recorder writes the jump as a gap from where its last
    // tick's interval ended, before the tick after it.
    s.gap(
        T0 + 15_000,
        T0 + 75_000,
        "machine asleep or clock stepped forward",
    )
    .expect("gap");
    check("the forward step's gap");
    s.tick(T0 + 75_000, 5000, &[]).expect("tick");
    check("ticking on");
    // Ticks fail from a time the clock had already passed once (a failure streak's gap starts
    // at the last tick the recorder committed).
    s.tick(T0 + 40_000, 5000, &[]).expect("stepped back again");
    s.gap(T0 + 40_000, T0 + 70_000, "6 tick(s) failed: nettop exited")
        .expect("gap");
    check("a failure streak inside counted time");
    s.end_run(T0 + 76_000).expect("stop");
    // A new run after a clock step back; its own gap lies inside the first run's time.
    s.begin_run(T0 + 20_000, 5000).expect("restart");
    s.tick(T0 + 20_000, 0, &[]).expect("baseline");
    s.tick(T0 + 25_000, 5000, &[]).expect("tick");
    s.gap(T0 + 25_000, T0 + 50_000, "5 tick(s) failed: nettop exited")
        .expect("gap");
    check("the second run's gap");
    s.tick(T0 + 80_000, 5000, &[]).expect("tick");
    check("the second run passes the first");
    // Ticks covered [T0, T0 + 80 s]; of the forward step's gap only the part past the
    // minute counted before it stays, and the failure gaps lay wholly inside counted time.
    assert_eq!(last, 80_000 - 15_000);
}

#[test]
fn running_sums_equal_a_full_read_of_the_daily_totals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("n.db");
    let mut s = Synth::create(&path, Synth::utc_days).expect("synth");
    let conn = crate::store::open(&path, crate::store::Create::Never).expect("open");
    // No tick yet: the running sums start from nothing and take every later tick.
    let mut running = sums(&conn).expect("empty");
    assert_eq!(running.upto, None);
    s.begin_run(T0, 5000).expect("run");
    s.tick(T0, 0, &[]).expect("baseline");
    for i in 1..=30i64 {
        let at = T0 + i * 2 * H;
        let mut flows = vec![Flow::new("Firefox", 10, 100 * i as u64, 1)];
        if i % 3 == 0 {
            flows.push(Flow::new(&format!("tool-{i}"), 100 + i as u32, 7, 7));
        }
        s.tick_with_web(
            at,
            5000,
            &flows,
            &[WebFlow::new(
                "Firefox",
                "www.bbc.co.uk",
                Method::Connection,
                5,
                1,
            )],
        )
        .expect("tick");
        if i % 4 == 0 {
            let next = sums_since(&conn, &running)
                .expect("since")
                .expect("continues");
            assert_eq!(next, sums(&conn).expect("full"), "after tick {i}");
            running = next;
        }
    }
    // Retention deletes the tick the running sums stopped at: they cannot be continued.
    s.retention(Cutoffs {
        raw_before_ms: Some(T0 + 61 * H),
        hourly_before: None,
    })
    .expect("retention");
    assert_eq!(sums_since(&conn, &running).expect("since"), None);
    let full = sums(&conn).expect("full");
    assert_eq!(
        history_from(&conn, &full).expect("history"),
        history(&conn).expect("history")
    );
    assert_eq!(
        full.apps.values().map(|b| b.bytes_in).sum::<u64>(),
        100 * 465 + 7 * 10
    );
}

fn net(
    key: Option<&str>,
    interface: &str,
    kind: &'static str,
    bin: u64,
    bout: u64,
) -> InterfaceTraffic {
    InterfaceTraffic {
        interface: interface.into(),
        kind,
        network: key.map(|k| Network {
            key: k.into(),
            label: format!("label of {k}"),
        }),
        bytes_in: bin,
        bytes_out: bout,
    }
}

fn ns(network: &str, interface: &str, kind: &str) -> String {
    NetSeries {
        network: network.into(),
        interface: interface.into(),
        kind: kind.into(),
    }
    .name()
}

#[test]
fn a_network_series_name_round_trips_whatever_the_ssid_holds() {
    for key in [
        "wifi:Home",
        "wifi:tab\there\nand \"quotes\"",
        "gw:aa:bb",
        "",
    ] {
        let s = NetSeries {
            network: key.into(),
            interface: "wlan0".into(),
            kind: "wifi".into(),
        };
        assert_eq!(NetSeries::parse(&s.name()), Some(s));
    }
    assert_eq!(NetSeries::parse("no tabs"), None);
}

#[test]
fn network_pairs_beyond_the_cap_go_to_other_per_kind_and_add_up() {
    let mut networks = BTreeMap::new();
    networks.insert(ns("gw:01", "eth0", "ethernet"), b(9_000, 900));
    networks.insert(ns("wifi:Home", "wlan0", "wifi"), b(5_000, 500));
    networks.insert(ns("wifi:Cafe", "wlan0", "wifi"), b(2_000, 200));
    networks.insert(ns("if:veth1", "veth1", "bridge"), b(700, 70));
    networks.insert(ns(LOOPBACK, "lo", "loopback"), b(50, 50));
    let h = History {
        networks,
        network_names: [("gw:01".to_string(), "Office".to_string())].into(),
        caps: vec![CapGauge {
            network: "gw:01".into(),
            period: "month".into(),
            cap_bytes: 20_000,
            used_bytes: 9_900,
        }],
        ..History::default()
    };
    let limits = Limits {
        networks: 2,
        min_bytes: 0,
        ..Limits::default()
    };
    let mut t = Tracked::default();
    let j = joins(&h, &t, &limits, 1);
    apply(&mut t, &j, 1);
    assert_eq!(t.count(Family::Network), 2, "the two largest pairs");
    let m = metrics(&h, &recorder_never(), &t, &limits);
    let fam = |name: &str| {
        m.families
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let series: Vec<(String, String, String, String, u64)> = fam("netmon_network_bytes")
        .samples
        .iter()
        .map(|s| {
            let l = |k: &str| {
                s.labels
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let Value::Int(v) = s.value else {
                panic!("bytes are integers")
            };
            (l("network"), l("interface"), l("kind"), l("direction"), v)
        })
        .collect();
    let ins: Vec<(&str, &str, &str, u64)> = series
        .iter()
        .filter(|s| s.3 == "in")
        .map(|s| (s.0.as_str(), s.1.as_str(), s.2.as_str(), s.4))
        .collect();
    assert_eq!(
        ins,
        [
            ("gw:01", "eth0", "ethernet", 9_000),
            ("wifi:Home", "wlan0", "wifi", 5_000),
            ("(other)", "(other)", "bridge", 700),
            ("(other)", "(other)", "loopback", 50),
            ("(other)", "(other)", "wifi", 2_000),
        ]
    );
    let info = &fam("netmon_network").samples;
    assert_eq!(info.len(), 1, "only networks with a name known: {info:?}");
    assert_eq!(
        info[0].labels,
        [
            ("network", "gw:01".to_string()),
            ("name", "Office".to_string())
        ]
    );
    assert_eq!(
        fam("netmon_network_cap_bytes").samples[0].value,
        Value::Int(20_000)
    );
    assert_eq!(
        fam("netmon_network_cap_used_bytes").samples[0].labels,
        [
            ("network", "gw:01".to_string()),
            ("period", "month".to_string())
        ]
    );
}

#[test]
fn running_network_sums_equal_a_full_read_of_net_daily() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("n.db");
    let mut s = Synth::create(&path, Synth::utc_days).expect("synth");
    let conn = crate::store::open(&path, crate::store::Create::Never).expect("open");
    s.begin_run(T0, 5000).expect("run");
    s.tick(T0, 0, &[]).expect("baseline");
    let mut running = sums(&conn).expect("start");
    for i in 1..=20i64 {
        let at = T0 + i * 3 * H;
        let key = if i % 2 == 0 { "gw:01" } else { "wifi:Home" };
        let traffic = NetTraffic {
            interfaces: vec![
                net(Some(key), "eth0", "ethernet", 1000 * i as u64, 10),
                net(None, "lo", "loopback", 5, 5),
                net(
                    Some(&format!("if:veth{i}")),
                    &format!("veth{i}"),
                    "bridge",
                    3,
                    0,
                ),
            ],
            app_network: None,
        };
        s.tick_with_net(at, 5000, &[Flow::new("curl", 10, 1, 1)], &traffic)
            .expect("tick");
        if i % 5 == 0 {
            let next = sums_since(&conn, &running)
                .expect("since")
                .expect("continues");
            assert_eq!(next, sums(&conn).expect("full"), "after tick {i}");
            running = next;
        }
    }
    let h = history(&conn).expect("history");
    assert_eq!(
        h.networks[&ns("gw:01", "eth0", "ethernet")],
        b(1000 * 110, 100)
    );
    assert_eq!(
        h.networks[&ns("wifi:Home", "eth0", "ethernet")],
        b(1000 * 100, 100)
    );
    assert_eq!(h.networks[&ns(LOOPBACK, "lo", "loopback")], b(100, 100));
    assert_eq!(h.networks.len(), 3 + 20, "one pair per veth");
    assert_eq!(h.network_names["gw:01"], "label of gw:01");
}
