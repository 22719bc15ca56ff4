//! The committed completions/, man/ and launchd/ (with launchd/systemd/) files are what the code generates
//! now, and the generated service definitions are valid.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use netmon::docs::REGENERATE;

#[test]
fn generated_files_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = netmon::docs::generated();
    let mut stale = Vec::new();
    for (rel, contents) in &files {
        match std::fs::read(root.join(rel)) {
            Ok(on_disk) if on_disk == *contents => {}
            Ok(_) => stale.push(format!("{} differs", rel.display())),
            Err(e) => stale.push(format!("{} is missing ({e})", rel.display())),
        }
    }
    let wanted: BTreeSet<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    for dir in netmon::docs::GENERATED_DIRS {
        for entry in std::fs::read_dir(root.join(dir)).expect("generated dir") {
            let path = entry.expect("entry").path();
            let rel = path.strip_prefix(root).expect("under root").to_path_buf();
            if path.is_file() && !wanted.contains(&rel) {
                stale.push(format!("{} is no longer generated", rel.display()));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "generated files are out of date; run `{REGENERATE}` and commit:\n  {}",
        stale.join("\n  ")
    );
}

#[test]
fn visible_subcommands_have_man_pages_and_completions_and_hidden_ones_do_not() {
    use clap::CommandFactory;
    let files = netmon::docs::generated();
    let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    let bash = files
        .iter()
        .find(|(p, _)| p.ends_with("netmon.bash"))
        .map(|(_, c)| String::from_utf8_lossy(c).into_owned())
        .expect("bash completions");
    let cmd = netmon::cli::Cli::command();
    for sub in cmd.get_subcommands() {
        let page = format!("man/netmon-{}.1", sub.get_name());
        if sub.is_hide_set() {
            assert!(!names.contains(&page), "{page} is hidden");
            assert!(
                !bash.contains(sub.get_name()),
                "bash offers the hidden {}",
                sub.get_name()
            );
        } else {
            assert!(names.contains(&page), "no {page} in {names:?}");
            assert!(
                bash.contains(sub.get_name()),
                "bash completion lacks {}",
                sub.get_name()
            );
        }
    }
}

#[test]
fn the_committed_launch_agents_parse_as_property_lists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let db = "/Users/you/Library/Application Support/netmon/netmon.db";
    crate::service::check_plist(
        &root.join("launchd/io.netmon.record.plist"),
        "io.netmon.record",
        &["record", "--db", db],
    );
    crate::service::check_plist(
        &root.join("launchd/io.netmon.serve.plist"),
        "io.netmon.serve",
        &["serve", "--db", db],
    );
}
