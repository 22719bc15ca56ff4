//! The access tokens: 32 random bytes (hex), created on first run in a 0600 file next to the
//! database, and compared in constant time. The extension's token (`<db>.token`) is required
//! on the ingest endpoints; `/metrics` takes its own, read-only one (`<db>.metrics-token`), so
//! a scraper's configuration never holds a credential that can write.
//!
//! Tokens are never logged. `netmon serve --print-token` (`--print-metrics-token`) shows one
//! for pasting; deleting its file makes the next `netmon serve` create a new one.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use tracing::warn;

/// The token of one database.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    /// The secret itself, for `--print-token` only.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// Whether `given` is the token, in time that does not depend on where they differ.
    pub fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// Where the token of `db` lives.
pub fn token_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".token");
    PathBuf::from(p)
}

/// Where the read-only token of `/metrics` lives: `<db>.metrics-token`.
pub fn metrics_token_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".metrics-token");
    PathBuf::from(p)
}

/// Read the token of `db`, creating it (and the database's directory) on first use.
pub fn load_or_create(db: &Path) -> anyhow::Result<Token> {
    load_or_create_file(&token_path(db), "paste the new one into the extension")
}

/// Read the read-only token of `/metrics`, creating it on first use.
pub fn load_or_create_metrics(db: &Path) -> anyhow::Result<Token> {
    load_or_create_file(
        &metrics_token_path(db),
        "put the new one where your scraper reads it (its credentials_file)",
    )
}

/// Read a token file, creating it (and its directory) on first use; `then` says what to do
/// with a new token after a damaged one was deleted.
fn load_or_create_file(path: &Path, then: &str) -> anyhow::Result<Token> {
    let path = path.to_path_buf();
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        fs::DirBuilder::new()
            .recursive(true)
            .mode_0700()
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut f) => {
            let token = generate()?;
            f.write_all(format!("{}\n", token.0).as_bytes())
                .and_then(|()| f.sync_all())
                .with_context(|| format!("writing the token file {}", path.display()))?;
            return Ok(token);
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(e).with_context(|| format!("creating the token file {}", path.display()));
        }
    }
    let meta = fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        warn!(
            path = %path.display(),
            "the token file was readable by others; it is now private to you (0600)"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} private", path.display()))?;
    }
    let text = fs::read_to_string(&path)
        .with_context(|| format!("reading the token file {}", path.display()))?;
    let token = text.trim();
    if token.len() < 32 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(crate::exit::user(format!(
            "the token file {} is damaged (expected one line of at least 32 characters): \
             delete it and run `netmon serve` again to create a new token, then {then}",
            path.display()
        )));
    }
    Ok(Token(token.to_string()))
}

fn generate() -> anyhow::Result<Token> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness from the OS for the token: {e}"))?;
    Ok(Token(bytes.iter().map(|b| format!("{b:02x}")).collect()))
}

trait DirMode {
    fn mode_0700(&mut self) -> &mut Self;
}

impl DirMode for fs::DirBuilder {
    fn mode_0700(&mut self) -> &mut Self {
        use std::os::unix::fs::DirBuilderExt;
        self.mode(0o700)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_created_once_private_and_then_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("sub/netmon.db");
        let a = load_or_create(&db).expect("create");
        assert_eq!(a.reveal().len(), 64);
        assert!(a.reveal().bytes().all(|b| b.is_ascii_hexdigit()));
        let path = token_path(&db);
        assert_eq!(path, dir.path().join("sub/netmon.db.token"));
        let mode = fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = load_or_create(&db).expect("reuse");
        assert_eq!(a.reveal(), b.reveal());
        let other = load_or_create(&dir.path().join("other.db")).expect("other");
        assert_ne!(
            a.reveal(),
            other.reveal(),
            "each database has its own token"
        );
    }

    #[test]
    fn a_token_readable_by_others_is_made_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("n.db");
        load_or_create(&db).expect("create");
        fs::set_permissions(token_path(&db), fs::Permissions::from_mode(0o644)).expect("chmod");
        load_or_create(&db).expect("reuse");
        let mode = fs::metadata(token_path(&db))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_damaged_token_file_says_how_to_recover() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("n.db");
        fs::write(token_path(&db), "short\n").expect("write");
        let e = load_or_create(&db).expect_err("damaged");
        assert!(e.to_string().contains("delete it"), "{e}");
    }

    #[test]
    fn matching_is_exact() {
        let t = Token("a".repeat(64));
        assert!(t.matches(&"a".repeat(64)));
        assert!(!t.matches(&"a".repeat(63)));
        assert!(!t.matches(&format!("{}b", "a".repeat(63))));
        assert!(!t.matches(""));
        assert_eq!(format!("{t:?}"), "Token(…)", "never printed by accident");
    }
}
