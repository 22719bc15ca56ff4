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

/// Places an executable file at `dest` with `install -m 0755`, never by writing it from this
/// process. A test process runs many tests on threads; a child forked by one of them between
/// our open-for-write and our close inherits the write descriptor, and exec'ing the file then
/// fails with ETXTBSY ("Text file busy", seen in CI). `install` writes in its own process, which
/// has exited before we go on, so no descriptor for writing outlives it.
pub fn place_executable(src: &Path, dest: &Path) {
    let out = StdCommand::new("install")
        .arg("-m")
        .arg("0755")
        .arg(src)
        .arg(dest)
        .output()
        .expect("run install(1)");
    assert!(
        out.status.success(),
        "install {} {}: {}",
        src.display(),
        dest.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A shell script at `dest`, made executable by [`place_executable`]; the text is written to a
/// sibling `.txt` file first (never executed).
pub fn place_script(dest: &Path, text: &str) {
    let draft = dest.with_extension("txt");
    std::fs::write(&draft, text).expect("write script draft");
    place_executable(&draft, dest);
}

/// `netmon record` with the fake nettop, every 100 ms, for `ticks` ticks.
pub fn record_nettop(ticks: &str) -> [&str; 7] {
    [
        "record",
        "--source",
        "nettop",
        "--interval",
        "100ms",
        "--ticks",
        ticks,
    ]
}

/// Run `netmon ARGS` (which must succeed) and parse its stdout as a JSON array.
pub fn json_array(cmd: &mut Command, args: &[&str]) -> Vec<serde_json::Value> {
    let out = cmd.args(args).output().expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .expect("json")
        .as_array()
        .expect("array")
        .clone()
}

/// `/proc/net/dev` as the kernel prints it, for (interface, bytes in, bytes out).
pub fn proc_net_dev(rows: &[(&str, u64, u64)]) -> String {
    let mut s = String::from(
        "Inter-|   Receive                                                |  Transmit\n \
         face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n",
    );
    for (name, bin, bout) in rows {
        s.push_str(&format!(
            "{name:>6}: {bin} 0 0 0 0 0 0 0 {bout} 0 0 0 0 0 0 0\n"
        ));
    }
    s
}

/// A field that must be an unsigned integer.
pub fn u(v: &serde_json::Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"))
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
        // The interface reader's root (NETMON_NET_ROOT): loopback only, still, unless a test's
        // steps bring interfaces (`step-N.net/`, see tests/fake-nettop/nettop).
        let net = steps.join("net/proc/net");
        std::fs::create_dir_all(&net).expect("net dir");
        std::fs::write(net.join("dev"), proc_net_dev(&[("lo", 0, 0)])).expect("net dev");
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

    /// Any program, with this test's environment (PATH, NETMON_DB, TZ…) and `NETMON` naming
    /// the binary, for scripts.
    pub fn command(&self, program: &str) -> StdCommand {
        let mut c = StdCommand::new(program);
        c.env_clear();
        for (k, v) in self.vars() {
            c.env(k, v);
        }
        c.env("NETMON", bin());
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
            (
                "NETMON_NET_ROOT".into(),
                self.steps.join("net").display().to_string(),
            ),
            // Tests read what a running recorder wrote: every tick, unless a test (of the
            // batched writes themselves) passes --write-every.
            ("NETMON_WRITE_EVERY".into(), "0".into()),
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

/// A running `netmon serve` on an ephemeral loopback port, its stderr collected as it comes
/// (so a chatty server never blocks on a full pipe).
pub struct Serve {
    pub child: Child,
    pub addr: std::net::SocketAddr,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Serve {
    /// Start `netmon serve --listen 127.0.0.1:0` with these extra args and wait until it
    /// listens.
    pub fn start(env: &Env, args: &[&str]) -> Serve {
        use std::io::BufRead;
        let listen: &[&str] = if args.contains(&"--listen") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let mut child = env
            .std_netmon()
            .arg("serve")
            .args(listen)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let err = child.stderr.take().expect("stderr");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = std::sync::Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().expect("stderr lock");
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut addr = None;
        let ok = wait_until(Duration::from_secs(20), || {
            let s = stderr.lock().expect("stderr lock");
            addr = s
                .lines()
                .find_map(|l| l.split("listening on http://").nth(1))
                .and_then(|rest| rest.split(',').next())
                .and_then(|a| a.parse().ok());
            addr.is_some() || child.try_wait().is_ok_and(|s| s.is_some())
        });
        let text = stderr.lock().expect("stderr lock").clone();
        assert!(
            ok && addr.is_some(),
            "netmon serve did not start listening: {text}"
        );
        Serve {
            child,
            addr: addr.expect("address"),
            stderr,
        }
    }

    /// Everything the server wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// SIGTERM, then wait for a clean exit; returns its stderr.
    pub fn stop(mut self) -> String {
        signal(&self.child, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("netmon serve did not stop: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader thread finishes at EOF, right after the exit.
        wait_until(Duration::from_secs(2), || self.stderr().contains("stopped"));
        assert_eq!(status.code(), Some(0), "{}", self.stderr());
        self.stderr()
    }
}

impl Drop for Serve {
    /// A test that fails before `stop` must not leave its server running.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP response as a test sees it.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl HttpReply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
    /// A response header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Send one raw request (which should say `Connection: close`) and read the reply to EOF.
pub fn http_raw(addr: std::net::SocketAddr, raw: &[u8]) -> HttpReply {
    try_http_raw(addr, raw).unwrap_or_else(|e| panic!("{addr}: {e}"))
}

/// The same, with the I/O error instead of a panic.
pub fn try_http_raw(addr: std::net::SocketAddr, raw: &[u8]) -> std::io::Result<HttpReply> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(raw)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(parse_reply(&out))
}

/// Parse a whole HTTP/1.1 response (Content-Length or chunked body).
pub fn parse_reply(out: &[u8]) -> HttpReply {
    let text = String::from_utf8_lossy(out).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status: {head}"));
    HttpReply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// A request with the usual headers: Host 127.0.0.1, the token (when given), a JSON body.
pub fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> HttpReply {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    http_raw(
        addr,
        format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            addr.port(),
            body.len()
        )
        .as_bytes(),
    )
}

/// The token `netmon serve --print-token` prints for this environment's database.
pub fn serve_token(env: &Env) -> String {
    let out = env
        .netmon()
        .args(["serve", "--print-token"])
        .output()
        .expect("print-token");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string()
}
