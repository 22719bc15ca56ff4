//! A headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
//! JSON messages ending in NUL, commands on fd 3, answers and events on fd 4), so the report
//! is tested in a real browser with nothing but Debian's `chromium` package: no driver, no
//! node, no browser download. Every wait has a deadline; the browser is killed on drop.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Where Debian installs Chromium (tests/install-deps.sh installs it).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long any one step may take.
const STEP: Duration = Duration::from_secs(30);

pub struct Browser {
    child: Child,
    commands: File,
    messages: Receiver<Value>,
    /// Events received while waiting for answers, oldest first.
    pub events: VecDeque<Value>,
    next_id: u64,
    session: Option<String>,
    _profile: tempfile::TempDir,
    pub log: PathBuf,
}

fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe fills two fds; FD_CLOEXEC keeps them out of other children (pipe2 would
    // do both at once, but macOS has none and the tests must build there too).
    let rc = unsafe { libc::pipe(fds.as_mut_ptr()) };
    assert_eq!(rc, 0, "pipe: {}", std::io::Error::last_os_error());
    for fd in fds {
        // SAFETY: fcntl on an fd we just created.
        let rc = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        assert_eq!(rc, 0, "fcntl: {}", std::io::Error::last_os_error());
    }
    (fds[0], fds[1])
}

impl Browser {
    /// Start headless Chromium. Fails loudly when it is not installed: the browser test
    /// never passes without a browser.
    pub fn launch(dir: &Path) -> Browser {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: the report's browser test needs Debian's chromium package \
             (bash tests/install-deps.sh installs it)"
        );
        let profile = tempfile::tempdir().expect("profile dir");
        let (cmd_read, cmd_write) = pipe();
        let (msg_read, msg_write) = pipe();
        let log = dir.join("chromium.log");
        let mut cmd = Command::new(CHROMIUM);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log).expect("chromium log"));
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec. The pipe
        // ends are first moved above 10 so that placing them on 3 and 4 cannot overwrite
        // one with the other.
        unsafe {
            cmd.pre_exec(move || {
                let r = libc::fcntl(cmd_read, libc::F_DUPFD_CLOEXEC, 10);
                let w = libc::fcntl(msg_write, libc::F_DUPFD_CLOEXEC, 10);
                if r < 0 || w < 0 || libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start chromium");
        // SAFETY: these fds are ours; the child has its own copies.
        unsafe {
            libc::close(cmd_read);
            libc::close(msg_write);
        }
        // SAFETY: fresh fds from pipe, owned by the File from here on.
        let commands = unsafe { File::from_raw_fd(cmd_write) };
        let replies = unsafe { File::from_raw_fd(msg_read) };
        let (tx, messages) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(replies);
            loop {
                let mut buf = Vec::new();
                match r.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        buf.pop();
                        if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                            && tx.send(v).is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        let mut b = Browser {
            child,
            commands,
            messages,
            events: VecDeque::new(),
            next_id: 0,
            session: None,
            _profile: profile,
            log,
        };
        // Attach to the page Chromium opened.
        let targets = b.call("Target.getTargets", json!({}));
        let page = targets["targetInfos"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["targetId"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| {
                let t = b.call("Target.createTarget", json!({"url": "about:blank"}));
                t["targetId"].as_str().expect("targetId").to_string()
            });
        let s = b.call(
            "Target.attachToTarget",
            json!({"targetId": page, "flatten": true}),
        );
        b.session = Some(s["sessionId"].as_str().expect("sessionId").to_string());
        for domain in ["Page", "Runtime", "Log", "Network"] {
            b.call(&format!("{domain}.enable"), json!({}));
        }
        b
    }

    /// Send a command (to the page once attached) and wait for its answer.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).expect("json");
        bytes.push(0);
        self.commands
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("{method}: chromium went away ({e}); see {:?}", self.log));
        let deadline = Instant::now() + STEP;
        loop {
            let m = self.next_message(deadline, method);
            if m["id"] == json!(id) {
                if let Some(err) = m.get("error") {
                    panic!("{method} failed: {err}");
                }
                return m["result"].clone();
            }
            self.events.push_back(m);
        }
    }

    fn next_message(&mut self, deadline: Instant, what: &str) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.messages.recv_timeout(left) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => panic!("{what}: no answer from chromium in {STEP:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!(
                "{what}: chromium closed the pipe; its log: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            ),
        }
    }

    /// Wait for an event named `method`, keeping every event seen on the way.
    pub fn wait_event(&mut self, method: &str) -> Value {
        if let Some(pos) = self.events.iter().position(|e| e["method"] == method) {
            return self.events.remove(pos).unwrap_or_default();
        }
        let deadline = Instant::now() + STEP;
        loop {
            let m = self.next_message(deadline, method);
            if m["method"] == method {
                return m;
            }
            self.events.push_back(m);
        }
    }

    /// Load `url` and wait for its load event.
    pub fn navigate(&mut self, url: &str) {
        self.events.clear();
        self.call("Page.navigate", json!({"url": url}));
        self.wait_event("Page.loadEventFired");
    }

    /// Evaluate a JavaScript expression in the page and return its value.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expr}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Drain the events that arrived so far without waiting on anything else.
    pub fn settle(&mut self) {
        // A round trip: every event sent before the answer has arrived with it.
        self.call("Runtime.evaluate", json!({"expression": "1"}));
    }

    /// Viewport size and colour scheme / media.
    pub fn emulate(&mut self, width: u32, height: u32, dark: bool, media: &str) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
        self.emulate_media(dark, media);
    }

    /// Colour scheme and media type (`screen`, `print`).
    pub fn emulate_media(&mut self, dark: bool, media: &str) {
        self.call(
            "Emulation.setEmulatedMedia",
            json!({"media": media, "features": [
                {"name": "prefers-color-scheme", "value": if dark { "dark" } else { "light" }}
            ]}),
        );
    }

    /// A PNG of the whole page at the current width.
    pub fn screenshot(&mut self, path: &Path) {
        let m = self.call("Page.getLayoutMetrics", json!({}));
        let w = m["cssContentSize"]["width"].as_f64().unwrap_or(1280.0);
        let h = m["cssContentSize"]["height"].as_f64().unwrap_or(800.0);
        let r = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}}),
        );
        write_base64(path, r["data"].as_str().expect("png data"));
    }

    /// A PNG of what the window shows now.
    pub fn screenshot_viewport(&mut self, path: &Path) {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        write_base64(path, r["data"].as_str().expect("png data"));
    }

    /// The page printed to PDF (A4), as the print dialog would.
    pub fn pdf(&mut self, path: &Path) {
        let r = self.call(
            "Page.printToPDF",
            json!({"paperWidth": 8.27, "paperHeight": 11.69, "printBackground": true}),
        );
        write_base64(path, r["data"].as_str().expect("pdf data"));
    }
}

fn write_base64(path: &Path, data: &str) {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64");
    assert!(!bytes.is_empty(), "empty capture for {path:?}");
    std::fs::write(path, bytes).expect("write capture");
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
