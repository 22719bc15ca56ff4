//! Plans and their execution, with scripted manager answers.
use std::path::{Path, PathBuf};

use super::apply::{Ran, Runner, apply};
use super::plan::shell_words;
use super::*;

fn ctx(manager: ServiceManager, system: bool) -> Context {
    Context {
        manager,
        system,
        home: PathBuf::from("/home/me"),
        xdg_config_home: None,
        root: PathBuf::from("/"),
        uid: 501,
        exe: PathBuf::from("/usr/local/bin/netmon"),
        db: PathBuf::from(if system {
            systemd::SYSTEM_DB
        } else {
            "/home/me/.local/share/netmon/netmon.db"
        }),
    }
}

fn words(steps: &[Step]) -> Vec<String> {
    steps.iter().map(|s| shell_words(&s.argv)).collect()
}

#[test]
fn a_systemd_user_install_writes_one_unit_then_reloads_enables_and_restarts() {
    let plan = install_plan(
        &ctx(ServiceManager::Systemd, false),
        &InstallRequest {
            record_args: vec!["--interval".into(), "10s".into()],
            ..Default::default()
        },
    )
    .expect("plan");
    assert!(plan.before.is_empty());
    assert_eq!(plan.writes.len(), 1);
    let w = &plan.writes[0];
    assert_eq!(
        w.path,
        Path::new("/home/me/.config/systemd/user/netmon-record.service")
    );
    assert!(w.contents.contains(
        "\nExecStart=/usr/local/bin/netmon record --db /home/me/.local/share/netmon/netmon.db --interval 10s\n"
    ));
    assert_eq!(
        words(&plan.after),
        [
            "systemctl --user daemon-reload",
            "systemctl --user enable netmon-record.service",
            "systemctl --user restart netmon-record.service"
        ]
    );
}

#[test]
fn serve_adds_a_second_unit_and_one_reload() {
    let plan = install_plan(
        &ctx(ServiceManager::Systemd, false),
        &InstallRequest {
            serve: true,
            ..Default::default()
        },
    )
    .expect("plan");
    assert_eq!(plan.writes.len(), 2);
    assert!(
        plan.writes[1]
            .contents
            .contains("ExecStart=/usr/local/bin/netmon serve --db ")
    );
    assert_eq!(
        words(&plan.after),
        [
            "systemctl --user daemon-reload",
            "systemctl --user enable netmon-record.service",
            "systemctl --user restart netmon-record.service",
            "systemctl --user enable netmon-serve.service",
            "systemctl --user restart netmon-serve.service"
        ]
    );
}

#[test]
fn the_system_install_uses_ebpf_unless_told_otherwise_and_shares_with_the_group() {
    let c = ctx(ServiceManager::Systemd, true);
    let req = InstallRequest {
        reader_group: Some("alice".into()),
        ..Default::default()
    };
    let plan = install_plan(&c, &req).expect("plan");
    let w = &plan.writes[0];
    assert_eq!(
        w.path,
        Path::new("/etc/systemd/system/netmon-record.service")
    );
    assert!(w.contents.contains(
        "\nExecStart=/usr/local/bin/netmon record --db /var/lib/netmon/netmon.db --share-with-group --source ebpf\n"
    ));
    assert!(!w.contents.contains("ReadWritePaths"));
    assert_eq!(words(&plan.after)[0], "systemctl daemon-reload");
    let plan = install_plan(
        &c,
        &InstallRequest {
            record_args: vec!["--source=sockdiag".into()],
            ..req
        },
    )
    .expect("plan");
    assert!(
        plan.writes[0]
            .contents
            .contains("--share-with-group --source=sockdiag\n")
    );
}

#[test]
fn a_launchd_install_unloads_a_loaded_agent_first_and_bootstraps_it() {
    let plan = install_plan(
        &ctx(ServiceManager::Launchd, false),
        &InstallRequest::default(),
    )
    .expect("plan");
    assert_eq!(
        words(&plan.before),
        ["launchctl bootout gui/501/io.netmon.record"]
    );
    assert_eq!(
        plan.before[0]
            .only_if
            .as_deref()
            .map(shell_words)
            .as_deref(),
        Some("launchctl print gui/501/io.netmon.record")
    );
    assert_eq!(
        words(&plan.after),
        [
            "codesign --verify --strict /usr/local/bin/netmon",
            "launchctl enable gui/501/io.netmon.record",
            "launchctl bootstrap gui/501 /home/me/Library/LaunchAgents/io.netmon.record.plist"
        ]
    );
    assert!(plan.copies.is_empty(), "an installed netmon runs as it is");
    assert!(
        plan.dirs
            .contains(&PathBuf::from("/home/me/Library/Logs/netmon"))
    );
}

/// Answers from a script, and remembers what it was asked.
struct Scripted {
    asked: Vec<String>,
    fail: Vec<&'static str>,
}

impl Runner for Scripted {
    fn run(&mut self, argv: &[String]) -> std::io::Result<Ran> {
        let cmd = shell_words(argv);
        let success = !self.fail.iter().any(|f| cmd.starts_with(f));
        self.asked.push(cmd);
        Ok(Ran {
            success,
            status: if success {
                "exit status: 0"
            } else {
                "exit status: 1"
            }
            .into(),
            stdout: String::new(),
            stderr: if success {
                String::new()
            } else {
                "Failed to connect to bus".into()
            },
        })
    }
}

#[test]
fn apply_skips_steps_whose_probe_fails_and_stops_at_a_failing_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = ctx(ServiceManager::Launchd, false);
    c.home = dir.path().to_path_buf();
    let plan = install_plan(&c, &InstallRequest::default()).expect("plan");
    let mut r = Scripted {
        asked: Vec::new(),
        fail: vec!["launchctl print"],
    };
    let mut out = Vec::new();
    apply(&plan, &mut r, &mut out).expect("apply");
    assert_eq!(r.asked[0], "launchctl print gui/501/io.netmon.record");
    assert!(r.asked[1].starts_with("codesign --verify"), "{:?}", r.asked);
    assert!(r.asked[2].starts_with("launchctl enable"), "{:?}", r.asked);
    assert!(plan.writes[0].path.exists());

    let mut r = Scripted {
        asked: Vec::new(),
        fail: vec!["systemctl --user daemon-reload"],
    };
    let mut c = ctx(ServiceManager::Systemd, false);
    c.home = dir.path().to_path_buf();
    let err = apply(
        &install_plan(&c, &InstallRequest::default()).expect("plan"),
        &mut r,
        &mut Vec::new(),
    )
    .expect_err("reload fails");
    assert!(
        err.to_string().contains("Failed to connect to bus"),
        "{err}"
    );
    assert_eq!(r.asked.len(), 1, "nothing runs after a failure");
}

/// `launchctl print` keeps succeeding for `lingers` calls after the bootout.
struct Lingering {
    asked: Vec<String>,
    booted_out: bool,
    lingers: usize,
}

impl Runner for Lingering {
    fn run(&mut self, argv: &[String]) -> std::io::Result<Ran> {
        let cmd = shell_words(argv);
        let success = if cmd.starts_with("launchctl print") {
            !self.booted_out || {
                self.lingers = self.lingers.saturating_sub(1);
                self.lingers > 0
            }
        } else {
            if cmd.starts_with("launchctl bootout") {
                self.booted_out = true;
            }
            true
        };
        self.asked.push(cmd);
        Ok(Ran {
            success,
            ..Ran::default()
        })
    }
}

#[test]
fn a_reinstall_waits_for_the_old_agent_to_go_before_loading_the_new_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = ctx(ServiceManager::Launchd, false);
    c.home = dir.path().to_path_buf();
    let mut r = Lingering {
        asked: Vec::new(),
        booted_out: false,
        lingers: 3,
    };
    apply(
        &install_plan(&c, &InstallRequest::default()).expect("plan"),
        &mut r,
        &mut Vec::new(),
    )
    .expect("apply");
    let print = "launchctl print gui/501/io.netmon.record";
    assert_eq!(r.asked[0], print);
    assert_eq!(r.asked[1], "launchctl bootout gui/501/io.netmon.record");
    assert_eq!(r.asked[2..5], [print, print, print]);
    assert!(r.asked[5].starts_with("codesign --verify"), "{:?}", r.asked);
    assert!(r.asked[6].starts_with("launchctl enable"), "{:?}", r.asked);
}

#[test]
fn shell_words_quote_what_a_shell_would_split() {
    let argv = ["launchctl", "bootstrap", "/Users/a b/x.plist", "it's"].map(String::from);
    assert_eq!(
        shell_words(&argv),
        r"launchctl bootstrap '/Users/a b/x.plist' 'it'\''s'"
    );
}

// --- An agent launchd will run, or a refusal (issue 14) ---

fn launchd_with(exe: &str, db: &str) -> Context {
    let mut c = ctx(ServiceManager::Launchd, false);
    c.home = PathBuf::from("/Users/me");
    c.exe = PathBuf::from(exe);
    c.db = PathBuf::from(db);
    c
}

const DEFAULT_DB: &str = "/Users/me/Library/Application Support/netmon/netmon.db";

#[test]
fn a_binary_in_a_protected_folder_or_a_build_output_is_copied_out_and_checked() {
    for exe in [
        "/Users/me/Documents/src/netmon/target/release/netmon",
        "/Users/me/Desktop/netmon",
        "/Users/me/Downloads/netmon",
        "/Users/me/Library/Mobile Documents/com~apple~CloudDocs/netmon",
        "/Users/me/src/netmon/target/debug/netmon",
    ] {
        let plan =
            install_plan(&launchd_with(exe, DEFAULT_DB), &InstallRequest::default()).expect("plan");
        let copy = "/Users/me/Library/Application Support/netmon/bin/netmon";
        assert_eq!(
            plan.copies,
            [FileCopy {
                from: PathBuf::from(exe),
                to: PathBuf::from(copy),
                mode: 0o755
            }],
            "{exe}"
        );
        assert!(plan.dirs.contains(&PathBuf::from(
            "/Users/me/Library/Application Support/netmon/bin"
        )));
        assert!(
            plan.writes[0]
                .contents
                .contains(&format!("<string>{copy}</string>")),
            "the agent runs the copy: {}",
            plan.writes[0].contents
        );
        assert!(!plan.writes[0].contents.contains(exe));
        // The copy's signature is checked before launchd is asked to load it.
        let after = words(&plan.after);
        assert_eq!(after[0], format!("codesign --verify --strict '{copy}'"));
        assert!(after[2].starts_with("launchctl bootstrap"), "{after:?}");
        assert!(
            plan.after[0]
                .on_failure
                .as_deref()
                .is_some_and(|h| h.contains("codesign --force --sign -")),
            "a failed check says what to do"
        );
        assert!(plan.notes[0].contains("runs a copy of"), "{:?}", plan.notes);
    }
}

#[test]
fn a_database_in_a_protected_folder_is_refused_with_the_fix() {
    for db in [
        "/Users/me/Documents/netmon.db",
        "/Users/me/Library/Mobile Documents/com~apple~CloudDocs/n.db",
        "/Volumes/USB/netmon.db",
    ] {
        let e = install_plan(
            &launchd_with("/opt/homebrew/bin/netmon", db),
            &InstallRequest::default(),
        )
        .expect_err("refused");
        let text = e.to_string();
        assert!(
            text.contains("privacy protection") && text.contains("leave out --db"),
            "{text}"
        );
    }
    // Right beside them is fine.
    install_plan(
        &launchd_with("/opt/homebrew/bin/netmon", "/Users/me/Documents-old/n.db"),
        &InstallRequest::default(),
    )
    .expect("not a protected folder");
}

#[test]
fn launchds_exit_facts_are_explained_in_words() {
    use super::launchd::{explain, parse_print};
    let says = |text: &str| parse_print(text);
    let logs = "/Users/me/Library/Logs/netmon/record.log";
    // Shapes launchd prints (quoted by other projects' parsers and tests).
    let signing = says(
        "gui/501/io.netmon.record = {\n\tstate = not running\n\truns = 1\n\t\
         last exit reason = OS_REASON_CODESIGNING\n\tjob state = spawn failed\n}\n",
    );
    assert_eq!(
        super::probe::value(&signing, "last exit reason"),
        Some("OS_REASON_CODESIGNING")
    );
    assert_eq!(
        super::probe::value(&signing, "job state"),
        Some("spawn failed")
    );
    let e = explain(&signing, logs);
    assert!(
        e[0].contains("code signature") && e[0].contains("fresh copy"),
        "{e:?}"
    );

    let tcc = explain(
        &says("x = {\n\tlast exit code = 126\n\tlast exit reason = OS_REASON_TCC\n}\n"),
        logs,
    );
    assert!(tcc[0].contains("privacy protection"), "{tcc:?}");
    assert!(tcc[1].contains("exited 126"), "{tcc:?}");

    let config = explain(&says("x = {\n\tlast exit code = 78: EX_CONFIG\n}\n"), logs);
    assert!(config[0].contains("EX_CONFIG"), "{config:?}");

    let signal = explain(
        &says("x = {\n\tlast terminating signal = 9: Killed: 9\n}\n"),
        logs,
    );
    assert!(signal[0].contains("Killed: 9"), "{signal:?}");

    let exited = explain(&says("x = {\n\tlast exit code = 1\n}\n"), logs);
    assert_eq!(
        exited,
        [format!("it exited with status 1: {logs} says why")]
    );

    assert!(explain(&says("x = {\n\tlast exit code = (never exited)\n}\n"), logs).is_empty());
    assert!(explain(&says("x = {\n\tlast exit code = 0\n}\n"), logs).is_empty());
}

#[test]
fn a_disabled_agent_is_read_from_either_shape_of_print_disabled() {
    use super::launchd::is_disabled;
    let old = "disabled services = {\n\t\"com.docker.helper\" => false\n\t\"io.netmon.record\" => true\n}\n";
    let new = "disabled services = {\n\t\"io.netmon.record\" => disabled\n}\n";
    assert!(is_disabled(old, "io.netmon.record"));
    assert!(is_disabled(new, "io.netmon.record"));
    assert!(!is_disabled(old, "io.netmon.serve"));
    assert!(!is_disabled(
        "disabled services = {\n\t\"io.netmon.record\" => enabled\n}\n",
        "io.netmon.record"
    ));
    assert!(!is_disabled(
        "disabled services = {\n\t\"io.netmon.recorder\" => true\n}\n",
        "io.netmon.record"
    ));
}
