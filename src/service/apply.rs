//! Carrying out a [`Plan`]: the manager commands through a [`Runner`] (the real one runs
//! the programs on PATH; tests script the answers), and definition files written atomically.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::process::Command;

use anyhow::{Context as _, bail};

use super::plan::{FileCopy, FileWrite, Plan, Step, shell_words};
use crate::exit::user;

/// How long an unloaded job may take to go: launchd gives it ExitTimeOut (30 s) after
/// SIGTERM; loading it again before that fails with "Bootstrap failed: 5".
pub const GONE_WITHIN: std::time::Duration = std::time::Duration::from_secs(40);

/// Runs service-manager commands.
pub trait Runner {
    /// Run `argv`; an `Err` only when it could not be started.
    fn run(&mut self, argv: &[String]) -> std::io::Result<Ran>;
}

/// What a command did.
#[derive(Debug, Clone, Default)]
pub struct Ran {
    pub success: bool,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

/// The real runner: the programs on PATH.
pub struct SystemRunner;

impl Runner for SystemRunner {
    fn run(&mut self, argv: &[String]) -> std::io::Result<Ran> {
        let (prog, args) = argv
            .split_first()
            .ok_or_else(|| std::io::Error::other("empty command"))?;
        let out = Command::new(prog).args(args).output()?;
        Ok(Ran {
            success: out.status.success(),
            status: out.status.to_string(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Carry out a plan. Stops at the first failing step, saying which and why.
pub fn apply(plan: &Plan, runner: &mut dyn Runner, out: &mut dyn Write) -> anyhow::Result<()> {
    run_steps(&plan.before, runner, out)?;
    for d in &plan.dirs {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(d)
            .with_context(|| format!("creating {}", d.display()))?;
    }
    for c in &plan.copies {
        copy_fresh(c)
            .with_context(|| format!("copying {} to {}", c.from.display(), c.to.display()))?;
        writeln!(out, "copied {} to {}", c.from.display(), c.to.display())?;
    }
    for f in &plan.writes {
        write_atomically(f).with_context(|| format!("writing {}", f.path.display()))?;
        writeln!(out, "wrote {}", f.path.display())?;
    }
    for p in &plan.removes {
        match fs::remove_file(p) {
            Ok(()) => writeln!(out, "removed {}", p.display())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", p.display())),
        }
    }
    run_steps(&plan.after, runner, out)?;
    Ok(())
}

fn run_steps(steps: &[Step], runner: &mut dyn Runner, out: &mut dyn Write) -> anyhow::Result<()> {
    for s in steps {
        if let Some(probe) = &s.only_if {
            let ran = runner.run(probe).map_err(|e| not_started(probe, e))?;
            if !ran.success {
                continue;
            }
        }
        writeln!(out, "running {}", shell_words(&s.argv))?;
        let ran = runner.run(&s.argv).map_err(|e| not_started(&s.argv, e))?;
        if !ran.success {
            let said = first_lines(&ran.stderr, &ran.stdout);
            bail!(
                "`{}` failed ({}){}{}",
                shell_words(&s.argv),
                ran.status,
                if said.is_empty() {
                    String::new()
                } else {
                    format!(": {said}")
                },
                s.on_failure
                    .as_deref()
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default()
            );
        }
        if let (true, Some(probe)) = (s.wait_gone, &s.only_if) {
            let deadline = std::time::Instant::now() + GONE_WITHIN;
            while runner
                .run(probe)
                .map_err(|e| not_started(probe, e))?
                .success
            {
                if std::time::Instant::now() >= deadline {
                    bail!(
                        "`{}` still succeeds {}s after `{}`: the old job has not gone; try again",
                        shell_words(probe),
                        GONE_WITHIN.as_secs(),
                        shell_words(&s.argv)
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
    }
    Ok(())
}

fn not_started(argv: &[String], e: std::io::Error) -> anyhow::Error {
    let prog = argv.first().map_or("", String::as_str);
    if e.kind() == std::io::ErrorKind::NotFound {
        user(format!(
            "{prog} was not found on PATH: {}",
            match prog {
                "systemctl" =>
                    "this system does not run systemd; run `netmon record` from your \
                                init system or a terminal multiplexer instead",
                "launchctl" => "launchctl ships with macOS (/bin/launchctl): check PATH",
                _ => "check PATH",
            }
        ))
    } else {
        anyhow::Error::new(e).context(format!("starting {prog}"))
    }
}

/// The first few non-empty lines of what a command said (stderr, else stdout).
pub fn first_lines(a: &str, b: &str) -> String {
    let text = if a.trim().is_empty() { b } else { a };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(3)
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Copy a program's bytes into a new file beside the destination, then rename it into place.
///
/// Never an overwrite: macOS caches a binary's code signature per file (vnode), and a
/// launch of a file rewritten in place is killed (SIGKILL, "Code Signature Invalid",
/// `OS_REASON_CODESIGNING`); a rename gives launchd a fresh file every install. Only the bytes
/// are copied (`std::fs::copy` would clone the extended attributes on macOS), and a
/// quarantine or provenance mark the new file was given anyway is removed where allowed.
fn copy_fresh(c: &FileCopy) -> std::io::Result<()> {
    let bytes = fs::read(&c.from)?;
    let tmp = c.to.with_extension("netmon-tmp");
    let _ = fs::remove_file(&tmp);
    {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(c.mode)
            .open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
    }
    fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(c.mode))?;
    drop_marks(&tmp);
    fs::rename(&tmp, &c.to)
}

/// Remove `com.apple.quarantine` and `com.apple.provenance` (macOS); failures are ignored:
/// the file is new, and the signature check that follows the copy has the last word.
#[cfg(target_os = "macos")]
fn drop_marks(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(cpath) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    for name in [c"com.apple.quarantine", c"com.apple.provenance"] {
        // SAFETY: both strings are NUL-terminated; options 0 follows no symlink flags.
        unsafe {
            libc::removexattr(cpath.as_ptr(), name.as_ptr(), 0);
        }
    }
}

#[cfg(not(target_os = "macos"))]
fn drop_marks(_path: &std::path::Path) {}

/// Write via a temporary file and rename, so a crash never leaves half a definition.
fn write_atomically(f: &FileWrite) -> std::io::Result<()> {
    let tmp = f.path.with_extension("netmon-tmp");
    {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(f.mode)
            .open(&tmp)?;
        file.write_all(f.contents.as_bytes())?;
        file.sync_all()?;
    }
    // The mode given to open() is reduced by the umask (netmon runs with 077).
    fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(f.mode))?;
    fs::rename(&tmp, &f.path)
}
