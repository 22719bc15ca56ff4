//! The system service's database design (`record --share-with-group`, run as root with the
//! reader's group): the reader can read it, while the recorder runs and after it stopped,
//! and cannot write it; anyone else cannot read it. Users are switched with setuid/setgid, so
//! this needs root (CI runs as root); without it the test fails and says why.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::util::{Env, finish, record_nettop, signal, wait_until};

/// nobody:nogroup on Debian; the reader.
const READER: u32 = 65534;
/// A user outside that group.
const STRANGER: u32 = 65533;

fn status_as(env: &Env, db: &Path, uid: u32) -> Value {
    let (ok, v) = try_status_as(env, db, uid);
    assert!(ok, "status failed: {v}");
    v
}

/// `status --json` as `uid`: whether it exited 0 (it exits 1 on a database it cannot read,
/// as the reader cannot for the moment between the recorder creating the file and sharing
/// it), and what it said.
fn try_status_as(env: &Env, db: &Path, uid: u32) -> (bool, Value) {
    let out = env
        .std_netmon()
        .env("NETMON_DB", db)
        .args(["status", "--json"])
        .uid(uid)
        .gid(uid)
        .output()
        .expect("status");
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    (out.status.success(), v)
}

fn mode(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.permissions().mode() & 0o777, m.uid(), m.gid())
}

#[test]
fn a_shared_database_is_readable_by_the_group_only() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test switches users (root recorder, nobody reader); run the suite as root, as CI does"
    );
    let env = Env::new();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod tempdir");
    // What systemd's StateDirectory=netmon with StateDirectoryMode=0750 and Group= creates.
    let data = env.dir.path().join("lib-netmon");
    std::fs::create_dir(&data).expect("data dir");
    std::os::unix::fs::chown(&data, Some(0), Some(READER)).expect("chown");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o750)).expect("chmod");
    let db = data.join("netmon.db");
    let h = ",interface,state,bytes_in,bytes_out,\n";
    for (n, b) in [(1usize, 100u64), (2, 400)] {
        env.step(
            n,
            "csv",
            &format!("{h}curl.5000002,,,{b},{b},\ntcp4 192.0.2.1:1<->198.51.100.2:443,en0,Established,{b},{b},\n"),
        );
    }
    let child = env
        .std_netmon()
        .env("NETMON_DB", &db)
        .args([
            "record",
            "--share-with-group",
            "--source",
            "nettop",
            "--interval",
            "100ms",
        ])
        .gid(READER)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn recorder");

    let reading = wait_until(Duration::from_secs(30), || {
        let (ok, v) = try_status_as(&env, &db, READER);
        ok && v["recorder"]["state"] == "running"
            && v["tables"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["table"] == "samples" && t["rows"] == 1))
    });
    let v = status_as(&env, &db, READER);
    signal(&child, libc::SIGTERM);
    let (code, stderr) = finish(child, Duration::from_secs(10));
    assert!(
        reading,
        "the reader never saw the running recorder's data: {v}"
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(v["database"]["mode"], "0640");
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(0), "{v}");

    for suffix in ["", "-wal", "-shm", ".lock"] {
        let p = Path::new(&format!("{}{suffix}", db.display())).to_path_buf();
        assert_eq!(mode(&p), (0o640, 0, READER), "{}", p.display());
    }

    // Stopped: the WAL files stay, so the reader still reads.
    let v = status_as(&env, &db, READER);
    assert_eq!(v["recorder"]["state"], "stopped", "{v}");
    assert_eq!(v["last_run"]["stop_reason"], "signal SIGTERM", "{v}");
    assert!(
        v["tables"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["table"] == "samples" && t["rows"] == 1)),
        "{v}"
    );

    // The queries read it too, as the reader.
    let out = env
        .std_netmon()
        .env("NETMON_DB", &db)
        .args(["apps", "--since", "1h", "--json"])
        .uid(READER)
        .gid(READER)
        .output()
        .expect("apps as reader");
    assert!(
        out.status.success(),
        "the reader cannot query: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let apps: Value = serde_json::from_slice(&out.stdout).expect("apps json");
    assert_eq!(apps[0]["app"], "curl", "{apps}");
    assert_eq!(apps[0]["bytes_in"], 300, "{apps}");

    // The reader cannot write: the file is read-only to it.
    let out = env
        .std_netmon()
        .env("NETMON_DB", &db)
        .args(record_nettop("1"))
        .uid(READER)
        .gid(READER)
        .output()
        .expect("record as reader");
    assert!(
        !out.status.success(),
        "the reader could record into the system database"
    );

    // Anyone else cannot even see it, and is told why (exit 1: the report is not the whole
    // truth).
    let (ok, v) = try_status_as(&env, &db, STRANGER);
    assert!(!ok, "{v}");
    assert_eq!(v["recorder"]["state"], "unknown", "{v}");
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["problems"][0]["code"], "permissions", "{v}");
    assert!(
        v["problems"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--reader")),
        "{v}"
    );
}
