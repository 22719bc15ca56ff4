//! Presentation: the one place results become text. `table` draws comfy-table tables
//! in human units; `status` and `service` write those commands' reports; `json` and `csv` serialize the query structs as they are (integer bytes,
//! RFC 3339 UTC times), so their field names are the contract documented in the README;
//! `prometheus` writes the exposition `/metrics` serves.
//!
//! Human units follow ONE convention everywhere: decimal SI prefixes, 1 kB = 1000 bytes,
//! 1 MB = 1000 kB (as macOS shows file and network sizes); rates are bytes per second (kB/s).

pub mod csv;
pub mod json;
pub mod prometheus;
pub mod service;
pub mod status;
pub mod table;
/// Human units live in `crate::text::units` so the domain's messages use the same ones.
pub use crate::text::units;

use std::io::{IsTerminal, Write};

use serde::Serialize;

/// How rows are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Ndjson,
    Csv,
}

/// How a table looks: decided once from the terminal, `NO_COLOR` and the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// stdout is a terminal: bars in block characters, fit to its width (and box lines when
    /// colour is allowed).
    pub terminal: bool,
    /// Colour is allowed (a terminal, and `NO_COLOR` unset or empty).
    pub color: bool,
    /// Exact byte counts instead of human units (`--bytes`).
    pub exact: bool,
    /// Width to fit tables to (`COLUMNS`, or the terminal's); `None`: no wrapping.
    pub width: Option<u16>,
}

impl Style {
    /// The style for stdout of this process.
    pub fn detect(exact: bool) -> Self {
        let terminal = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let columns = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<u16>().ok())
            .filter(|c| *c >= 20);
        let width = columns.or_else(|| {
            if terminal {
                crossterm::terminal::size().ok().map(|(w, _)| w)
            } else {
                None
            }
        });
        Style {
            terminal,
            color: terminal && !no_color,
            exact,
            width,
        }
    }

    /// A fixed style for tests: plain, no width limit.
    pub fn plain(exact: bool) -> Self {
        Style {
            terminal: false,
            color: false,
            exact,
            width: None,
        }
    }
}

/// The output flags, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    pub format: Format,
    pub style: Style,
}

impl Output {
    pub fn from_args(a: &crate::cli::OutputArgs) -> Self {
        let format = if a.json {
            Format::Json
        } else if a.ndjson {
            Format::Ndjson
        } else if a.csv {
            Format::Csv
        } else {
            Format::Table
        };
        Output {
            format,
            style: Style::detect(a.bytes),
        }
    }
}

/// Print rows in a machine format (JSON array, NDJSON or CSV). Tables are drawn by each
/// command with [`table`].
pub fn write_rows<T: Serialize + Default>(
    out: &mut impl Write,
    format: Format,
    rows: &[T],
) -> anyhow::Result<()> {
    match format {
        Format::Json => json::write_array(out, rows)?,
        Format::Ndjson => json::write_lines(out, rows)?,
        Format::Csv => csv::write(out, rows)?,
        Format::Table => anyhow::bail!("internal: tables are drawn by their command"),
    }
    out.flush()?;
    Ok(())
}

/// A row of a query limited to one network (`--network`), as printed in JSON and CSV: the
/// row's own fields, then the network and the rule that put application bytes on it (the
/// table says the same in words under the rows).
#[derive(Debug, Clone, Default, Serialize)]
pub struct NetworkRow<T> {
    #[serde(flatten)]
    pub row: T,
    /// The network's name, as the table's footer shows it.
    pub network: String,
    /// [`crate::query::networks::SplitRules::word`]: `connection`, `tick` or `mixed`.
    pub network_split: &'static str,
}

/// [`write_rows`]; when the query was limited to one network, each row also names it and the
/// rule that put application bytes on it ([`NetworkRow`]).
pub fn write_rows_on<T: Serialize + Default>(
    out: &mut impl Write,
    format: Format,
    rows: Vec<T>,
    network: Option<(&str, crate::query::networks::SplitRules)>,
) -> anyhow::Result<()> {
    match network {
        None => write_rows(out, format, &rows),
        Some((name, rules)) => {
            let rows: Vec<NetworkRow<T>> = rows
                .into_iter()
                .map(|row| NetworkRow {
                    row,
                    network: name.to_string(),
                    network_split: rules.word(),
                })
                .collect();
            write_rows(out, format, &rows)
        }
    }
}

/// Round a fraction for JSON (0.123456): enough for any display, no float noise.
pub fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// A row of a range query as printed in JSON and CSV: the row's own fields, then the range it
/// covers and how much of that range was recorded (the same on every row, so a consumer of
/// any single row, or of `--ndjson` lines, knows whether a quiet result means quiet).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RangeRow<T> {
    #[serde(flatten)]
    pub row: T,
    pub range_start: chrono::DateTime<chrono::Utc>,
    pub range_end: chrono::DateTime<chrono::Utc>,
    /// Milliseconds of the range a recorder was counting.
    pub recorded_ms: i64,
    /// `recorded_ms` as a share of the range, 0.0–1.0.
    pub coverage: f64,
}

impl<T> RangeRow<T> {
    pub fn new(
        row: T,
        range: &crate::query::Range,
        coverage: &crate::query::coverage::Coverage,
    ) -> Self {
        RangeRow {
            row,
            range_start: range.start,
            range_end: range.end,
            recorded_ms: coverage.recorded_ms,
            coverage: round6(coverage.fraction()),
        }
    }
}
