//! The Linux `ebpf` source end to end: `netmon record --source ebpf` in a network namespace,
//! known workloads beside it, and the recorded per-process totals compared with the payload
//! bytes each workload moved (issue 4). Needs root and a kernel that allows eBPF (CI runs as
//! root); elsewhere these tests fail and say why, they never pass without having run.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::netns::{self, B_V4, B_V6, Moved, Pair};
use crate::util::{Env, bin, finish, signal, wait_until};

const PORT: u16 = 7100;

/// `netmon record --source ebpf` started inside namespace `ns`, once its first tick is in.
pub(crate) fn start_recorder(env: &Env, ns: &str, extra: &[&str]) -> Child {
    start_recorder_with(env, Pair::exec(ns, bin()), extra)
}

/// `netmon record --source ebpf` run by `cmd` (netmon, possibly behind a namespace switcher),
/// once its first tick is in.
pub(crate) fn start_recorder_with(
    env: &Env,
    mut cmd: std::process::Command,
    extra: &[&str],
) -> Child {
    cmd.env_clear();
    for (k, v) in [
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ),
        ("NO_COLOR", "1"),
        ("TZ", "UTC"),
    ] {
        cmd.env(k, v);
    }
    let mut child = cmd
        .args([
            "record",
            "--source",
            "ebpf",
            "--interval",
            "500ms",
            "--write-every",
            "0",
            "--db",
        ])
        .arg(&env.db)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn netmon record");
    let started = wait_until(Duration::from_secs(20), || ticks(env) >= 1);
    if !started {
        let _ = child.kill();
        let (_, err) = finish(child, Duration::from_secs(5));
        panic!("netmon record --source ebpf did not start recording: {err}");
    }
    child
}

fn ticks(env: &Env) -> i64 {
    if !env.db.exists() {
        return 0;
    }
    rusqlite::Connection::open(&env.db)
        .and_then(|c| c.query_row("SELECT count(*) FROM ticks", [], |r| r.get(0)))
        .unwrap_or(0)
}

/// Let two more ticks pass (every byte of the finished workloads is then read), then stop.
pub(crate) fn stop_recorder(env: &Env, child: Child) -> String {
    let now = ticks(env);
    assert!(
        wait_until(Duration::from_secs(20), || ticks(env) >= now + 2),
        "netmon record stopped ticking"
    );
    signal(&child, libc::SIGINT);
    let (code, err) = finish(child, Duration::from_secs(20));
    assert_eq!(code, Some(0), "netmon record exited badly: {err}");
    err
}

/// Bytes recorded per application name, as `netmon apps --json` reports them (in = received,
/// out = sent); rows of one name (with and without a known path) are added up.
fn recorded(env: &Env) -> BTreeMap<String, Moved> {
    let out = assert_cmd::Command::new(bin())
        .env_clear()
        .env("NO_COLOR", "1")
        .env("TZ", "UTC")
        .args(["apps", "--since", "24h", "--json", "--db"])
        .arg(&env.db)
        .output()
        .expect("run netmon apps");
    assert!(
        out.status.success(),
        "netmon apps: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("apps JSON");
    let mut got: BTreeMap<String, Moved> = BTreeMap::new();
    for r in rows {
        let m = got
            .entry(r["app"].as_str().expect("app").to_string())
            .or_default();
        m.recv += r["bytes_in"].as_u64().expect("bytes_in");
        m.sent += r["bytes_out"].as_u64().expect("bytes_out");
    }
    got
}

/// Every workload with payload must be recorded within 1% of what it moved (in practice to
/// the byte), and nothing else may show up: not the workloads that moved nothing, not the
/// server in the other namespace, not anything twice.
fn assert_matches(truth: &BTreeMap<String, Moved>, got: &BTreeMap<String, Moved>) {
    let mut report = String::new();
    let mut bad = false;
    for (name, t) in truth {
        let m = got.get(name).copied().unwrap_or_default();
        let ok = |truth: u64, meas: u64| {
            if truth == 0 {
                meas == 0
            } else {
                let r = meas as f64 / truth as f64;
                (0.99..=1.01).contains(&r)
            }
        };
        let row_ok = ok(t.sent, m.sent) && ok(t.recv, m.recv);
        bad |= !row_ok;
        report.push_str(&format!(
            "{} {name}: truth sent {} recv {}; recorded sent {} recv {}\n",
            if row_ok { "ok " } else { "BAD" },
            t.sent,
            t.recv,
            m.sent,
            m.recv
        ));
    }
    for (name, m) in got {
        if truth.get(name).is_none_or(|t| t.sent == 0 && t.recv == 0) {
            bad = true;
            report.push_str(&format!(
                "BAD {name}: moved nothing, recorded sent {} recv {}\n",
                m.sent, m.recv
            ));
        }
    }
    assert!(!bad, "recorded totals differ from the truth:\n{report}");
    eprintln!("{report}");
}

#[test]
fn issue_4_ebpf_records_every_workload_to_the_byte_per_process() {
    netns::require_root("the ebpf accuracy test");
    let mut pair = Pair::new();
    pair.start_server(PORT);
    let env = Env::new();
    let rec = start_recorder(&env, &pair.a, &[]);

    let p = |n: u16| (PORT + n).to_string();
    let mut children = vec![
        pair.workload(&["bulk", "bulk_tcp", B_V4, &p(1), "20000000", "5000000"]),
        pair.workload(&["short", "short_tcp", B_V4, &p(2), "200", "10000", "10000"]),
        pair.workload(&["udp", "udp_flow", B_V4, &PORT.to_string(), "3000", "1200"]),
        pair.workload(&["idle", "idle_proc", B_V4, &p(3), "2"]),
        pair.workload(&[
            "fork",
            "fork_parent",
            "fork_child",
            "3",
            B_V4,
            &p(4),
            "2000000",
            "500000",
        ]),
        // Processes that live a few milliseconds each, all gone before a tick reads them.
        pair.workload(&[
            "fork",
            "burst_parent",
            "burst_child",
            "50",
            B_V4,
            &p(4),
            "1000",
            "1000",
        ]),
        pair.workload(&[
            "shared",
            "sock_parent",
            "sock_child",
            B_V4,
            &p(5),
            "2000000",
            "500000",
        ]),
        pair.workload(&["bulk", "v6_tcp", B_V6, &p(6), "5000000", "2000000"]),
    ];
    let mut truth = netns::wait_all(std::mem::take(&mut children), Duration::from_secs(60));
    // Two processes, one after the other, from the same local port.
    for (name, port) in [("reuse_long", p(7)), ("reuse_short", p(8))] {
        let w = pair.workload(&["bulk", name, B_V4, &port, "1000000", "500000", "29999"]);
        truth.extend(netns::wait_all(vec![w], Duration::from_secs(30)));
    }
    let err = stop_recorder(&env, rec);
    assert!(err.contains("source ebpf"), "start line: {err}");
    assert!(truth.contains_key("idle_proc") && truth["burst_child"].sent == 50 * 1016);
    assert_matches(&truth, &recorded(&env));
}

#[test]
fn issue_4_ebpf_leaves_out_loopback_unless_asked() {
    netns::require_root("the ebpf loopback test");
    let mut pair = Pair::new();
    pair.start_server(PORT);
    let (plain, with_lo) = (Env::new(), Env::new());
    let rec_plain = start_recorder(&plain, &pair.a, &[]);
    let rec_lo = start_recorder(&with_lo, &pair.a, &["--include-loopback"]);

    let truth = netns::wait_all(
        vec![
            pair.workload(&["loopback", "lo_talker", "3000000", "1000000"]),
            pair.workload(&[
                "bulk",
                "net_talker",
                B_V4,
                &(PORT + 1).to_string(),
                "2000000",
                "0",
            ]),
        ],
        Duration::from_secs(60),
    );
    stop_recorder(&plain, rec_plain);
    stop_recorder(&with_lo, rec_lo);

    let net_only: BTreeMap<String, Moved> = truth
        .iter()
        .filter(|(n, _)| n.as_str() != "lo_talker")
        .map(|(n, m)| (n.clone(), *m))
        .collect();
    assert_matches(&net_only, &recorded(&plain));
    // With loopback, the local traffic of every other namespace of this machine (the init
    // namespace, other tests' namespaces) is counted too: judge this test's processes.
    let own: BTreeMap<String, Moved> = recorded(&with_lo)
        .into_iter()
        .filter(|(n, _)| truth.contains_key(n))
        .collect();
    assert_matches(&truth, &own);
}

#[test]
fn issue_4_ebpf_refusal_says_what_to_do() {
    // As an unprivileged user (root drops to nobody with no capabilities for this).
    let env = Env::new();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root {
        let mut c = assert_cmd::Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(bin());
        c
    } else {
        assert_cmd::Command::new(bin())
    };
    let out = cmd
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("NO_COLOR", "1")
        .args(["record", "--source", "ebpf", "--ticks", "1", "--db"])
        .arg(&env.db)
        .output()
        .expect("run netmon");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(
        err.contains("CAP_BPF") && err.contains("sudo") && err.contains("setcap"),
        "stderr: {err}"
    );
}
