//! `netmon apps`: traffic per application over a range.

use std::path::Path;

use chrono::Local;

use crate::cli::AppsArgs;
use crate::output::{self, Format, Output, RangeRow};
use crate::query::{Db, Matcher, apps, networks};

/// Rows a table shows when no --limit is given (JSON and CSV list all).
const TABLE_LIMIT: usize = 20;

pub fn run(db_path: &Path, a: &AppsArgs) -> anyhow::Result<()> {
    let out = Output::from_args(&a.output);
    let db = Db::open(db_path)?;
    db.ensure_recorded()?;
    let (range, _) = super::resolve_range(&db, &a.range)?;
    let limit = match (a.limit, out.format) {
        (Some(0), _) => None,
        (Some(n), _) => Some(n),
        (None, Format::Table) => Some(TABLE_LIMIT),
        (None, _) => None,
    };
    let network = match &a.network {
        Some(n) => Some(networks::resolve(&db, n)?),
        None => None,
    };
    let opts = apps::Options {
        sort: a.sort,
        limit,
        app: a.app.as_deref().map(Matcher::new),
        network: network.as_ref().map(|n| n.id),
    };
    let result = apps::apps(&db, &Local, range, &opts)?;
    match out.format {
        Format::Table => super::print(&output::table::apps(
            &result,
            network.as_ref().map(|n| n.display()).as_deref(),
            &out.style,
        )),
        format => {
            if result.apps.is_empty() {
                eprintln!(
                    "netmon apps: no traffic in this range; {} of it was recorded",
                    output::units::percent(result.coverage.fraction())
                );
            }
            let rows: Vec<RangeRow<apps::AppUsage>> = result
                .apps
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.share = output::round6(r.share);
                    RangeRow::new(r, &result.range, &result.coverage)
                })
                .collect();
            let name = network.as_ref().map(|n| n.display());
            output::write_rows_on(
                &mut std::io::stdout().lock(),
                format,
                rows,
                name.as_deref().map(|n| (n, result.split_rules)),
            )
        }
    }
}
