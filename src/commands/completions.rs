//! `netmon completions SHELL`: print a completion script generated from `cli.rs` (`docs`).

use std::io::Write;

use clap_complete::Shell;

pub fn run(shell: Shell) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(&crate::docs::completion(shell))?;
    out.flush()?;
    Ok(())
}
