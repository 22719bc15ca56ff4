//! `netmon status [--json]`: gather what is true about the database and its recorder
//! (`crate::status`), then print it as JSON or as text (`output::status`).

use std::io::Write;
use std::path::Path;

use chrono::Utc;

use crate::cli::{ServiceManager, ServiceTarget, StatusArgs};
use crate::service::apply::SystemRunner;
use crate::service::{Component, Context, probe};
use crate::status::{self, Options, Problem, ServiceFile};

pub fn run(db: &Path, a: &StatusArgs) -> anyhow::Result<()> {
    let opts = Options {
        service_problems: launchd_problems(a.service_manager),
        stalled_after: a.stalled_after,
        service_files: crate::service::known_files()
            .into_iter()
            .map(|d| ServiceFile {
                name: d.name,
                path: d.path,
            })
            .collect(),
        ..Options::default()
    };
    let now = Utc::now();
    let status = status::gather(db, &opts, now);
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &status)?;
        writeln!(out)?;
    } else {
        crate::output::status::render(&status, now, &mut out)?;
    }
    out.flush()?;
    if !status.database.exists {
        // Nothing to report on: the problem above says how to start; scripts see exit 1.
        return Err(crate::exit::user(format!(
            "no database at {}: see the problems above",
            db.display()
        )));
    }
    if status.database.schema == Some(0)
        && !matches!(
            status.recorder.state,
            status::RecorderState::Running | status::RecorderState::Stalled
        )
    {
        // An empty file that no recorder is creating is not (yet) a netmon database.
        return Err(crate::exit::user(format!(
            "{} is empty, not a netmon database: see the problems above",
            db.display()
        )));
    }
    if status.database.readable == Some(false) {
        // Reported above; the exit code tells scripts the report is not the whole truth.
        return Err(crate::exit::user(format!(
            "cannot read the database {}: see the problems above",
            db.display()
        )));
    }
    Ok(())
}

/// What launchd says about an installed recorder agent that is switched off or not running,
/// in words. Asking is read-only (`launchctl print`, `launchctl print-disabled`); nothing is
/// asked when no agent is installed, or on a machine whose services are not launchd's.
fn launchd_problems(manager: Option<ServiceManager>) -> Vec<Problem> {
    let target = ServiceTarget {
        system: false,
        manager,
        root: None,
    };
    let Ok(ctx) = Context::discover(&target, None) else {
        return Vec::new();
    };
    if ctx.manager != ServiceManager::Launchd || !ctx.file(Component::Record).exists() {
        return Vec::new();
    }
    let st = probe::gather_status(&ctx, &mut SystemRunner);
    let Some(record) = st
        .components
        .iter()
        .find(|c| c.component == Component::Record)
    else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    if record.disabled == Some(true) {
        problems.push(Problem {
            code: "service_disabled",
            message: format!(
                "the recorder's LaunchAgent is {}",
                crate::service::launchd::DISABLED
            ),
        });
    }
    let failing: Vec<&String> = record
        .diagnosis
        .iter()
        .filter(|d| d.as_str() != crate::service::launchd::DISABLED)
        .collect();
    if record.running != Some(true) && !failing.is_empty() {
        problems.push(Problem {
            code: "service_failing",
            message: format!(
                "the recorder's LaunchAgent is not running: {} (`netmon service status` shows \
                 what launchd says)",
                failing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        });
    }
    problems
}
