//! `netmon service` as text: a plan for `--dry-run`, and what the manager says about each
//! component for `service status`.

use std::io::Write;
use std::path::Path;

use crate::service::plan::{Plan, Step, shell_words};
use crate::service::probe::ServiceStatus;

/// Print a plan for `--dry-run`.
pub fn plan(plan: &Plan, out: &mut dyn Write) -> std::io::Result<()> {
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
    for c in &plan.copies {
        writeln!(
            out,
            "would copy: {} to {} (a new file, mode {:04o}, no extended attributes)",
            c.from.display(),
            c.to.display(),
            c.mode
        )?;
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
    for n in &plan.notes {
        writeln!(out, "note: {n}")?;
    }
    Ok(())
}

/// `service status`: one paragraph per component. `tool` is the manager's program, named
/// when it could not be asked; `db` the database the service records into.
pub fn status(
    st: &ServiceStatus,
    tool: &str,
    db: &Path,
    out: &mut dyn Write,
) -> std::io::Result<()> {
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
        if c.disabled == Some(true) {
            writeln!(out, "  disabled: yes")?;
        }
        for d in &c.diagnosis {
            writeln!(out, "  why: {d}")?;
        }
        if let Some(e) = &c.error {
            writeln!(out, "  {} says: {e}", tool)?;
        }
    }
    writeln!(
        out,
        "database: {} (netmon status tells what the recorder wrote)",
        db.display()
    )?;
    Ok(())
}
