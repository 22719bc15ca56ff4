//! Issue 17: containers, splice and raw sends counted; local traffic never counted as network
//! use (<https://…/issues/17>: `issues show 17`).
//!
//! The topology, made by this test only (nothing is sent anywhere else):
//!
//! ```text
//!   outside (10.217.0.2) ──veth── host (10.217.0.1 · 10.217.1.1) ──veth── container (10.217.1.2)
//!                                  default route → outside            default route → host
//! ```
//!
//! `netmon record` runs in *host*. The *outside* is what lies behind host's default route
//! (a physical uplink on a real machine). The *container* is a network namespace with its own
//! pid namespace and cgroup (`<cgroup2>/nm17-<pid>/lxc.payload.web-1`, the way LXC names its
//! containers), attached to host by a veth and reaching the outside through host's routing
//! (host forwards). Workloads are `tests/netns/traffic.py`; each prints what its own calls
//! moved, which is the truth every row is judged against (1%, like the accuracy test).
//!
//! Needs root (namespaces, cgroups, eBPF), iproute2, util-linux's `unshare`, python3 and a
//! mounted cgroup v2 hierarchy; without them it fails and says why.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::ebpf::{start_recorder_with, stop_recorder};
use crate::netns::{self, Moved, traffic_script};
use crate::util::{Env, bin, wait_until};

const OUT_V4: &str = "10.217.0.2";
const HOST_TO_OUT: &str = "10.217.0.1";
const HOST_TO_CTR: &str = "10.217.1.1";
const CTR_V4: &str = "10.217.1.2";
const OUT_PORT: u16 = 7600;
const CTR_PORT: u16 = 7700;
const CONTAINER: &str = "web-1";

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "cannot build the test topology: `ip {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// The cgroup v2 mount point (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on a hybrid
/// machine).
fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("/proc/self/mounts");
    let root = mounts
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some("cgroup2"))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(PathBuf::from);
    root.expect("the container test needs a mounted cgroup v2 hierarchy (none in /proc/self/mounts). NOT RUN.")
}

/// Host, outside and container namespaces and the container's cgroup; everything still
/// running inside is killed and everything removed on drop.
struct Topology {
    host: String,
    outside: String,
    container: String,
    /// `<cgroup2>/nm17-<pid>`, parent of the container's cgroup.
    cgroup_parent: PathBuf,
    cgroup: PathBuf,
    children: Vec<Child>,
}

impl Topology {
    fn new() -> Topology {
        let tag = std::process::id();
        let cgroup_parent = cgroup2_root().join(format!("nm17-{tag}"));
        let t = Topology {
            host: format!("nm17-{tag}-host"),
            outside: format!("nm17-{tag}-out"),
            container: format!("nm17-{tag}-ctr"),
            cgroup: cgroup_parent.join(format!("lxc.payload.{CONTAINER}")),
            cgroup_parent,
            children: Vec::new(),
        };
        let (h, o, c) = (t.host.as_str(), t.outside.as_str(), t.container.as_str());
        for ns in [h, o, c] {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&[
            "link", "add", "nm17up", "netns", h, "type", "veth", "peer", "name", "nm17up", "netns",
            o,
        ]);
        ip(&[
            "link", "add", "nm17ct", "netns", h, "type", "veth", "peer", "name", "nm17ct", "netns",
            c,
        ]);
        for (ns, dev, addr) in [
            (h, "nm17up", "10.217.0.1/24"),
            (o, "nm17up", "10.217.0.2/24"),
            (h, "nm17ct", "10.217.1.1/24"),
            (c, "nm17ct", "10.217.1.2/24"),
        ] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        ip(&["-n", h, "route", "add", "default", "via", OUT_V4]);
        ip(&["-n", c, "route", "add", "default", "via", HOST_TO_CTR]);
        // The outside answers the container through host, which forwards.
        ip(&["-n", o, "route", "add", "10.217.1.0/24", "via", HOST_TO_OUT]);
        let fwd = Command::new("ip")
            .args(["netns", "exec", h, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
            .status()
            .expect("sysctl");
        assert!(
            fwd.success(),
            "cannot enable forwarding in the host namespace"
        );
        std::fs::create_dir_all(&t.cgroup).unwrap_or_else(|e| {
            panic!(
                "cannot create the container's cgroup {}: {e}",
                t.cgroup.display()
            )
        });
        t
    }

    /// `netmon` in the host namespace, the way a service runs it: only the network namespace
    /// is switched (`ip netns exec` would also give it a /sys of its own, without the cgroup
    /// hierarchy that names the container of a process already gone).
    fn recorder(&self) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.host)).arg(bin());
        c
    }

    /// A command run in the host namespace.
    fn in_host(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        netns::Pair::exec(&self.host, program)
    }

    /// `traffic.py ARGS` inside the container: its cgroup, its network namespace and a pid
    /// namespace of its own (the workload is pid 1 there; the kernel reports its real pid).
    fn in_container(&self, args: &[&str]) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(r#"echo $$ > "$1/cgroup.procs" && shift && exec "$@""#)
            .arg("sh")
            .arg(&self.cgroup)
            .args(["ip", "netns", "exec", &self.container])
            .args(["unshare", "--pid", "--fork", "--kill-child", "python3"])
            .arg(traffic_script())
            .args(args);
        c
    }

    /// Start traffic.py's server (TCP `port..port+9`) and wait until it listens.
    fn start_server(&mut self, mut cmd: Command) {
        let mut child = cmd
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
            .expect("a traffic server did not start within 10 s");
        assert_eq!(line.trim(), "ready", "traffic server said {line:?}");
    }
}

fn spawn(mut cmd: Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn workload")
}

impl Drop for Topology {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.host, &self.outside, &self.container] {
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
        // A cgroup can be removed once its processes are gone (bounded wait).
        for _ in 0..100 {
            if std::fs::remove_dir(&self.cgroup).is_ok() || !self.cgroup.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_dir(&self.cgroup_parent);
    }
}

/// Wait (bounded) for the sniffer: what it says it moved, and the frame bytes it captured.
fn finish_sniffer(sniffer: Child) -> (Moved, u64) {
    let mut child = sniffer;
    assert!(
        wait_until(Duration::from_secs(10), || child
            .try_wait()
            .expect("try_wait")
            .is_some()),
        "the sniffer did not stop within 10 s of its stop file"
    );
    let out = child.wait_with_output().expect("sniffer output");
    assert!(
        out.status.success(),
        "sniffer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("sniffer report");
    let moved = Moved {
        sent: v["sent"].as_u64().expect("sent"),
        recv: v["recv"].as_u64().expect("recv"),
    };
    (moved, v["captured"].as_u64().expect("captured"))
}

/// Recorded bytes per (application, container), as `netmon apps --json` reports them.
fn recorded(env: &Env) -> BTreeMap<(String, Option<String>), Moved> {
    let out = Command::new(bin())
        .env_clear()
        .env("NO_COLOR", "1")
        .env("TZ", "UTC")
        .args(["apps", "--since", "24h", "--json", "--db"])
        .arg(&env.db)
        .output()
        .expect("run netmon apps");
    assert!(
        out.status.success(),
        "netmon apps: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("apps JSON");
    let mut got: BTreeMap<(String, Option<String>), Moved> = BTreeMap::new();
    for r in rows {
        let key = (
            r["app"].as_str().expect("app").to_string(),
            r["container"].as_str().map(str::to_string),
        );
        let m = got.entry(key).or_default();
        m.recv += r["bytes_in"].as_u64().expect("bytes_in");
        m.sent += r["bytes_out"].as_u64().expect("bytes_out");
    }
    got
}

fn within(measured: u64, truth: u64) -> bool {
    (measured as f64 - truth as f64).abs() <= 0.01 * truth as f64
}

/// Judge `got` against `expect` (per application and container); with `strict`, nothing else
/// may have been recorded. Returns the report table.
fn judge(
    what: &str,
    expect: &BTreeMap<(String, Option<String>), Moved>,
    got: &BTreeMap<(String, Option<String>), Moved>,
    strict: bool,
) -> String {
    let mut report = format!(
        "{what}\n{:<28} {:>10} {:>10} {:>10} {:>10} {:>7} {:>7}\n",
        "process [container]", "truth in", "truth out", "netmon in", "netmon out", "in", "out"
    );
    let mut bad = Vec::new();
    let ratio = |m: u64, t: u64| {
        if t == 0 {
            if m == 0 { 1.0 } else { f64::INFINITY }
        } else {
            m as f64 / t as f64
        }
    };
    let mut names: Vec<&(String, Option<String>)> = expect.keys().collect();
    if strict {
        names.extend(got.keys().filter(|k| !expect.contains_key(*k)));
    }
    for key in names {
        let t = expect.get(key).copied().unwrap_or_default();
        let m = got.get(key).copied().unwrap_or_default();
        let label = match &key.1 {
            Some(c) => format!("{} [{c}]", key.0),
            None => key.0.clone(),
        };
        report += &format!(
            "{label:<28} {:>10} {:>10} {:>10} {:>10} {:>7.4} {:>7.4}\n",
            t.recv,
            t.sent,
            m.recv,
            m.sent,
            ratio(m.recv, t.recv),
            ratio(m.sent, t.sent)
        );
        if !(within(m.recv, t.recv) && within(m.sent, t.sent)) {
            bad.push(label);
        }
    }
    assert!(bad.is_empty(), "{what}: wrong rows {bad:?}\n{report}");
    report
}

#[test]
fn issue_17_ebpf_counts_containers_splice_and_packet_sends_once_and_keeps_local_traffic_apart() {
    netns::require_root("the ebpf container test");
    for tool in ["unshare", "nsenter", "sysctl"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success()),
            "the container test needs `{tool}` (tests/install-deps.sh). NOT RUN."
        );
    }
    let mut topo = Topology::new();
    let mut out_server = netns::Pair::exec(&topo.outside, "python3");
    out_server
        .arg(traffic_script())
        .args(["server", &OUT_PORT.to_string(), "out_server"]);
    topo.start_server(out_server);
    let ctr_server = topo.in_container(&["server", &CTR_PORT.to_string(), "ctr_server"]);
    topo.start_server(ctr_server);

    let (plain, with_lo) = (Env::new(), Env::new());
    let rec_plain = start_recorder_with(&plain, topo.recorder(), &[]);
    let rec_lo = start_recorder_with(&with_lo, topo.recorder(), &["--include-loopback"]);

    let stop = tempfile::tempdir().expect("tempdir");
    let stop_file = stop.path().join("stop");
    let stop_str = stop_file.display().to_string();
    let p = |n: u16| (OUT_PORT + n).to_string();
    let script = |args: &[&str]| {
        let mut c = topo.in_host("python3");
        c.arg(traffic_script()).args(args);
        c
    };
    // A tcpdump-style receiver on the uplink for the whole run: it must add nothing. The
    // workloads start once it captures.
    let sniffer = spawn(script(&["sniff", "sniffer", "nm17up", &stop_str]));
    let ready = stop.path().join("stop.ready");
    assert!(
        wait_until(Duration::from_secs(20), || ready.exists()),
        "the packet-socket sniffer did not start capturing within 20 s"
    );
    let children = vec![
        spawn(script(&[
            "bulk",
            "host_bulk",
            OUT_V4,
            &p(1),
            "8000000",
            "3000000",
        ])),
        spawn(topo.in_container(&["bulk", "ctr_bulk", OUT_V4, &p(2), "6000000", "2000000"])),
        spawn(topo.in_container(&[
            "udp",
            "ctr_udp",
            OUT_V4,
            &OUT_PORT.to_string(),
            "2000",
            "1000",
        ])),
        spawn(script(&[
            "splice",
            "dl_splice",
            OUT_V4,
            &p(3),
            "100000",
            "6000000",
        ])),
        spawn(script(&["packet", "pkt_send", "nm17up", "3000", "1000"])),
        spawn(script(&[
            "bulk",
            "to_ctr",
            CTR_V4,
            &(CTR_PORT + 1).to_string(),
            "3000000",
            "1000000",
        ])),
        spawn(script(&["loopback", "lo_dl", "1000000", "4000000"])),
    ];
    let truth = netns::wait_all(children, Duration::from_secs(90));
    std::fs::write(&stop_file, b"").expect("stop file");
    let (sniffed, captured) = finish_sniffer(sniffer);
    stop_recorder(&plain, rec_plain);
    stop_recorder(&with_lo, rec_lo);

    let at =
        |name: &str, container: Option<&str>| (name.to_string(), container.map(str::to_string));
    let t = |name: &str| truth.get(name).copied().unwrap_or_default();
    assert!(t("pkt_send").sent == 3_000_000 && t("dl_splice").recv == 6_000_000);
    assert_eq!(sniffed, Moved::default());
    // It really received copies of the transfers (at least 1 MB of the ~30 MB of frames
    // crossing the uplink), so the row below that credits it nothing can fail.
    assert!(
        captured >= 1_000_000,
        "the sniffer captured only {captured} bytes: it did not see the transfers"
    );
    // Network use: the host's and the container's traffic to the outside, counted once at
    // the socket that sent it (the host forwards the container's without counting it).
    let network: BTreeMap<_, _> = [
        (at("host_bulk", None), t("host_bulk")),
        (at("ctr_bulk", Some(CONTAINER)), t("ctr_bulk")),
        (at("ctr_udp", Some(CONTAINER)), t("ctr_udp")),
        (at("dl_splice", None), t("dl_splice")),
        (at("pkt_send", None), t("pkt_send")),
    ]
    .into_iter()
    .collect();
    let got_plain = recorded(&plain);
    let mut report = judge("default (network use only)", &network, &got_plain, true);

    // With loopback: the same, plus host ↔ container (once per end: to_ctr in the host, the
    // container's server as its mirror image) and the loopback download, once per end. The
    // outside's server is never counted.
    let mut local = network.clone();
    local.insert(at("to_ctr", None), t("to_ctr"));
    local.insert(
        at("ctr_server", Some(CONTAINER)),
        Moved {
            sent: t("to_ctr").recv,
            recv: t("to_ctr").sent,
        },
    );
    local.insert(at("lo_dl", None), t("lo_dl"));
    local.insert(at("sniffer", None), Moved::default());
    // Other namespaces of this machine (other tests, the init namespace) are local too:
    // judge this test's processes.
    let own: BTreeMap<_, _> = recorded(&with_lo)
        .into_iter()
        .filter(|(k, _)| local.contains_key(k) || k.0 == "out_server" || k.0 == "ctr_server")
        .collect();
    report += &judge("--include-loopback", &local, &own, true);
    eprintln!("{report}sniffer: captured {captured} bytes of frames, credited 0");
}
