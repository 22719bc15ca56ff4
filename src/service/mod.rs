//! `netmon service install|uninstall|status`: run the recorder (and `netmon serve`) under the
//! platform's service manager, launchd on macOS (`launchd.rs`) or systemd elsewhere
//! (`systemd.rs`), both behind the [`Manager`] trait.
//!
//! Each command first builds a [`Plan`] (`plan.rs`: directories, files, manager commands;
//! pure, from a [`Context`]), then `--dry-run` prints it (`output::service`) or
//! [`apply`](apply::apply) carries it out through a [`Runner`](apply::Runner). `probe.rs`
//! asks the manager how each component is doing. The integration tests put fake `launchctl`
//! and `systemctl` first on PATH to check the real path end to end; a hidden `--manager` lets
//! Linux tests drive the launchd side. The command-line handlers are in
//! `crate::commands::service`.

pub mod apply;
pub mod launchd;
pub mod plan;
pub mod probe;
pub mod systemd;
pub mod users;

#[cfg(test)]
mod tests;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use crate::cli::{ServiceManager, ServiceTarget};
use crate::exit::user;
pub use plan::{
    FileCopy, FileWrite, InstallRequest, Plan, Program, Step, install_plan, uninstall_plan,
};

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

/// A service manager: where its definitions go, what they say, and the commands that load,
/// unload and inspect them. Everything here is pure; commands run through `apply::Runner`.
pub trait Manager {
    /// `launchd`, `systemd`.
    fn name(&self) -> &'static str;
    /// The program that talks to it (`launchctl`, `systemctl`), for messages.
    fn tool(&self) -> &'static str;
    /// The definition file of a component.
    fn definition_path(&self, ctx: &Context, c: Component) -> PathBuf;
    /// Refuse an install that could only fail once the manager runs it, saying why and what
    /// to do instead.
    fn check_install(&self, _ctx: &Context) -> anyhow::Result<()> {
        Ok(())
    }
    /// The program the definition runs: by default the netmon running now, as it is.
    fn program(&self, ctx: &Context) -> anyhow::Result<Program> {
        Ok(Program::as_is(ctx.exe.clone()))
    }
    /// The definition of a component that runs `argv` (an error when the manager's format
    /// cannot carry what it must say).
    fn definition(
        &self,
        ctx: &Context,
        c: Component,
        argv: &[String],
        req: &InstallRequest,
    ) -> anyhow::Result<FileWrite>;
    /// Directories a component needs besides its definition's (e.g. its log folder).
    fn dirs(&self, ctx: &Context, c: Component) -> Vec<PathBuf>;
    /// Commands before writing the definition, and after (load, enable, start).
    fn install_steps(
        &self,
        ctx: &Context,
        c: Component,
        definition: &Path,
    ) -> (Vec<Step>, Vec<Step>);
    /// Commands before removing the definition, and after.
    fn uninstall_steps(&self, ctx: &Context, c: Component) -> (Vec<Step>, Vec<Step>);
    /// Said after an install: where the logs are, how to read the database.
    fn install_notes(&self, ctx: &Context, req: &InstallRequest) -> Vec<String>;
    /// What starts the service again: "login" or "boot".
    fn starts_at(&self, ctx: &Context) -> &'static str;
    /// Warnings about this machine's set-up after an install (e.g. user services stop at
    /// logout); asks the OS, so not part of the plan.
    fn warnings(&self, ctx: &Context) -> Vec<String>;
    /// Where a component's logs are, as a path or a command.
    fn logs(&self, ctx: &Context, c: Component) -> String;
    /// The command that tells how a component is doing.
    fn status_command(&self, ctx: &Context, c: Component) -> Vec<String>;
    /// Read what that command said into `st` (`running`, `pid`, `manager_says`, `error`).
    fn read_status(&self, ran: &apply::Ran, st: &mut probe::ComponentStatus);
    /// A second command that says whether a component is switched off, if the manager has one.
    fn disabled_command(&self, _ctx: &Context) -> Option<Vec<String>> {
        None
    }
    /// Read what that command said into `st.disabled`, and explain in words what the manager
    /// said (`st.diagnosis`).
    fn read_disabled(&self, _ran: &apply::Ran, _st: &mut probe::ComponentStatus) {}
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
    /// The manager this context uses.
    pub fn manager(&self) -> &'static dyn Manager {
        match self.manager {
            ServiceManager::Launchd => &launchd::Launchd,
            ServiceManager::Systemd => &systemd::Systemd,
        }
    }

    /// The definition file of a component.
    pub fn file(&self, c: Component) -> PathBuf {
        self.manager().definition_path(self, c)
    }

    /// The command line a component runs, `program` first.
    fn argv(&self, program: &Path, c: Component, extra: &[String]) -> Vec<String> {
        let mut v = vec![
            program.to_string_lossy().into_owned(),
            c.name().to_string(),
            "--db".to_string(),
            self.db.to_string_lossy().into_owned(),
        ];
        v.extend(extra.iter().cloned());
        v
    }

    /// The context for `target` on this machine: the manager, the user's home, the binary
    /// running now, and the database (`db`, else the default for the scope).
    pub fn discover(target: &ServiceTarget, db: Option<&PathBuf>) -> anyhow::Result<Context> {
        let manager = target.manager.unwrap_or_else(default_manager);
        if target.system && manager == ServiceManager::Launchd {
            return Err(user(
                "--system is for Linux: on macOS the recorder runs as your LaunchAgent and needs \
                 no privileges (nettop sees every process)",
            ));
        }
        let db = match db {
            Some(p) => {
                std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))?
            }
            None if target.system => PathBuf::from(crate::paths::SYSTEM_DB),
            None => crate::paths::default_db()?,
        };
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
            uid: users::uid(),
            exe: netmon_exe()?,
            db,
        })
    }
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

/// A service definition netmon may have written on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// "record (systemd user)".
    pub name: String,
    pub path: PathBuf,
}

/// The service definitions `netmon status` looks for on this machine (user and system).
pub fn known_files() -> Vec<Definition> {
    let mut v = Vec::new();
    let target = ServiceTarget {
        system: false,
        manager: None,
        root: None,
    };
    if let Ok(ctx) = Context::discover(&target, None) {
        for c in Component::ALL {
            v.push(Definition {
                name: format!("{} ({} user)", c.name(), ctx.manager().name()),
                path: ctx.file(c),
            });
        }
    }
    if default_manager() == ServiceManager::Systemd {
        v.push(Definition {
            name: "record (systemd system)".into(),
            path: systemd::system_unit_dir(Path::new("/"))
                .join(systemd::unit_name(Component::Record)),
        });
    }
    v
}
