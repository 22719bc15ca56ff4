//! Regenerate the committed completions/, man/, launchd/ and systemd/ files from the code:
//!
//!     cargo run --example gen-docs
//!
//! Files that are no longer generated (a removed subcommand's man page) are deleted.

use std::collections::BTreeSet;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = netmon::docs::generated();
    let wanted: BTreeSet<_> = files.iter().map(|(p, _)| root.join(p)).collect();
    for dir in [
        "completions",
        "man",
        "launchd",
        "systemd/user",
        "systemd/system",
    ] {
        let dir = root.join(dir);
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_file() && !wanted.contains(&path) {
                std::fs::remove_file(&path)?;
                println!("removed {}", path.display());
            }
        }
    }
    let mut changed = 0;
    for (rel, contents) in &files {
        let path = root.join(rel);
        if std::fs::read(&path).ok().as_deref() != Some(contents.as_slice()) {
            std::fs::write(&path, contents)?;
            println!("wrote {}", rel.display());
            changed += 1;
        }
    }
    println!("{} files generated, {changed} changed", files.len());
    Ok(())
}
