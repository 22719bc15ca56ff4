//! `netmon service install|uninstall|status` end to end, with fake `systemctl` and `launchctl`
//! first on PATH (tests/fake-service) logging what netmon asks of them, and the files it
//! writes checked by the real parsers: `systemd-analyze verify` for units, a property-list
//! parser (and `plutil -lint` on macOS) for LaunchAgents.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use predicates::prelude::*;

use crate::util::{Env, bin};

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `systemd-analyze verify` on a unit file; panics with its complaints. Units must name an
/// executable that exists, so they are written with this test's netmon binary.
#[cfg(target_os = "linux")]
pub fn systemd_verify(unit: &Path, user: bool) {
    let runtime = tempfile::tempdir().expect("runtime dir");
    let mut cmd = StdCommand::new("systemd-analyze");
    if user {
        cmd.arg("--user");
    }
    // man:netmon-record(1) is only there once the man pages are installed.
    let out = cmd
        .args(["verify", "--man=no"])
        .arg(unit)
        .env("XDG_RUNTIME_DIR", runtime.path())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "systemd-analyze cannot run here ({e}): it checks the generated units; \
                 install the systemd package (tests/install-deps.sh does)"
            )
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify {}: {}\n{stderr}",
        unit.display(),
        out.status
    );
}

/// Parse a LaunchAgent as launchd would read it and check the keys netmon relies on.
pub fn check_plist(path: &Path, label: &str, argv_tail: &[&str]) -> plist::Dictionary {
    let value = plist::Value::from_file(path)
        .unwrap_or_else(|e| panic!("{} is not a valid property list: {e}", path.display()));
    let dict = value.into_dictionary().expect("top level is a dict");
    assert_eq!(dict.get("Label").and_then(|v| v.as_string()), Some(label));
    let args: Vec<&str> = dict
        .get("ProgramArguments")
        .and_then(|v| v.as_array())
        .expect("ProgramArguments array")
        .iter()
        .map(|v| v.as_string().expect("string argument"))
        .collect();
    assert!(Path::new(args[0]).is_absolute(), "{args:?}");
    assert_eq!(&args[1..], argv_tail);
    assert_eq!(
        dict.get("RunAtLoad").and_then(|v| v.as_boolean()),
        Some(true)
    );
    let keep = dict
        .get("KeepAlive")
        .and_then(|v| v.as_dictionary())
        .expect("KeepAlive dict");
    assert_eq!(
        keep.get("SuccessfulExit").and_then(|v| v.as_boolean()),
        Some(false)
    );
    assert_eq!(
        dict.get("ProcessType").and_then(|v| v.as_string()),
        Some("Background")
    );
    assert_eq!(
        dict.get("LowPriorityIO").and_then(|v| v.as_boolean()),
        Some(true)
    );
    for k in ["ThrottleInterval", "Nice", "ExitTimeOut"] {
        assert!(
            dict.get(k).and_then(|v| v.as_signed_integer()).is_some(),
            "{k}"
        );
    }
    for k in ["StandardOutPath", "StandardErrorPath"] {
        let log = dict.get(k).and_then(|v| v.as_string()).expect(k);
        assert!(log.contains("/Library/Logs/netmon/"), "{k} = {log}");
    }
    if cfg!(target_os = "macos") {
        let out = StdCommand::new("plutil")
            .arg("-lint")
            .arg(path)
            .output()
            .expect("plutil ships with macOS");
        assert!(out.status.success(), "plutil -lint {}", path.display());
    }
    dict
}

#[test]
fn systemd_user_install_writes_a_valid_unit_and_enables_it() {
    let env = Env::new();
    env.netmon_with_fake_services()
        .args([
            "service",
            "install",
            "--manager",
            "systemd",
            "--",
            "--interval",
            "10s",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "installed: netmon record runs now",
        ))
        .stdout(predicate::str::contains(env.db.display().to_string()));
    let unit = env
        .home()
        .join(".config/systemd/user/netmon-record.service");
    let text = read(&unit);
    assert!(
        text.contains(&format!(
            "\nExecStart={} record --db {} --interval 10s\n",
            bin().display(),
            env.db.display()
        )),
        "{text}"
    );
    assert_eq!(
        env.service_calls(),
        [
            "systemctl --user daemon-reload",
            "systemctl --user enable netmon-record.service",
            "systemctl --user restart netmon-record.service",
        ]
    );
    #[cfg(target_os = "linux")]
    systemd_verify(&unit, true);

    // Uninstall: stop and disable while the file exists, remove it, reload.
    env.netmon_with_fake_services()
        .args(["service", "uninstall", "--manager", "systemd"])
        .assert()
        .success()
        .stdout(predicate::str::contains("the database is kept"));
    assert!(!unit.exists());
    assert_eq!(
        env.service_calls()[3..],
        [
            "systemctl --user disable --now netmon-record.service",
            "systemctl --user daemon-reload",
        ]
    );
    env.netmon_with_fake_services()
        .args(["service", "uninstall", "--manager", "systemd"])
        .assert()
        .success()
        .stdout(predicate::str::contains("nothing to uninstall"));
}

#[test]
fn a_unit_for_a_path_with_spaces_and_percent_signs_still_verifies() {
    let env = Env::new();
    let db = env.dir.path().join("my data/100% net$mon.db");
    env.netmon_with_fake_services()
        .env("NETMON_DB", &db)
        .args(["service", "install", "--manager", "systemd", "--serve"])
        .assert()
        .success();
    let dir = env.home().join(".config/systemd/user");
    for unit in ["netmon-record.service", "netmon-serve.service"] {
        let text = read(&dir.join(unit));
        assert!(text.contains("100%% net$$mon.db\""), "{text}");
        #[cfg(target_os = "linux")]
        systemd_verify(&dir.join(unit), true);
    }
}

#[test]
fn launchd_install_writes_a_valid_agent_and_bootstraps_it() {
    let env = Env::new();
    env.netmon_with_fake_services()
        .args(["service", "install", "--manager", "launchd", "--serve"])
        .assert()
        .success();
    let agents = env.home().join("Library/LaunchAgents");
    let db = env.db.display().to_string();
    check_plist(
        &agents.join("io.netmon.record.plist"),
        "io.netmon.record",
        &["record", "--db", &db],
    );
    check_plist(
        &agents.join("io.netmon.serve.plist"),
        "io.netmon.serve",
        &["serve", "--db", &db],
    );
    assert!(env.home().join("Library/Logs/netmon").is_dir());
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let calls = env.service_calls();
    let plist = |n: &str| agents.join(n).display().to_string();
    assert_eq!(
        calls,
        [
            format!("launchctl print gui/{uid}/io.netmon.record"),
            format!("launchctl print gui/{uid}/io.netmon.serve"),
            format!("launchctl enable gui/{uid}/io.netmon.record"),
            format!(
                "launchctl bootstrap gui/{uid} {}",
                plist("io.netmon.record.plist")
            ),
            format!("launchctl enable gui/{uid}/io.netmon.serve"),
            format!(
                "launchctl bootstrap gui/{uid} {}",
                plist("io.netmon.serve.plist")
            ),
        ]
    );

    // Now "loaded" (the fake remembers the last bootstrap): status reads launchctl print, and
    // a reinstall unloads the running agent before loading the new one.
    let out = env
        .netmon_with_fake_services()
        .args(["service", "status", "--manager", "launchd", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(v["manager"], "launchd");
    let serve = &v["components"][1];
    assert_eq!(serve["component"], "serve");
    assert_eq!(serve["installed"], true);
    assert_eq!(serve["running"], true);
    assert_eq!(serve["pid"], 4242);

    env.netmon_with_fake_services()
        .args(["service", "uninstall", "--manager", "launchd"])
        .assert()
        .success();
    assert!(!agents.join("io.netmon.record.plist").exists());
    assert!(!agents.join("io.netmon.serve.plist").exists());
    let calls = env.service_calls();
    assert!(
        calls.contains(&format!("launchctl bootout gui/{uid}/io.netmon.serve")),
        "{calls:?}"
    );
}

#[test]
fn service_status_reports_what_systemctl_says() {
    let env = Env::new();
    env.netmon_with_fake_services()
        .args(["service", "install", "--manager", "systemd"])
        .assert()
        .success();
    env.netmon_with_fake_services()
        .args(["service", "status", "--manager", "systemd"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "record (systemd user): running (pid 4242)",
        ))
        .stdout(predicate::str::contains(
            "logs: journalctl --user -u netmon-record.service",
        ));
    // No user manager to talk to: said, not hidden, and still exit 0.
    env.netmon_with_fake_services()
        .env("FAKE_SYSTEMCTL_FAIL", "show")
        .args(["service", "status", "--manager", "systemd"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "the service manager could not be asked",
        ))
        .stdout(predicate::str::contains("Failed to connect to bus"));
}

#[test]
fn a_failing_systemctl_is_an_error_that_quotes_it() {
    let env = Env::new();
    env.netmon_with_fake_services()
        .env("FAKE_SYSTEMCTL_FAIL", "daemon-reload")
        .args(["service", "install", "--manager", "systemd"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "`systemctl --user daemon-reload` failed",
        ))
        .stderr(predicate::str::contains("Failed to connect to bus"));
}

#[test]
fn install_refuses_bad_record_options_before_writing_anything() {
    let env = Env::new();
    env.netmon_with_fake_services()
        .args([
            "service",
            "install",
            "--manager",
            "systemd",
            "--",
            "--intervall",
            "5s",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not valid for `netmon record`"))
        .stderr(predicate::str::contains("--intervall"));
    env.netmon_with_fake_services()
        .args([
            "service",
            "install",
            "--manager",
            "systemd",
            "--",
            "--db",
            "/x.db",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("netmon --db PATH service install"));
    assert!(!env.home().join(".config").exists());
    assert!(env.service_calls().is_empty());
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let env = Env::new();
    env.netmon_with_fake_services()
        .args(["service", "install", "--manager", "launchd", "--dry-run"])
        .assert()
        .success()
        .stdout(predicate::str::contains("would write "))
        .stdout(predicate::str::contains("<key>ProgramArguments</key>"))
        .stdout(predicate::str::contains(
            "would run: launchctl bootstrap gui/",
        ));
    assert!(!env.home().join("Library").exists());
    assert!(env.service_calls().is_empty());
}

#[test]
fn launchd_has_no_system_scope() {
    let env = Env::new();
    env.netmon_with_fake_services()
        .args([
            "service",
            "install",
            "--manager",
            "launchd",
            "--system",
            "--reader",
            "root",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--system is for Linux"));
}

#[test]
fn the_system_unit_names_the_readers_group_and_verifies() {
    let env = Env::new();
    let root: PathBuf = env.dir.path().join("root");
    env.netmon_with_fake_services()
        .args(["service", "install", "--manager", "systemd", "--system"])
        .arg("--root")
        .arg(&root)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--reader USER"));
    env.netmon_with_fake_services()
        .env_remove("NETMON_DB")
        .args([
            "service",
            "install",
            "--manager",
            "systemd",
            "--system",
            "--reader",
            "root",
        ])
        .arg("--root")
        .arg(&root)
        .assert()
        .success()
        .stdout(predicate::str::contains("/var/lib/netmon/netmon.db"));
    let unit = root.join("etc/systemd/system/netmon-record.service");
    let text = read(&unit);
    assert!(
        text.contains(" record --db /var/lib/netmon/netmon.db --share-with-group --source ebpf\n"),
        "{text}"
    );
    assert!(text.contains("\nGroup=root\n"), "{text}");
    assert_eq!(
        env.service_calls(),
        [
            "systemctl daemon-reload",
            "systemctl enable netmon-record.service",
            "systemctl restart netmon-record.service",
        ]
    );
    #[cfg(target_os = "linux")]
    systemd_verify(&unit, false);
}
