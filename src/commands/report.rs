//! `netmon report html`: gather the report's figures, render the page, write it where `-o`
//! says without harming what is there (`crate::files`), or to stdout with `-o -`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{Local, Utc};

use crate::cli::{ReportArgs, ReportFormat, ReportHtmlArgs};
use crate::output::units;
use crate::query::{self, Db};
use crate::report;

/// The range a report covers when none is given.
pub const DEFAULT_SINCE: Duration = Duration::from_secs(30 * 86_400);

pub fn run(db_path: &Path, a: &ReportArgs) -> anyhow::Result<()> {
    match &a.format {
        ReportFormat::Html(h) => html(db_path, h),
    }
}

fn html(db_path: &Path, a: &ReportHtmlArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let db = Db::open(db_path)?;
    let mut spec = a.range.spec();
    if spec.since.is_none() && spec.from.is_none() && spec.until.is_none() {
        spec.since = Some(DEFAULT_SINCE);
    }
    let now = a.range.now.unwrap_or_else(Utc::now);
    let earliest = db.earliest_ms()?.unwrap_or(now.timestamp_millis());
    let range = query::range::resolve(&spec, now, &Local, earliest).map_err(query::Error::from)?;
    let network = match &a.network {
        Some(n) => Some(query::networks::resolve(&db, n)?.id),
        None => None,
    };
    let opts = report::Options {
        series: usize::from(a.series),
        network,
        ..report::Options::default()
    };
    let data = report::gather(&db, &Local, range, now, &opts)?;
    let queried = started.elapsed();
    let page = report::render(&data, &Local, &opts).context("rendering the report failed")?;
    tracing::debug!(
        query_ms = queried.as_millis() as u64,
        render_ms = (started.elapsed() - queried).as_millis() as u64,
        bytes = page.len(),
        "report rendered"
    );
    if a.output.as_os_str() == "-" {
        return super::print(&page);
    }
    write_report(&a.output, page.as_bytes())?;
    eprintln!(
        "netmon report: wrote {} ({}): {} of traffic over {}, {} recorded",
        a.output.display(),
        units::bytes(page.len() as u64),
        units::bytes(data.totals.bytes_total),
        units::duration_ms(data.range.end_ms() - data.range.start_ms()),
        units::percent(data.coverage),
    );
    Ok(())
}

/// Write the page to what `path` names without harming it (see `crate::files`): a FIFO or
/// device gets a stream, a symlink is written through, a file keeps its owner and mode.
fn write_report(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    match crate::files::write_to(path, bytes) {
        Ok(how) => {
            tracing::debug!(?how, path = %path.display(), "report written");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => Err(crate::exit::user(format!(
            "{} is a directory: give a file name with -o, e.g. -o {}",
            path.display(),
            path.join("netmon-report.html").display()
        ))),
        Err(e) => Err(crate::exit::user(format!(
            "cannot write the report to {}: {e} (choose another file with -o, or -o - for stdout)",
            path.display()
        ))),
    }
}
