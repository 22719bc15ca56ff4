//! `netmon service install|uninstall|status`: check the options, build the plan
//! (`crate::service`), then print it (`--dry-run`), carry it out, or ask the manager.

use std::io::Write;
use std::path::PathBuf;

use crate::cli::{
    Cli, Command as CliCommand, ServiceCommand, ServiceInstallArgs, ServiceStatusArgs,
    ServiceUninstallArgs,
};
use crate::exit::user;
use crate::output;
use crate::service::apply::{SystemRunner, apply};
use crate::service::plan::has_flag;
use crate::service::{
    Component, Context, InstallRequest, install_plan, probe, uninstall_plan, users,
};

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
    let ctx = Context::discover(&a.target, db)?;
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
        Some(users::primary_group(&reader)?)
    } else {
        None
    };
    if ctx.system && !a.dry_run && a.target.root.is_none() && users::euid() != 0 {
        return Err(user(
            "--system writes /etc/systemd/system: run it with sudo",
        ));
    }
    let plan = install_plan(
        &ctx,
        &InstallRequest {
            serve: a.serve,
            record_args: a.record_args,
            reader_group,
        },
    )?;
    let runs_build_output = plan.copies.is_empty()
        && (ctx.exe.starts_with(std::env::temp_dir())
            || ctx.exe.components().any(|c| c.as_os_str() == "target"));
    if runs_build_output {
        writeln!(
            out,
            "note: the service will run {}, a build output; install netmon first \
             (cargo install --path .) so the service survives a cargo clean",
            ctx.exe.display()
        )?;
    }
    if a.dry_run {
        output::service::plan(&plan, out)?;
        return Ok(());
    }
    apply(&plan, &mut SystemRunner, out)?;
    writeln!(
        out,
        "installed: netmon record runs now and at every {}",
        ctx.manager().starts_at(&ctx)
    )?;
    writeln!(out, "database: {}", ctx.db.display())?;
    for n in &plan.notes {
        writeln!(out, "{n}")?;
    }
    for w in ctx.manager().warnings(&ctx) {
        writeln!(out, "{w}")?;
    }
    writeln!(out, "check it with: netmon status")?;
    Ok(())
}

fn uninstall(
    a: ServiceUninstallArgs,
    db: Option<&PathBuf>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let ctx = Context::discover(&a.target, db)?;
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
        output::service::plan(&plan, out)?;
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

fn status(a: ServiceStatusArgs, db: Option<&PathBuf>, out: &mut dyn Write) -> anyhow::Result<()> {
    let ctx = Context::discover(&a.target, db)?;
    let st = probe::gather_status(&ctx, &mut SystemRunner);
    if a.json {
        serde_json::to_writer_pretty(&mut *out, &st)?;
        writeln!(out)?;
        return Ok(());
    }
    output::service::status(&st, ctx.manager().tool(), &ctx.db, out)?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_options_are_checked_at_install() {
        validate_record_args(&["--interval".into(), "10s".into()]).expect("valid");
        let e = validate_record_args(&["--intervall".into(), "10s".into()]).expect_err("typo");
        assert!(e.to_string().contains("--intervall"), "{e}");
        let e = validate_record_args(&["--db".into(), "/x".into()]).expect_err("db");
        assert!(e.to_string().contains("before `--`"), "{e}");
    }
}
