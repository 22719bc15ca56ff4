//! The browser extension (`extension/`), tested from `cargo test` so CI runs it: its logic
//! under node's own test runner, Mozilla's linter for the Firefox side, and the whole
//! extension in real headless Chromium against a stand-in `netmon serve` (see
//! `extension/test/`), and again in real headless Firefox. Each needs node; the browser tests
//! need Debian's chromium or firefox-esr, and the npm packages of
//! `extension/package-lock.json`; `bash tests/install-deps.sh` installs all of them. When
//! one is missing the test fails and says so: it never passes without having run.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ext_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("extension")
}

const INSTALL: &str = "run `bash tests/install-deps.sh` (it installs nodejs, chromium, firefox-esr and the extension's npm packages)";

fn require_node() {
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("`node --version` failed ({}): {INSTALL}", out.status),
        Err(e) => panic!("node is not installed ({e}): {INSTALL}"),
    }
}

fn require_npm_package(name: &str) {
    let dir = ext_dir().join("node_modules").join(name);
    assert!(
        dir.join("package.json").is_file(),
        "{} is missing: {INSTALL}",
        dir.display()
    );
}

/// Runs `node --test <args>` in `extension/`, killing it after `limit`, and fails with its
/// whole output unless every test passed. Returns the output.
fn node_test(args: &[&str], limit: Duration) -> String {
    require_node();
    // Screenshots of the options page go where the report's do, not into a new /tmp folder
    // per run.
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("extension-screenshots");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let mut child = Command::new("node")
        .arg("--test")
        .args(args)
        .env("EXTENSION_ARTIFACTS", &artifacts)
        .current_dir(ext_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    // Read both pipes on threads so a chatty child cannot block on a full pipe.
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = out_reader.join().expect("stdout reader");
    let stderr = err_reader.join().expect("stderr reader");
    let shown = format!("--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    match status {
        None => panic!("node --test {args:?} did not finish within {limit:?}\n{shown}"),
        Some(s) if !s.success() => panic!("node --test {args:?} failed ({s})\n{shown}"),
        Some(_) => {}
    }
    // node's runner ends with "# pass N" and "# fail 0"; no test run is a failure too.
    let passed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("# pass "))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap_or(0);
    assert!(passed > 0, "node --test {args:?} ran no test\n{shown}");
    assert!(stdout.lines().any(|l| l == "# fail 0"), "{shown}");
    stdout
}

#[test]
fn extension_logic_passes_its_node_unit_tests() {
    let out = node_test(&["test/unit/"], Duration::from_secs(180));
    // Every pure module has its tests; a file that stopped being picked up would go unnoticed.
    for name in [
        "heartbeat",
        "queue",
        "host",
        "privacy",
        "observations",
        "browser-name",
        "tracker",
    ] {
        assert!(
            ext_dir()
                .join(format!("test/unit/{name}.test.mjs"))
                .is_file(),
            "test/unit/{name}.test.mjs is missing"
        );
    }
    assert!(out.contains("a long stay on one tab is reported throughout"));
}

#[test]
fn extension_manifest_passes_mozilla_web_ext_lint() {
    require_npm_package("web-ext");
    node_test(&["test/lint/"], Duration::from_secs(300));
}

#[test]
fn extension_reports_active_hosts_and_server_addresses_from_headless_chromium() {
    let chromium = std::env::var_os("CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).is_file(),
        "{} is missing: this test runs the extension in Debian's chromium; {INSTALL}",
        Path::new(&chromium).display()
    );
    require_npm_package("playwright-core");
    let out = node_test(&["test/e2e/chromium.test.mjs"], Duration::from_secs(420));
    assert!(
        out.contains("ok 1 - on install the options page opens"),
        "{out}"
    );
}

#[test]
fn extension_reports_active_hosts_and_server_addresses_from_headless_firefox() {
    let firefox = std::env::var_os("FIREFOX").unwrap_or_else(|| "/usr/bin/firefox-esr".into());
    assert!(
        Path::new(&firefox).is_file(),
        "{} is missing: this test runs the extension in Debian's firefox-esr; {INSTALL}",
        Path::new(&firefox).display()
    );
    require_npm_package("ws");
    let out = node_test(&["test/e2e/firefox.test.mjs"], Duration::from_secs(300));
    assert!(
        out.contains("ok 1 - on install the options page opens"),
        "{out}"
    );
}
