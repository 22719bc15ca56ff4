//! One file per subcommand: each checks its options, calls the domain (`query`, `record`,
//! `serve`, `service`, `status`, `report`), and hands the result to `output`. Nothing else
//! prints results.

pub mod apps;
pub mod completions;
pub mod domains;
pub mod generate_docs;
pub mod generate_history;
pub mod networks;
pub mod record;
pub mod report;
pub mod serve;
pub mod service;
pub mod status;
pub mod timeline;
pub mod top;

use chrono::{DateTime, Local, Utc};

use crate::cli::RangeArgs;
use crate::query::{self, Db, Range};

/// Resolve the range flags against now (or the hidden --now) in the local time zone.
pub fn resolve_range(db: &Db, r: &RangeArgs) -> anyhow::Result<(Range, DateTime<Utc>)> {
    let now = r.now.unwrap_or_else(Utc::now);
    let earliest = db.earliest_ms()?.unwrap_or(now.timestamp_millis());
    let range =
        query::range::resolve(&r.spec(), now, &Local, earliest).map_err(query::Error::from)?;
    Ok((range, now))
}

use std::io::Write;

/// Write to stdout in one go (a closed pipe surfaces as a broken-pipe error, which exits 0).
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}
