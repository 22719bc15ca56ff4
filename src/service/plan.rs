//! What a `service` command would do, as data: directories to create, files to write or
//! remove, and the manager commands to run before and after. Pure: paths, uid and the netmon
//! binary come in a [`Context`], and each manager (`launchd.rs`, `systemd.rs`) says what its
//! definitions and commands are, so tests check exactly what would be written and run.

use std::path::PathBuf;

use super::{Component, Context};

/// One command for the service manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub argv: Vec<String>,
    /// Run only when this probe command succeeds (e.g. "is the agent loaded?").
    pub only_if: Option<Vec<String>>,
    /// Afterwards, wait until the probe fails (the job is really gone), up to
    /// [`super::apply::GONE_WITHIN`].
    pub wait_gone: bool,
    /// Said after the command's own words when it fails: what to do about it.
    pub on_failure: Option<String>,
}

impl Step {
    pub fn always(argv: Vec<String>) -> Self {
        Step {
            argv,
            only_if: None,
            wait_gone: false,
            on_failure: None,
        }
    }
    /// Run `argv`; when it fails, stop and say `hint` too.
    pub fn checked(argv: Vec<String>, hint: String) -> Self {
        Step {
            on_failure: Some(hint),
            ..Step::always(argv)
        }
    }
    /// Run `argv` only if `probe` succeeds, then wait until `probe` fails.
    pub fn if_loaded(argv: Vec<String>, probe: Vec<String>) -> Self {
        Step {
            argv,
            only_if: Some(probe),
            wait_gone: true,
            on_failure: None,
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

/// A program to copy into place as a new file (a fresh inode, never an overwrite), its bytes
/// only: no extended attributes (a quarantine or provenance mark) come along.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCopy {
    pub from: PathBuf,
    pub to: PathBuf,
    pub mode: u32,
}

/// The program a service runs: where the definition points, whether it is first copied there,
/// and commands that check it can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub path: PathBuf,
    pub copy: Option<FileCopy>,
    /// Run after the copy, before the service is loaded (e.g. a signature check).
    pub checks: Vec<Step>,
    /// Said to the user: why the program is where it is.
    pub note: Option<String>,
}

impl Program {
    /// The binary running now, as it is.
    pub fn as_is(path: PathBuf) -> Self {
        Program {
            path,
            copy: None,
            checks: Vec::new(),
            note: None,
        }
    }
}

/// Everything one `service` command would do, in order: `before`, directories, copies,
/// writes, removals, `after`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub before: Vec<Step>,
    pub dirs: Vec<PathBuf>,
    pub copies: Vec<FileCopy>,
    pub writes: Vec<FileWrite>,
    pub removes: Vec<PathBuf>,
    pub after: Vec<Step>,
    /// Said to the user at the end.
    pub notes: Vec<String>,
}

impl Plan {
    /// Create `d` (once, however many components need it).
    pub fn push_dir(&mut self, d: PathBuf) {
        if !self.dirs.contains(&d) {
            self.dirs.push(d);
        }
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
pub fn install_plan(ctx: &Context, req: &InstallRequest) -> anyhow::Result<Plan> {
    let manager = ctx.manager();
    manager.check_install(ctx)?;
    let program = manager.program(ctx)?;
    let mut plan = Plan::default();
    if let Some(copy) = &program.copy {
        if let Some(parent) = copy.to.parent() {
            plan.push_dir(parent.to_path_buf());
        }
        plan.copies.push(copy.clone());
    }
    plan.after.extend(program.checks.iter().cloned());
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
        let argv = ctx.argv(&program.path, c, &extra);
        let definition = manager.definition(ctx, c, &argv, req)?;
        for d in manager.dirs(ctx, c) {
            plan.push_dir(d);
        }
        if let Some(parent) = definition.path.parent() {
            plan.push_dir(parent.to_path_buf());
        }
        let (before, after) = manager.install_steps(ctx, c, &definition.path);
        plan.writes.push(definition);
        plan.before.extend(before);
        plan.after.extend(after);
    }
    // systemctl reloads once for all units.
    dedup_steps(&mut plan.after);
    plan.notes = program.note.into_iter().collect();
    plan.notes.extend(manager.install_notes(ctx, req));
    Ok(plan)
}

/// The plan for `uninstall`: every component whose file exists.
pub fn uninstall_plan(ctx: &Context) -> Plan {
    let manager = ctx.manager();
    let mut plan = Plan::default();
    for c in Component::ALL {
        let path = ctx.file(c);
        if !path.exists() {
            continue;
        }
        let (before, after) = manager.uninstall_steps(ctx, c);
        plan.before.extend(before);
        plan.removes.push(path);
        plan.after.extend(after);
    }
    dedup_steps(&mut plan.after);
    plan
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

/// Whether `args` has `flag`, alone or as `flag=value`.
pub fn has_flag(args: &[String], flag: &str) -> bool {
    args.iter()
        .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
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
