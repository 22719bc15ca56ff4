//! Writing files a user names, without harming what is already there.
//!
//! - [`write_to`] (`report html -o PATH`): a FIFO, a terminal or any other device is opened and
//!   written as a stream, never replaced by a regular file; a symbolic link is followed and its
//!   target written (the link stays); an existing regular file is replaced atomically (a reader
//!   sees the old page or the new one, never half) by a temporary file beside it that first gets
//!   the old file's owner and mode; where that cannot be done (another user's file we may write
//!   but not chown, a directory we may not create files in, a file with several hard links) the
//!   file is rewritten in place, which keeps its owner, mode and links. A new file is created
//!   exclusively (`O_EXCL`: a link planted there in the meantime is refused, not followed).
//! - [`create_new`] (the serve token): a file that appears whole or not at all, and never
//!   replaces one that exists.
//!
//! Temporary files are created exclusively (`O_EXCL`, which also refuses to follow a planted
//! symbolic link) with 64 random bits in their names, so nobody can prepare one in advance.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What [`write_to`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// A new regular file.
    Created,
    /// An existing regular file, replaced atomically with its owner and mode kept.
    Replaced,
    /// An existing regular file, rewritten in place (see the module doc for when).
    Rewritten,
    /// A FIFO, device or socket, written as a stream.
    Streamed,
}

/// Symbolic links followed before giving up (Linux's own limit, `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// Write `bytes` to what `path` names; see the module doc.
pub fn write_to(path: &Path, bytes: &[u8]) -> io::Result<Written> {
    let target = resolve(path)?;
    let meta = match fs::metadata(&target) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            create_exclusive(&target, bytes, 0o666)?;
            return Ok(Written::Created);
        }
        Err(e) => return Err(e),
    };
    let ft = meta.file_type();
    if ft.is_dir() {
        return Err(io::Error::new(ErrorKind::IsADirectory, "it is a directory"));
    }
    if !ft.is_file() {
        // A FIFO, character or block device, or socket: a stream to write into, never a file to
        // replace. No O_CREAT, no O_TRUNC.
        let mut f = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&target)?;
        f.write_all(bytes)?;
        f.flush()?;
        return Ok(Written::Streamed);
    }
    if meta.nlink() > 1 {
        // Replacing would break the other names' link to the same file.
        rewrite_in_place(&target, bytes)?;
        return Ok(Written::Rewritten);
    }
    match replace(&target, &meta, bytes)? {
        true => Ok(Written::Replaced),
        false => {
            rewrite_in_place(&target, bytes)?;
            Ok(Written::Rewritten)
        }
    }
}

/// Create `path` with `bytes` and `mode`, whole or not at all: written to a temporary file
/// beside it, flushed to disk, then linked to `path`, which fails if `path` exists
/// (`AlreadyExists`). Nothing is left behind on failure.
pub fn create_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let (tmp, mut f) = temp_beside(path, mode)?;
    let result = (|| {
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(e),
            // A file system without hard links: a rename, after looking once more.
            Err(_) if fs::symlink_metadata(path).is_err() => fs::rename(&tmp, path),
            Err(e) => Err(e),
        }
    })();
    let _ = fs::remove_file(&tmp);
    result?;
    sync_dir(path);
    Ok(())
}

/// Replace the regular file `path` (netmon's own: the caller checked) by one holding `bytes`
/// with `mode`, atomically: a temporary file beside it, flushed, renamed over it.
pub fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let (tmp, mut f) = temp_beside(path, mode)?;
    let result = (|| {
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(path);
    Ok(())
}

/// `path` with every symbolic link in its last component followed (the directories above it
/// are the kernel's business). The result may not exist: a link to a file not yet written.
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            Ok(_) => return Ok(p),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(p),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "more than {MAX_LINKS} symbolic links in a row"
    )))
}

/// A new file at `path`, created exclusively with `mode` (less the umask), holding `bytes`;
/// removed again if writing fails.
fn create_exclusive(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    let result = f.write_all(bytes).and_then(|()| f.sync_all());
    if result.is_err() {
        let _ = fs::remove_file(path);
    }
    result
}

/// Replace the regular file `target` by a temporary one with its owner and mode. `Ok(false)`
/// when that cannot be done faithfully (nothing was changed then).
fn replace(target: &Path, meta: &fs::Metadata, bytes: &[u8]) -> io::Result<bool> {
    let Ok((tmp, f)) = temp_beside(target, 0o600) else {
        return Ok(false);
    };
    let cleanup = |e: io::Error| {
        let _ = fs::remove_file(&tmp);
        e
    };
    let mine = f.metadata().map_err(cleanup)?;
    if (mine.uid(), mine.gid()) != (meta.uid(), meta.gid())
        && std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid())).is_err()
    {
        // Another user's (or group's) file we may write but not give away: rewrite it.
        let _ = fs::remove_file(&tmp);
        return Ok(false);
    }
    let mut f = f;
    let written = (|| {
        // After the chown, which clears set-id bits.
        f.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, target)
    })();
    written.map_err(cleanup)?;
    sync_dir(target);
    Ok(true)
}

/// Truncate and write `target` where it is.
fn rewrite_in_place(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(target)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// A new, exclusively created temporary file in `path`'s directory: `.NAME.<16 hex>.tmp`.
fn temp_beside(path: &Path, mode: u32) -> io::Result<(PathBuf, File)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "netmon".into());
    for _ in 0..8 {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
        let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
        let tmp = path.with_file_name(format!(".{name}.{hex}.tmp"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        ErrorKind::AlreadyExists,
        "no free temporary name after 8 tries",
    ))
}

/// Flush the directory holding `path`, so a rename or link survives a crash (best effort).
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_new_file_is_created_and_an_old_one_replaced_keeping_its_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("r.html");
        assert_eq!(write_to(&p, b"one").expect("create"), Written::Created);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).expect("chmod");
        let ino = fs::metadata(&p).expect("meta").ino();
        assert_eq!(write_to(&p, b"two").expect("replace"), Written::Replaced);
        let m = fs::metadata(&p).expect("meta");
        assert_eq!(fs::read(&p).expect("read"), b"two");
        assert_eq!(m.mode() & 0o777, 0o640);
        assert_ne!(m.ino(), ino, "replaced by a new file, not rewritten");
        let left: Vec<_> = fs::read_dir(dir.path()).expect("ls").collect();
        assert_eq!(left.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn a_symlink_is_written_through_and_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real.html");
        fs::write(&real, "old").expect("write");
        let link = dir.path().join("link.html");
        symlink("real.html", &link).expect("symlink");
        write_to(&link, b"new").expect("write");
        assert!(
            fs::symlink_metadata(&link)
                .expect("meta")
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&real).expect("read"), b"new");
        let dangling = dir.path().join("later.html");
        symlink("made.html", &dangling).expect("symlink");
        assert_eq!(write_to(&dangling, b"x").expect("write"), Written::Created);
        assert_eq!(fs::read(dir.path().join("made.html")).expect("read"), b"x");
    }

    #[test]
    fn a_hard_linked_file_is_rewritten_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a");
        fs::write(&a, "old").expect("write");
        fs::hard_link(&a, dir.path().join("b")).expect("link");
        assert_eq!(write_to(&a, b"new").expect("write"), Written::Rewritten);
        assert_eq!(fs::read(dir.path().join("b")).expect("read"), b"new");
    }

    #[test]
    fn create_new_never_replaces_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t");
        create_new(&p, b"first\n", 0o600).expect("create");
        assert_eq!(fs::metadata(&p).expect("meta").mode() & 0o777, 0o600);
        let e = create_new(&p, b"second\n", 0o600).expect_err("exists");
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&p).expect("read"), b"first\n");
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn a_loop_of_links_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a");
        symlink("b", &a).expect("a");
        symlink("a", dir.path().join("b")).expect("b");
        assert!(write_to(&a, b"x").is_err());
    }
}
