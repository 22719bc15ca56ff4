//! `netmon timeline`: traffic per time bucket.

use std::path::Path;

use chrono::Local;

use crate::cli::TimelineArgs;
use crate::output::{self, Format, Output};
use crate::query::{Db, Matcher, networks, timeline};

pub fn run(db_path: &Path, a: &TimelineArgs) -> anyhow::Result<()> {
    let out = Output::from_args(&a.output);
    let db = Db::open(db_path)?;
    db.ensure_recorded()?;
    let (range, _) = super::resolve_range(&db, &a.range)?;
    let network = match &a.network {
        Some(n) => Some(networks::resolve(&db, n)?),
        None => None,
    };
    let opts = timeline::Options {
        bucket: a.bucket.0,
        app: a.app.as_deref().map(Matcher::new),
        per_app: a.per_app,
        network: network.as_ref().map(|n| n.id),
    };
    let t = timeline::timeline(&db, &Local, range, &opts)?;
    match out.format {
        Format::Table => super::print(&output::table::timeline(&t, &out.style)),
        format => {
            let rows: Vec<timeline::Bucket> = t
                .buckets
                .iter()
                .map(|b| timeline::Bucket {
                    coverage: output::round6(b.coverage),
                    ..b.clone()
                })
                .collect();
            let name = network.as_ref().map(|n| n.display());
            output::write_rows_on(
                &mut std::io::stdout().lock(),
                format,
                rows,
                name.as_deref().zip(t.split_rules),
            )
        }
    }
}
