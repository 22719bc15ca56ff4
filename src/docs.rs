//! Files generated from the code and committed: shell completions (`completions/`), man pages
//! (`man/`), and example service definitions (`launchd/` for macOS, `launchd/systemd/` for
//! Linux) rendered by the same code `netmon service install` uses, for a user called "you".
//!
//! `cargo run -- generate-docs` rewrites them all (a hidden subcommand); the
//! `generated_files_are_current` test fails when a committed file differs from what the code
//! generates now.

use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, ServiceManager};
use crate::service::{self, Component, Context, InstallRequest};

/// The directories holding generated files, relative to the repository root.
pub const GENERATED_DIRS: &[&str] = &[
    "completions",
    "man",
    "launchd",
    "launchd/systemd/user",
    "launchd/systemd/system",
];

/// The command that regenerates the committed files.
pub const REGENERATE: &str = "cargo run -- generate-docs";

/// Rewrite every generated file under `root` (the repository), deleting files in the generated
/// directories that are no longer generated (a removed subcommand's man page). Returns the
/// number of files generated and the number that changed.
pub fn write_generated(root: &std::path::Path) -> std::io::Result<(usize, usize)> {
    use std::collections::BTreeSet;
    let files = generated();
    let wanted: BTreeSet<_> = files.iter().map(|(p, _)| root.join(p)).collect();
    for dir in GENERATED_DIRS {
        let dir = root.join(dir);
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_file() && !wanted.contains(&path) {
                std::fs::remove_file(&path)?;
                eprintln!("removed {}", path.display());
            }
        }
    }
    let mut changed = 0;
    for (rel, contents) in &files {
        let path = root.join(rel);
        if std::fs::read(&path).ok().as_deref() != Some(contents.as_slice()) {
            std::fs::write(&path, contents)?;
            eprintln!("wrote {}", rel.display());
            changed += 1;
        }
    }
    Ok((files.len(), changed))
}

/// Every generated file: its path relative to the repository root, and its contents.
pub fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for (shell, name) in [
        (Shell::Bash, "netmon.bash"),
        (Shell::Zsh, "_netmon"),
        (Shell::Fish, "netmon.fish"),
        (Shell::PowerShell, "_netmon.ps1"),
    ] {
        files.push((PathBuf::from("completions").join(name), completion(shell)));
    }
    files.extend(man_pages());
    files.extend(service_examples());
    files
}

/// One shell's completion script. Hidden subcommands (test and benchmark helpers) are left
/// out: the generators would offer them.
pub fn completion(shell: Shell) -> Vec<u8> {
    let full = Cli::command();
    let mut cmd = clap::Command::new("netmon").version(env!("CARGO_PKG_VERSION"));
    if let Some(about) = full.get_about() {
        cmd = cmd.about(about.clone());
    }
    for arg in full.get_arguments() {
        cmd = cmd.arg(arg.clone());
    }
    for sub in full.get_subcommands().filter(|s| !s.is_hide_set()) {
        cmd = cmd.subcommand(sub.clone());
    }
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "netmon", &mut buf);
    buf
}

/// `netmon.1` and one page per visible subcommand (`netmon-service-install.1`, …).
pub fn man_pages() -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(cmd: &clap::Command, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let man = clap_mangen::Man::new(cmd.clone());
        let mut buf = Vec::new();
        // Rendering into memory cannot fail.
        let _ = man.render(&mut buf);
        out.push((PathBuf::from("man").join(man.get_filename()), buf));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, out);
        }
    }
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    walk(&cmd, &mut out);
    out
}

/// The plan for an example install (its paths and options hold nothing a definition cannot
/// carry, so it cannot fail).
fn plan(ctx: &Context, req: &InstallRequest) -> service::Plan {
    service::install_plan(ctx, req).unwrap_or_default()
}

/// The definitions `service install` writes, for a user "you" with netmon in /usr/local/bin.
pub fn service_examples() -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mac = Context {
        manager: ServiceManager::Launchd,
        system: false,
        home: PathBuf::from("/Users/you"),
        xdg_config_home: None,
        root: PathBuf::from("/"),
        uid: 501,
        exe: PathBuf::from("/usr/local/bin/netmon"),
        db: PathBuf::from("/Users/you/Library/Application Support/netmon/netmon.db"),
    };
    let both = InstallRequest {
        serve: true,
        ..Default::default()
    };
    for w in plan(&mac, &both).writes {
        let name = w.path.file_name().map(PathBuf::from).unwrap_or_default();
        out.push((PathBuf::from("launchd").join(name), w.contents.into_bytes()));
    }
    let linux = Context {
        manager: ServiceManager::Systemd,
        home: PathBuf::from("/home/you"),
        db: PathBuf::from("/home/you/.local/share/netmon/netmon.db"),
        ..mac
    };
    for w in plan(&linux, &both).writes {
        let name = w.path.file_name().map(PathBuf::from).unwrap_or_default();
        out.push((
            PathBuf::from("launchd/systemd/user").join(name),
            w.contents.into_bytes(),
        ));
    }
    let system = Context {
        system: true,
        db: PathBuf::from(crate::paths::SYSTEM_DB),
        ..linux
    };
    let req = InstallRequest {
        reader_group: Some("you".into()),
        ..Default::default()
    };
    for w in plan(&system, &req).writes {
        let name = w.path.file_name().map(PathBuf::from).unwrap_or_default();
        out.push((
            PathBuf::from("launchd/systemd/system").join(name),
            w.contents.into_bytes(),
        ));
    }
    debug_assert!(out.len() == 2 * Component::ALL.len() + 1);
    out
}
