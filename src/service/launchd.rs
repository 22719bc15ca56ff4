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

use std::path::{Path, PathBuf};

use plist::{Dictionary, Value};

use super::apply::Ran;
use super::probe::{self, ComponentStatus};
use super::{Component, Context, FileWrite, InstallRequest, Manager, Step};

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
    }
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
    let wanted = ["state", "pid", "last exit code", "runs", "path"];
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
                ("pid", "4242"),
                ("runs", "3"),
                ("last exit code", "0"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }
}
