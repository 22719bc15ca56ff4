//! The query subcommands: each validates its flags, asks `query`, and prints through
//! `output`. One file per subcommand.

pub mod apps;

use std::io::Write;

/// Write to stdout in one go (a closed pipe surfaces as a broken-pipe error, which exits 0).
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}
