//! macOS: LaunchAgent property lists (launchd.plist(5)) and the launchctl commands that load,
//! unload and inspect them.
//!
//! Choices, for a recorder meant to run for months:
//! - `RunAtLoad` + `KeepAlive { SuccessfulExit = false }`: started at login, restarted when it
//!   dies (crash, kill -9, a failed tick loop giving up), but not when it exits 0, which it
//!   only does when asked to stop (SIGTERM from `launchctl bootout`).
//! - `ThrottleInterval` 30 s: a recorder that cannot start (exit 1: another recorder, a newer
//!   database) retries twice a minute, not every 10 s, and logs each time.
//! - `ProcessType Background`, `LowPriorityIO`, `LowPriorityBackgroundIO`, `Nice` 10: it never
//!   competes with what the user is doing. Timer coalescing only delays ticks, and every
//!   tick divides by its real elapsed time, so no byte is lost or double-counted.
//! - `ExitTimeOut` 30 s: time to commit the tick in progress before SIGKILL.
//! - Logs: stdout and stderr appended to `~/Library/Logs/netmon/<name>.log` (Console.app
//!   shows that folder). launchd does not create the folder, so `install` does.
//!
//! Commands use the bootstrap/bootout domain syntax (macOS 10.10+); `gui/<uid>` is the
//! logged-in user's domain, where LaunchAgents in ~/Library/LaunchAgents belong.
//!
//! The property list is serialized by the `plist` crate. XML 1.0 cannot carry most control
//! characters at all, so a path or option holding one is refused rather than written into a
//! file launchd would reject.
//!
//! An agent that launchd will run, or a refusal that says why (issue 14). What other
//! projects' reports show an agent dying of, again and again, with nothing said:
//! - **Privacy protection (TCC).** A background program gets `EPERM` under `~/Documents`,
//!   `~/Desktop`, `~/Downloads` and iCloud Drive: agents there exit 126 ("getcwd: Operation not
//!   permitted", smith-horn/skillsmith#1009; theQuert/cc-reaper#21), or die with
//!   `last exit reason = OS_REASON_TCC`. So a netmon binary in such a folder (a `target/` under
//!   `~/Documents` is common) is **copied** to `~/Library/Application Support/netmon/bin/`, and
//!   a database there is refused with the fix.
//! - **Code signature.** A binary rewritten in place is killed at exec (SIGKILL "Code
//!   Signature Invalid", `OS_REASON_CODESIGNING`): the kernel keeps the old signature for the
//!   file (kenn-io/agentsview#910, aaronsb/agent-ways#364, smartcontractkit/chainlink#6753);
//!   a `com.apple.provenance` mark can get an ad-hoc-signed binary killed too
//!   (1jehuang/jcode#1233). So the copy is always a new file renamed into place, with no
//!   extended attributes, and `codesign --verify` must pass before the agent is loaded. Build
//!   outputs (`target/`) are copied as well: a rebuild then cannot change the agent's file.
//! - **Switched off.** Since Ventura the user can turn an agent off under System Settings ›
//!   General › Login Items › Allow in the Background; launchd then keeps it disabled
//!   (`launchctl print-disabled`). `service status` (and `netmon status`) say so in words, as
//!   they explain launchd's `last exit code`, `last exit reason` and `last terminating signal`
//!   (the shapes other tools parse: `78: EX_CONFIG`, `(never exited)`, `OS_REASON_CODESIGNING`,
//!   `killed by signal: 9`, `9: Killed: 9`).

use std::path::{Path, PathBuf};

use plist::{Dictionary, Value};

use super::apply::Ran;
use super::probe::{self, ComponentStatus};
use super::{Component, Context, FileCopy, FileWrite, InstallRequest, Manager, Program, Step};

/// launchd, for LaunchAgents in the user's `gui/<uid>` domain.
pub struct Launchd;

impl Manager for Launchd {
    fn name(&self) -> &'static str {
        "launchd"
    }

    fn tool(&self) -> &'static str {
        "launchctl"
    }

    fn definition_path(&self, ctx: &Context, c: Component) -> PathBuf {
        plist_path(&ctx.home, c)
    }

    fn check_install(&self, ctx: &Context) -> anyhow::Result<()> {
        if let Some(folder) = protected_folder(&ctx.home, &ctx.db) {
            return Err(crate::exit::user(format!(
                "the database {} is in {folder}, which macOS's privacy protection closes to                  background programs: the agent could not open it and would exit again and                  again. Keep it elsewhere: leave out --db (the default is                  ~/Library/Application Support/netmon/netmon.db) or give a path outside                  Desktop, Documents, Downloads, iCloud Drive and /Volumes",
                ctx.db.display()
            )));
        }
        Ok(())
    }

    fn program(&self, ctx: &Context) -> anyhow::Result<Program> {
        Ok(program(ctx))
    }

    fn definition(
        &self,
        ctx: &Context,
        c: Component,
        argv: &[String],
        _req: &InstallRequest,
    ) -> anyhow::Result<FileWrite> {
        Ok(FileWrite {
            path: plist_path(&ctx.home, c),
            contents: plist(c, argv, &log_path(&ctx.home, c))?,
            mode: 0o644,
        })
    }

    fn dirs(&self, ctx: &Context, _c: Component) -> Vec<PathBuf> {
        // launchd does not create the log folder.
        vec![log_dir(&ctx.home)]
    }

    fn install_steps(
        &self,
        ctx: &Context,
        c: Component,
        definition: &Path,
    ) -> (Vec<Step>, Vec<Step>) {
        install_steps(ctx.uid, c, definition)
    }

    fn uninstall_steps(&self, ctx: &Context, c: Component) -> (Vec<Step>, Vec<Step>) {
        uninstall_steps(ctx.uid, c)
    }

    fn install_notes(&self, ctx: &Context, _req: &InstallRequest) -> Vec<String> {
        vec![format!("logs: {}", log_dir(&ctx.home).display())]
    }

    fn starts_at(&self, _ctx: &Context) -> &'static str {
        "login"
    }

    fn warnings(&self, _ctx: &Context) -> Vec<String> {
        Vec::new()
    }

    fn logs(&self, ctx: &Context, c: Component) -> String {
        log_path(&ctx.home, c).display().to_string()
    }

    fn status_command(&self, ctx: &Context, c: Component) -> Vec<String> {
        probe(ctx.uid, c)
    }

    fn read_status(&self, ran: &Ran, st: &mut ComponentStatus) {
        // `print` fails for a service that is not loaded: not running, not an error.
        st.manager_says = parse_print(&ran.stdout);
        st.running =
            Some(ran.success && probe::value(&st.manager_says, "state") == Some("running"));
        st.pid = probe::value(&st.manager_says, "pid").and_then(|p| p.parse().ok());
        if !ran.success && st.installed {
            st.manager_says.push(("state".into(), "not loaded".into()));
        }
        if st.running != Some(true) {
            st.diagnosis = explain(&st.manager_says, &st.logs);
        }
    }

    fn disabled_command(&self, ctx: &Context) -> Option<Vec<String>> {
        Some(launchctl(&["print-disabled", &domain(ctx.uid)]))
    }

    fn read_disabled(&self, ran: &Ran, st: &mut ComponentStatus) {
        if !ran.success {
            return;
        }
        st.disabled = Some(is_disabled(&ran.stdout, &label(st.component)));
        if st.disabled == Some(true) && st.installed {
            st.diagnosis.insert(0, DISABLED.to_string());
        }
    }
}

/// What `service status` says of an agent launchd keeps disabled.
pub const DISABLED: &str = "switched off: launchd keeps this agent disabled, so it will not \
    start at login. It is turned off under System Settings › General › Login Items › Allow in \
    the Background (or by `launchctl disable`): turn netmon on there, then run `netmon service \
    install` again";

/// Where a path sits that macOS's privacy protection (TCC) closes to background programs,
/// in words; `None` when it is outside all of them.
pub fn protected_folder(home: &Path, path: &Path) -> Option<&'static str> {
    let under = |p: PathBuf| path.starts_with(p);
    if under(home.join("Desktop")) {
        Some("~/Desktop")
    } else if under(home.join("Documents")) {
        Some("~/Documents")
    } else if under(home.join("Downloads")) {
        Some("~/Downloads")
    } else if under(home.join("Library/Mobile Documents")) {
        Some("iCloud Drive")
    } else if under(PathBuf::from("/Volumes")) {
        Some("a removable or network volume (/Volumes)")
    } else {
        None
    }
}

/// Where the agent's own copy of netmon goes.
pub fn program_dir(home: &Path) -> PathBuf {
    home.join("Library/Application Support/netmon/bin")
}

/// The program the agent runs: netmon as it is, unless it is in a protected folder or is a
/// build output, in which case a fresh copy under [`program_dir`]. Either way its signature is
/// checked before the agent is loaded.
pub fn program(ctx: &Context) -> Program {
    let exe = &ctx.exe;
    let build_output = exe.components().any(|c| c.as_os_str() == "target")
        || exe.starts_with(std::env::temp_dir());
    let why = match protected_folder(&ctx.home, exe) {
        Some(folder) => Some(format!(
            "{folder} is closed to background programs by macOS's privacy protection"
        )),
        None if build_output => Some(
            "it is a build output, which a rebuild replaces (and macOS kills a signed binary \
             replaced in place)"
                .to_string(),
        ),
        None => None,
    };
    let path = match &why {
        Some(_) => program_dir(&ctx.home).join("netmon"),
        None => exe.clone(),
    };
    let check = Step::checked(
        vec![
            "codesign".into(),
            "--verify".into(),
            "--strict".into(),
            path.to_string_lossy().into_owned(),
        ],
        format!(
            "macOS would kill the agent at launch (OS_REASON_CODESIGNING): reinstall netmon, or \
             sign it yourself with `codesign --force --sign - {}` and install again",
            path.display()
        ),
    );
    Program {
        copy: why.as_ref().map(|_| FileCopy {
            from: exe.clone(),
            to: path.clone(),
            mode: 0o755,
        }),
        note: why.map(|w| {
            format!(
                "program: the agent runs a copy of {} at {}, because {w}; install again after \
                 you rebuild or upgrade netmon",
                exe.display(),
                path.display()
            )
        }),
        checks: vec![check],
        path,
    }
}

/// Whether `print-disabled` lists `label` as disabled (`=> true` or `=> disabled`).
pub fn is_disabled(out: &str, label: &str) -> bool {
    let quoted = format!("\"{label}\"");
    out.lines()
        .filter_map(|l| l.trim().strip_prefix(&quoted))
        .filter_map(|rest| rest.trim().strip_prefix("=>"))
        .any(|v| matches!(v.trim(), "true" | "disabled"))
}

/// What launchd's facts about a stopped agent mean, in words, most telling first.
pub fn explain(says: &[(String, String)], logs: &str) -> Vec<String> {
    let get = |k: &str| probe::value(says, k);
    let mut out = Vec::new();
    if let Some(reason) = get("last exit reason") {
        let words = if reason.contains("CODESIGNING") {
            "macOS killed it at launch for its code signature: its program file was replaced \
             in place, or carries a quarantine or provenance mark. Run `netmon service install` \
             again: the agent gets a fresh copy"
                .to_string()
        } else if reason.contains("TCC") {
            "macOS's privacy protection stopped it: its program or database is in Desktop, \
             Documents, Downloads or iCloud Drive. Run `netmon service install` again (the \
             program is copied out) with the database outside those folders"
                .to_string()
        } else if reason.contains("DYLD") {
            "the dynamic linker could not load it: reinstall netmon, then run `netmon service \
             install` again"
                .to_string()
        } else if reason.contains("JETSAM") {
            "macOS ended it to free memory; launchd starts it again".to_string()
        } else {
            format!("launchd gives as its last exit reason: {reason}")
        };
        out.push(format!("{words} (last exit reason {reason})"));
    }
    if let Some(sig) = get("last terminating signal") {
        out.push(format!(
            "it was stopped by a signal ({sig}); if this repeats, see {logs}"
        ));
    }
    match get("last exit code").map(|c| c.split(':').next().unwrap_or(c).trim()) {
        Some("126") => out.push(
            "it exited 126, the program could not run: on macOS this is what privacy \
             protection does to an agent whose program is in Desktop, Documents, Downloads or \
             iCloud Drive. Run `netmon service install` again: the program is copied out"
                .into(),
        ),
        Some("78") => out.push(
            "launchd could not start the program it names (78: EX_CONFIG: missing, moved or \
             not executable): run `netmon service install` again"
                .into(),
        ),
        Some(code) if code != "0" && !code.starts_with('(') => {
            out.push(format!("it exited with status {code}: {logs} says why"))
        }
        _ => {}
    }
    out
}

/// The agent's label: also its file name without `.plist`.
pub fn label(c: Component) -> String {
    format!("io.netmon.{}", c.name())
}

pub fn plist_path(home: &Path, c: Component) -> PathBuf {
    home.join("Library/LaunchAgents")
        .join(format!("{}.plist", label(c)))
}

pub fn log_dir(home: &Path) -> PathBuf {
    home.join("Library/Logs/netmon")
}

pub fn log_path(home: &Path, c: Component) -> PathBuf {
    log_dir(home).join(format!("{}.log", c.name()))
}

/// The property list for one component, running `argv` (absolute program path first).
pub fn plist(c: Component, argv: &[String], log: &Path) -> anyhow::Result<String> {
    let log = log.to_string_lossy().into_owned();
    for text in argv.iter().chain([&log]) {
        if let Some(bad) = text.chars().find(|ch| !xml_char(*ch)) {
            return Err(crate::exit::user(format!(
                "{text:?} holds the control character {bad:?}, which a launchd property list \
                 cannot carry: use a path (and options) without it"
            )));
        }
    }
    let mut keep_alive = Dictionary::new();
    keep_alive.insert("SuccessfulExit".into(), Value::Boolean(false));
    let mut d = Dictionary::new();
    d.insert("Label".into(), Value::String(label(c)));
    d.insert(
        "ProgramArguments".into(),
        Value::Array(argv.iter().cloned().map(Value::String).collect()),
    );
    d.insert("RunAtLoad".into(), Value::Boolean(true));
    d.insert("KeepAlive".into(), Value::Dictionary(keep_alive));
    d.insert("ThrottleInterval".into(), Value::Integer(30.into()));
    d.insert("ExitTimeOut".into(), Value::Integer(30.into()));
    d.insert("ProcessType".into(), Value::String("Background".into()));
    d.insert("LowPriorityIO".into(), Value::Boolean(true));
    d.insert("LowPriorityBackgroundIO".into(), Value::Boolean(true));
    d.insert("Nice".into(), Value::Integer(10.into()));
    d.insert("StandardOutPath".into(), Value::String(log.clone()));
    d.insert("StandardErrorPath".into(), Value::String(log));
    let mut out = Vec::new();
    Value::Dictionary(d).to_writer_xml(&mut out)?;
    out.push(b'\n');
    Ok(String::from_utf8(out)?)
}

/// A character XML 1.0 can carry (its `Char` production).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `gui/<uid>`: the logged-in user's launchd domain.
pub fn domain(uid: u32) -> String {
    format!("gui/{uid}")
}

/// `gui/<uid>/<label>`.
pub fn target(uid: u32, c: Component) -> String {
    format!("{}/{}", domain(uid), label(c))
}

fn launchctl(args: &[&str]) -> Vec<String> {
    std::iter::once("launchctl")
        .chain(args.iter().copied())
        .map(str::to_string)
        .collect()
}

/// Is the agent loaded? `launchctl print` exits 0 only for a loaded service.
pub fn probe(uid: u32, c: Component) -> Vec<String> {
    launchctl(&["print", &target(uid, c)])
}

/// Unload if loaded (a reinstall replaces the running agent), clear a disabled override left
/// by an earlier `launchctl disable`, then load: RunAtLoad starts it now.
pub fn install_steps(uid: u32, c: Component, plist: &Path) -> (Vec<Step>, Vec<Step>) {
    let t = target(uid, c);
    let before = vec![Step::if_loaded(launchctl(&["bootout", &t]), probe(uid, c))];
    let after = vec![
        Step::always(launchctl(&["enable", &t])),
        Step::always(launchctl(&[
            "bootstrap",
            &domain(uid),
            &plist.to_string_lossy(),
        ])),
    ];
    (before, after)
}

/// Unload (stops it with SIGTERM) if loaded; the file is removed afterwards.
pub fn uninstall_steps(uid: u32, c: Component) -> (Vec<Step>, Vec<Step>) {
    (
        vec![Step::if_loaded(
            launchctl(&["bootout", &target(uid, c)]),
            probe(uid, c),
        )],
        Vec::new(),
    )
}

/// The facts `service status` shows, from `launchctl print gui/<uid>/<label>`: its top-level
/// `key = value` lines (`state = running`, `pid = 123`, `last exit code = 0`, `runs = 2`).
pub fn parse_print(out: &str) -> Vec<(String, String)> {
    let wanted = [
        "state",
        "pid",
        "last exit code",
        "last exit reason",
        "last terminating signal",
        "job state",
        "runs",
        "path",
        "program",
    ];
    out.lines()
        .filter(|l| l.starts_with('\t') && !l.starts_with("\t\t"))
        .filter_map(|l| l.trim().split_once(" = "))
        .filter(|(k, _)| wanted.contains(k))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_special_characters_in_paths_are_escaped() {
        let p = plist(
            Component::Record,
            &["/Users/a&b/<bin>/netmon".into(), "record".into()],
            Path::new("/Users/a&b/Library/Logs/netmon/record.log"),
        )
        .expect("plist");
        assert!(p.contains("<string>/Users/a&amp;b/&lt;bin&gt;/netmon</string>"));
        assert!(!p.contains("a&b"));
    }

    #[test]
    fn control_characters_xml_cannot_carry_are_refused() {
        let e = plist(
            Component::Record,
            &["/Users/a\u{1}b/netmon".into(), "record".into()],
            Path::new("/Users/x/Library/Logs/netmon/record.log"),
        )
        .expect_err("refused");
        assert!(e.to_string().contains("control character"), "{e}");
        plist(
            Component::Record,
            &["/Users/tab\there/netmon".into()],
            Path::new("/l"),
        )
        .expect("a tab is fine");
    }

    #[test]
    fn print_output_gives_state_pid_and_last_exit() {
        let out = "gui/501/io.netmon.record = {\n\
                   \tactive count = 1\n\
                   \tpath = /Users/me/Library/LaunchAgents/io.netmon.record.plist\n\
                   \tstate = running\n\
                   \n\
                   \tprogram = /usr/local/bin/netmon\n\
                   \targuments = {\n\
                   \t\tstate = not a top-level key\n\
                   \t}\n\
                   \tpid = 4242\n\
                   \truns = 3\n\
                   \tlast exit code = 0\n\
                   }\n";
        let facts = parse_print(out);
        assert_eq!(
            facts,
            [
                (
                    "path",
                    "/Users/me/Library/LaunchAgents/io.netmon.record.plist"
                ),
                ("state", "running"),
                ("program", "/usr/local/bin/netmon"),
                ("pid", "4242"),
                ("runs", "3"),
                ("last exit code", "0"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }
}
