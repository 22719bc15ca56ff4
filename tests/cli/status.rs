//! `netmon status` must tell the truth about a running, a stopped, a crashed (SIGKILL) and a
//! stalled recorder, recorded with the fake nettop.

use std::time::Duration;

use predicates::prelude::*;
use serde_json::Value;

use crate::util::{Env, finish, record_nettop, signal, wait_until};

const STEP: &str = ",interface,state,bytes_in,bytes_out,\n\
    curl.5000002,,,{IN},{OUT},\n\
    tcp4 192.0.2.1:50020<->198.51.100.20:443,en0,Established,{IN},{OUT},\n";

fn step(env: &Env, n: usize, bytes_in: u64) {
    env.step(
        n,
        "csv",
        &STEP
            .replace("{IN}", &bytes_in.to_string())
            .replace("{OUT}", &(bytes_in / 10).to_string()),
    );
}

fn status_json(env: &Env) -> Value {
    let out = env
        .netmon()
        .args(["status", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "status --json is not JSON ({e}): {}",
            String::from_utf8_lossy(&out)
        )
    })
}

fn codes(v: &Value) -> Vec<String> {
    v["problems"]
        .as_array()
        .expect("problems array")
        .iter()
        .map(|p| p["code"].as_str().expect("code").to_string())
        .collect()
}

fn rows(v: &Value, table: &str) -> i64 {
    v["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["table"] == table)
        .and_then(|t| t["rows"].as_i64())
        .unwrap_or_else(|| panic!("no row count for {table}: {v}"))
}

/// Start a recorder and wait until it has committed a few samples with traffic.
fn running_recorder(env: &Env) -> std::process::Child {
    for n in 1..=4 {
        step(env, n, 1000 * n as u64);
    }
    let child = env.spawn_record(&["--source", "nettop", "--interval", "100ms"]);
    assert!(
        wait_until(Duration::from_secs(30), || {
            env.db.exists()
                && status_json(env)["tables"].as_array().is_some_and(|t| {
                    t.iter()
                        .any(|t| t["table"] == "samples" && t["rows"].as_i64() >= Some(3))
                })
        }),
        "the recorder committed no samples"
    );
    child
}

#[test]
fn a_running_recorder_is_reported_with_its_pid_source_and_last_sample() {
    let env = Env::new();
    let child = running_recorder(&env);
    let v = status_json(&env);
    let r = &v["recorder"];
    assert_eq!(r["state"], "running", "{v}");
    assert_eq!(r["pid"], child.id(), "{v}");
    assert_eq!(r["source"], "nettop");
    assert_eq!(r["interval_ms"], 100);
    assert!(
        r["since"].is_string() && r["last_sample_at"].is_string(),
        "{v}"
    );
    assert!(
        r["not_counted"][0]
            .as_str()
            .is_some_and(|s| s.contains("open and close between two ticks")),
        "{v}"
    );
    assert_eq!(v["last_run"]["pid"], child.id());
    assert!(v["last_run"]["stopped_at"].is_null());
    assert_eq!(v["database"]["exists"], true);
    assert_eq!(v["database"]["mode"], "0600");
    assert!(v["database"]["size_bytes"].as_u64().is_some_and(|s| s > 0));
    assert!(rows(&v, "ticks") >= 4);
    assert_eq!(rows(&v, "runs"), 1);
    let ret = &v["retention"];
    assert_eq!(ret["known"], true);
    assert_eq!(ret["raw_keep_s"], 7 * 86_400);
    assert_eq!(ret["hourly_keep_s"], 90 * 86_400);
    assert!(ret["raw_oldest_at"].is_string());
    assert_eq!(codes(&v), Vec::<String>::new(), "{v}");

    env.netmon()
        .arg("status")
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "Recorder:     running (pid {}, since ",
            child.id()
        )))
        .stdout(predicate::str::contains("Source:       nettop"))
        .stdout(predicate::str::contains("every 100ms"))
        .stdout(predicate::str::contains("Retention:    samples 7d"))
        .stdout(predicate::str::contains("Problems:     none"));

    signal(&child, libc::SIGTERM);
    let (code, stderr) = finish(child, Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn a_stopped_recorder_is_stopped_with_its_reason() {
    let env = Env::new();
    let child = running_recorder(&env);
    let pid = child.id();
    signal(&child, libc::SIGTERM);
    let (code, stderr) = finish(child, Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");

    let v = status_json(&env);
    assert_eq!(v["recorder"]["state"], "stopped", "{v}");
    assert!(v["recorder"]["pid"].is_null());
    assert_eq!(v["last_run"]["pid"], pid);
    assert_eq!(v["last_run"]["stop_reason"], "signal SIGTERM");
    assert!(v["last_run"]["stopped_at"].is_string());
    assert_eq!(codes(&v), ["not_recording"], "{v}");
    env.netmon()
        .arg("status")
        .assert()
        .success()
        .stdout(predicate::str::contains("Recorder:     stopped"))
        .stdout(predicate::str::contains("signal SIGTERM"))
        .stdout(predicate::str::contains("no recorder is running"));
}

#[test]
fn a_killed_recorder_is_crashed_until_the_next_one_starts() {
    let env = Env::new();
    let child = running_recorder(&env);
    let pid = child.id();
    signal(&child, libc::SIGKILL);
    let (code, _) = finish(child, Duration::from_secs(10));
    assert_eq!(code, None, "killed by a signal");

    let v = status_json(&env);
    assert_eq!(v["recorder"]["state"], "crashed", "{v}");
    assert!(
        v["recorder"]["pid"].is_null(),
        "the kernel dropped the lock: {v}"
    );
    assert_eq!(v["last_run"]["pid"], pid);
    assert!(v["last_run"]["stopped_at"].is_null());
    assert!(v["recorder"]["last_sample_at"].is_string());
    assert_eq!(codes(&v), ["crashed", "not_recording"], "{v}");
    env.netmon()
        .arg("status")
        .assert()
        .success()
        .stdout(predicate::str::contains("Recorder:     crashed"))
        .stdout(predicate::str::contains(format!(
            "the last recorder (pid {pid}) ended without stopping"
        )));

    // A new recorder closes the crashed run and is the one reported.
    let next = env.spawn_record(&["--source", "nettop", "--interval", "100ms"]);
    let next_pid = next.id();
    assert!(
        wait_until(Duration::from_secs(30), || {
            let v = status_json(&env);
            v["recorder"]["state"] == "running"
                && v["last_run"]["pid"] == next_pid
                && v["recorder"]["last_sample_at"] != Value::Null
        }),
        "the next recorder was never reported running"
    );
    assert_eq!(codes(&status_json(&env)), Vec::<String>::new());
    signal(&next, libc::SIGTERM);
    let (code, stderr) = finish(next, Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn a_recorder_whose_source_hangs_is_stalled() {
    let env = Env::new();
    step(&env, 1, 1000);
    step(&env, 2, 2000);
    env.step(3, "hang", "");
    let child = env.spawn_record(&[
        "--source",
        "nettop",
        "--interval",
        "100ms",
        "--sample-timeout",
        "60s",
    ]);
    let stalled = wait_until(Duration::from_secs(30), || {
        let out = env
            .netmon()
            .args(["status", "--json", "--stalled-after", "1s"])
            .output()
            .expect("status");
        serde_json::from_slice::<Value>(&out.stdout)
            .is_ok_and(|v| v["recorder"]["state"] == "stalled")
    });
    // The recorder abandons the hung sample on SIGTERM.
    signal(&child, libc::SIGTERM);
    let (code, stderr) = finish(child, Duration::from_secs(10));
    if let Some(pid) = std::fs::read_to_string(env.steps.join("hang.pid"))
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
    {
        // SAFETY: kill(2) on the fake's own sleep, if it is still there.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    assert!(stalled, "status never called the hung recorder stalled");
    assert_eq!(code, Some(0), "{stderr}");
    env.netmon()
        .args(["status", "--stalled-after", "1s"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Recorder:     stopped"));
}

#[test]
fn nettop_missing_is_a_problem_for_a_nettop_database() {
    let env = Env::new();
    step(&env, 1, 1000);
    env.netmon().args(record_nettop("2")).assert().success();
    env.netmon()
        .env("PATH", "/usr/bin:/bin")
        .arg("status")
        .assert()
        .success()
        .stdout(predicate::str::contains("nettop is not on PATH"));
}

#[test]
fn no_database_is_reported_not_created() {
    let env = Env::new();
    // Nothing to report on: the report says how to start, and scripts see exit 1.
    let out = env
        .netmon()
        .args(["status", "--json"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no database at"), "{err}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("status --json");
    assert_eq!(v["recorder"]["state"], "never");
    assert_eq!(v["database"]["exists"], false);
    assert_eq!(codes(&v), ["no_database"]);
    assert!(!env.db.exists(), "status must not create a database");
}

/// Issue 14: nettop printing its header and nothing else, sample after sample, sees no sockets
/// (a Mac always has some): the recorder runs and commits ticks, but counts nothing.
#[test]
fn issue_14_a_recorder_whose_nettop_prints_only_a_header_is_a_problem() {
    use netmon::source::nettop::sim::{Sim, Style, socket};
    let header_only = Style {
        header_only: true,
        ..Style::default()
    };
    let env = Env::new();
    let sim = Sim::new();
    for n in 1..=5 {
        env.step(n, "csv", &sim.render(header_only));
    }
    let child = env.spawn_record(&["--source", "nettop", "--interval", "100ms"]);
    assert!(
        wait_until(Duration::from_secs(30), || {
            env.db.exists()
                && status_json(&env)["tables"].as_array().is_some_and(|t| {
                    t.iter()
                        .any(|t| t["table"] == "ticks" && t["rows"].as_i64() >= Some(4))
                })
        }),
        "the recorder committed no ticks"
    );
    let v = status_json(&env);
    assert_eq!(v["recorder"]["state"], "running", "{v}");
    assert!(codes(&v).contains(&"no_rows".to_string()), "{v}");
    env.netmon()
        .arg("status")
        .assert()
        .success()
        .stdout(predicate::str::contains("printed its header and no rows"));
    signal(&child, libc::SIGTERM);
    let (code, stderr) = finish(child, Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("no rows at all"), "{stderr}");
    // Stopped, the run still says why it counted nothing.
    assert!(codes(&status_json(&env)).contains(&"no_rows".to_string()));

    // Once nettop lists sockets again, the problem is gone.
    let env = Env::new();
    let mut sim = Sim::new();
    env.step(1, "csv", &sim.render(header_only));
    env.step(2, "csv", &sim.render(header_only));
    env.step(3, "csv", &sim.render(header_only));
    sim.spawn("mDNSResponder", 5_000_690);
    let s = sim.open(5_000_690, socket("udp4", "*:5353", "*:*", "en0"));
    // What the socket moved before nettop could say anything (since boot, 9.6 GB): empty
    // samples are no reading, so the first sample with rows is the baseline.
    sim.traffic(s, 9_631_465_568, 1000);
    env.step(4, "csv", &sim.render(Style::default()));
    sim.traffic(s, 32, 10);
    env.step(5, "csv", &sim.render(Style::default()));
    let child = env.spawn_record(&["--source", "nettop", "--interval", "100ms", "--ticks", "7"]);
    let (code, stderr) = finish(child, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stderr}");
    let v = status_json(&env);
    assert!(!codes(&v).contains(&"no_rows".to_string()), "{v}");
    assert_eq!(
        crate::metrics::apps_all_time(&env),
        [("mDNSResponder".to_string(), (32, 10))].into(),
        "only what moved after the first sample with rows is counted"
    );
}
