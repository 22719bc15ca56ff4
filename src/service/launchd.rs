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

use std::path::{Path, PathBuf};

use super::{Component, Step};

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
pub fn plist(c: Component, argv: &[String], log: &Path) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \
         \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n<dict>\n",
    );
    let key = |s: &mut String, k: &str| s.push_str(&format!("\t<key>{k}</key>\n"));
    let string = |s: &mut String, k: &str, v: &str| {
        key(s, k);
        s.push_str(&format!("\t<string>{}</string>\n", xml_escape(v)));
    };
    let boolean = |s: &mut String, k: &str, v: bool| {
        key(s, k);
        s.push_str(if v { "\t<true/>\n" } else { "\t<false/>\n" });
    };
    let integer = |s: &mut String, k: &str, v: i64| {
        key(s, k);
        s.push_str(&format!("\t<integer>{v}</integer>\n"));
    };
    string(&mut s, "Label", &label(c));
    key(&mut s, "ProgramArguments");
    s.push_str("\t<array>\n");
    for a in argv {
        s.push_str(&format!("\t\t<string>{}</string>\n", xml_escape(a)));
    }
    s.push_str("\t</array>\n");
    boolean(&mut s, "RunAtLoad", true);
    key(&mut s, "KeepAlive");
    s.push_str("\t<dict>\n\t\t<key>SuccessfulExit</key>\n\t\t<false/>\n\t</dict>\n");
    integer(&mut s, "ThrottleInterval", 30);
    integer(&mut s, "ExitTimeOut", 30);
    string(&mut s, "ProcessType", "Background");
    boolean(&mut s, "LowPriorityIO", true);
    boolean(&mut s, "LowPriorityBackgroundIO", true);
    integer(&mut s, "Nice", 10);
    let log = log.to_string_lossy();
    string(&mut s, "StandardOutPath", &log);
    string(&mut s, "StandardErrorPath", &log);
    s.push_str("</dict>\n</plist>\n");
    s
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

/// Text inside an XML element: `&`, `<` and `>` escaped (quotes need no escaping there).
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
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
        );
        assert!(p.contains("<string>/Users/a&amp;b/&lt;bin&gt;/netmon</string>"));
        assert!(!p.contains("a&b"));
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
