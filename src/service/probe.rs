//! `netmon service status`: each component as its service manager sees it.

use std::path::PathBuf;

use serde::Serialize;

use super::apply::{Runner, first_lines};
use super::{Component, Context};

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
    /// Switched off in the manager (launchd's disabled list); null when it was not asked.
    pub disabled: Option<bool>,
    /// What the manager's facts mean for a component that is not running, in words.
    pub diagnosis: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub manager: &'static str,
    pub scope: &'static str,
    pub components: Vec<ComponentStatus>,
}

/// Ask the manager about each component.
pub fn gather_status(ctx: &Context, runner: &mut dyn Runner) -> ServiceStatus {
    let manager = ctx.manager();
    let mut components = Vec::new();
    for c in Component::ALL {
        let file = ctx.file(c);
        let installed = file.exists();
        let argv = manager.status_command(ctx, c);
        let mut st = ComponentStatus {
            component: c,
            installed,
            file,
            running: None,
            pid: None,
            manager_says: Vec::new(),
            error: None,
            logs: manager.logs(ctx, c),
            disabled: None,
            diagnosis: Vec::new(),
        };
        match runner.run(&argv) {
            Ok(ran) => manager.read_status(&ran, &mut st),
            Err(e) => st.error = Some(format!("{}: {e}", argv[0])),
        }
        if let Some(argv) = manager.disabled_command(ctx)
            && let Ok(ran) = runner.run(&argv)
        {
            manager.read_disabled(&ran, &mut st);
        }
        if c == Component::Serve && !installed && st.running != Some(true) {
            continue;
        }
        components.push(st);
    }
    ServiceStatus {
        manager: manager.name(),
        scope: if ctx.system { "system" } else { "user" },
        components,
    }
}

/// The value of `key` in what the manager said.
pub fn value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// What a failed status command said, for the report.
pub fn failure(ran: &super::apply::Ran) -> String {
    first_lines(&ran.stderr, &ran.stdout)
}
