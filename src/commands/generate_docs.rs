//! `netmon generate-docs` (hidden): rewrite the man pages, completions and example service
//! definitions committed in the repository (`docs::write_generated`).

use crate::cli::GenerateDocsArgs;

pub fn run(a: &GenerateDocsArgs) -> anyhow::Result<()> {
    let (n, changed) = crate::docs::write_generated(&a.root)?;
    eprintln!("{n} files generated, {changed} changed");
    Ok(())
}
