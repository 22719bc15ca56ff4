//! Issue 8, "done when": on Linux, `netmon service install` leaves a working systemd user unit
//! that records. Run against a real, private systemd user manager
//! (tests/systemd-user/manager.sh), with the fake nettop as the source so the bytes are known:
//! install → the unit records → `status` and `service status` agree on the pid → uninstall →
//! the recorder stopped cleanly (SIGTERM) and nothing is left.
//!
//! Needs root (a mount namespace and a cgroup for the manager); CI runs as root. Without it
//! the test fails and says why.

#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Output};
use std::time::Duration;

use serde_json::Value;

use crate::util::{Env, wait_until};

fn harness() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/systemd-user/manager.sh")
}

/// The private manager; stopped (and its cgroups removed) on drop, pass or fail.
struct Manager {
    dir: PathBuf,
    pid: String,
}

impl Manager {
    fn start(dir: &Path, home: &Path) -> Manager {
        let out = StdCommand::new(harness())
            .arg("start")
            .arg(dir)
            .env("HOME", home)
            .output()
            .expect("run tests/systemd-user/manager.sh");
        assert!(
            out.status.success(),
            "cannot start a private systemd user manager here ({}): {}\n\
             This test needs root, util-linux's unshare and systemd installed (not running).",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Manager {
            dir: dir.to_path_buf(),
            pid: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        }
    }

    fn runtime_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    fn systemctl(&self, args: &[&str]) -> Output {
        StdCommand::new("systemctl")
            .arg("--user")
            .args(args)
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            .output()
            .expect("systemctl")
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let out = StdCommand::new(harness())
            .arg("stop")
            .arg(&self.dir)
            .arg(&self.pid)
            .output();
        if let Ok(o) = out
            && !o.status.success()
        {
            eprintln!(
                "stopping the test manager failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

fn json(out: &[u8]) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

/// Every path under `dir` (symlinks not followed).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

fn alive(pid: i64) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0 && unsafe { libc::kill(pid as i32, 0) == 0 }
}

#[test]
fn service_install_leaves_a_systemd_user_unit_that_records() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test runs a private systemd user manager, which needs root (a mount namespace \
         and a cgroup); run the suite as root, as CI does"
    );
    let env = Env::new();
    let home = env.home();
    std::fs::create_dir_all(&home).expect("home");
    let mgr_dir = env.dir.path().join("manager");
    let mgr = Manager::start(&mgr_dir, &home);

    // The manager resets PATH for its services; point it at the fake nettop.
    let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-nettop");
    let out = mgr.systemctl(&[
        "set-environment",
        &format!("PATH={}:/usr/bin:/bin", fake.display()),
        &format!("FAKE_NETTOP_DIR={}", env.steps.display()),
    ]);
    assert!(out.status.success(), "{out:?}");
    let h = ",interface,state,bytes_in,bytes_out,\n";
    for (n, bytes) in [(1u64, 1000u64), (2, 3000), (3, 6000)] {
        env.step(
            n as usize,
            "csv",
            &format!(
                "{h}curl.5000002,,,{bytes},{},\n\
                 tcp4 192.0.2.1:50020<->198.51.100.20:443,en0,Established,{bytes},{},\n",
                bytes / 10,
                bytes / 10
            ),
        );
    }

    // The default database of a fresh home: its directory does not exist yet.
    let db = home.join(".local/share/netmon/netmon.db");
    let samples_in = || -> Option<i64> {
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?
            .query_row("SELECT coalesce(sum(bytes_in), 0) FROM samples", [], |r| {
                r.get(0)
            })
            .ok()
    };
    let netmon = |args: &[&str]| -> Output {
        env.netmon()
            .env_remove("NETMON_DB")
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", mgr.runtime_dir())
            .args(args)
            .output()
            .expect("netmon")
    };
    let out = netmon(&[
        "service",
        "install",
        "--",
        "--source",
        "nettop",
        "--interval",
        "200ms",
    ]);
    assert!(
        out.status.success(),
        "install failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unit = home.join(".config/systemd/user/netmon-record.service");
    assert!(unit.exists());
    assert!(
        home.join(".config/systemd/user/default.target.wants/netmon-record.service")
            .exists(),
        "enabled at login"
    );

    // The unit records: past the three scripted steps, in memory (it writes every 10
    // minutes), as the recorder itself tells `status`; nothing is in the file yet.
    let recorded = wait_until(Duration::from_secs(30), || {
        let v = json(&netmon(&["status", "--json"]).stdout);
        v["recorder"]["state"] == "running"
            && v["recorder"]["unwritten_samples"].as_u64() >= Some(4)
    });
    let show = String::from_utf8_lossy(
        &mgr.systemctl(&["show", "netmon-record.service", "-p", "MainPID,ActiveState"])
            .stdout,
    )
    .into_owned();
    assert!(
        recorded,
        "the service did not record; systemctl: {show}; manager log: {}",
        std::fs::read_to_string(mgr_dir.join("manager.log")).unwrap_or_default()
    );
    let status = json(&netmon(&["status", "--json"]).stdout);
    let pid = status["recorder"]["pid"].as_i64().expect("recorder pid");
    assert!(
        show.contains(&format!("MainPID={pid}")) && show.contains("ActiveState=active"),
        "systemd and the lock disagree: {show} vs pid {pid}"
    );
    let svc = json(&netmon(&["service", "status", "--json"]).stdout);
    assert_eq!(svc["components"][0]["running"], true, "{svc}");
    assert_eq!(svc["components"][0]["pid"], pid, "{svc}");

    // Uninstall stops it with SIGTERM (a clean stop) and removes the unit.
    let out = netmon(&["service", "uninstall"]);
    assert!(
        out.status.success(),
        "uninstall failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!unit.exists());
    let left: Vec<_> = walk(&home.join(".config"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("netmon"))
        .collect();
    assert!(left.is_empty(), "uninstall left {left:?}");
    assert!(
        wait_until(Duration::from_secs(10), || !alive(pid)),
        "the recorder outlived its unit"
    );
    let v = json(&netmon(&["status", "--json"]).stdout);
    assert_eq!(v["recorder"]["state"], "stopped", "{v}");
    assert_eq!(v["last_run"]["stop_reason"], "signal SIGTERM", "{v}");
    // The service stopping wrote every tick: exactly the scripted bytes.
    assert_eq!(samples_in(), Some(5000));
    drop(mgr);
}
