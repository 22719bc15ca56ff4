//! `netmon status [--json]`: gather what is true about the database and its recorder
//! (`crate::status`), then print it as JSON or as text (`output::status`).

use std::io::Write;
use std::path::Path;

use chrono::Utc;

use crate::cli::StatusArgs;
use crate::status::{self, Options, ServiceFile};

pub fn run(db: &Path, a: &StatusArgs) -> anyhow::Result<()> {
    let opts = Options {
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
    Ok(())
}
