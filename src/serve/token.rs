//! The access tokens: 32 random bytes (hex), created on first run in a 0600 file next to the
//! database, and compared in constant time. The extension's token (`<db>.token`) is required
//! on the ingest endpoints; `/metrics` takes its own, read-only one (`<db>.metrics-token`), so
//! a scraper's configuration never holds a credential that can write.
//!
//! Tokens are never logged. `netmon serve --print-token` (`--print-metrics-token`) shows one
//! for pasting; deleting its file makes the next `netmon serve` create a new one.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
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
    /// A token holding `secret` (tests and the randomised run; the server reads its file).
    pub fn from_secret(secret: &str) -> Self {
        Token(secret.to_string())
    }

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
///
/// The file appears whole or not at all (`files::create_new`: written beside it, flushed,
/// then linked into place), so a full disk leaves no token file rather than an empty one. An
/// empty or cut-short file, which an earlier netmon could leave behind that way, is replaced
/// by a new token, with a warning.
pub fn load_or_create(db: &Path) -> anyhow::Result<Token> {
    load_or_create_file(
        &token_path(db),
        "paste the new one into the extension (`netmon serve --print-token` shows it)",
    )
}

/// Read the read-only token of `/metrics`, creating it on first use.
pub fn load_or_create_metrics(db: &Path) -> anyhow::Result<Token> {
    load_or_create_file(
        &metrics_token_path(db),
        "put the new one where your scraper reads it (its credentials_file; `netmon serve \
         --print-metrics-token` shows it)",
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
    let token = generate()?;
    match crate::files::create_new(&path, format!("{}\n", token.0).as_bytes(), 0o600) {
        Ok(()) => return Ok(token),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(e).with_context(|| format!("creating the token file {}", path.display()));
        }
    }
    let meta = fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
    let text = fs::read_to_string(&path)
        .with_context(|| format!("reading the token file {}", path.display()))?;
    let found = text.trim();
    if is_half_made(found) && fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file()) {
        crate::files::replace_file(&path, format!("{}\n", token.0).as_bytes(), 0o600)
            .with_context(|| format!("replacing the unfinished token file {}", path.display()))?;
        warn!(
            path = %path.display(),
            "the token file was empty or cut short (an earlier netmon could not finish writing \
             it, e.g. on a full disk): made a new token; {then}"
        );
        return Ok(token);
    }
    if meta.permissions().mode() & 0o077 != 0 {
        warn!(
            path = %path.display(),
            "the token file was readable by others; it is now private to you (0600)"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} private", path.display()))?;
    }
    if found.len() < 32 || !found.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(crate::exit::user(format!(
            "the token file {} is damaged (expected one line of at least 32 characters): \
             delete it and run `netmon serve` again to create a new token, then {then}",
            path.display()
        )));
    }
    Ok(Token(found.to_string()))
}

/// What a token file holds when writing it stopped part way: nothing, or fewer hex digits
/// than any token netmon accepts. No token anyone could have been given.
fn is_half_made(found: &str) -> bool {
    found.len() < 32 && found.bytes().all(|b| b.is_ascii_hexdigit())
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
        fs::write(token_path(&db), "short, not hex\n").expect("write");
        let e = load_or_create(&db).expect_err("damaged");
        assert!(e.to_string().contains("delete it"), "{e}");
    }

    #[test]
    fn an_empty_or_cut_short_token_file_is_replaced_by_a_new_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("n.db");
        for half in ["", "\n", "0123abcd"] {
            fs::write(token_path(&db), half).expect("write");
            let t = load_or_create(&db).expect("recovered");
            assert_eq!(t.reveal().len(), 64);
            let again = load_or_create(&db).expect("reuse");
            assert_eq!(again.reveal(), t.reveal(), "the new token was kept");
        }
        assert_eq!(
            fs::read_dir(dir.path()).expect("ls").count(),
            1,
            "no temp file"
        );
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
