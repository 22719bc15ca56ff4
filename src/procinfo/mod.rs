//! Who a pid is: its executable path from the OS, and the application a user would call it.
//!
//! Users think in applications ("Google Chrome"), not in the fifteen `Google Chrome H` helper
//! processes nettop lists. [`app_for`] is the pure mapping from what is known of a process to
//! its application; [`lookup`] asks the OS (macOS: libproc through `libc`; Linux: /proc) once per process.
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
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct ProcInfo {
    pub exe: Option<PathBuf>,
    /// The kernel's short name (Linux `comm`, macOS `p_comm`).
    pub name: Option<String>,
    pub cmdline: Vec<String>,
    pub uid: Option<u32>,
    pub start_time: Option<u64>,
    /// The process macOS holds responsible for this one (the app behind an XPC service; for
    /// an ordinary process, itself); `None` where the OS has no such relation or gave none.
    pub responsible_pid: Option<u32>,
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

/// The application macOS holds responsible for a helper it runs on an app's behalf, when the
/// helper's own path names no application.
///
/// Safari's traffic is made by `com.apple.WebKit.Networking`, an XPC service inside
/// WebKit.framework shared by every app that embeds a web view; macOS starts one instance per
/// client app and records that app as responsible for it (the relation Activity Monitor groups
/// by, read with `responsibility_get_pid_responsible_for_pid`). So, for a process whose
/// executable lies inside an `.xpc` bundle and inside no `.app` bundle (`info`), the
/// application is the `.app` bundle of the responsible process (`responsible`, what the OS says
/// about `info.responsible_pid`), if that is another process and has one.
///
/// Everything else is left alone, never guessed:
/// - a process inside an `.app` is that app already (Chrome's helpers, an app's own XPC
///   services);
/// - a command-line program is not credited to the terminal that is "responsible" for it
///   (curl run in Terminal stays curl), nor a daemon such as `nsurlsessiond` to anything: it
///   serves every app at once, and the OS names no single one responsible;
/// - no responsible pid, the process itself, a process that is gone, or one without an `.app`:
///   today's answer stands.
pub fn responsible_app(pid: u32, info: &ProcInfo, responsible: Option<&ProcInfo>) -> Option<App> {
    responsible_to_ask(pid, info)?;
    outermost_bundle(responsible?.exe.as_deref()?)
}

/// The pid to ask the OS about for [`responsible_app`]: `None` when the answer could not
/// change the application (most processes), so they cost no second lookup.
pub fn responsible_to_ask(pid: u32, info: &ProcInfo) -> Option<u32> {
    let exe = info.exe.as_deref()?;
    if !is_xpc_service(exe) || outermost_bundle(exe).is_some() {
        return None;
    }
    info.responsible_pid.filter(|&r| r != pid)
}

/// The executable lies inside an XPC service bundle (`….xpc/Contents/MacOS/…`).
fn is_xpc_service(exe: &Path) -> bool {
    let parts: Vec<_> = exe.components().collect();
    parts.iter().enumerate().any(|(i, part)| {
        let s = part.as_os_str().to_string_lossy();
        s.len() > ".xpc".len() && s.ends_with(".xpc") && i + 1 < parts.len()
    })
}

/// A process table read from JSON, for tests that need processes this machine does not have
/// (a Mac's Safari and its WebKit services on Linux): an array of objects with `pid` and any
/// of [`ProcInfo`]'s fields.
pub fn table_from_json(text: &str) -> Result<std::collections::HashMap<u32, ProcInfo>, String> {
    #[derive(serde::Deserialize)]
    struct Entry {
        pid: u32,
        #[serde(flatten)]
        info: ProcInfo,
    }
    let entries: Vec<Entry> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    Ok(entries.into_iter().map(|e| (e.pid, e.info)).collect())
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
            responsible_pid: None,
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

    // --- The responsible application (issue 14) ---

    const WEBKIT_NETWORKING: &str = "/System/Library/Frameworks/WebKit.framework/Versions/A/XPCServices/com.apple.WebKit.Networking.xpc/Contents/MacOS/com.apple.WebKit.Networking";
    /// Where recent macOS keeps WebKit: in the OS cryptex, outside /System/Library.
    const WEBKIT_NETWORKING_CRYPTEX: &str = "/System/Volumes/Preboot/Cryptexes/OS/System/Library/Frameworks/WebKit.framework/Versions/A/XPCServices/com.apple.WebKit.Networking.xpc/Contents/MacOS/com.apple.WebKit.Networking";

    fn proc(exe: &str, responsible: Option<u32>) -> ProcInfo {
        ProcInfo {
            exe: Some(PathBuf::from(exe)),
            name: Some(file_name(Path::new(exe))),
            responsible_pid: responsible,
            ..ProcInfo::default()
        }
    }

    #[test]
    fn webkits_networking_service_belongs_to_the_app_responsible_for_it() {
        let safari = proc("/Applications/Safari.app/Contents/MacOS/Safari", Some(600));
        for exe in [WEBKIT_NETWORKING, WEBKIT_NETWORKING_CRYPTEX] {
            let net = proc(exe, Some(600));
            assert_eq!(
                responsible_app(700, &net, Some(&safari)),
                Some(app("Safari", Some("/Applications/Safari.app")))
            );
        }
        // The same service started for Mail's message view is Mail's.
        let mail = proc(
            "/System/Applications/Mail.app/Contents/MacOS/Mail",
            Some(610),
        );
        assert_eq!(
            responsible_app(701, &proc(WEBKIT_NETWORKING, Some(610)), Some(&mail)),
            Some(app("Mail", Some("/System/Applications/Mail.app")))
        );
        // Safari in the app cryptex (macOS 13 and later).
        let cryptex = proc(
            "/System/Volumes/Preboot/Cryptexes/App/System/Applications/Safari.app/Contents/MacOS/Safari",
            Some(600),
        );
        assert_eq!(
            responsible_app(700, &proc(WEBKIT_NETWORKING, Some(600)), Some(&cryptex))
                .map(|a| a.name),
            Some("Safari".to_string())
        );
    }

    #[test]
    fn without_a_responsible_app_nothing_is_guessed() {
        let net = |r| proc(WEBKIT_NETWORKING, r);
        let safari = proc("/Applications/Safari.app/Contents/MacOS/Safari", Some(600));
        // The OS gave no responsible pid (or the call is missing).
        assert_eq!(responsible_app(700, &net(None), Some(&safari)), None);
        // Responsible for itself.
        assert_eq!(responsible_app(700, &net(Some(700)), Some(&safari)), None);
        // The responsible process is gone.
        assert_eq!(responsible_app(700, &net(Some(600)), None), None);
        // Responsible is something without an app bundle (launchd, a daemon).
        let launchd = proc("/sbin/launchd", Some(1));
        assert_eq!(responsible_app(700, &net(Some(1)), Some(&launchd)), None);
        // Its path is unknown.
        let mut unknown = net(Some(600));
        unknown.exe = None;
        assert_eq!(responsible_app(700, &unknown, Some(&safari)), None);
    }

    #[test]
    fn programs_and_daemons_keep_their_own_name() {
        let terminal = proc(
            "/System/Applications/Utilities/Terminal.app/Contents/MacOS/Terminal",
            Some(300),
        );
        // curl typed in Terminal: Terminal is "responsible", but the user ran curl.
        assert_eq!(
            responsible_app(800, &proc("/usr/bin/curl", Some(300)), Some(&terminal)),
            None
        );
        // nsurlsessiond downloads for every app at once; it names none.
        let app_store = proc(
            "/System/Applications/App Store.app/Contents/MacOS/App Store",
            Some(400),
        );
        assert_eq!(
            responsible_app(
                900,
                &proc("/usr/libexec/nsurlsessiond", Some(400)),
                Some(&app_store)
            ),
            None
        );
        // An app's own XPC service is inside the app already.
        let chrome_xpc = "/Applications/Google Chrome.app/Contents/Frameworks/x.framework/XPCServices/y.xpc/Contents/MacOS/y";
        assert_eq!(
            responsible_app(901, &proc(chrome_xpc, Some(400)), Some(&app_store)),
            None
        );
        // A file merely named like a bundle is no bundle.
        assert_eq!(
            responsible_app(902, &proc("/tmp/.xpc", Some(400)), Some(&app_store)),
            None
        );
    }

    #[test]
    fn a_process_table_reads_from_json() {
        let t = table_from_json(
            r#"[{"pid": 600, "exe": "/Applications/Safari.app/Contents/MacOS/Safari", "name": "Safari"},
                {"pid": 700, "exe": "/x.xpc/Contents/MacOS/x", "responsible_pid": 600}]"#,
        )
        .expect("parses");
        assert_eq!(t[&700].responsible_pid, Some(600));
        assert_eq!(t[&600].name.as_deref(), Some("Safari"));
        assert!(table_from_json("{").is_err());
    }
}
