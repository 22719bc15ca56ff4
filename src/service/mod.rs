//! `netmon service install|uninstall|status`: run the recorder (and `netmon serve`) under the
//! platform's service manager, launchd on macOS (`launchd.rs`) or systemd elsewhere
//! (`systemd.rs`).
//!
//! Each command first builds a [`Plan`]: directories to create, files to write or remove,
//! and the manager commands to run before and after. `--dry-run` prints the plan; otherwise
//! [`apply`] carries it out through a [`Runner`]. The plan is pure (paths, uid and the
//! netmon binary come in a [`Context`]), so tests check exactly what would be written and run,
//! and the integration tests put fake `launchctl` and `systemctl` first on PATH to check the
//! real path end to end. The manager is picked with `cfg!(target_os)`; a hidden `--manager`
//! lets Linux tests drive the launchd side.

pub mod launchd;
pub mod systemd;

use std::ffi::CStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use serde::Serialize;

use crate::cli::{
    Cli, Command as CliCommand, ServiceCommand, ServiceInstallArgs, ServiceManager,
    ServiceStatusArgs, ServiceTarget, ServiceUninstallArgs,
};
use crate::exit::user;

/// What can run as a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    Record,
    Serve,
}

impl Component {
    pub const ALL: [Component; 2] = [Component::Record, Component::Serve];

    pub fn name(self) -> &'static str {
        match self {
            Component::Record => "record",
            Component::Serve => "serve",
        }
    }
}

/// One command for the service manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub argv: Vec<String>,
    /// Run only when this probe command succeeds (e.g. "is the agent loaded?").
    pub only_if: Option<Vec<String>>,
    /// Afterwards, wait until the probe fails (the job is really gone), up to [`GONE_WITHIN`].
    pub wait_gone: bool,
}

/// How long an unloaded job may take to go: launchd gives it ExitTimeOut (30 s) after
/// SIGTERM; loading it again before that fails with "Bootstrap failed: 5".
pub const GONE_WITHIN: std::time::Duration = std::time::Duration::from_secs(40);

impl Step {
    pub fn always(argv: Vec<String>) -> Self {
        Step {
            argv,
            only_if: None,
            wait_gone: false,
        }
    }
    /// Run `argv` only if `probe` succeeds, then wait until `probe` fails.
    pub fn if_loaded(argv: Vec<String>, probe: Vec<String>) -> Self {
        Step {
            argv,
            only_if: Some(probe),
            wait_gone: true,
        }
    }
}

/// A file to write, with its mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileWrite {
    pub path: PathBuf,
    pub contents: String,
    pub mode: u32,
}

/// Everything one `service` command would do, in order: `before`, directories, writes,
/// removals, `after`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub before: Vec<Step>,
    pub dirs: Vec<PathBuf>,
    pub writes: Vec<FileWrite>,
    pub removes: Vec<PathBuf>,
    pub after: Vec<Step>,
    /// Said to the user at the end.
    pub notes: Vec<String>,
}

/// Where things go and what runs, decided once from the environment.
#[derive(Debug, Clone)]
pub struct Context {
    pub manager: ServiceManager,
    pub system: bool,
    pub home: PathBuf,
    pub xdg_config_home: Option<PathBuf>,
    /// Prefix for system paths (`/etc/systemd/system`); `/` except in tests.
    pub root: PathBuf,
    pub uid: u32,
    /// The netmon binary the service will run.
    pub exe: PathBuf,
    /// The database, absolute.
    pub db: PathBuf,
}

/// The service manager of this OS.
pub fn default_manager() -> ServiceManager {
    if cfg!(target_os = "macos") {
        ServiceManager::Launchd
    } else {
        ServiceManager::Systemd
    }
}

impl Context {
    /// The definition file of a component.
    pub fn file(&self, c: Component) -> PathBuf {
        match self.manager {
            ServiceManager::Launchd => launchd::plist_path(&self.home, c),
            ServiceManager::Systemd if self.system => {
                systemd::system_unit_dir(&self.root).join(systemd::unit_name(c))
            }
            ServiceManager::Systemd => {
                systemd::user_unit_dir(&self.home, self.xdg_config_home.as_deref())
                    .join(systemd::unit_name(c))
            }
        }
    }

    /// The command line a component runs.
    fn argv(&self, c: Component, extra: &[String]) -> Vec<String> {
        let mut v = vec![
            self.exe.to_string_lossy().into_owned(),
            c.name().to_string(),
            "--db".to_string(),
            self.db.to_string_lossy().into_owned(),
        ];
        v.extend(extra.iter().cloned());
        v
    }
}

/// What `install` was asked for, validated.
#[derive(Debug, Clone, Default)]
pub struct InstallRequest {
    pub serve: bool,
    pub record_args: Vec<String>,
    /// With --system: the group that may read the database.
    pub reader_group: Option<String>,
}

/// The plan for `install`.
pub fn install_plan(ctx: &Context, req: &InstallRequest) -> Plan {
    let mut plan = Plan::default();
    let mut components = vec![Component::Record];
    if req.serve {
        components.push(Component::Serve);
    }
    for c in components {
        let mut extra = Vec::new();
        if c == Component::Record {
            if ctx.system {
                extra.push("--share-with-group".to_string());
                if !has_flag(&req.record_args, "--source") {
                    extra.extend(["--source".to_string(), "ebpf".to_string()]);
                }
            }
            extra.extend(req.record_args.iter().cloned());
        }
        let argv = ctx.argv(c, &extra);
        let path = ctx.file(c);
        let (before, after) = match ctx.manager {
            ServiceManager::Launchd => {
                let log = launchd::log_path(&ctx.home, c);
                push_dir(&mut plan, launchd::log_dir(&ctx.home));
                plan.writes.push(FileWrite {
                    contents: launchd::plist(c, &argv, &log),
                    path: path.clone(),
                    mode: 0o644,
                });
                launchd::install_steps(ctx.uid, c, &path)
            }
            ServiceManager::Systemd => {
                let db_dir = ctx.db.parent().map(Path::to_path_buf);
                let outside_state_dir = db_dir
                    .as_deref()
                    .filter(|d| *d != Path::new(systemd::SYSTEM_DB).parent().unwrap_or(d));
                plan.writes.push(FileWrite {
                    contents: systemd::unit(&systemd::UnitSpec {
                        component: c,
                        argv: &argv,
                        system_group: if ctx.system {
                            req.reader_group.as_deref()
                        } else {
                            None
                        },
                        extra_write_dir: outside_state_dir,
                    }),
                    path: path.clone(),
                    mode: 0o644,
                });
                systemd::install_steps(ctx.system, c)
            }
        };
        if let Some(parent) = path.parent() {
            push_dir(&mut plan, parent.to_path_buf());
        }
        plan.before.extend(before);
        plan.after.extend(after);
    }
    // systemctl reloads once for all units.
    dedup_steps(&mut plan.after);
    match ctx.manager {
        ServiceManager::Launchd => plan
            .notes
            .push(format!("logs: {}", launchd::log_dir(&ctx.home).display())),
        ServiceManager::Systemd if ctx.system => {
            plan.notes
                .push("logs: journalctl -u netmon-record".to_string());
            plan.notes.push(format!(
                "read it as {}: netmon --db {} status (or export NETMON_DB={})",
                req.reader_group.as_deref().unwrap_or("the reader"),
                ctx.db.display(),
                ctx.db.display()
            ));
        }
        ServiceManager::Systemd => {
            plan.notes
                .push("logs: journalctl --user -u netmon-record".to_string());
        }
    }
    plan
}

/// The plan for `uninstall`: every component whose file exists.
pub fn uninstall_plan(ctx: &Context) -> Plan {
    let mut plan = Plan::default();
    for c in Component::ALL {
        let path = ctx.file(c);
        if !path.exists() {
            continue;
        }
        let (before, after) = match ctx.manager {
            ServiceManager::Launchd => launchd::uninstall_steps(ctx.uid, c),
            ServiceManager::Systemd => systemd::uninstall_steps(ctx.system, c),
        };
        plan.before.extend(before);
        plan.removes.push(path);
        plan.after.extend(after);
    }
    dedup_steps(&mut plan.after);
    plan
}

fn push_dir(plan: &mut Plan, d: PathBuf) {
    if !plan.dirs.contains(&d) {
        plan.dirs.push(d);
    }
}

/// Keep the last of identical steps: one `daemon-reload` after all the files, before enabling.
fn dedup_steps(steps: &mut Vec<Step>) {
    let mut out: Vec<Step> = Vec::new();
    for s in steps.drain(..) {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    *steps = out;
}

fn has_flag(args: &[String], flag: &str) -> bool {
    args.iter()
        .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
}

/// Runs service-manager commands.
pub trait Runner {
    /// Run `argv`; an `Err` only when it could not be started.
    fn run(&mut self, argv: &[String]) -> std::io::Result<Ran>;
}

/// What a command did.
#[derive(Debug, Clone, Default)]
pub struct Ran {
    pub success: bool,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

/// The real runner: the programs on PATH.
pub struct SystemRunner;

impl Runner for SystemRunner {
    fn run(&mut self, argv: &[String]) -> std::io::Result<Ran> {
        let (prog, args) = argv
            .split_first()
            .ok_or_else(|| std::io::Error::other("empty command"))?;
        let out = Command::new(prog).args(args).output()?;
        Ok(Ran {
            success: out.status.success(),
            status: out.status.to_string(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Carry out a plan. Stops at the first failing step, saying which and why.
pub fn apply(plan: &Plan, runner: &mut dyn Runner, out: &mut dyn Write) -> anyhow::Result<()> {
    run_steps(&plan.before, runner, out)?;
    for d in &plan.dirs {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(d)
            .with_context(|| format!("creating {}", d.display()))?;
    }
    for f in &plan.writes {
        write_atomically(f).with_context(|| format!("writing {}", f.path.display()))?;
        writeln!(out, "wrote {}", f.path.display())?;
    }
    for p in &plan.removes {
        match fs::remove_file(p) {
            Ok(()) => writeln!(out, "removed {}", p.display())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", p.display())),
        }
    }
    run_steps(&plan.after, runner, out)?;
    Ok(())
}

fn run_steps(steps: &[Step], runner: &mut dyn Runner, out: &mut dyn Write) -> anyhow::Result<()> {
    for s in steps {
        if let Some(probe) = &s.only_if {
            let ran = runner.run(probe).map_err(|e| not_started(probe, e))?;
            if !ran.success {
                continue;
            }
        }
        writeln!(out, "running {}", shell_words(&s.argv))?;
        let ran = runner.run(&s.argv).map_err(|e| not_started(&s.argv, e))?;
        if !ran.success {
            let said = first_lines(&ran.stderr, &ran.stdout);
            bail!(
                "`{}` failed ({}){}",
                shell_words(&s.argv),
                ran.status,
                if said.is_empty() {
                    String::new()
                } else {
                    format!(": {said}")
                }
            );
        }
        if let (true, Some(probe)) = (s.wait_gone, &s.only_if) {
            let deadline = std::time::Instant::now() + GONE_WITHIN;
            while runner
                .run(probe)
                .map_err(|e| not_started(probe, e))?
                .success
            {
                if std::time::Instant::now() >= deadline {
                    bail!(
                        "`{}` still succeeds {}s after `{}`: the old job has not gone; try again",
                        shell_words(probe),
                        GONE_WITHIN.as_secs(),
                        shell_words(&s.argv)
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
    }
    Ok(())
}

fn not_started(argv: &[String], e: std::io::Error) -> anyhow::Error {
    let prog = argv.first().map_or("", String::as_str);
    if e.kind() == std::io::ErrorKind::NotFound {
        user(format!(
            "{prog} was not found on PATH: {}",
            match prog {
                "systemctl" =>
                    "this system does not run systemd; run `netmon record` from your \
                                init system or a terminal multiplexer instead",
                "launchctl" => "launchctl ships with macOS (/bin/launchctl): check PATH",
                _ => "check PATH",
            }
        ))
    } else {
        anyhow::Error::new(e).context(format!("starting {prog}"))
    }
}

fn first_lines(a: &str, b: &str) -> String {
    let text = if a.trim().is_empty() { b } else { a };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(3)
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Write via a temporary file and rename, so a crash never leaves half a definition.
fn write_atomically(f: &FileWrite) -> std::io::Result<()> {
    let tmp = f.path.with_extension("netmon-tmp");
    {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(f.mode)
            .open(&tmp)?;
        file.write_all(f.contents.as_bytes())?;
        file.sync_all()?;
    }
    // The mode given to open() is reduced by the umask (netmon runs with 077).
    fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(f.mode))?;
    fs::rename(&tmp, &f.path)
}

/// Print a plan for `--dry-run`.
pub fn print_plan(plan: &Plan, out: &mut dyn Write) -> std::io::Result<()> {
    let step = |out: &mut dyn Write, s: &Step| -> std::io::Result<()> {
        match &s.only_if {
            Some(p) => writeln!(
                out,
                "would run: {}    (only if `{}` succeeds{})",
                shell_words(&s.argv),
                shell_words(p),
                if s.wait_gone {
                    ", then until it fails"
                } else {
                    ""
                }
            ),
            None => writeln!(out, "would run: {}", shell_words(&s.argv)),
        }
    };
    for s in &plan.before {
        step(out, s)?;
    }
    for d in &plan.dirs {
        writeln!(out, "would create directory: {}", d.display())?;
    }
    for f in &plan.writes {
        writeln!(
            out,
            "would write {} (mode {:04o}):",
            f.path.display(),
            f.mode
        )?;
        for l in f.contents.lines() {
            writeln!(out, "    {l}")?;
        }
    }
    for p in &plan.removes {
        writeln!(out, "would remove: {}", p.display())?;
    }
    for s in &plan.after {
        step(out, s)?;
    }
    Ok(())
}

/// A command as a shell would need it typed.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The binary a service should run: the one running now, by the path it was found under on
/// PATH when that is the same file (so a Homebrew or distribution symlink such as
/// /opt/homebrew/bin/netmon survives upgrades), else its resolved path.
pub fn netmon_exe() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the netmon binary")?;
    let real = fs::canonicalize(&exe).unwrap_or_else(|_| exe.clone());
    if let Some(arg0) = std::env::args_os().next().map(PathBuf::from) {
        let found = if arg0.components().count() == 1 {
            crate::source::nettop::find_on_path(&arg0.to_string_lossy())
        } else {
            std::path::absolute(&arg0).ok()
        };
        if let Some(p) = found
            && fs::canonicalize(&p).is_ok_and(|r| r == real)
        {
            return Ok(p);
        }
    }
    Ok(real)
}

fn home() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| {
            user("HOME is not set: the service definition goes under your home directory")
        })
}

fn context(target: &ServiceTarget, db: Option<&PathBuf>) -> anyhow::Result<Context> {
    let manager = target.manager.unwrap_or_else(default_manager);
    if target.system && manager == ServiceManager::Launchd {
        return Err(user(
            "--system is for Linux: on macOS the recorder runs as your LaunchAgent and needs no \
             privileges (nettop sees every process)",
        ));
    }
    let db = match db {
        Some(p) => std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))?,
        None if target.system => PathBuf::from(systemd::SYSTEM_DB),
        None => crate::paths::default_db()?,
    };
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    Ok(Context {
        manager,
        system: target.system,
        home: if target.system {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
        } else {
            home()?
        },
        xdg_config_home: std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from),
        root: target.root.clone().unwrap_or_else(|| PathBuf::from("/")),
        uid,
        exe: netmon_exe()?,
        db,
    })
}

/// `netmon service …`.
pub fn run(cmd: ServiceCommand, db: Option<&PathBuf>) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cmd {
        ServiceCommand::Install(a) => install(a, db, &mut out),
        ServiceCommand::Uninstall(a) => uninstall(a, db, &mut out),
        ServiceCommand::Status(a) => status(a, db, &mut out),
    }
}

fn install(a: ServiceInstallArgs, db: Option<&PathBuf>, out: &mut dyn Write) -> anyhow::Result<()> {
    validate_record_args(&a.record_args)?;
    let ctx = context(&a.target, db)?;
    let reader_group = if ctx.system {
        let reader = a
            .reader
            .clone()
            .or_else(|| {
                std::env::var("SUDO_USER")
                    .ok()
                    .filter(|u| !u.is_empty() && u != "root")
            })
            .ok_or_else(|| {
                user(
                    "say which user may read the system recorder's database: \
                     --reader USER (run with sudo, it defaults to you)",
                )
            })?;
        Some(primary_group(&reader)?)
    } else {
        None
    };
    if ctx.system && !a.dry_run && a.target.root.is_none() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(user(
                "--system writes /etc/systemd/system: run it with sudo",
            ));
        }
    }
    if ctx.exe.starts_with(std::env::temp_dir())
        || ctx.exe.components().any(|c| c.as_os_str() == "target")
    {
        writeln!(
            out,
            "note: the service will run {}, a build output; install netmon first \
             (cargo install --path .) so the service survives a cargo clean",
            ctx.exe.display()
        )?;
    }
    let plan = install_plan(
        &ctx,
        &InstallRequest {
            serve: a.serve,
            record_args: a.record_args,
            reader_group,
        },
    );
    if a.dry_run {
        print_plan(&plan, out)?;
        return Ok(());
    }
    apply(&plan, &mut SystemRunner, out)?;
    writeln!(
        out,
        "installed: netmon record runs now and at every {}",
        match (ctx.manager, ctx.system) {
            (ServiceManager::Launchd, _) => "login",
            (ServiceManager::Systemd, true) => "boot",
            (ServiceManager::Systemd, false) => "login",
        }
    )?;
    writeln!(out, "database: {}", ctx.db.display())?;
    for n in &plan.notes {
        writeln!(out, "{n}")?;
    }
    if ctx.manager == ServiceManager::Systemd && !ctx.system && !lingering() {
        writeln!(
            out,
            "note: systemd stops your user services when you log out; to keep recording \
             while logged out, run: loginctl enable-linger"
        )?;
    }
    writeln!(out, "check it with: netmon status")?;
    Ok(())
}

fn uninstall(
    a: ServiceUninstallArgs,
    db: Option<&PathBuf>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let ctx = context(&a.target, db)?;
    let plan = uninstall_plan(&ctx);
    if plan.removes.is_empty() {
        writeln!(
            out,
            "nothing to uninstall: no netmon service definition at {}",
            ctx.file(Component::Record).display()
        )?;
        return Ok(());
    }
    if a.dry_run {
        print_plan(&plan, out)?;
        return Ok(());
    }
    apply(&plan, &mut SystemRunner, out)?;
    writeln!(
        out,
        "uninstalled; the database is kept: {} (see \"Uninstall\" in the README to remove it)",
        ctx.db.display()
    )?;
    Ok(())
}

/// A component as the service manager sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentStatus {
    pub component: Component,
    pub installed: bool,
    pub file: PathBuf,
    /// Running right now, as the manager says; null when it could not be asked.
    pub running: Option<bool>,
    pub pid: Option<u32>,
    /// What the manager said, key by key (systemctl show / launchctl print).
    pub manager_says: Vec<(String, String)>,
    /// Why the manager could not be asked.
    pub error: Option<String>,
    pub logs: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub manager: &'static str,
    pub scope: &'static str,
    pub components: Vec<ComponentStatus>,
}

/// Ask the manager about each component.
pub fn gather_status(ctx: &Context, runner: &mut dyn Runner) -> ServiceStatus {
    let mut components = Vec::new();
    for c in Component::ALL {
        let file = ctx.file(c);
        let installed = file.exists();
        let (argv, logs) = match ctx.manager {
            ServiceManager::Launchd => (
                launchd::probe(ctx.uid, c),
                launchd::log_path(&ctx.home, c).display().to_string(),
            ),
            ServiceManager::Systemd => (
                systemd::show(ctx.system, c),
                format!(
                    "journalctl {}-u {}",
                    if ctx.system { "" } else { "--user " },
                    systemd::unit_name(c)
                ),
            ),
        };
        let mut st = ComponentStatus {
            component: c,
            installed,
            file,
            running: None,
            pid: None,
            manager_says: Vec::new(),
            error: None,
            logs,
        };
        match runner.run(&argv) {
            Ok(ran) if ctx.manager == ServiceManager::Launchd => {
                // `print` fails for a service that is not loaded: not running, not an error.
                st.manager_says = launchd::parse_print(&ran.stdout);
                st.running =
                    Some(ran.success && value(&st.manager_says, "state") == Some("running"));
                st.pid = value(&st.manager_says, "pid").and_then(|p| p.parse().ok());
                if !ran.success && installed {
                    st.manager_says.push(("state".into(), "not loaded".into()));
                }
            }
            Ok(ran) if ran.success => {
                st.manager_says = systemd::parse_show(&ran.stdout);
                st.running = Some(value(&st.manager_says, "ActiveState") == Some("active"));
                st.pid = value(&st.manager_says, "MainPID")
                    .and_then(|p| p.parse().ok())
                    .filter(|p| *p != 0);
            }
            Ok(ran) => st.error = Some(first_lines(&ran.stderr, &ran.stdout)),
            Err(e) => st.error = Some(format!("{}: {e}", argv[0])),
        }
        if c == Component::Serve && !installed && st.running != Some(true) {
            continue;
        }
        components.push(st);
    }
    ServiceStatus {
        manager: match ctx.manager {
            ServiceManager::Launchd => "launchd",
            ServiceManager::Systemd => "systemd",
        },
        scope: if ctx.system { "system" } else { "user" },
        components,
    }
}

fn value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn status(a: ServiceStatusArgs, db: Option<&PathBuf>, out: &mut dyn Write) -> anyhow::Result<()> {
    let ctx = context(&a.target, db)?;
    let st = gather_status(&ctx, &mut SystemRunner);
    if a.json {
        serde_json::to_writer_pretty(&mut *out, &st)?;
        writeln!(out)?;
        return Ok(());
    }
    for c in &st.components {
        let state = match (c.installed, c.running) {
            (false, Some(true)) => {
                "running, but its definition is gone (reinstall or stop it)".to_string()
            }
            (false, _) => "not installed".to_string(),
            (true, Some(true)) => match c.pid {
                Some(pid) => format!("running (pid {pid})"),
                None => "running".into(),
            },
            (true, Some(false)) => "installed, not running".into(),
            (true, None) => "installed; the service manager could not be asked".into(),
        };
        writeln!(
            out,
            "{} ({} {}): {state}",
            c.component.name(),
            st.manager,
            st.scope
        )?;
        if c.installed {
            writeln!(out, "  file: {}", c.file.display())?;
            writeln!(out, "  logs: {}", c.logs)?;
        }
        for (k, v) in &c.manager_says {
            writeln!(out, "  {k}: {v}")?;
        }
        if let Some(e) = &c.error {
            writeln!(
                out,
                "  {} says: {e}",
                match ctx.manager {
                    ServiceManager::Launchd => "launchctl",
                    ServiceManager::Systemd => "systemctl",
                }
            )?;
        }
    }
    writeln!(
        out,
        "database: {} (netmon status tells what the recorder wrote)",
        ctx.db.display()
    )?;
    Ok(())
}

/// The service definitions `netmon status` looks for on this machine (user and system).
pub fn known_files() -> Vec<crate::status::ServiceFile> {
    let mut v = Vec::new();
    let target = ServiceTarget {
        system: false,
        manager: None,
        root: None,
    };
    if let Ok(ctx) = context(&target, None) {
        for c in Component::ALL {
            v.push(crate::status::ServiceFile {
                name: format!("{} ({} user)", c.name(), manager_name(ctx.manager)),
                path: ctx.file(c),
            });
        }
    }
    if default_manager() == ServiceManager::Systemd {
        v.push(crate::status::ServiceFile {
            name: "record (systemd system)".into(),
            path: systemd::system_unit_dir(Path::new("/"))
                .join(systemd::unit_name(Component::Record)),
        });
    }
    v
}

fn manager_name(m: ServiceManager) -> &'static str {
    match m {
        ServiceManager::Launchd => "launchd",
        ServiceManager::Systemd => "systemd",
    }
}

/// Options for `record` are checked now, not when the service first starts.
fn validate_record_args(args: &[String]) -> anyhow::Result<()> {
    if has_flag(args, "--db") {
        return Err(user(
            "give the database before `--`: netmon --db PATH service install (or NETMON_DB)",
        ));
    }
    let argv = ["netmon", "record"]
        .into_iter()
        .map(String::from)
        .chain(args.iter().cloned());
    match <Cli as clap::Parser>::try_parse_from(argv) {
        Ok(cli) if matches!(cli.command, CliCommand::Record(_)) => Ok(()),
        Ok(_) => Err(user(
            "the options after -- must be options of `netmon record`",
        )),
        Err(e) => Err(user(format!(
            "the options after -- are not valid for `netmon record`: {}",
            e.to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
        ))),
    }
}

/// Whether systemd keeps this user's services running after logout.
fn lingering() -> bool {
    user_name(unsafe { libc::getuid() })
        .is_some_and(|u| Path::new("/var/lib/systemd/linger").join(u).exists())
}

fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut pwd = std::mem::MaybeUninit::<libc::passwd>::uninit();
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; the buffer outlives the use of `pwd`.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            pwd.as_mut_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded, so `pwd` is initialised and pw_name points into `buf`.
    let name = unsafe { CStr::from_ptr((*result).pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// The name of a user's primary group.
fn primary_group(user_name: &str) -> anyhow::Result<String> {
    let c_user =
        std::ffi::CString::new(user_name).map_err(|_| user("a user name has no NUL bytes"))?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut pwd = std::mem::MaybeUninit::<libc::passwd>::uninit();
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call.
    let rc = unsafe {
        libc::getpwnam_r(
            c_user.as_ptr(),
            pwd.as_mut_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return Err(user(format!(
            "no user named {user_name:?} on this machine (--reader)"
        )));
    }
    // SAFETY: getpwnam_r succeeded.
    let gid = unsafe { (*result).pw_gid };
    let mut gbuf = vec![0u8; 64 * 1024];
    let mut grp = std::mem::MaybeUninit::<libc::group>::uninit();
    let mut gres: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as above.
    let rc = unsafe {
        libc::getgrgid_r(
            gid,
            grp.as_mut_ptr(),
            gbuf.as_mut_ptr().cast(),
            gbuf.len(),
            &mut gres,
        )
    };
    if rc != 0 || gres.is_null() {
        return Ok(gid.to_string());
    }
    // SAFETY: getgrgid_r succeeded, so gr_name points into `gbuf`.
    let name = unsafe { CStr::from_ptr((*gres).gr_name) };
    Ok(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
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
        );
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
        );
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
        let plan = install_plan(&c, &req);
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
        );
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
        );
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
                "launchctl enable gui/501/io.netmon.record",
                "launchctl bootstrap gui/501 /home/me/Library/LaunchAgents/io.netmon.record.plist"
            ]
        );
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
        let plan = install_plan(&c, &InstallRequest::default());
        let mut r = Scripted {
            asked: Vec::new(),
            fail: vec!["launchctl print"],
        };
        let mut out = Vec::new();
        apply(&plan, &mut r, &mut out).expect("apply");
        assert_eq!(r.asked[0], "launchctl print gui/501/io.netmon.record");
        assert!(r.asked[1].starts_with("launchctl enable"), "{:?}", r.asked);
        assert!(plan.writes[0].path.exists());

        let mut r = Scripted {
            asked: Vec::new(),
            fail: vec!["systemctl --user daemon-reload"],
        };
        let mut c = ctx(ServiceManager::Systemd, false);
        c.home = dir.path().to_path_buf();
        let err = apply(
            &install_plan(&c, &InstallRequest::default()),
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
            &install_plan(&c, &InstallRequest::default()),
            &mut r,
            &mut Vec::new(),
        )
        .expect("apply");
        let print = "launchctl print gui/501/io.netmon.record";
        assert_eq!(r.asked[0], print);
        assert_eq!(r.asked[1], "launchctl bootout gui/501/io.netmon.record");
        assert_eq!(r.asked[2..5], [print, print, print]);
        assert!(r.asked[5].starts_with("launchctl enable"), "{:?}", r.asked);
    }

    #[test]
    fn record_options_are_checked_at_install() {
        validate_record_args(&["--interval".into(), "10s".into()]).expect("valid");
        let e = validate_record_args(&["--intervall".into(), "10s".into()]).expect_err("typo");
        assert!(e.to_string().contains("--intervall"), "{e}");
        let e = validate_record_args(&["--db".into(), "/x".into()]).expect_err("db");
        assert!(e.to_string().contains("before `--`"), "{e}");
    }

    #[test]
    fn shell_words_quote_what_a_shell_would_split() {
        let argv = ["launchctl", "bootstrap", "/Users/a b/x.plist", "it's"].map(String::from);
        assert_eq!(
            shell_words(&argv),
            r"launchctl bootstrap '/Users/a b/x.plist' 'it'\''s'"
        );
    }
}
