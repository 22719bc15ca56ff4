//! Queries: from a time range to typed rows, for the table, JSON and CSV printers in `output`,
//! and for anything else that reads the history (the HTML report, `domains`).
//!
//! - `range`: `--since`/`--from`/`--until` to a UTC range.
//! - `plan`: which table (raw ticks, hourly, daily) answers which part of a range, using the
//!   retention boundaries in `meta`, so totals agree across tables.
//! - `scan`: the SQL over those tables. `coverage`: recorded time from `runs` and `gaps`.
//! - `metrics`: all-time counters and the recorder's state for `/metrics` on `netmon serve`;
//!   `stall`: when a running recorder counts as stalled (the same rule for `netmon status`).
//! - `apps`, `timeline`, `top`, `domains`: the answers, as plain `Serialize` structs with integer bytes
//!   and `DateTime<Utc>`.

pub mod apps;
pub mod coverage;
pub mod domains;
pub mod metrics;
pub mod networks;
pub mod plan;
pub mod range;
pub mod scan;
pub mod stall;
pub mod time;
pub mod timeline;
pub mod top;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

pub use range::{Range, RangeError, RangeSpec};

use crate::store;

/// Errors of a query. Messages say what happened and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{} has no recorded traffic yet: let `netmon record` run for a few ticks, then ask again",
        path.display()
    )]
    Empty { path: PathBuf },
    #[error(transparent)]
    Range(#[from] RangeError),
    /// A flag's value that cannot work (the message names the flag and what to use).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("reading the database failed: {0}")]
    Sql(#[from] rusqlite::Error),
}

impl Error {
    /// Errors the user can fix (exit code 1).
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::Empty { .. } | Error::Range(_) | Error::Invalid(_) => true,
            Error::Store(e) => e.is_user_error(),
            Error::Sql(_) => false,
        }
    }
}

/// What kind of row an application is (`apps.kind`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Application,
    /// Bytes the source saw but could not tie to a process.
    Unattributed,
}

/// An `apps` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInfo {
    pub name: String,
    pub path: String,
    pub kind: Kind,
    /// The container the application ran in ('' on the host).
    pub container: String,
}

/// An open database, ready to be queried.
pub struct Db {
    pub conn: Connection,
    pub path: PathBuf,
    pub bounds: plan::Bounds,
}

impl Db {
    /// Open an existing database (a missing one is a user error that says how to get one).
    pub fn open(path: &Path) -> Result<Db, Error> {
        let conn = store::open_read_only(path)?;
        let bounds = plan::Bounds::load(&conn)?;
        Ok(Db {
            conn,
            path: path.to_path_buf(),
            bounds,
        })
    }

    /// Refuse a database nothing was ever recorded into: an empty answer would look like a
    /// quiet network.
    pub fn ensure_recorded(&self) -> Result<(), Error> {
        let any: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE first_tick_at IS NOT NULL)",
            [],
            |r| r.get(0),
        )?;
        if any {
            Ok(())
        } else {
            Err(Error::Empty {
                path: self.path.clone(),
            })
        }
    }

    /// When recording began (epoch ms), or `None` for an empty database.
    pub fn earliest_ms(&self) -> Result<Option<i64>, Error> {
        Ok(self
            .conn
            .query_row("SELECT min(first_tick_at) FROM runs", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .optional()?
            .flatten())
    }

    /// Every application, by id.
    pub fn apps(&self) -> Result<HashMap<i64, AppInfo>, Error> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id, name, path, kind, container FROM apps")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                AppInfo {
                    name: r.get(1)?,
                    path: r.get(2)?,
                    kind: if r.get::<_, i64>(3)? == 1 {
                        Kind::Unattributed
                    } else {
                        Kind::Application
                    },
                    container: r.get(4)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Ids of the applications whose name matches.
    pub fn matching_apps(&self, m: &Matcher) -> Result<Vec<i64>, Error> {
        let mut ids: Vec<i64> = self
            .apps()?
            .into_iter()
            .filter(|(_, a)| m.matches(&a.name))
            .map(|(id, _)| id)
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }
}

/// `--app PATTERN`: a case-insensitive substring, or a glob (`*`, `?`) matched against the
/// whole name when it holds one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    pattern: Vec<char>,
    glob: bool,
}

impl Matcher {
    pub fn new(pattern: &str) -> Self {
        let lower = pattern.to_lowercase();
        Matcher {
            glob: lower.contains(['*', '?']),
            pattern: lower.chars().collect(),
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.to_lowercase().chars().collect();
        if self.glob {
            glob(&self.pattern, &name)
        } else if self.pattern.is_empty() {
            true
        } else {
            name.windows(self.pattern.len()).any(|w| w == self.pattern)
        }
    }
}

/// Iterative glob with backtracking to the last `*` (linear for typical patterns).
fn glob(p: &[char], s: &[char]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_patterns_are_substrings_or_globs_ignoring_case() {
        let m = Matcher::new("chrome");
        assert!(m.matches("Google Chrome"));
        assert!(!m.matches("Firefox"));
        let g = Matcher::new("g*e");
        assert!(g.matches("Google Chrome"));
        assert!(!g.matches("Google Chromes"));
        assert!(Matcher::new("?url").matches("curl"));
        assert!(Matcher::new("(unattributed*").matches("(unattributed: no process)"));
    }
}
