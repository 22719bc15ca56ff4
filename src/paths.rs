//! Where netmon keeps its database by default: the platform's conventional data directory.
//!
//! - macOS: `~/Library/Application Support/netmon/netmon.db`
//! - Linux and others: `$XDG_DATA_HOME/netmon/netmon.db`, else `~/.local/share/netmon/netmon.db`
//!
//! - the system service (Linux): [`SYSTEM_DB`]
//!
//! `--db PATH` and `NETMON_DB` override it (handled by clap before this is asked).

use std::path::PathBuf;

use crate::exit::user;

/// The system recorder's database (Linux, `netmon service install --system`): systemd's
/// StateDirectory=netmon.
pub const SYSTEM_DB: &str = "/var/lib/netmon/netmon.db";

/// The default database path for this user on this OS.
pub fn default_db() -> anyhow::Result<PathBuf> {
    data_dir().map(|d| d.join("netmon").join("netmon.db"))
}

fn data_dir() -> anyhow::Result<PathBuf> {
    let home = || {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| {
                user("no home directory (HOME is not set): pass --db PATH or set NETMON_DB")
            })
    };
    if cfg!(target_os = "macos") {
        return Ok(home()?.join("Library/Application Support"));
    }
    match std::env::var_os("XDG_DATA_HOME").map(PathBuf::from) {
        Some(d) if d.is_absolute() => Ok(d),
        _ => Ok(home()?.join(".local/share")),
    }
}

/// The database path: the one given, or the default.
pub fn db_path(given: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(p) => Ok(p.clone()),
        None => default_db(),
    }
}
