//! The `meta` table's keys: one name each, in one place, so a migration in `sql/` and every
//! reader agree on them.

use rusqlite::{Connection, OptionalExtension};

/// A key of the `meta` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// How long per-tick samples are kept, in seconds (0: forever), as the recorder was told.
    KeepRawS,
    /// How long hourly totals are kept, in seconds (0: forever).
    KeepHourlyS,
    /// Per-tick samples before this epoch ms were deleted by retention.
    RawFromMs,
    /// Hourly totals before this epoch second were deleted by retention.
    HourlyFromS,
    /// The boot the saved counter state belongs to (`procinfo::boot_id`).
    StateBootId,
    /// When `/metrics` first answered (epoch ms): members joining later bring a base
    /// (`store::metrics`).
    MetricsSinceMs,
    /// `"<run id> <epoch ms>"`: that run's samples have had no counters at all since then
    /// (absent once a sample has some). Read by `status` (nettop that sees nothing).
    EmptySamplesSince,
}

impl Key {
    /// The name stored in `meta.key`.
    pub const fn name(self) -> &'static str {
        match self {
            Key::KeepRawS => "keep_raw_s",
            Key::KeepHourlyS => "keep_hourly_s",
            Key::RawFromMs => "raw_from_ms",
            Key::HourlyFromS => "hourly_from",
            Key::StateBootId => "state_boot_id",
            Key::MetricsSinceMs => "metrics_since_ms",
            Key::EmptySamplesSince => "empty_samples_since",
        }
    }
}

/// Read a value.
pub fn get(conn: &Connection, key: Key) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key.name()], |r| {
        r.get(0)
    })
    .optional()
}

/// Read a value as an integer (`None`: missing or not a number).
pub fn get_i64(conn: &Connection, key: Key) -> rusqlite::Result<Option<i64>> {
    Ok(get(conn, key)?.and_then(|v| v.trim().parse::<i64>().ok()))
}

/// Remove a value.
pub fn delete(conn: &Connection, key: Key) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM meta WHERE key = ?1", [key.name()])?;
    Ok(())
}

/// Write a value.
pub fn set(conn: &Connection, key: Key, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2) \
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key.name(), value],
    )?;
    Ok(())
}
