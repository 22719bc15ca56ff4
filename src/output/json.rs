//! JSON output: one document per call (an array of row objects), or one row object per line
//! (`--ndjson`) for streaming into `jq -c` or a log pipeline.

use std::io::Write;

use serde::Serialize;

/// One JSON array, pretty-printed, ending with a newline.
pub fn write_array<T: Serialize>(out: &mut impl Write, rows: &[T]) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, rows)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// One JSON object per line.
pub fn write_lines<T: Serialize>(out: &mut impl Write, rows: &[T]) -> anyhow::Result<()> {
    for r in rows {
        serde_json::to_writer(&mut *out, r)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// One JSON value (an object), pretty-printed.
pub fn write_value<T: Serialize>(out: &mut impl Write, value: &T) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    out.write_all(b"\n")?;
    Ok(())
}
