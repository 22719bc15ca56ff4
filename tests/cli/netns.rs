//! Two network namespaces joined by a veth pair, for tests that move real traffic.
//!
//! `a` (10.77.0.1, fd00:77::1) is where netmon and the workloads run; `b` (10.77.0.2,
//! fd00:77::2) runs the server. `a`'s default route leads to `b`, which makes `b` the
//! outside as netmon sees it (a namespace linked to `a` otherwise would be this machine, like
//! a container); `b` has no route anywhere else, so nothing leaves them.
//! Every pair has its own names, so tests run in parallel; dropping it kills whatever still
//! runs inside and deletes both namespaces. Workloads are `tests/netns/traffic.py`.
//!
//! Needs root (namespaces), `ip` (iproute2) and python3. Without them a test fails, saying
//! why: it never passes without having run.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const A_V4: &str = "10.77.0.1";
pub const B_V4: &str = "10.77.0.2";
pub const A_V6: &str = "fd00:77::1";
pub const B_V6: &str = "fd00:77::2";

/// Fail loudly unless this test can create namespaces.
pub fn require_root(what: &str) {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "{what} needs root (network namespaces{}); run the suite as root, as CI does \
         (`sudo -E cargo test`). NOT RUN.",
        if what.contains("ebpf") { ", eBPF" } else { "" }
    );
    for tool in ["ip", "python3"] {
        let found = Command::new(tool)
            .arg(if tool == "ip" { "-V" } else { "--version" })
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "{what} needs `{tool}` (tests/install-deps.sh installs it). NOT RUN."
        );
    }
}

pub fn traffic_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/netns/traffic.py")
}

pub struct Pair {
    pub a: String,
    pub b: String,
    children: Vec<Child>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pair {
    pub fn new() -> Pair {
        let tag = format!(
            "{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let pair = Pair {
            a: format!("nmt-a-{tag}"),
            b: format!("nmt-b-{tag}"),
            children: Vec::new(),
        };
        // Interface names live inside the namespaces, so the same ones serve every pair.
        ip(&["netns", "add", &pair.a]);
        ip(&["netns", "add", &pair.b]);
        ip(&[
            "link", "add", "veth-a", "netns", &pair.a, "type", "veth", "peer", "name", "veth-b",
            "netns", &pair.b,
        ]);
        for (ns, dev, v4, v6) in [
            (&pair.a, "veth-a", A_V4, A_V6),
            (&pair.b, "veth-b", B_V4, B_V6),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", dev]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                dev,
                "nodad",
            ]);
            // No router solicitations (70 bytes each, up to 8 s after the link comes up):
            // tests compare the link's counters with what was recorded, to the byte.
            let sent = Pair::exec(ns, "sysctl")
                .args([
                    "-qw",
                    &format!("net.ipv6.conf.{dev}.router_solicitations=0"),
                ])
                .status()
                .expect("run sysctl");
            assert!(sent.success(), "sysctl in {ns} failed");
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        ip(&["-n", &pair.a, "route", "add", "default", "via", B_V4]);
        ip(&["-n", &pair.a, "-6", "route", "add", "default", "via", B_V6]);
        pair
    }

    /// A command run inside namespace `ns`.
    pub fn exec(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }

    /// Start the traffic server in `b` on TCP ports `port..port+9` and UDP `port`; returns
    /// once it listens.
    pub fn start_server(&mut self, port: u16) {
        let mut child = Pair::exec(&self.b, "python3")
            .arg(traffic_script())
            .args(["server", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn server");
        let stdout = child.stdout.take().expect("server stdout");
        self.children.push(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the traffic server did not start within 10 s");
        assert_eq!(line.trim(), "ready", "traffic server said {line:?}");
    }

    /// Start a workload in `a` (see traffic.py for the verbs); its report is read by `wait`.
    pub fn workload(&self, args: &[&str]) -> Child {
        Pair::exec(&self.a, "python3")
            .arg(traffic_script())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn workload")
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.a, &self.b] {
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        // SAFETY: kill(2) on a process inside a namespace this test made.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// What one workload process reported: payload bytes sent and received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    pub sent: u64,
    pub recv: u64,
}

/// Wait (bounded) for workloads to finish; their reports summed per process name.
pub fn wait_all(children: Vec<Child>, timeout: Duration) -> BTreeMap<String, Moved> {
    let deadline = Instant::now() + timeout;
    let mut truth: BTreeMap<String, Moved> = BTreeMap::new();
    for mut child in children {
        loop {
            if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let out = child.wait_with_output().expect("wait");
                panic!(
                    "a workload did not finish within {timeout:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out: Output = child.wait_with_output().expect("workload output");
        assert!(
            out.status.success(),
            "workload failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("workload report {line:?}: {e}"));
            let name = v["name"].as_str().expect("name").to_string();
            let m = truth.entry(name).or_default();
            m.sent += v["sent"].as_u64().expect("sent");
            m.recv += v["recv"].as_u64().expect("recv");
        }
    }
    truth
}
