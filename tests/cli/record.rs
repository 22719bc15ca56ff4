//! `netmon record` end to end, with a fake nettop replaying a scripted sequence: processes
//! that start, exit and reuse a pid, a counter reset, IPv6 and loopback connections, a garbage
//! line and a hang. Totals in the database must equal the scripted traffic exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::util::{Env, finish, record_nettop, signal, wait_until};

const H: &str = ",interface,state,bytes_in,bytes_out,\n";
/// Pids above Linux's pid_max, so no real process is ever found under them.
const SAFARI: &str = "Safari.5000001";
const CURL: &str = "curl.5000002";
const SSH: &str = "ssh.5000002";
const MAIL: &str = "Mail.5000003";

fn safari(c1: (u64, u64), v6: (u64, u64), lo: (u64, u64)) -> String {
    format!(
        "{SAFARI},,,{},{},\n\
         tcp4 192.0.2.1:50000<->198.51.100.10:443,en0,Established,{},{},\n\
         tcp6 2001:db8::1.50001<->2001:db8::2.443,en0,Established,{},{},\n\
         tcp4 127.0.0.1:50002<->127.0.0.1:8080,lo0,Established,{},{},\n",
        c1.0 + v6.0 + lo.0,
        c1.1 + v6.1 + lo.1,
        c1.0,
        c1.1,
        v6.0,
        v6.1,
        lo.0,
        lo.1
    )
}

fn mail(b: (u64, u64)) -> String {
    format!(
        "{MAIL},,,{},{},\ntcp4 192.0.2.1:50010<->203.0.113.5:993,en0,Established,{},{},\n",
        b.0, b.1, b.0, b.1
    )
}

fn curl(b: (u64, u64)) -> String {
    format!(
        "{CURL},,,{},{},\ntcp4 192.0.2.1:50020<->198.51.100.20:443,en0,Established,{},{},\n",
        b.0, b.1, b.0, b.1
    )
}

fn ssh(b: (u64, u64)) -> String {
    format!(
        "{SSH},,,{},{},\ntcp4 192.0.2.1:50030<->198.51.100.30:22,en0,Established,{},{},\n",
        b.0, b.1, b.0, b.1
    )
}

const LISTENER: &str = "launchd.1,,,0,0,\ntcp4 *:5900<->*:*,,Listen,,,\n";

/// Steps 1–4: the shared start of both scenarios.
fn first_four(env: &Env) {
    // 1: baselines only (nothing before the first tick is counted).
    env.step(
        1,
        "csv",
        &format!(
            "{H}{}{}{LISTENER}",
            safari((1000, 100), (0, 0), (500, 500)),
            mail((700, 70))
        ),
    );
    // 2: Safari +2000/+200 (v4) +100/+10 (v6), loopback moves but is not counted;
    //    Mail +100/+10; curl appears: counted from zero, +5000/+50.
    env.step(
        2,
        "csv",
        &format!(
            "{H}{}{}{}",
            safari((3000, 300), (100, 10), (900, 900)),
            mail((800, 80)),
            curl((5000, 50))
        ),
    );
    // 3: a garbage line; Safari +1000/+100 +50/+5; curl +1000/+10; Mail unchanged.
    env.step(
        3,
        "csv",
        &format!(
            "{H}{}%%% not nettop output %%%\n{}{}",
            safari((4000, 400), (150, 15), (900, 900)),
            mail((800, 80)),
            curl((6000, 60))
        ),
    );
    // 4: curl +500/+5; Mail +100/+10.
    env.step(
        4,
        "csv",
        &format!(
            "{H}{}{}{}",
            safari((4000, 400), (150, 15), (900, 900)),
            mail((900, 90)),
            curl((6500, 65))
        ),
    );
}

/// Per-app totals from the samples table.
fn app_totals(env: &Env) -> BTreeMap<String, (i64, i64)> {
    let conn = env.sql();
    let mut st = conn
        .prepare(
            "SELECT a.name, sum(s.bytes_in), sum(s.bytes_out) FROM samples s \
             JOIN processes p ON p.id = s.process_id JOIN apps a ON a.id = p.app_id GROUP BY a.name",
        )
        .expect("prepare");
    st.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn served_contains(env: &Env, line: &str) -> bool {
    std::fs::read_to_string(env.steps.join("served")).is_ok_and(|s| s.lines().any(|l| l == line))
}

fn kill_hung_fake(env: &Env) {
    let pid = std::fs::read_to_string(env.steps.join("hang.pid"))
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok());
    if let Some(pid) = pid {
        // SAFETY: kill(2) on the fake's own sleep, if it is still there.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[test]
fn scripted_traffic_is_recorded_exactly() {
    let env = Env::new();
    first_four(&env);
    // 5: curl exited; Mail's counter reset (same connection, lower value): +30/+3;
    //    Safari +100/+10.
    env.step(
        5,
        "csv",
        &format!(
            "{H}{}{}",
            safari((4100, 410), (150, 15), (900, 900)),
            mail((30, 3))
        ),
    );
    // 6: curl's pid is reused by ssh (new key): counted from zero, +400/+40; Mail +20/+2.
    env.step(
        6,
        "csv",
        &format!(
            "{H}{}{}{}",
            safari((4100, 410), (150, 15), (900, 900)),
            mail((50, 5)),
            ssh((400, 40))
        ),
    );
    // 7: nettop hangs and is killed at the sample timeout.
    env.step(7, "hang", "");
    // 8: Safari +1000/+100; ssh +200/+20. Repeated from here on: no more traffic.
    env.step(
        8,
        "csv",
        &format!(
            "{H}{}{}{}",
            safari((5100, 510), (150, 15), (900, 900)),
            mail((50, 5)),
            ssh((600, 60))
        ),
    );

    let child = env.spawn_record(&[
        "--source",
        "nettop",
        "--interval",
        "100ms",
        "--sample-timeout",
        "500ms",
    ]);
    assert!(
        wait_until(Duration::from_secs(30), || env.calls() >= 11),
        "recorder stalled at {} calls",
        env.calls()
    );
    signal(&child, libc::SIGTERM);
    let (code, stderr) = finish(child, Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("skipped a nettop line") && stderr.contains("line=6"),
        "garbage line logged with its number: {stderr}"
    );

    let totals = app_totals(&env);
    let expected: BTreeMap<String, (i64, i64)> = [
        ("Safari", (4250, 425)),
        ("curl", (6500, 65)),
        ("Mail", (250, 25)),
        ("ssh", (600, 60)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(totals, expected);

    // Rollups hold the same totals as the samples.
    assert_eq!(
        env.one("SELECT sum(bytes_in) FROM hourly"),
        4250 + 6500 + 250 + 600
    );
    assert_eq!(
        env.one("SELECT sum(bytes_out) FROM daily"),
        425 + 65 + 25 + 60
    );
    // The IPv6 connection is kept per remote.
    assert_eq!(
        netmon::store::flows::bytes_with(&env.sql(), "2001:db8::2", 443)
            .expect("flows")
            .0,
        150
    );
    assert_eq!(
        env.one("SELECT count(*) FROM remotes WHERE host = '127.0.0.1'"),
        0,
        "loopback is not counted"
    );
    // The hang became a gap, and the run ended cleanly.
    let gap: String = env
        .sql()
        .query_row("SELECT reason FROM gaps", [], |r| r.get(0))
        .expect("one gap");
    assert!(
        gap.contains("1 tick(s) failed") && gap.contains("killed"),
        "{gap}"
    );
    let reason: String = env
        .sql()
        .query_row("SELECT stop_reason FROM runs", [], |r| r.get(0))
        .expect("run");
    assert_eq!(reason, "signal SIGTERM");
    // The hung nettop was killed, not left behind.
    let pid: i32 = std::fs::read_to_string(env.steps.join("hang.pid"))
        .expect("hang pid")
        .trim()
        .parse()
        .expect("pid");
    assert!(!alive(pid), "the hung nettop {pid} is still running");
    // Every call is the one command FORMAT.md vouches for: one sample (-L 1), exact numbers
    // (-x), no name lookups (-n), the columns netmon reads (the fake refuses others, and
    // runs only with stdin an open pipe, as nettop needs).
    let calls = std::fs::read_to_string(env.steps.join("calls")).expect("calls");
    assert!(calls.lines().count() >= 7, "{calls}");
    assert!(
        calls
            .lines()
            .all(|l| l == "-L 1 -x -n -J interface,state,bytes_in,bytes_out"),
        "{calls}"
    );
}

#[test]
fn kill_9_and_restart_loses_and_double_counts_nothing() {
    let env = Env::new();
    first_four(&env);
    // 5: hangs; the recorder is killed with SIGKILL while waiting for it.
    env.step(5, "hang", "");
    // 6: first tick of the second run: Safari +100/+10 since the saved state; Mail reset
    //    (50/5 under 900/90): +50/+5; curl is gone; ssh started while nobody recorded, so
    //    this first reading is only its baseline.
    env.step(
        6,
        "csv",
        &format!(
            "{H}{}{}{}",
            safari((4100, 410), (150, 15), (900, 900)),
            mail((50, 5)),
            ssh((400, 40))
        ),
    );
    // 7: Safari +1000/+100; ssh +200/+20.
    env.step(
        7,
        "csv",
        &format!(
            "{H}{}{}{}",
            safari((5100, 510), (150, 15), (900, 900)),
            mail((50, 5)),
            ssh((600, 60))
        ),
    );

    let args = [
        "--source",
        "nettop",
        "--interval",
        "100ms",
        "--sample-timeout",
        "30s",
    ];
    let first = env.spawn_record(&args);
    assert!(
        wait_until(Duration::from_secs(30), || served_contains(&env, "5 hang")),
        "never reached the hang"
    );
    signal(&first, libc::SIGKILL);
    let (code, _) = finish(first, Duration::from_secs(10));
    assert_eq!(code, None, "killed by a signal");
    kill_hung_fake(&env);

    let second = env.spawn_record(&args);
    assert!(
        wait_until(Duration::from_secs(30), || env.calls() >= 9),
        "second run stalled"
    );
    signal(&second, libc::SIGINT);
    let (code, stderr) = finish(second, Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");

    let totals = app_totals(&env);
    // Everything that lived through the restart is exact.
    assert_eq!(totals.get("Safari"), Some(&(4250, 425)));
    assert_eq!(totals.get("Mail"), Some(&(250, 25)));
    assert_eq!(totals.get("curl"), Some(&(6500, 65)));
    // ssh started during the downtime: only what it did after the restart's baseline.
    assert_eq!(totals.get("ssh"), Some(&(200, 20)));

    let ok: String = env
        .sql()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(ok, "ok");
    let crashed = env.one("SELECT count(*) FROM runs WHERE stop_reason = 'crashed'");
    assert_eq!(crashed, 1);
    let gap = env.one("SELECT count(*) FROM gaps WHERE reason = 'recorder crashed'");
    assert_eq!(gap, 1);
}

#[test]
fn stop_signal_during_a_hung_sample_exits_promptly_and_kills_the_child() {
    let env = Env::new();
    env.step(1, "csv", &format!("{H}{}", mail((1, 1))));
    env.step(2, "hang", "");
    let child = env.spawn_record(&[
        "--source",
        "nettop",
        "--interval",
        "100ms",
        "--sample-timeout",
        "60s",
    ]);
    assert!(wait_until(Duration::from_secs(30), || served_contains(
        &env, "2 hang"
    )));
    signal(&child, libc::SIGINT);
    let (code, stderr) = finish(child, Duration::from_secs(5));
    assert_eq!(code, Some(0), "{stderr}");
    let pid: i32 = std::fs::read_to_string(env.steps.join("hang.pid"))
        .expect("pid")
        .trim()
        .parse()
        .expect("pid");
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "hung nettop left running"
    );
    let reason: String = env
        .sql()
        .query_row("SELECT stop_reason FROM runs", [], |r| r.get(0))
        .expect("run");
    assert_eq!(reason, "signal SIGINT");
}

#[test]
fn a_second_recorder_on_the_same_database_is_refused_with_the_first_ones_pid() {
    let env = Env::new();
    env.step(1, "csv", &format!("{H}{}", mail((1, 1))));
    let first = env.spawn_record(&["--source", "nettop", "--interval", "100ms"]);
    assert!(wait_until(Duration::from_secs(30), || env.calls() >= 2));
    let out = env
        .netmon()
        .args(["record", "--source", "nettop"])
        .output()
        .expect("second");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("pid {}", first.id())) && err.contains("already writing"),
        "{err}"
    );
    signal(&first, libc::SIGTERM);
    let (code, _) = finish(first, Duration::from_secs(10));
    assert_eq!(code, Some(0));
}

#[test]
fn a_missing_nettop_is_a_clear_error_that_points_at_the_linux_sources() {
    let env = Env::new();
    let out = env
        .netmon()
        .env("PATH", "/nonexistent")
        .args(["record", "--source", "nettop"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nettop was not found on PATH"), "{err}");
    if cfg!(target_os = "linux") {
        assert!(err.contains("--source auto, sockdiag or ebpf"), "{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn nettop_printing_usage_text_fails_the_tick_not_the_recorder() {
    let env = Env::new();
    env.step(1, "csv", "usage: nettop [-ncd] [-m <mode>] [-t <type>]\n");
    env.step(2, "csv", &format!("{H}{}", mail((10, 1))));
    env.step(3, "csv", &format!("{H}{}", mail((25, 2))));
    let child = env.spawn_record(&["--source", "nettop", "--interval", "100ms"]);
    assert!(wait_until(Duration::from_secs(30), || env.calls() >= 5));
    signal(&child, libc::SIGTERM);
    let (code, stderr) = finish(child, Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("no usable header"), "{stderr}");
    assert_eq!(app_totals(&env).get("Mail"), Some(&(15, 1)));
}

#[test]
fn a_nettop_that_exits_with_an_error_is_retried_and_its_stderr_logged() {
    let env = Env::new();
    env.step(1, "csv", &format!("{H}{}", mail((10, 1))));
    env.step(2, "fail", "nettop: sysctl failed\n");
    env.step(3, "csv", &format!("{H}{}", mail((30, 3))));
    let child = env.spawn_record(&["--source", "nettop", "--interval", "100ms"]);
    assert!(wait_until(Duration::from_secs(30), || env.calls() >= 5));
    signal(&child, libc::SIGTERM);
    let (code, stderr) = finish(child, Duration::from_secs(10));
    assert_eq!(code, Some(0));
    assert!(stderr.contains("sysctl failed"), "{stderr}");
    assert_eq!(app_totals(&env).get("Mail"), Some(&(20, 2)));
}

#[test]
fn the_start_line_names_source_database_and_interval() {
    let env = Env::new();
    env.step(1, "csv", &format!("{H}{}", mail((1, 1))));
    let out = env.netmon().args(record_nettop("2")).output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("netmon record:"))
        .expect("start line");
    assert!(
        line.contains("source nettop")
            && line.contains(&env.db.display().to_string())
            && line.contains("every 100ms"),
        "{line}"
    );
    assert!(out.stdout.is_empty(), "stdout carries only results");
    let mode = std::fs::metadata(&env.db)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()))
        .expect("db");
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn bad_record_options_are_user_errors() {
    let env = Env::new();
    let out = env
        .netmon()
        .args(["record", "--interval", "5x"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("e.g. 5s"));
    let out = env
        .netmon()
        .args(["record", "--keep-raw", "30d", "--keep-hourly", "7d"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--keep-hourly"));
}

/// Issue 16: a recorder killed inside its write window (SIGKILL: no chance to write) loses
/// nothing of a process that lives on (counters resume from the last written state), and of a
/// process that exited inside the window at most what it moved since the last write; nothing
/// is counted twice.
#[test]
fn issue_16_kill_9_inside_a_write_window_keeps_survivors_exact_and_bounds_the_exited_loss() {
    let env = Env::new();
    // Steps 1..=17: "keeper" +1000/+100 a step all along; "leaver" +500/+50 a step and gone
    // after step 14. Step 18 hangs: the recorder is killed waiting for it, with the ticks
    // after its last write unwritten. Steps 19..=21: keeper goes on.
    let keeper = |s: u64| format!("keeper.4100001,,,{},{},\n", s * 1000, s * 100);
    let leaver = |s: u64| format!("leaver.4100002,,,{},{},\n", s * 500, s * 50);
    const LEAVES_AFTER: u64 = 14;
    for s in 1..=17u64 {
        let rows = if s <= LEAVES_AFTER {
            format!("{H}{}{}", keeper(s), leaver(s))
        } else {
            format!("{H}{}", keeper(s))
        };
        env.step(s as usize, "csv", &rows);
    }
    env.step(18, "hang", "");
    for s in 19..=21u64 {
        env.step(s as usize, "csv", &format!("{H}{}", keeper(s)));
    }
    // Ten ticks per write (1 s / 100 ms): ticks 1-10 are written at the tenth, 11-17 are not.
    let first = env.spawn_record(&[
        "--source",
        "nettop",
        "--interval",
        "100ms",
        "--write-every",
        "1s",
        "--sample-timeout",
        "30s",
    ]);
    assert!(
        wait_until(Duration::from_secs(30), || served_contains(&env, "18 hang")),
        "never reached the hang"
    );
    signal(&first, libc::SIGKILL);
    let (code, _) = finish(first, Duration::from_secs(10));
    assert_eq!(code, None, "killed by a signal");
    kill_hung_fake(&env);
    // What the file holds now is what was written before the kill: whole batches only.
    let durable_ticks = env.one("SELECT count(*) FROM ticks") as u64;
    assert!(
        (1..17).contains(&durable_ticks),
        "the kill came inside a window, after a write: {durable_ticks} ticks written"
    );

    let second = env.spawn_record(&["--source", "nettop", "--interval", "100ms"]);
    assert!(
        wait_until(Duration::from_secs(30), || env.calls() >= 23),
        "second run stalled"
    );
    signal(&second, libc::SIGINT);
    let (code, stderr) = finish(second, Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");

    let totals = app_totals(&env);
    // The survivor is exact: its last counter less its first.
    assert_eq!(totals.get("keeper"), Some(&(20_000, 2_000)));
    // The leaver is counted up to the last written tick, never more than it moved.
    let (leaver_in, leaver_out) = totals
        .get("leaver")
        .map_or((0, 0), |&(i, o)| (i as u64, o as u64));
    let written_until = durable_ticks.min(LEAVES_AFTER);
    assert_eq!(
        (leaver_in, leaver_out),
        ((written_until - 1) * 500, (written_until - 1) * 50),
        "{durable_ticks} ticks were written before the kill"
    );
    let lost = (LEAVES_AFTER - 1) * 500 - leaver_in;
    assert!(
        lost <= (LEAVES_AFTER - written_until) * 500,
        "at most what it moved inside the unwritten window: lost {lost}"
    );
    let crashed = env.one("SELECT count(*) FROM runs WHERE stop_reason = 'crashed'");
    assert_eq!(crashed, 1);
}
