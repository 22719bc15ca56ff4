//! One recorder per database: an exclusive advisory lock on `<db>.lock`, holding the pid and
//! start time of the recorder that owns it.
//!
//! The kernel drops the lock when the process dies, however it dies, so a crashed recorder
//! never leaves a stale lock behind. A separate file (not the database itself) keeps this lock
//! clear of SQLite's own POSIX locks.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Error;

/// Held for as long as the recorder runs; released on drop or process exit.
#[derive(Debug)]
pub struct RecorderLock {
    _file: File,
    path: PathBuf,
}

/// Who holds the lock, as written in the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: String,
    pub since: String,
}

/// The lock file of a database.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

impl RecorderLock {
    /// Take the lock, or say who has it. `since` is written for the next one to read.
    pub fn acquire(db: &Path, since: &str) -> Result<Self, Error> {
        let path = lock_path(db);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        // A status probe holds a shared lock for a moment: try a few times before refusing.
        let mut tries = 0;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if tries < 5 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(40));
                }
                Err(TryLockError::WouldBlock) => {
                    let h = read_holder(&mut file);
                    return Err(Error::Locked {
                        path: db.to_path_buf(),
                        pid: h.pid,
                        since: if h.since.is_empty() {
                            String::new()
                        } else {
                            format!(", started {}", h.since)
                        },
                    });
                }
                Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
        }
        let content = format!("{} {}\n", std::process::id(), since);
        file.set_len(0).map_err(|e| Error::io(&path, e))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(&path, e))?;
        file.write_all(content.as_bytes())
            .map_err(|e| Error::io(&path, e))?;
        file.flush().map_err(|e| Error::io(&path, e))?;
        Ok(RecorderLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Who is recording into `db` right now, if anyone. Does not disturb a running recorder.
pub fn holder(db: &Path) -> Result<Option<Holder>, Error> {
    let path = lock_path(db);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            Ok(None)
        }
        Err(TryLockError::WouldBlock) => Ok(Some(read_holder(&mut file))),
        Err(TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

fn read_holder(file: &mut File) -> Holder {
    let mut s = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_string(&mut s);
    let mut parts = s.trim().splitn(2, ' ');
    Holder {
        pid: parts
            .next()
            .filter(|p| !p.is_empty())
            .unwrap_or("unknown")
            .to_string(),
        since: parts.next().unwrap_or("").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_recorder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("n.db");
        let first = RecorderLock::acquire(&db, "2026-11-24T10:00:00Z").expect("first");
        let err = RecorderLock::acquire(&db, "later").expect_err("second");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains("2026-11-24T10:00:00Z"), "{msg}");
        let h = holder(&db).expect("probe").expect("held");
        assert_eq!(h.pid, std::process::id().to_string());
        drop(first);
        assert_eq!(holder(&db).expect("probe"), None);
        RecorderLock::acquire(&db, "again").expect("free again");
    }
}
