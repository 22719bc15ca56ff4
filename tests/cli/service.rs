//! `netmon service install|uninstall|status` end to end, with fake `systemctl` and `launchctl`
//! first on PATH (tests/fake-service) logging what netmon asks of them, and the files it
//! writes checked by the real parsers: `systemd-analyze verify` for units, a property-list
//! parser (and `plutil -lint` on macOS) for LaunchAgents.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use predicates::prelude::*;

use crate::util::{Env, bin, place_executable};

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
    // The test binary is a build output (target/): the agents run a fresh copy of it.
    let copy = env
        .home()
        .join("Library/Application Support/netmon/bin/netmon");
    assert_eq!(
        calls,
        [
            format!("launchctl print gui/{uid}/io.netmon.record"),
            format!("launchctl print gui/{uid}/io.netmon.serve"),
            format!("codesign --verify --strict {}", copy.display()),
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

// --- Issue 14: a LaunchAgent that runs, or says why not ---

/// This test's netmon copied to `dir` inside the fake home, to be run from there.
fn netmon_in(env: &Env, dir: &str) -> PathBuf {
    let d = env.home().join(dir);
    std::fs::create_dir_all(&d).expect("dir");
    let exe = d.join("netmon");
    place_executable(&bin(), &exe);
    exe
}

/// `netmon_with_fake_services`, but running the netmon at `exe`.
fn netmon_at(env: &Env, exe: &Path) -> assert_cmd::Command {
    let fake = env.netmon_with_fake_services();
    let std = fake.get_program().to_owned();
    let mut c = assert_cmd::Command::new(exe);
    c.env_clear();
    for (k, v) in fake.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    assert_ne!(std, exe.as_os_str());
    c
}

#[test]
fn issue_14_install_from_a_protected_folder_plans_a_fresh_copy_and_changes_nothing() {
    let env = Env::new();
    let exe = netmon_in(&env, "Documents/src/netmon/target/release");
    let out = netmon_at(&env, &exe)
        .args(["service", "install", "--manager", "launchd", "--dry-run"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).expect("utf8");
    let copy = env
        .home()
        .join("Library/Application Support/netmon/bin/netmon");
    assert!(
        text.contains(&format!(
            "would copy: {} to {} (a new file, mode 0755, no extended attributes)",
            exe.display(),
            copy.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("<string>{}</string>", copy.display())),
        "the agent runs the copy: {text}"
    );
    assert!(
        !text.contains(&format!("<string>{}</string>", exe.display())),
        "{text}"
    );
    assert!(
        text.contains("would run: codesign --verify --strict"),
        "{text}"
    );
    assert!(
        text.contains("~/Documents is closed to background programs"),
        "{text}"
    );
    // A dry run: nothing written, nothing asked of launchctl.
    assert!(!env.home().join("Library").exists());
    assert!(env.service_calls().is_empty());
}

#[test]
fn issue_14_install_from_a_protected_folder_runs_a_new_file_outside_it() {
    let env = Env::new();
    let exe = netmon_in(&env, "Downloads");
    netmon_at(&env, &exe)
        .args(["service", "install", "--manager", "launchd"])
        .assert()
        .success()
        .stdout(predicate::str::contains("runs a copy of"));
    let copy = env
        .home()
        .join("Library/Application Support/netmon/bin/netmon");
    let dict = check_plist(
        &env.home()
            .join("Library/LaunchAgents/io.netmon.record.plist"),
        "io.netmon.record",
        &["record", "--db", &env.db.display().to_string()],
    );
    let program = dict["ProgramArguments"].as_array().expect("args")[0]
        .as_string()
        .expect("string")
        .to_string();
    assert_eq!(program, copy.display().to_string());
    assert_eq!(
        std::fs::read(&copy).expect("copy"),
        std::fs::read(&exe).expect("exe")
    );
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(&copy).expect("meta");
    assert_eq!(meta.permissions().mode() & 0o777, 0o755);
    // Installed again, the agent gets another new file (never the old one rewritten).
    let inode = meta.ino();
    netmon_at(&env, &exe)
        .args(["service", "install", "--manager", "launchd"])
        .assert()
        .success();
    assert_ne!(std::fs::metadata(&copy).expect("meta").ino(), inode);
    // The copy's signature is checked before the agent is loaded.
    let calls = env.service_calls();
    let check = calls
        .iter()
        .position(|c| c.starts_with("codesign --verify --strict"))
        .expect("codesign checked");
    let load = calls
        .iter()
        .position(|c| c.starts_with("launchctl bootstrap"))
        .expect("bootstrapped");
    assert!(check < load, "{calls:?}");
}

#[test]
fn issue_14_a_signature_that_does_not_verify_stops_the_install_before_loading() {
    let env = Env::new();
    env.netmon_with_fake_services()
        .env("FAKE_CODESIGN_INVALID", "1")
        .args(["service", "install", "--manager", "launchd"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("invalid signature"))
        .stderr(predicate::str::contains("OS_REASON_CODESIGNING"))
        .stderr(predicate::str::contains("codesign --force --sign -"));
    assert!(
        !env.service_calls()
            .iter()
            .any(|c| c.starts_with("launchctl bootstrap")),
        "{:?}",
        env.service_calls()
    );
}

#[test]
fn issue_14_a_database_in_a_protected_folder_is_refused_before_anything_is_written() {
    let env = Env::new();
    let db = env.home().join("Documents/netmon.db");
    env.netmon_with_fake_services()
        .env("NETMON_DB", &db)
        .args(["service", "install", "--manager", "launchd"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("~/Documents"))
        .stderr(predicate::str::contains("privacy protection"));
    assert!(!env.home().join("Library").exists());
    assert!(env.service_calls().is_empty());
}

/// launchd's view of a recorder agent that keeps dying, as `launchctl print` shows it.
const DYING: &str = "gui/501/io.netmon.record = {\n\
    \tactive count = 0\n\
    \tpath = /Users/me/Library/LaunchAgents/io.netmon.record.plist\n\
    \tstate = spawn scheduled\n\
    \n\
    \tprogram = /Users/me/Documents/netmon/target/release/netmon\n\
    \truns = 214\n\
    \tlast exit code = 126\n\
    \tlast exit reason = OS_REASON_TCC\n\
    \tjob state = exited\n\
    }\n";

const DISABLED_LIST: &str = "disabled services = {\n\t\"com.apple.Siri.agent\" => true\n\t\"io.netmon.record\" => disabled\n}\n";

fn scripted_launchctl(env: &Env, print: &str, disabled: Option<&str>) -> Vec<(String, PathBuf)> {
    let p = env.dir.path().join("launchctl-print");
    std::fs::write(&p, print).expect("print");
    let mut vars = vec![("FAKE_LAUNCHCTL_PRINT".to_string(), p)];
    if let Some(d) = disabled {
        let q = env.dir.path().join("launchctl-disabled");
        std::fs::write(&q, d).expect("disabled");
        vars.push(("FAKE_LAUNCHCTL_DISABLED".to_string(), q));
    }
    vars
}

#[test]
fn issue_14_service_status_shows_launchds_last_exit_reason_in_words() {
    let env = Env::new();
    env.netmon_with_fake_services()
        .args(["service", "install", "--manager", "launchd"])
        .assert()
        .success();
    let mut cmd = env.netmon_with_fake_services();
    for (k, v) in scripted_launchctl(&env, DYING, None) {
        cmd.env(k, v);
    }
    let out = cmd
        .args(["service", "status", "--manager", "launchd"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).expect("utf8");
    assert!(
        text.contains("record (launchd user): installed, not running"),
        "{text}"
    );
    assert!(text.contains("  last exit reason: OS_REASON_TCC"), "{text}");
    assert!(text.contains("  last exit code: 126"), "{text}");
    assert!(
        text.contains("  why: macOS's privacy protection stopped it"),
        "{text}"
    );
    assert!(text.contains("  why: it exited 126"), "{text}");

    let mut cmd = env.netmon_with_fake_services();
    for (k, v) in scripted_launchctl(&env, DYING, Some(DISABLED_LIST)) {
        cmd.env(k, v);
    }
    let out = cmd
        .args(["service", "status", "--manager", "launchd", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
    let record = &v["components"][0];
    assert_eq!(record["disabled"], true, "{v}");
    let why = record["diagnosis"].as_array().expect("diagnosis");
    assert!(
        why[0]
            .as_str()
            .is_some_and(|s| s.contains("Allow in the Background")),
        "{v}"
    );
}

#[test]
fn issue_14_netmon_status_reports_a_failing_or_switched_off_agent() {
    let env = Env::new();
    env.netmon_with_fake_services()
        .args(["service", "install", "--manager", "launchd"])
        .assert()
        .success();
    let status = |disabled: Option<&str>| -> serde_json::Value {
        let mut cmd = env.netmon_with_fake_services();
        for (k, v) in scripted_launchctl(&env, DYING, disabled) {
            cmd.env(k, v);
        }
        // The dying agent never made a database: status reports, and exits 1 for that.
        let out = cmd
            .args(["status", "--json", "--service-manager", "launchd"])
            .assert()
            .code(1)
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice(&out).expect("json")
    };
    let problem = |v: &serde_json::Value, code: &str| -> Option<String> {
        v["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .find(|p| p["code"] == code)
            .and_then(|p| p["message"].as_str().map(str::to_string))
    };
    let v = status(None);
    let failing = problem(&v, "service_failing").unwrap_or_else(|| panic!("{v}"));
    assert!(
        failing.contains("OS_REASON_TCC") && failing.contains("privacy protection"),
        "{failing}"
    );
    assert!(problem(&v, "service_disabled").is_none(), "{v}");
    let v = status(Some(DISABLED_LIST));
    let off = problem(&v, "service_disabled").unwrap_or_else(|| panic!("{v}"));
    assert!(
        off.contains("switched off") && off.contains("Login Items"),
        "{off}"
    );
    // And in the text form.
    let mut cmd = env.netmon_with_fake_services();
    for (k, v) in scripted_launchctl(&env, DYING, Some(DISABLED_LIST)) {
        cmd.env(k, v);
    }
    cmd.args(["status", "--service-manager", "launchd"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("Allow in the Background"));
}
