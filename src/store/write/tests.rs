use super::*;
use crate::source::CounterKey;
use crate::store::open::open_in_memory;
use crate::store::retention;
use crate::tick::Flow;

fn writer() -> Writer {
    Writer::new(open_in_memory().expect("db"))
}

fn run(w: &mut Writer, at: i64) -> i64 {
    w.begin_run(&RunInfo {
        started_at_ms: at,
        source: "nettop".into(),
        interval_ms: 5000,
        pid: 1,
        hostname: None,
        boot_id: Some("boot-a".into()),
        notes: vec![],
    })
    .expect("run")
}

fn proc(pid: u32, name: &str, app: &str) -> ProcessRecord {
    ProcessRecord {
        pid: Some(pid),
        name: name.into(),
        start_time: None,
        exe: None,
        uid: None,
        app: App {
            name: app.into(),
            path: Some(format!("/Applications/{app}.app")),
        },
        kind: AppKind::Application,
        container: None,
    }
}

fn traffic(p: ProcessRecord, bin: u64, bout: u64) -> ProcessTraffic {
    ProcessTraffic {
        interfaces: Vec::new(),
        networks: Vec::new(),
        process: p,
        bytes_in: bin,
        bytes_out: bout,
        flows: vec![],
    }
}

fn tick(
    w: &mut Writer,
    run_id: i64,
    at: i64,
    t: &[ProcessTraffic],
    state: &StateChanges,
) -> TickStats {
    w.commit_tick(&Tick {
        run_id,
        at_ms: at,
        elapsed_ms: 5000,
        day: at.div_euclid(86_400_000) * 86_400,
        traffic: t,
        web: &[],
        state,
        net: None,
    })
    .expect("tick")
}

fn one(w: &Writer, sql: &str) -> i64 {
    w.conn().query_row(sql, [], |r| r.get(0)).expect(sql)
}

const H: i64 = 3_600_000;
const T0: i64 = 1_763_942_400_000; // 2025-11-24T00:00:00Z

#[test]
fn a_tick_writes_samples_rollups_state_and_the_runs_last_tick() {
    let mut w = writer();
    let r = run(&mut w, T0);
    let helper1 = proc(10, "Google Chrome H", "Google Chrome");
    let helper2 = proc(11, "Google Chrome H", "Google Chrome");
    let state = StateChanges {
        upsert: vec![(CounterKey("k".into()), 5, 6)],
        remove: vec![],
    };
    let s = tick(
        &mut w,
        r,
        T0 + 1000,
        &[
            traffic(helper1.clone(), 100, 10),
            traffic(helper2, 50, 5),
            traffic(proc(12, "curl", "curl"), 0, 0),
        ],
        &state,
    );
    assert_eq!(s.sample_rows, 2, "zero rows are not stored");
    assert_eq!((s.bytes_in, s.bytes_out), (150, 15));
    tick(
        &mut w,
        r,
        T0 + 6000,
        &[traffic(helper1, 1, 1)],
        &StateChanges::default(),
    );
    assert_eq!(
        one(&w, "SELECT count(*) FROM apps"),
        1,
        "helpers are one application"
    );
    assert_eq!(one(&w, "SELECT count(*) FROM processes"), 2);
    assert_eq!(one(&w, "SELECT sum(bytes_in) FROM samples"), 151);
    assert_eq!(one(&w, "SELECT bytes_in FROM hourly"), 151);
    assert_eq!(one(&w, "SELECT bytes_out FROM daily"), 16);
    assert_eq!(one(&w, "SELECT first_at FROM hourly"), T0 + 1000);
    assert_eq!(one(&w, "SELECT last_at FROM daily"), T0 + 6000);
    // State goes to the tick's journal row, and into counter_state when folded.
    assert_eq!(one(&w, "SELECT count(*) FROM counter_journal"), 1);
    assert_eq!(one(&w, "SELECT count(*) FROM counter_state"), 0);
    w.fold_state().expect("fold");
    assert_eq!(
        one(&w, "SELECT bytes_out FROM counter_state WHERE key = 'k'"),
        6
    );
    assert_eq!(one(&w, "SELECT count(*) FROM counter_journal"), 0);
    assert_eq!(
        one(&w, &format!("SELECT last_tick_at FROM runs WHERE id = {r}")),
        T0 + 6000
    );
    assert_eq!(
        one(
            &w,
            &format!("SELECT first_tick_at FROM runs WHERE id = {r}")
        ),
        T0 + 1000
    );
    assert_eq!(one(&w, "SELECT count(*) FROM ticks"), 2);
}

#[test]
fn flows_are_stored_per_remote() {
    let mut w = writer();
    let r = run(&mut w, T0);
    let remote = |h: &str| RemoteRecord {
        proto: "tcp",
        host: h.into(),
        port: 443,
    };
    let t = ProcessTraffic {
        interfaces: Vec::new(),
        networks: Vec::new(),
        process: proc(1, "Safari", "Safari"),
        bytes_in: 30,
        bytes_out: 3,
        flows: vec![
            Flow {
                remote: remote("192.0.2.1"),
                bytes_in: 20,
                bytes_out: 2,
            },
            Flow {
                remote: remote("2001:db8::1"),
                bytes_in: 10,
                bytes_out: 1,
            },
        ],
    };
    let s = tick(
        &mut w,
        r,
        T0,
        std::slice::from_ref(&t),
        &StateChanges::default(),
    );
    tick(&mut w, r, T0 + 5000, &[t], &StateChanges::default());
    assert_eq!(s.flow_rows, 2);
    assert_eq!(one(&w, "SELECT count(*) FROM remotes"), 2);
    let flows: u64 = w
        .conn()
        .prepare("SELECT flows FROM ticks WHERE flows IS NOT NULL")
        .expect("prepare")
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .expect("query")
        .map(|b| {
            crate::store::flows::decode(&b.expect("row"))
                .expect("decodes")
                .iter()
                .map(|f| f.2)
                .sum::<u64>()
        })
        .sum();
    assert_eq!(flows, 60, "the connections are in their ticks' rows");
    assert_eq!(one(&w, "SELECT count(*) FROM flow_samples"), 0);
}

#[test]
fn a_run_that_never_stopped_is_marked_crashed_and_the_downtime_is_a_gap() {
    let mut w = writer();
    let r1 = run(&mut w, T0);
    tick(&mut w, r1, T0 + 5000, &[], &StateChanges::default());
    // No end_run: the process was killed.
    let r2 = run(&mut w, T0 + 60_000);
    assert_eq!(
        w.conn()
            .query_row(
                &format!("SELECT stop_reason, stopped_at FROM runs WHERE id = {r1}"),
                [],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            )
            .expect("r1"),
        ("crashed".to_string(), T0 + 5000)
    );
    let gap: (i64, i64, String) = w
        .conn()
        .query_row(
            &format!("SELECT start_at, end_at, reason FROM gaps WHERE run_id = {r2}"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("gap");
    assert_eq!(
        gap,
        (T0 + 5000, T0 + 60_000, "recorder crashed".to_string())
    );
    w.end_run(r2, T0 + 70_000, "signal SIGTERM").expect("end");
    let r3 = run(&mut w, T0 + 80_000);
    let reason: String = w
        .conn()
        .query_row(
            &format!("SELECT reason FROM gaps WHERE run_id = {r3}"),
            [],
            |r| r.get(0),
        )
        .expect("gap");
    assert_eq!(reason, "recorder not running");
}

#[test]
fn state_is_resumed_on_the_same_boot_and_discarded_after_a_reboot() {
    let mut w = writer();
    let r = run(&mut w, T0);
    assert!(w.load_state("boot-a", T0).expect("load").is_empty());
    let state = StateChanges {
        upsert: vec![
            (CounterKey("a".into()), 7, 8),
            (CounterKey("b".into()), 1, 1),
        ],
        remove: vec![],
    };
    tick(&mut w, r, T0 + 1000, &[], &state);
    tick(
        &mut w,
        r,
        T0 + 2000,
        &[],
        &StateChanges {
            upsert: vec![],
            remove: vec![CounterKey("b".into())],
        },
    );
    let saved = w.load_state("boot-a", T0 + 31_000).expect("load");
    assert_eq!(saved.len(), 1);
    assert_eq!((saved[0].bytes_in, saved[0].bytes_out), (7, 8));
    assert_eq!(saved[0].age, std::time::Duration::from_secs(30));
    assert!(
        w.load_state("boot-b", T0 + 40_000)
            .expect("load")
            .is_empty(),
        "a new boot restarted every counter"
    );
    assert_eq!(one(&w, "SELECT count(*) FROM counter_state"), 0);
    assert_eq!(one(&w, "SELECT count(*) FROM counter_journal"), 0);
}

#[test]
fn state_survives_a_crash_between_folds_and_after_one() {
    let k = |s: &str| CounterKey(s.into());
    let mut w = writer();
    let r = run(&mut w, T0);
    w.load_state("boot-a", T0).expect("load");
    let set = |pairs: &[(&str, u64)]| StateChanges {
        upsert: pairs.iter().map(|(n, v)| (k(n), *v, *v)).collect(),
        remove: vec![],
    };
    tick(&mut w, r, T0 + 1000, &[], &set(&[("a", 1), ("b", 1)]));
    w.fold_state().expect("fold");
    tick(&mut w, r, T0 + 2000, &[], &set(&[("a", 5)]));
    tick(
        &mut w,
        r,
        T0 + 3000,
        &[],
        &StateChanges {
            upsert: vec![(k("c"), 9, 9)],
            remove: vec![k("b")],
        },
    );
    // No fold since: a kill -9 here leaves two journal rows over the folded state.
    assert_eq!(one(&w, "SELECT count(*) FROM counter_journal"), 2);
    let conn = std::mem::replace(w.conn_mut(), open_in_memory().expect("spare"));
    let mut again = Writer::new(conn);
    let mut saved: Vec<_> = again
        .load_state("boot-a", T0 + 4000)
        .expect("load")
        .into_iter()
        .map(|s| (s.key.0, s.bytes_in))
        .collect();
    saved.sort();
    assert_eq!(saved, vec![("a".to_string(), 5), ("c".to_string(), 9)]);
    assert_eq!(
        one(&again, "SELECT count(*) FROM counter_journal"),
        0,
        "replayed and folded"
    );
}

#[test]
fn retention_keeps_rollups_deletes_old_raw_rows_and_records_the_boundaries() {
    let mut w = writer();
    let r = run(&mut w, T0);
    let p = proc(1, "curl", "curl");
    // Ten days of one tick an hour.
    for h in 0..240 {
        tick(
            &mut w,
            r,
            T0 + h * H + 1,
            &[traffic(p.clone(), 10, 1)],
            &StateChanges::default(),
        );
    }
    let now = T0 + 240 * H;
    let policy = retention::Policy {
        raw: Some(std::time::Duration::from_secs(7 * 86_400)),
        hourly: Some(std::time::Duration::from_secs(8 * 86_400)),
    };
    let cut = retention::cutoffs(&policy, now, |s| s.div_euclid(86_400) * 86_400);
    let stats = retention::apply(w.conn_mut(), &cut).expect("retention");
    assert_eq!(
        stats.ticks, 72,
        "three days of hourly ticks are past the 7-day window"
    );
    assert_eq!(stats.samples, 72);
    assert_eq!(one(&w, "SELECT min(at) FROM ticks"), T0 + 72 * H + 1);
    assert_eq!(
        one(&w, "SELECT sum(bytes_in) FROM daily"),
        2400,
        "daily totals are never deleted"
    );
    assert_eq!(
        one(&w, "SELECT count(*) FROM hourly"),
        192,
        "hours before the 8-day midnight are gone"
    );
    let raw_from: i64 = crate::store::meta::get(w.conn(), crate::store::meta::Key::RawFromMs)
        .expect("meta")
        .expect("set")
        .parse()
        .expect("int");
    assert_eq!(raw_from, T0 + 72 * H);
    // Raw + hourly + daily still add up to the whole history when stitched at the boundaries.
    let hourly_from: i64 = crate::store::meta::get(w.conn(), crate::store::meta::Key::HourlyFromS)
        .expect("meta")
        .expect("set")
        .parse()
        .expect("int");
    let raw: i64 = one(&w, "SELECT sum(bytes_in) FROM samples");
    let mid: i64 = w
        .conn()
        .query_row(
            "SELECT coalesce(sum(bytes_in), 0) FROM hourly WHERE hour >= ?1 AND hour < ?2",
            [hourly_from, raw_from / 1000],
            |r| r.get(0),
        )
        .expect("mid");
    let old: i64 = w
        .conn()
        .query_row(
            "SELECT coalesce(sum(bytes_in), 0) FROM daily WHERE day < ?1",
            [hourly_from],
            |r| r.get(0),
        )
        .expect("old");
    assert_eq!(raw + mid + old, 2400);
}

#[test]
fn retention_shrinks_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("n.db");
    let mut w =
        Writer::new(crate::store::open(&path, crate::store::Create::IfMissing).expect("open"));
    let r = run(&mut w, T0);
    let traffic: Vec<_> = (0..200)
        .map(|i| traffic(proc(i, &format!("p{i}"), &format!("a{i}")), 1 + i as u64, 1))
        .collect();
    for t in 0..200 {
        tick(&mut w, r, T0 + t * 5000, &traffic, &StateChanges::default());
    }
    w.conn()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("ckpt");
    let pages = |w: &Writer| one(w, "PRAGMA page_count");
    let before = pages(&w);
    let cut = retention::Cutoffs {
        raw_before_ms: Some(T0 + 1_000 * H),
        hourly_before: None,
    };
    retention::apply(w.conn_mut(), &cut).expect("retention");
    let after = pages(&w);
    assert!(after < before / 2, "pages {before} -> {after}");
}

#[test]
fn web_rows_follow_the_same_rollups_and_retention_as_apps() {
    use crate::store::web::{self as ingest, Heartbeat, Observation};
    use crate::tick::{HostTraffic, Method};
    let mut w = writer();
    let r = run(&mut w, T0);
    let p = proc(1, "firefox", "Firefox");
    let web = |host: &str, method, i| HostTraffic {
        app: p.app.clone(),
        host: host.into(),
        method,
        bytes_in: i,
        bytes_out: 1,
    };
    // Ten days of one tick an hour, each with a heartbeat and an observation.
    for h in 0..240 {
        let at = T0 + h * H + 1;
        w.commit_tick(&Tick {
            run_id: r,
            at_ms: at,
            elapsed_ms: 5000,
            day: at.div_euclid(86_400_000) * 86_400,
            traffic: &[traffic(p.clone(), 10, 2)],
            web: &[
                web("a.example", Method::Connection, 6),
                web("b.example", Method::ActiveTab, 3),
                web("", Method::None, 1),
            ],
            state: &StateChanges::default(),
            net: None,
        })
        .expect("tick");
        ingest::record_heartbeats(
            w.conn_mut(),
            &[Heartbeat {
                browser: "Firefox".into(),
                host: Some(format!("h{h}.example")),
                time_ms: at,
                duration_ms: 1000,
                private: false,
            }],
            at,
        )
        .expect("heartbeat");
        ingest::record_observations(
            w.conn_mut(),
            &[Observation {
                browser: "Firefox".into(),
                host: format!("h{h}.example"),
                ip: "192.0.2.1".parse().expect("ip"),
                time_ms: at,
            }],
            at,
        )
        .expect("observation");
    }
    assert_eq!(one(&w, "SELECT count(*) FROM web_hosts"), 3);
    assert_eq!(one(&w, "SELECT sum(bytes_in) FROM web_samples"), 2400);
    assert_eq!(one(&w, "SELECT sum(bytes_in) FROM web_hourly"), 2400);
    assert_eq!(one(&w, "SELECT sum(bytes_in) FROM web_daily"), 2400);
    assert_eq!(
        one(&w, "SELECT sum(bytes_in) FROM web_daily WHERE method = 1"),
        1440
    );
    let policy = retention::Policy {
        raw: Some(std::time::Duration::from_secs(7 * 86_400)),
        hourly: Some(std::time::Duration::from_secs(8 * 86_400)),
    };
    let now = T0 + 240 * H;
    let cut = retention::cutoffs(&policy, now, |s| s.div_euclid(86_400) * 86_400);
    let stats = retention::apply(w.conn_mut(), &cut).expect("retention");
    assert_eq!(
        stats.web_samples,
        72 * 3,
        "three rows a tick for three days"
    );
    assert_eq!(
        one(&w, "SELECT sum(bytes_in) FROM web_samples"),
        (240 - 72) * 10
    );
    assert_eq!(stats.web_hourly, 48 * 3, "two days of hourly rows");
    assert_eq!(one(&w, "SELECT sum(bytes_in) FROM web_daily"), 2400);
    // Stays and address reports go with the raw window (the 1-s stays end before it).
    assert_eq!(stats.web_activity, 72 + 72, "{stats:?}");
    assert_eq!(one(&w, "SELECT count(*) FROM web_activity"), 240 - 72);
    assert_eq!(one(&w, "SELECT count(*) FROM web_addresses"), 240 - 72);
}

#[test]
fn a_clock_stepped_back_does_not_move_the_runs_end_back() {
    let mut w = writer();
    let r = run(&mut w, 1_000_000);
    let none = StateChanges::default();
    tick(&mut w, r, 1_005_000, &[], &none);
    tick(&mut w, r, 1_010_000, &[], &none);
    tick(&mut w, r, 1_002_000, &[], &none); // the wall clock went back 8 s
    assert_eq!(one(&w, "SELECT last_tick_at FROM runs"), 1_010_000);
    assert_eq!(one(&w, "SELECT first_tick_at FROM runs"), 1_005_000);
    tick(&mut w, r, 1_015_000, &[], &none);
    assert_eq!(one(&w, "SELECT last_tick_at FROM runs"), 1_015_000);
}

// --- Applications split by network per connection (issue 15), rollups summed per batch.

fn network(key: &str) -> crate::tick::Network {
    crate::tick::Network {
        key: key.into(),
        label: key.into(),
    }
}

fn net_on(app_network: &str) -> NetTraffic {
    NetTraffic {
        interfaces: vec![crate::tick::InterfaceTraffic {
            interface: "en0".into(),
            kind: "wifi",
            network: Some(network(app_network)),
            bytes_in: 5000,
            bytes_out: 500,
        }],
        app_network: Some(network(app_network)),
    }
}

fn split_on(mut t: ProcessTraffic, key: &str, bin: u64, bout: u64) -> ProcessTraffic {
    t.networks.push(crate::tick::NetworkBytes {
        network: Some(network(key)),
        bytes_in: bin,
        bytes_out: bout,
    });
    t
}

/// Three ticks in one batch: A carries most, then B, then A again; curl has connections on
/// both networks in the first two.
fn split_batch(w: &mut Writer) -> i64 {
    let run_id = run(w, T0);
    let state = StateChanges::default();
    let curl = proc(1, "curl", "curl");
    let ticks: Vec<(Vec<ProcessTraffic>, NetTraffic)> = vec![
        (
            vec![split_on(traffic(curl.clone(), 1000, 100), "gw:b", 300, 30)],
            net_on("gw:a"),
        ),
        (
            vec![split_on(traffic(curl.clone(), 500, 50), "gw:a", 200, 20)],
            net_on("gw:b"),
        ),
        (vec![traffic(curl, 100, 10)], net_on("gw:a")),
    ];
    let batch: Vec<(Tick<'_>, &[Gap])> = ticks
        .iter()
        .enumerate()
        .map(|(i, (t, n))| {
            (
                Tick {
                    run_id,
                    at_ms: T0 + 1000 + i as i64 * 5000,
                    elapsed_ms: 5000,
                    day: T0 / 1000,
                    traffic: t,
                    web: &[],
                    state: &state,
                    net: Some(n),
                },
                &[][..],
            )
        })
        .collect();
    w.commit_batch(&batch).expect("batch");
    run_id
}

#[test]
fn bytes_on_another_network_than_the_ticks_are_stored_in_its_blob_and_its_rollups() {
    let mut w = writer();
    split_batch(&mut w);
    let id = |key: &str| one(&w, &format!("SELECT id FROM networks WHERE key = '{key}'"));
    let (a, b) = (id("gw:a"), id("gw:b"));
    let pid = one(&w, "SELECT id FROM processes");
    let blobs: Vec<Vec<u8>> = {
        let mut st = w
            .conn()
            .prepare("SELECT net FROM ticks ORDER BY id")
            .expect("sql");
        st.query_map([], |r| r.get(0))
            .expect("q")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    let d: Vec<networks::Decoded> = blobs
        .iter()
        .map(|b| networks::decode(b).expect("decodes"))
        .collect();
    assert_eq!(
        (d[0].app_network, d[0].split.clone()),
        (a, vec![(pid, b, 300, 30)])
    );
    assert_eq!(
        (d[1].app_network, d[1].split.clone()),
        (b, vec![(pid, a, 200, 20)])
    );
    assert_eq!((d[2].app_network, d[2].split.clone()), (a, vec![]));
    // The hour's and the day's primary network is A (the first tick's); curl's bytes on B are
    // 300/30 (tick 1, per connection) + 300/30 (tick 2's rest, on its busiest network B).
    for (table, col) in [("app_net_hourly", "hour"), ("app_net_daily", "day")] {
        let rows: Vec<(i64, i64, i64)> = {
            let mut st = w
                .conn()
                .prepare(&format!(
                    "SELECT network_id, bytes_in, bytes_out FROM {table} ORDER BY {col}, network_id"
                ))
                .expect("sql");
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .expect("q")
                .collect::<Result<_, _>>()
                .expect("rows")
        };
        assert_eq!(rows, vec![(b, 600, 60)], "{table}");
    }
    assert_eq!(one(&w, "SELECT count(*) FROM net_primary"), 2);
    assert_eq!(one(&w, "SELECT sum(bytes_in) FROM hourly"), 1600);
    // Interface rows of the batch summed per bucket: en0 on A twice, on B once.
    assert_eq!(
        one(
            &w,
            &format!("SELECT bytes_in FROM net_hourly WHERE network_id = {a}")
        ),
        10_000
    );
    assert_eq!(
        one(
            &w,
            &format!("SELECT bytes_in FROM net_daily WHERE network_id = {b}")
        ),
        5000
    );
}

#[test]
fn a_batch_upserts_each_network_rollup_row_once() {
    // Count the statements that reach the rollup tables: a trigger counts each upsert.
    let mut w = writer();
    w.conn()
        .execute_batch(
            "CREATE TEMP TABLE hits(t TEXT);
             CREATE TEMP TRIGGER nh AFTER UPDATE ON main.net_hourly BEGIN INSERT INTO hits VALUES ('nh'); END;
             CREATE TEMP TRIGGER ah AFTER UPDATE ON main.app_net_hourly BEGIN INSERT INTO hits VALUES ('ah'); END;",
        )
        .expect("triggers");
    split_batch(&mut w);
    // Three ticks, two networks: summed first, each row inserted once and never updated.
    assert_eq!(one(&w, "SELECT count(*) FROM hits"), 0);
    assert_eq!(one(&w, "SELECT count(*) FROM net_hourly"), 2);
}
