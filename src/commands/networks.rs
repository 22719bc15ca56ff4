//! `netmon networks`: bytes per network and interface over a range, the explained share, and
//! `networks name`.

use std::path::Path;

use chrono::Local;

use crate::calendar::Period;
use crate::cli::{NetworksArgs, NetworksCommand};
use crate::output::{self, Format, Output, RangeRow};
use crate::query::{Db, networks};
use crate::store::{self, Create};

pub fn run(db_path: &Path, a: &NetworksArgs) -> anyhow::Result<()> {
    match &a.command {
        Some(NetworksCommand::Name { network, name }) => return rename(db_path, network, name),
        Some(NetworksCommand::Cap {
            network,
            bytes,
            period,
            resets_on,
            remove,
        }) => return cap(db_path, network, *bytes, *period, *resets_on, *remove),
        None => {}
    }
    let out = Output::from_args(&a.output);
    // Asked before the database is read (`networks::caps_with`).
    let unwritten = networks::unwritten(db_path);
    let db = Db::open(db_path)?;
    db.ensure_recorded()?;
    let (range, _) = super::resolve_range(&db, &a.range)?;
    let result = networks::networks(&db, &Local, range, &unwritten)?;
    match out.format {
        Format::Table => super::print(&output::table::networks(&result, &out.style)),
        format => {
            if result.rows.is_empty() {
                eprintln!(
                    "netmon networks: no interface traffic in this range; {} of it was recorded",
                    output::units::percent(result.coverage.fraction())
                );
            }
            let rows: Vec<RangeRow<networks::NetworkUsage>> = result
                .rows
                .iter()
                .map(|r| RangeRow::new(r.clone(), &result.range, &result.coverage))
                .collect();
            output::write_rows(&mut std::io::stdout().lock(), format, &rows)
        }
    }
}

fn rename(db_path: &Path, network: &str, name: &str) -> anyhow::Result<()> {
    let info = {
        let db = Db::open(db_path)?;
        networks::resolve(&db, network)?
    };
    let conn = store::open(db_path, Create::Never)?;
    store::networks::rename(&conn, info.id, name)?;
    if name.trim().is_empty() {
        eprintln!(
            "netmon networks: network {} is {} again",
            info.id, info.label
        );
    } else {
        eprintln!(
            "netmon networks: network {} ({}) is now called {:?}",
            info.id,
            info.key,
            name.trim()
        );
    }
    Ok(())
}

fn cap(
    db_path: &Path,
    network: &str,
    bytes: Option<u64>,
    period: Period,
    resets_on: Option<u32>,
    remove: bool,
) -> anyhow::Result<()> {
    let (scope, who) = if network.eq_ignore_ascii_case("all") {
        ("*".to_string(), "all networks".to_string())
    } else {
        let db = Db::open(db_path)?;
        let n = networks::resolve(&db, network)?;
        (n.id.to_string(), n.display())
    };
    let conn = store::open(db_path, Create::Never)?;
    if remove {
        if store::networks::remove_cap(&conn, &scope)? {
            eprintln!("netmon networks: the cap on {who} is removed");
        } else {
            eprintln!("netmon networks: {who} had no cap");
        }
        return Ok(());
    }
    let Some(bytes) = bytes else {
        anyhow::bail!(crate::query::Error::Invalid(
            "give the cap (e.g. 20GB), or --remove".into()
        ));
    };
    let resets_on = resets_on.unwrap_or(1);
    if period == Period::Week && resets_on > 7 {
        anyhow::bail!(crate::query::Error::Invalid(format!(
            "--resets-on {resets_on} is not a weekday: give 1 (Monday) to 7 (Sunday) with --period week"
        )));
    }
    store::networks::set_cap(&conn, &scope, bytes, period.as_str(), resets_on)?;
    eprintln!(
        "netmon networks: {who} is capped at {} per {} (a running recorder follows within a minute)",
        output::units::bytes(bytes),
        period.as_str()
    );
    Ok(())
}
