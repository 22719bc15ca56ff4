//! The SQLite store: schema and migrations (`open`), the recorder's write path (`write`), the
//! counter state restarts resume from (`state`), the single-writer lock (`lock`), the
//! retention pass (`retention`) and the series `/metrics` exports (`metrics`). The SQL schema itself
//! lives in `sql/` at the top of the repository.

pub mod flows;
pub mod inspect;
pub mod lock;
pub mod meta;
pub mod metrics;
pub mod networks;
pub mod open;
pub mod retention;
pub mod state;
#[cfg(test)]
pub mod testing;
pub mod web;
pub mod write;

use std::path::{Path, PathBuf};

pub use open::{Create, SCHEMA_VERSION, check_target, open, open_in_memory, open_read_only};

/// Errors at the store boundary. Messages say what happened and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "database {} has schema {found}, newer than this netmon ({supported}): \
         upgrade netmon or pass --db to use another database",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(
        "no database at {}: run `netmon record` first, or pass --db (or NETMON_DB) to point at one",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error(
        "another `netmon record` (pid {pid}{since}) is already writing to {}: \
         stop it first, or pass --db to record into another database",
        path.display()
    )]
    Locked {
        path: PathBuf,
        pid: String,
        since: String,
    },
    #[error(
        "{} is not a netmon database ({why}): nothing was changed; pass --db (or NETMON_DB) \
         with the file `netmon record` writes (`netmon status` shows it)",
        path.display()
    )]
    NotNetmon { path: PathBuf, why: String },
    #[error(
        "database {} has schema {found}, older than this netmon ({supported}): nothing was \
         changed; run `netmon record` (or `netmon serve`) once to upgrade it",
        path.display()
    )]
    TooOld {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    // The underlying error is part of the message and deliberately not a `source()`, so the
    // one-line `{:#}` chain printed by main does not repeat it.
    #[error("cannot open database {}: {cause}", path.display())]
    Open {
        path: PathBuf,
        cause: rusqlite::Error,
    },
    #[error("upgrading database {} from schema {from} failed (nothing was changed): {cause}", path.display())]
    Migration {
        path: PathBuf,
        from: i64,
        cause: rusqlite::Error,
    },
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    /// A value the user gave that cannot be stored (the message says what to do instead).
    #[error("{0}")]
    Invalid(String),
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Sqlite(e)
    }
}

impl Error {
    fn io(path: &Path, cause: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            cause,
        }
    }
    fn open(path: &Path, cause: rusqlite::Error) -> Self {
        Error::Open {
            path: path.to_path_buf(),
            cause,
        }
    }
    /// Errors the user can fix by choosing differently (exit code 1), not runtime failures.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::TooNew { .. }
                | Error::TooOld { .. }
                | Error::Missing { .. }
                | Error::Locked { .. }
                | Error::NotNetmon { .. }
                | Error::Invalid(_)
        )
    }
}
