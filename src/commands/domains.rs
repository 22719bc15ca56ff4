//! `netmon domains`: browser traffic per website over a range.

use std::path::Path;

use chrono::Local;

use crate::cli::DomainsArgs;
use crate::output::{self, Format, Output, RangeRow};
use crate::query::{Db, Matcher, domains};

/// Rows a table shows when no --limit is given (JSON and CSV list all).
const TABLE_LIMIT: usize = 20;

pub fn run(db_path: &Path, a: &DomainsArgs) -> anyhow::Result<()> {
    let out = Output::from_args(&a.output);
    let db = Db::open(db_path)?;
    db.ensure_recorded()?;
    let (range, _now) = super::resolve_range(&db, &a.range)?;
    let limit = match (a.limit, out.format) {
        (Some(0), _) => None,
        (Some(n), _) => Some(n),
        (None, Format::Table) => Some(TABLE_LIMIT),
        (None, _) => None,
    };
    let opts = domains::Options {
        sort: a.sort,
        limit,
        app: a.app.as_deref().map(Matcher::new),
        rollup: !a.no_rollup,
        hosts: a.hosts,
    };
    let result = domains::domains(&db, &Local, range, &opts)?;
    match out.format {
        Format::Table => super::print(&output::table::domains(&result, &out.style)),
        format => {
            if result.rows.is_empty() {
                eprintln!(
                    "netmon domains: {}",
                    output::table::no_domains_hint(&result)
                );
            }
            let mut rows: Vec<RangeRow<domains::DomainUsage>> = Vec::new();
            for r in &result.rows {
                let mut r = r.clone();
                r.share = output::round6(r.share);
                r.connection_share = output::round6(r.connection_share);
                // JSON nests a domain's hosts; line and CSV formats list them after it.
                let hosts = if format == Format::Json {
                    if let Some(hs) = r.hosts.as_mut() {
                        for h in hs.iter_mut() {
                            h.share = output::round6(h.share);
                            h.connection_share = output::round6(h.connection_share);
                        }
                    }
                    Vec::new()
                } else {
                    r.hosts.take().unwrap_or_default()
                };
                rows.push(RangeRow::new(r, &result.range, &result.coverage));
                for mut h in hosts {
                    h.share = output::round6(h.share);
                    h.connection_share = output::round6(h.connection_share);
                    rows.push(RangeRow::new(h, &result.range, &result.coverage));
                }
            }
            output::write_rows(&mut std::io::stdout().lock(), format, &rows)
        }
    }
}
