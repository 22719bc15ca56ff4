//! Helpers for driving the real `netmon` binary: a private temp directory per test, the
//! user's environment cleared (HOME, XDG_*, RUST_LOG), NO_COLOR set, and a fake `nettop`
//! first on PATH that replays scripted steps (see tests/fake-nettop/nettop).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;

/// The built binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_netmon"))
}

/// One test's world: a temp dir holding the database and the fake nettop's steps.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    pub steps: PathBuf,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("netmon.db");
        let steps = dir.path().join("steps");
        std::fs::create_dir(&steps).expect("steps dir");
        Env { dir, db, steps }
    }

    /// `netmon` with this test's environment, ready for args.
    pub fn netmon(&self) -> Command {
        let mut c = Command::new(bin());
        self.apply(c.env_clear());
        c
    }

    /// The same, as a std Command (for spawning and signalling a recorder).
    pub fn std_netmon(&self) -> StdCommand {
        let mut c = StdCommand::new(bin());
        c.env_clear();
        for (k, v) in self.vars() {
            c.env(k, v);
        }
        c
    }

    fn apply(&self, c: &mut Command) {
        for (k, v) in self.vars() {
            c.env(k, v);
        }
    }

    fn vars(&self) -> Vec<(String, String)> {
        let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-nettop");
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", fake.display());
        vec![
            ("PATH".into(), path),
            ("NETMON_DB".into(), self.db.display().to_string()),
            ("NO_COLOR".into(), "1".into()),
            ("TZ".into(), "UTC".into()),
            ("FAKE_NETTOP_DIR".into(), self.steps.display().to_string()),
        ]
    }

    /// `netmon` with a home directory in the temp dir and fake `systemctl` and `launchctl`
    /// (tests/fake-service) first on PATH, logging their calls to [`Env::service_log`].
    pub fn netmon_with_fake_services(&self) -> Command {
        let mut c = self.netmon();
        let fakes = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-service");
        let path = self
            .vars()
            .into_iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v)
            .unwrap_or_default();
        c.env("PATH", format!("{}:{path}", fakes.display()))
            .env("HOME", self.home())
            .env("FAKE_SERVICE_LOG", self.service_log());
        c
    }

    /// The home directory `netmon_with_fake_services` gives netmon.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Where the fake service tools log their calls.
    pub fn service_log(&self) -> PathBuf {
        self.dir.path().join("service-calls")
    }

    /// The fake service tools' calls, one per line.
    pub fn service_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.service_log())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Write fake nettop step `n` (1-based) with the given extension (csv, hang, fail).
    pub fn step(&self, n: usize, ext: &str, content: &str) {
        std::fs::write(self.steps.join(format!("step-{n:04}.{ext}")), content).expect("write step");
    }

    /// How many times the fake nettop has been called.
    pub fn calls(&self) -> usize {
        std::fs::read_to_string(self.steps.join("calls"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// Open the database for assertions.
    pub fn sql(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.db).expect("open db")
    }

    /// Run a query returning one integer.
    pub fn one(&self, sql: &str) -> i64 {
        self.sql()
            .query_row(sql, [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Start `netmon record` in the background with these extra args.
    pub fn spawn_record(&self, args: &[&str]) -> Child {
        self.std_netmon()
            .arg("record")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn record")
    }
}

/// Poll `cond` every 20 ms until it holds or `timeout` passes; false on timeout.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Send a signal to a child.
pub fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) with a pid we own.
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "kill {sig}");
}

/// Wait for a child to exit within `timeout`, returning its exit code and stderr.
pub fn finish(mut child: Child, timeout: Duration) -> (Option<i32>, String) {
    use std::io::Read;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return (status.code(), err);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("netmon did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
