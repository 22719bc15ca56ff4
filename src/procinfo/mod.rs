//! Who a pid is: its executable path from the OS, and the application a user would call it.
//!
//! Users think in applications ("Google Chrome"), not in the fifteen `Google Chrome H` helper
//! processes nettop lists. [`app_for`] is the pure mapping from what is known of a process to
//! its application; [`lookup`] asks the OS (macOS: libproc; Linux: /proc) once per process.
//!
//! Never credit bytes to the wrong program: when the path cannot be resolved, or the process
//! found under the pid does not match the name the source gave (the pid was reused between the
//! source's reading and the lookup), the source's own name is kept and no path is claimed.

pub mod container;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;
pub mod usage;

use std::path::{Path, PathBuf};

use crate::source::ProcessRef;

/// What the OS says about a live process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcInfo {
    pub exe: Option<PathBuf>,
    /// The kernel's short name (Linux `comm`, macOS `p_comm`).
    pub name: Option<String>,
    pub cmdline: Vec<String>,
    pub uid: Option<u32>,
    pub start_time: Option<u64>,
}

/// Ask the OS about `pid`. `None` when the process is gone or cannot be read.
pub fn lookup(pid: u32) -> Option<ProcInfo> {
    #[cfg(target_os = "linux")]
    return linux::lookup(pid);
    #[cfg(target_os = "macos")]
    return macos::lookup(pid);
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        let _ = pid;
        None
    }
}

/// An identifier of the current boot: saved counter state from another boot is void, since a
/// reboot restarts every counter. Linux: the kernel's random boot_id; macOS: the boot session
/// UUID (falling back to the boot time).
pub fn boot_id() -> String {
    #[cfg(target_os = "linux")]
    let id = linux::boot_id();
    #[cfg(target_os = "macos")]
    let id = macos::boot_id();
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    let id: Option<String> = None;
    id.unwrap_or_else(|| "unknown-boot".to_string())
}

/// This machine's host name, for the run record.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned()).filter(|s| !s.is_empty())
}

/// An application as netmon groups and shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct App {
    /// What the user sees: "Google Chrome", "firefox", "curl".
    pub name: String,
    /// The bundle (`/Applications/Google Chrome.app`) or executable path; `None` when unknown.
    pub path: Option<String>,
}

/// Interpreters whose executable says nothing about the program: name those by the name the
/// process gave itself, or by the script they run.
const INTERPRETERS: &[&str] = &[
    "python",
    "python2",
    "python3",
    "pypy",
    "pypy3",
    "node",
    "nodejs",
    "deno",
    "bun",
    "ruby",
    "perl",
    "php",
    "java",
    "lua",
    "luajit",
    "bash",
    "sh",
    "dash",
    "zsh",
    "fish",
    "ksh",
    "tclsh",
    "Rscript",
    "pwsh",
    "osascript",
    "gjs",
];

/// The application a process belongs to.
///
/// `source` is what the source reported (its name is authoritative when nothing better is
/// known); `info` is what the OS said about the pid, if anything. When the source itself
/// read the executable path (Linux sources do, in the same pass), it is trusted as is.
pub fn app_for(source: &ProcessRef, info: Option<&ProcInfo>) -> App {
    let fallback = App {
        name: source.name.clone(),
        path: None,
    };
    let (exe, os_name, cmdline) = match (&source.exe, info) {
        (Some(exe), info) => (
            exe.clone(),
            Some(source.name.clone()),
            source
                .cmdline
                .as_deref()
                .map(|c| c.split('\0').map(str::to_string).collect())
                .or_else(|| info.map(|i| i.cmdline.clone()))
                .unwrap_or_default(),
        ),
        (None, Some(i)) => match &i.exe {
            Some(exe) if same_process(&source.name, exe, i.name.as_deref()) => {
                (exe.clone(), i.name.clone(), i.cmdline.clone())
            }
            _ => return fallback,
        },
        (None, None) => return fallback,
    };
    if let Some(bundle) = outermost_bundle(&exe) {
        return bundle;
    }
    let base = file_name(&exe);
    if base.is_empty() {
        return fallback;
    }
    if is_interpreter(&base) {
        // A process that renamed itself (prctl, setproctitle) chose its own name.
        let given = os_name.as_deref().unwrap_or(&source.name);
        let renamed = !given.is_empty() && !is_interpreter(given) && !base.starts_with(given);
        if renamed {
            return App {
                name: given.to_string(),
                path: Some(exe.display().to_string()),
            };
        }
        if let Some(script) = script_of(&cmdline) {
            return App {
                name: file_name(Path::new(&script)),
                path: Some(script),
            };
        }
    }
    App {
        name: base,
        path: Some(exe.display().to_string()),
    }
}

/// The outermost `.app` bundle on the path: every helper inside Chrome's bundle is Chrome.
pub fn outermost_bundle(exe: &Path) -> Option<App> {
    let mut path = PathBuf::new();
    for part in exe.components() {
        path.push(part);
        let s = part.as_os_str().to_string_lossy();
        if let Some(name) = s.strip_suffix(".app").filter(|n| !n.is_empty()) {
            return Some(App {
                name: name.to_string(),
                path: Some(path.display().to_string()),
            });
        }
    }
    None
}

/// Whether the process found under a pid is the one the source named. Sources cut names
/// (nettop and Linux `comm` to 15 characters, sometimes mid-word or after a space).
pub fn same_process(source_name: &str, exe: &Path, os_name: Option<&str>) -> bool {
    if source_name.is_empty() {
        return false;
    }
    let base = file_name(exe);
    base.starts_with(source_name)
        || os_name.is_some_and(|n| n == source_name || n.starts_with(source_name))
}

fn is_interpreter(base: &str) -> bool {
    // python3.11, ruby3.1, perl5.36: strip a trailing version.
    let stem = base.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    INTERPRETERS.contains(&base) || INTERPRETERS.contains(&stem)
}

/// The script an interpreter runs: the first argument after its options.
fn script_of(cmdline: &[String]) -> Option<String> {
    let mut args = cmdline.iter().skip(1);
    while let Some(a) = args.next() {
        if a == "-m" || a == "-c" || a == "-e" {
            // `python -m module` names the module; `-c`/`-e` code has no name.
            return if a == "-m" {
                args.next().cloned()
            } else {
                None
            };
        }
        if a.starts_with('-') {
            continue;
        }
        return Some(a.clone());
    }
    None
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(name: &str) -> ProcessRef {
        ProcessRef::new(4242, name)
    }

    fn info(exe: &str, name: &str, cmdline: &[&str]) -> ProcInfo {
        ProcInfo {
            exe: Some(PathBuf::from(exe)),
            name: Some(name.to_string()),
            cmdline: cmdline.iter().map(|s| s.to_string()).collect(),
            uid: Some(501),
            start_time: None,
        }
    }

    fn app(name: &str, path: Option<&str>) -> App {
        App {
            name: name.into(),
            path: path.map(Into::into),
        }
    }

    #[test]
    fn nested_helper_bundles_belong_to_the_outermost_app() {
        let exe = "/Applications/Google Chrome.app/Contents/Frameworks/Google Chrome Framework.framework/Versions/131.0/Helpers/Google Chrome Helper (Renderer).app/Contents/MacOS/Google Chrome Helper (Renderer)";
        let got = app_for(
            &src("Google Chrome H"),
            Some(&info(exe, "Google Chrome Helper (Renderer)", &[])),
        );
        assert_eq!(
            got,
            app("Google Chrome", Some("/Applications/Google Chrome.app"))
        );
    }

    #[test]
    fn paths_with_spaces_and_user_applications() {
        let exe = "/Users/ana/Applications/Visual Studio Code.app/Contents/MacOS/Electron";
        let got = app_for(&src("Electron"), Some(&info(exe, "Electron", &[])));
        assert_eq!(
            got,
            app(
                "Visual Studio Code",
                Some("/Users/ana/Applications/Visual Studio Code.app")
            )
        );
    }

    #[test]
    fn system_daemons_inside_no_bundle_are_named_by_executable() {
        let got = app_for(
            &src("mDNSResponder"),
            Some(&info("/usr/sbin/mDNSResponder", "mDNSResponder", &[])),
        );
        assert_eq!(got, app("mDNSResponder", Some("/usr/sbin/mDNSResponder")));
    }

    #[test]
    fn command_line_tools_are_named_by_executable_even_when_the_source_cut_the_name() {
        let got = app_for(
            &src("evolution-addre"),
            Some(&info(
                "/usr/libexec/evolution-addressbook-factory",
                "evolution-addre",
                &[],
            )),
        );
        assert_eq!(got.name, "evolution-addressbook-factory");
    }

    #[test]
    fn a_pid_that_exited_before_it_was_resolved_keeps_the_source_name() {
        assert_eq!(app_for(&src("curl"), None), app("curl", None));
    }

    #[test]
    fn a_reused_pid_with_another_program_keeps_the_source_name() {
        let got = app_for(&src("curl"), Some(&info("/usr/bin/ssh", "ssh", &[])));
        assert_eq!(got, app("curl", None));
    }

    #[test]
    fn a_name_cut_after_a_space_still_matches() {
        let exe = "/Applications/Microsoft Edge.app/Contents/Frameworks/x/Microsoft Edge Helper";
        let got = app_for(
            &src("Microsoft Edge "),
            Some(&info(exe, "Microsoft Edge Helper", &[])),
        );
        assert_eq!(got.name, "Microsoft Edge");
    }

    #[test]
    fn interpreters_are_named_by_the_name_the_process_chose() {
        let got = app_for(
            &src("bulk_tcp"),
            Some(&info(
                "/usr/bin/python3.11",
                "bulk_tcp",
                &["bulk_tcp", "workload.py"],
            )),
        );
        assert_eq!(got.name, "bulk_tcp");
    }

    #[test]
    fn interpreters_running_a_script_are_named_by_the_script() {
        let got = app_for(
            &src("python3"),
            Some(&info(
                "/usr/bin/python3.11",
                "python3",
                &["python3", "-u", "/opt/tools/sync.py", "--fast"],
            )),
        );
        assert_eq!(got, app("sync.py", Some("/opt/tools/sync.py")));
        let got = app_for(
            &src("python3"),
            Some(&info(
                "/usr/bin/python3.11",
                "python3",
                &["python3", "-m", "http.server"],
            )),
        );
        assert_eq!(got.name, "http.server");
        let got = app_for(
            &src("node"),
            Some(&info("/usr/bin/node", "node", &["node"])),
        );
        assert_eq!(got.name, "node");
    }

    #[test]
    fn a_source_that_read_the_path_itself_is_trusted() {
        // Linux sources read /proc in the same pass; Firefox's "Socket Process" is Firefox.
        let mut s = src("Socket Process");
        s.exe = Some(PathBuf::from("/usr/lib/firefox-esr/firefox-esr"));
        assert_eq!(app_for(&s, None).name, "firefox-esr");
    }

    #[test]
    fn a_bare_bundle_name_and_odd_paths_do_not_panic() {
        assert_eq!(outermost_bundle(Path::new("/.app/x")), None);
        assert_eq!(app_for(&src("x"), Some(&info("/", "x", &[]))).name, "x");
    }
}
