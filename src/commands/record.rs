//! `netmon record`: check the options, then run the sampling loop (`crate::record`).

use std::path::PathBuf;

use anyhow::Context;

use crate::cli::RecordArgs;
use crate::procinfo;
use crate::record::{self, Options};
use crate::store::retention::Policy;

pub fn run(db: PathBuf, a: RecordArgs) -> anyhow::Result<()> {
    record::run(options(db, a)?)
}

/// Validate what was typed.
pub fn options(db: PathBuf, a: RecordArgs) -> anyhow::Result<Options> {
    if let (Some(raw), Some(hourly)) = (a.keep_raw.0, a.keep_hourly.0)
        && hourly < raw
    {
        return Err(crate::exit::user(format!(
            "--keep-hourly ({}) must be at least --keep-raw ({}): hourly totals stand in \
             for the samples once those are deleted",
            humantime::format_duration(hourly),
            humantime::format_duration(raw)
        )));
    }
    Ok(Options {
        db,
        source: a.source,
        interval: a.interval,
        write_every: a.write_every,
        sample_timeout: a.sample_timeout,
        retention: Policy {
            raw: a.keep_raw.0,
            hourly: a.keep_hourly.0,
        },
        include_loopback: a.include_loopback,
        max_rate: a.max_rate,
        alert_rate: a.alert_rate,
        max_ticks: a.ticks,
        share_with_group: a.share_with_group,
        process_table: match &a.process_table {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the process table {}", path.display()))?;
                Some(procinfo::table_from_json(&text).map_err(|e| {
                    crate::exit::user(format!(
                        "--process-table {}: not a JSON array of processes: {e}",
                        path.display()
                    ))
                })?)
            }
        },
    })
}
