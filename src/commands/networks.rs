//! `netmon networks`: bytes per network and interface over a range, the explained share, and
//! `networks name`.

use std::path::Path;

use chrono::Local;

use crate::cli::{NetworksArgs, NetworksCommand};
use crate::output::{self, Format, Output, RangeRow};
use crate::query::{Db, networks};
use crate::store::{self, Create};

pub fn run(db_path: &Path, a: &NetworksArgs) -> anyhow::Result<()> {
    if let Some(NetworksCommand::Name { network, name }) = &a.command {
        return rename(db_path, network, name);
    }
    let out = Output::from_args(&a.output);
    let db = Db::open(db_path)?;
    db.ensure_recorded()?;
    let (range, _) = super::resolve_range(&db, &a.range)?;
    let result = networks::networks(&db, &Local, range)?;
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
        eprintln!("netmon networks: network {} is {} again", info.id, info.label);
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
