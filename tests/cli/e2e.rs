//! Issue 6 end to end, in real headless Chromium: the browser extension reports to
//! `netmon serve`, `netmon record` (sockdiag, loopback counted) measures Chromium's
//! connections, and `netmon domains --json` must show each page's bytes under its own host,
//! attributed by connection. The browser part is `extension/test/e2e/netmon-domains.mjs`
//! (node's test runner driving Debian's chromium through playwright-core); this runs it
//! against the binary under test. Nothing here is skipped: without node, chromium,
//! playwright-core or sqlite3 (bash tests/install-deps.sh installs them) it fails and says
//! what is missing.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::bin;

#[test]
fn issue_6_browsing_in_headless_chromium_shows_each_host_in_domains() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (what, ok) in [
        ("node", which("node")),
        ("sqlite3", which("sqlite3")),
        ("/usr/bin/chromium", Path::new("/usr/bin/chromium").exists()),
        (
            "extension/node_modules/playwright-core",
            root.join("extension/node_modules/playwright-core").exists(),
        ),
    ] {
        assert!(
            ok,
            "{what} is missing: this test needs it; run `bash tests/install-deps.sh`"
        );
    }
    // Its own process group, so a timeout takes chromium, serve and record down with it.
    let mut child = Command::new("node")
        .process_group(0)
        .args(["--test", "extension/test/e2e/netmon-domains.mjs"])
        .current_dir(root)
        .env("NETMON_BIN", bin())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    let out_pipe = child.stdout.take().expect("stdout");
    let err_pipe = child.stderr.take().expect("stderr");
    let read = |mut p: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = p.read_to_string(&mut s);
            s
        })
    };
    let (out, err) = (read(Box::new(out_pipe)), read(Box::new(err_pipe)));
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) on the process group this test started.
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("the browser test failed ({s}):\n{out}\n{err}"),
        None => panic!("the browser test did not finish within 300 s:\n{out}\n{err}"),
    }
    assert!(out.contains("# pass 4"), "{out}");
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(tool).is_file()))
}
