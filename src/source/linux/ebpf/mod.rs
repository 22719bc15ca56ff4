//! The `ebpf` source: exact per-process TCP, UDP and packet-socket payload bytes, counted in
//! the kernel, in every network namespace, split into network use and traffic that stays on
//! this machine.
//!
//! Small kernel programs (`netmon.bpf.c`, compiled by clang in `build.rs`) run on the socket
//! layer's `sock_send_length` and `sock_recv_length` tracepoints and on TCP's
//! `tcp_rcv_space_adjust` and `inet_sock_set_state` (receives that bypass recvmsg: splice,
//! zero-copy), in the process that makes the call, and add each call's byte count to that
//! process's entry in a kernel hash map; another program marks a process when it exits. Each
//! tick this module reads the maps synchronously (a few syscalls per process; no async
//! runtime, no ring buffer), refreshes what "this machine" is from the recorder's routes
//! ([`netns`]), and [`track::Tracker`] turns the entries into cumulative per-process counters;
//! entries of exited processes are emitted once with `closed: true`, then deleted.
//!
//! Loading: aya, a pure-Rust loader that applies the CO-RE relocations of the clang-built
//! object against the kernel's BTF, so the build needs clang and nothing else (no libbpf, no
//! libelf, no bpftool). Attaching: raw tracepoints by name, which need neither tracefs nor
//! kprobes nor fentry.
//!
//! Needs: Linux 6.3 or newer (the socket tracepoints), BTF (`/sys/kernel/btf/vmlinux`), and
//! root or CAP_BPF + CAP_PERFMON (+ CAP_SYS_ADMIN to place other namespaces and read other
//! users' /proc). A kernel without the two TCP tracepoints counts TCP receives at recvmsg and
//! says that splice and zero-copy receives are not counted.

mod netns;
mod track;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use crate::procinfo::container;
use crate::source::{Cancel, Error, Snapshot, Source, SourceKind, SourceOptions};

pub use track::{Maps, Os, Proc, ProcInfo, ProcKey, Scope, Tracker, Traffic, TrafficKey};

/// Entries the kernel tables hold: processes with traffic that are alive (or exited and not
/// yet read) at once. Beyond that, bytes go to an unattributed overflow counter.
pub const CAPACITY: u32 = 16384;

/// How often entries are checked against /proc for processes that died without an exit mark
/// (which the exit program makes impossible, short of a kernel that skips the tracepoint).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The Linux eBPF source. See the module docs.
pub struct EbpfSource {
    loaded: loader::Loaded,
    tracker: Tracker,
    /// The recorder's namespace as last read, shared with the tracker's [`LinuxOs`].
    view: Rc<RefCell<netns::HostView>>,
    rtnl: Option<netns::Rtnl>,
    /// Prefixes installed in the kernel's local-address tries.
    installed: HashSet<(IpAddr, u8)>,
    /// The first reading is empty: every counter then counts from zero on the next one, so
    /// the bytes moved between loading and the first tick are counted, not taken as baseline.
    started: bool,
    /// /proc names the same pids as the kernel (this process is in the initial pid namespace).
    same_pids: bool,
    last_sweep: Instant,
    notes: Vec<String>,
}

impl EbpfSource {
    /// Load and attach the programs. `Error::Unavailable` says why they cannot run here and
    /// what to do (run as root, a newer kernel, rebuild with clang, or another source).
    pub fn new(_opts: &SourceOptions) -> Result<Self, Error> {
        let loaded = loader::Loaded::load()?;
        let same_pids = in_initial_pid_namespace();
        let host = own_netns()?;
        let view = Rc::new(RefCell::new(netns::HostView::default()));
        let rtnl = match netns::Rtnl::open() {
            Ok(r) => Some(r),
            Err(e) => {
                warn!(error = %e, "cannot read this namespace's routes; all traffic counts as network use");
                None
            }
        };
        let os = LinuxOs {
            host,
            same_pids,
            view: Rc::clone(&view),
            rtnl: netns::Rtnl::open().ok(),
            namer: container::Namer::new(container::Roots::default()),
            cgroup_names: HashMap::new(),
        };
        let tracker = Tracker::new(loaded.map_id(), ticks_per_second(), CAPACITY, Box::new(os));
        let mut notes = Vec::new();
        if !loaded.tcp_rx_by_seq() {
            notes.push(
                "TCP data received with splice() or a zero-copy receive: this kernel has no \
                 tcp_rcv_space_adjust or inet_sock_set_state tracepoint (Linux 4.16+)"
                    .to_string(),
            );
        }
        notes.push(
            "network use of containers on macvlan or ipvlan networks, which have no link to \
             this namespace: their traffic is counted as local (--include-loopback shows it)"
                .to_string(),
        );
        debug!(
            map_id = loaded.map_id(),
            netns = host,
            same_pids,
            tcp_rx_by_seq = loaded.tcp_rx_by_seq(),
            "ebpf programs attached"
        );
        let mut source = EbpfSource {
            loaded,
            tracker,
            view,
            rtnl,
            installed: HashSet::new(),
            started: false,
            same_pids,
            last_sweep: Instant::now(),
            notes,
        };
        source.refresh_view();
        Ok(source)
    }

    /// Read the recorder's links, addresses and routes again, and hand the kernel programs
    /// the prefixes that are this machine.
    fn refresh_view(&mut self) {
        let Some(rtnl) = self.rtnl.as_mut() else {
            return;
        };
        match rtnl.dump() {
            Ok(v) => {
                let nets: HashSet<(IpAddr, u8)> = v.local_nets().into_iter().collect();
                for gone in self.installed.difference(&nets) {
                    self.loaded.remove_local(gone);
                }
                for new in nets.difference(&self.installed) {
                    self.loaded.add_local(new);
                }
                self.installed = nets;
                *self.view.borrow_mut() = v;
            }
            Err(e) => warn!(error = %e, "reading this namespace's routes failed; keeping the last"),
        }
    }
}

impl Source for EbpfSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Ebpf
    }

    fn blind_spots(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn sample(&mut self, cancel: &Cancel) -> Result<Snapshot, Error> {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        self.refresh_view();
        if !self.started {
            self.started = true;
            return Ok(Snapshot::default());
        }
        let procs = self.loaded.procs()?;
        let mut traffic = self.loaded.traffic()?;
        let gone = if self.same_pids && self.last_sweep.elapsed() >= SWEEP_EVERY {
            self.last_sweep = Instant::now();
            let mut keys: Vec<ProcKey> = procs
                .iter()
                .filter(|(_, i)| !i.has_exited())
                .map(|(k, _)| *k)
                .chain(traffic.iter().map(|(k, _)| k.proc()))
                .collect();
            keys.sort();
            keys.dedup();
            let exited: HashSet<ProcKey> = procs
                .iter()
                .filter(|(_, i)| i.has_exited())
                .map(|(k, _)| *k)
                .collect();
            keys.retain(|k| !exited.contains(k));
            sweep(&keys, ticks_per_second())
        } else {
            Vec::new()
        };
        // Entries about to be closed are read once more, now that their process is gone and
        // nothing can change them: the reading above may have copied the counters just
        // before a last add landed (and an exit mark just after it), or, for one the sweep
        // found gone, before the process moved its last bytes and exited.
        let closing: HashSet<ProcKey> = procs
            .iter()
            .filter(|(_, i)| i.has_exited())
            .map(|(k, _)| *k)
            .chain(gone.iter().copied())
            .collect();
        for (key, value) in traffic.iter_mut() {
            if closing.contains(&key.proc())
                && let Some(v) = self.loaded.traffic_get(key)?
            {
                *value = v;
            }
        }
        let overflow = self.loaded.overflow()?;
        let reading = self.tracker.snapshot(
            Maps {
                traffic,
                procs,
                overflow,
            },
            &gone,
        );
        for key in &reading.delete_traffic {
            self.loaded.remove_traffic(key);
        }
        for key in &reading.delete_procs {
            self.loaded.remove_proc(key);
        }
        debug!(
            processes = self.tracker.tracked(),
            counters = reading.snapshot.counters.len(),
            exited = reading.delete_procs.len(),
            "ebpf maps read"
        );
        Ok(reading.snapshot)
    }
}

/// The OS facts the tracker asks for, from /proc and rtnetlink.
struct LinuxOs {
    host: u32,
    same_pids: bool,
    view: Rc<RefCell<netns::HostView>>,
    rtnl: Option<netns::Rtnl>,
    namer: container::Namer,
    cgroup_names: HashMap<u64, Option<String>>,
}

impl Os for LinuxOs {
    fn process(&mut self, pid: u32, start_ticks: u64) -> Option<Proc> {
        if !self.same_pids {
            return None;
        }
        let mut p = proc_lookup(pid, start_ticks)?;
        p.container = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .ok()
            .and_then(|t| container::from_cgroup_file(&t))
            .map(|c| {
                let home = p.uid.and_then(home_of);
                self.namer.name(&c, home.as_deref())
            });
        debug!(pid, name = %p.name, container = ?p.container, "process read from /proc");
        Some(p)
    }

    fn scope(&mut self, netns: u32, pid: u32) -> Scope {
        if netns == self.host {
            return Scope::Host;
        }
        let Some(file) = open_netns(netns, self.same_pids.then_some(pid)) else {
            // Gone before it could be placed: keep its traffic local, never count it twice.
            debug!(
                netns,
                "network namespace not found; its traffic counts as local"
            );
            return Scope::Isolated;
        };
        let Some(rtnl) = self.rtnl.as_mut() else {
            return Scope::Isolated;
        };
        match rtnl.nsid_of(file.as_fd()) {
            Ok(nsid) => {
                let scope = self.view.borrow().scope_of(nsid);
                debug!(netns, ?nsid, ?scope, "network namespace placed");
                scope
            }
            Err(e) => {
                warn!(netns, error = %e, "cannot place a network namespace; its traffic counts as local");
                Scope::Isolated
            }
        }
    }

    fn container_of_cgroup(&mut self, cgroup_id: u64) -> Option<String> {
        if let Some(n) = self.cgroup_names.get(&cgroup_id) {
            return n.clone();
        }
        let path = cgroup_path(cgroup_id);
        let name = path
            .as_deref()
            .and_then(container::from_path)
            .map(|c| self.namer.name(&c, None));
        debug!(cgroup_id, ?path, ?name, "container of an exited process");
        self.cgroup_names.insert(cgroup_id, name.clone());
        name
    }
}

/// A handle on network namespace `inode`: that of `pid` if it is the one, else the first
/// process or bind mount (`ip netns`, Docker) found in it.
fn open_netns(inode: u32, pid: Option<u32>) -> Option<std::fs::File> {
    use std::os::unix::fs::MetadataExt;
    let matches =
        |p: &std::path::Path| std::fs::metadata(p).is_ok_and(|m| m.ino() == u64::from(inode));
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(pid) = pid {
        candidates.push(PathBuf::from(format!("/proc/{pid}/ns/net")));
    }
    for dir in ["/run/netns", "/run/docker/netns"] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            candidates.extend(rd.flatten().map(|e| e.path()));
        }
    }
    if let Some(p) = candidates.iter().find(|p| matches(p)) {
        return std::fs::File::open(p).ok();
    }
    let rd = std::fs::read_dir("/proc").ok()?;
    rd.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .map(|e| e.path().join("ns/net"))
        .find(|p| matches(p))
        .and_then(|p| std::fs::File::open(p).ok())
}

/// The path (inside the cgroup v2 hierarchy) of the cgroup with id `id`: the id is the
/// inode of its directory. The hierarchy is looked for in this process's mounts, then in
/// those of pid 1 through `/proc/1/root` (a recorder started by `ip netns exec` has a /sys of
/// its own, without cgroups). Bounded walk; `None` when no cgroup v2 is mounted.
fn cgroup_path(id: u64) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    for (mounts, prefix) in [
        ("/proc/self/mounts", ""),
        ("/proc/1/mounts", "/proc/1/root"),
    ] {
        let Ok(text) = std::fs::read_to_string(mounts) else {
            continue;
        };
        let Some(point) = text
            .lines()
            .find(|l| l.split_whitespace().nth(2) == Some("cgroup2"))
            .and_then(|l| l.split_whitespace().nth(1))
        else {
            continue;
        };
        let root = PathBuf::from(format!("{prefix}{point}"));
        if !is_cgroup2(&root) {
            // Listed but hidden (`ip netns exec` mounts a /sys of its own over it).
            continue;
        }
        let mut queue = vec![root.clone()];
        let mut visited = 0usize;
        while let Some(dir) = queue.pop() {
            visited += 1;
            if visited > 20_000 {
                break;
            }
            if std::fs::metadata(&dir).is_ok_and(|m| m.ino() == id) {
                let rel = dir.strip_prefix(&root).ok()?;
                return Some(format!("/{}", rel.display()));
            }
            if let Ok(rd) = std::fs::read_dir(&dir) {
                queue.extend(
                    rd.flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path()),
                );
            }
        }
    }
    None
}

/// Whether `path` is the root of a cgroup v2 file system.
fn is_cgroup2(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs(2) on a NUL-terminated path into a zeroed struct we own.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    rc == 0 && st.f_type as i64 == CGROUP2_SUPER_MAGIC
}

/// A user's home directory, from the password database.
fn home_of(uid: u32) -> Option<PathBuf> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| PathBuf::from(f[5]))
    })
}

/// Processes no longer in /proc under the same start time, though the kernel never marked
/// them exited. Their values are final: emit them as closed and free the room.
fn sweep(keys: &[ProcKey], ticks_per_second: u64) -> Vec<ProcKey> {
    let ns_per_tick = 1_000_000_000 / ticks_per_second.max(1);
    let gone: Vec<ProcKey> = keys
        .iter()
        .filter(|k| proc_start(k.tgid) != Some(k.start_ns / ns_per_tick))
        .copied()
        .collect();
    if !gone.is_empty() {
        warn!(
            entries = gone.len(),
            "processes exited without the kernel marking them; their counters are closed now"
        );
    }
    gone
}

fn proc_start(pid: u32) -> Option<u64> {
    let p = procfs::process::Process::new(i32::try_from(pid).ok()?).ok()?;
    p.stat().ok().map(|s| s.starttime)
}

/// /proc's view of a live process, if its start time is the one the kernel recorded.
fn proc_lookup(pid: u32, start_ticks: u64) -> Option<Proc> {
    let p = procfs::process::Process::new(i32::try_from(pid).ok()?).ok()?;
    let stat = p.stat().ok()?;
    if stat.starttime != start_ticks {
        return None;
    }
    let cmdline = p
        .cmdline()
        .ok()
        .filter(|c| !c.is_empty())
        .map(|c| c.join("\0"));
    Some(Proc {
        name: stat.comm,
        // Unreadable for other users' processes without CAP_SYS_PTRACE: None, never a guess.
        exe: p.exe().ok(),
        uid: p.uid().ok(),
        cmdline,
        container: None,
    })
}

fn ticks_per_second() -> u64 {
    procfs::ticks_per_second().max(1)
}

/// The kernel reports pids as the initial pid namespace sees them; /proc agrees only there.
fn in_initial_pid_namespace() -> bool {
    // PROC_PID_INIT_INO in include/linux/proc_ns.h.
    const PROC_PID_INIT_INO: u64 = 0xEFFF_FFFC;
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").is_ok_and(|m| m.ino() == PROC_PID_INIT_INO)
}

/// The inode of this process's network namespace: the recorder's own, where its
/// default route leads to the outside.
fn own_netns() -> Result<u32, Error> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata("/proc/self/ns/net").map_err(|e| {
        Error::Unavailable(format!(
            "cannot read /proc/self/ns/net ({e}); is /proc mounted?"
        ))
    })?;
    u32::try_from(m.ino()).map_err(|_| {
        Error::Unavailable(format!(
            "network namespace inode {} does not fit the kernel's 32 bits",
            m.ino()
        ))
    })
}

/// The way out when this source cannot run here at all. Worded to read right both after
/// `--source ebpf` failed and in the note of a `--source auto` that fell back to sockdiag.
const FALLBACK: &str = "--source sockdiag works without it (TCP only)";

#[cfg(netmon_ebpf)]
mod loader {
    use std::io;
    use std::net::IpAddr;

    use aya::maps::lpm_trie::{Key as LpmKey, LpmTrie};
    use aya::maps::{Array, HashMap, Map, MapData};
    use aya::programs::RawTracePoint;
    use aya::{Ebpf, EbpfLoader};
    use tracing::{debug, warn};

    use super::{CAPACITY, FALLBACK, ProcInfo, ProcKey, Traffic, TrafficKey};
    use crate::source::Error;

    // SAFETY: all are `repr(C)` structs of integers and byte arrays with no padding the
    // kernel does not also write (`pad` fields are explicit), valid for any bit pattern.
    unsafe impl aya::Pod for ProcKey {}
    unsafe impl aya::Pod for ProcInfo {}
    unsafe impl aya::Pod for TrafficKey {}
    unsafe impl aya::Pod for Traffic {}

    static OBJECT: &[u8] = include_bytes!(env!("NETMON_BPF_OBJECT"));

    /// (program, tracepoint) pairs; the exit program goes first so no entry can miss its
    /// mark, and the TCP state program before the TCP receive one so sockets established
    /// from then on are based at their start.
    const REQUIRED: [(&str, &str); 3] = [
        ("netmon_exit", "sched_process_exit"),
        ("netmon_send", "sock_send_length"),
        ("netmon_recv", "sock_recv_length"),
    ];
    const TCP_RX: [(&str, &str); 2] = [
        ("netmon_tcp_state", "inet_sock_set_state"),
        ("netmon_tcp_rx", "tcp_rcv_space_adjust"),
    ];

    pub struct Loaded {
        /// Owns the programs and their links: dropping it detaches everything.
        _ebpf: Ebpf,
        procs: HashMap<MapData, ProcKey, ProcInfo>,
        traffic: HashMap<MapData, TrafficKey, Traffic>,
        overflow: Array<MapData, Traffic>,
        local_v4: LpmTrie<MapData, u32, u8>,
        local_v6: LpmTrie<MapData, [u8; 16], u8>,
        map_id: u32,
        tcp_rx_by_seq: bool,
    }

    fn take<T>(ebpf: &mut Ebpf, name: &str) -> Result<T, Error>
    where
        T: TryFrom<Map>,
        <T as TryFrom<Map>>::Error: std::fmt::Display,
    {
        let map = ebpf
            .take_map(name)
            .ok_or_else(|| bug(format!("map {name} is missing from the object")))?;
        T::try_from(map).map_err(|e| bug(format!("map {name}: {e}")))
    }

    fn attach(ebpf: &mut Ebpf, name: &str, tracepoint: &str) -> Result<(), Error> {
        let program: &mut RawTracePoint = ebpf
            .program_mut(name)
            .ok_or_else(|| bug(format!("program {name} is missing from the object")))?
            .try_into()
            .map_err(|e| bug(format!("program {name}: {e}")))?;
        program
            .load()
            .map_err(|e| refused(&format!("loading program {name}"), &e))?;
        program
            .attach(tracepoint)
            .map_err(|e| attach_refused(tracepoint, &e))?;
        Ok(())
    }

    impl Loaded {
        pub fn load() -> Result<Self, Error> {
            preflight()?;
            let mut ebpf = EbpfLoader::new()
                .map_max_entries("procs", CAPACITY)
                .map_max_entries("traffic", CAPACITY)
                .load(OBJECT)
                .map_err(|e| refused("loading the eBPF programs", &e))?;
            for (name, tracepoint) in REQUIRED {
                attach(&mut ebpf, name, tracepoint)?;
            }
            // Without these two, TCP receives are counted at recvmsg (splice is not).
            let mut tcp_rx_by_seq = true;
            for (name, tracepoint) in TCP_RX {
                if let Err(e) = attach(&mut ebpf, name, tracepoint) {
                    debug!(error = %e, "TCP receives counted at recvmsg only");
                    tcp_rx_by_seq = false;
                    break;
                }
            }
            let traffic_map = ebpf
                .take_map("traffic")
                .ok_or_else(|| bug("map traffic is missing from the object".into()))?;
            let map_id = match &traffic_map {
                Map::HashMap(data) => data
                    .info()
                    .map(|i| i.id())
                    .map_err(|e| bug(format!("reading the id of map traffic: {e}")))?,
                _ => return Err(bug("map traffic is not a hash map".into())),
            };
            let traffic: HashMap<MapData, TrafficKey, Traffic> =
                HashMap::try_from(traffic_map).map_err(|e| bug(format!("map traffic: {e}")))?;
            let procs = take(&mut ebpf, "procs")?;
            let overflow = take(&mut ebpf, "overflow")?;
            let local_v4 = take(&mut ebpf, "local_v4")?;
            let local_v6 = take(&mut ebpf, "local_v6")?;
            let mut config: Array<MapData, u32> = take(&mut ebpf, "config")?;
            if tcp_rx_by_seq {
                config
                    .set(0, 1u32, 0)
                    .map_err(|e| bug(format!("setting map config: {e}")))?;
            }
            Ok(Loaded {
                _ebpf: ebpf,
                procs,
                traffic,
                overflow,
                local_v4,
                local_v6,
                map_id,
                tcp_rx_by_seq,
            })
        }

        pub fn map_id(&self) -> u32 {
            self.map_id
        }

        pub fn tcp_rx_by_seq(&self) -> bool {
            self.tcp_rx_by_seq
        }

        /// Every entry of the per-process map, as it is now.
        pub fn procs(&self) -> Result<Vec<(ProcKey, ProcInfo)>, Error> {
            let mut out = Vec::new();
            for item in self.procs.iter() {
                out.push(item.map_err(|e| read_failed("procs", &e))?);
            }
            Ok(out)
        }

        /// Every entry of the per-process, per-namespace map, as it is now.
        pub fn traffic(&self) -> Result<Vec<(TrafficKey, Traffic)>, Error> {
            let mut out = Vec::new();
            for item in self.traffic.iter() {
                out.push(item.map_err(|e| read_failed("traffic", &e))?);
            }
            Ok(out)
        }

        pub fn traffic_get(&self, key: &TrafficKey) -> Result<Option<Traffic>, Error> {
            match self.traffic.get(key, 0) {
                Ok(v) => Ok(Some(v)),
                Err(aya::maps::MapError::KeyNotFound) => Ok(None),
                Err(e) => Err(read_failed("traffic", &e)),
            }
        }

        pub fn overflow(&self) -> Result<[Traffic; 2], Error> {
            let get = |i: u32| {
                self.overflow
                    .get(&i, 0)
                    .map_err(|e| read_failed("overflow", &e))
            };
            Ok([get(0)?, get(1)?])
        }

        pub fn remove_traffic(&mut self, key: &TrafficKey) {
            match self.traffic.remove(key) {
                Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => warn!(tgid = key.tgid, error = %e, "could not delete a map entry"),
            }
        }

        pub fn remove_proc(&mut self, key: &ProcKey) {
            match self.procs.remove(key) {
                Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => warn!(tgid = key.tgid, error = %e, "could not delete a map entry"),
            }
        }

        pub fn add_local(&mut self, (addr, len): &(IpAddr, u8)) {
            let r = match addr {
                IpAddr::V4(a) => self.local_v4.insert(
                    &LpmKey::new(u32::from(*len), u32::from_ne_bytes(a.octets())),
                    1u8,
                    0,
                ),
                IpAddr::V6(a) => {
                    self.local_v6
                        .insert(&LpmKey::new(u32::from(*len), a.octets()), 1u8, 0)
                }
            };
            if let Err(e) = r {
                warn!(%addr, len, error = %e, "could not add a local prefix");
            }
        }

        pub fn remove_local(&mut self, (addr, len): &(IpAddr, u8)) {
            let r = match addr {
                IpAddr::V4(a) => self.local_v4.remove(&LpmKey::new(
                    u32::from(*len),
                    u32::from_ne_bytes(a.octets()),
                )),
                IpAddr::V6(a) => self
                    .local_v6
                    .remove(&LpmKey::new(u32::from(*len), a.octets())),
            };
            match r {
                Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => warn!(%addr, len, error = %e, "could not remove a local prefix"),
            }
        }
    }

    /// Refuse early, with the fix, what would fail later with a bare errno.
    fn preflight() -> Result<(), Error> {
        if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
            return Err(Error::Unavailable(format!(
                "the kernel has no BTF (/sys/kernel/btf/vmlinux is missing; it needs \
                 CONFIG_DEBUG_INFO_BTF=y, as Debian, Ubuntu and Fedora kernels have), \
                 so the ebpf source cannot run here; {FALLBACK}"
            )));
        }
        if !has_bpf_capabilities() {
            return Err(Error::Unavailable(privileges_needed()));
        }
        Ok(())
    }

    fn privileges_needed() -> String {
        "loading eBPF programs needs root, or the capabilities CAP_BPF and CAP_PERFMON: run \
         netmon with sudo, or grant them once with \
         `sudo setcap cap_bpf,cap_perfmon=ep \"$(command -v netmon)\"`"
            .to_string()
    }

    /// CAP_SYS_ADMIN, or CAP_BPF (39) and CAP_PERFMON (38), in the effective set.
    fn has_bpf_capabilities() -> bool {
        let Ok(eff) = procfs::process::Process::myself()
            .and_then(|p| p.status())
            .map(|s| s.capeff)
        else {
            return true; // cannot tell: let the kernel decide
        };
        let has = |bit: u32| eff & (1u64 << bit) != 0;
        has(21) || (has(39) && has(38))
    }

    fn os_error(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(err) = cur {
            if let Some(io) = err.downcast_ref::<io::Error>()
                && let Some(code) = io.raw_os_error()
            {
                return Some(code);
            }
            cur = err.source();
        }
        None
    }

    fn chain(e: &(dyn std::error::Error + 'static)) -> String {
        let mut s = e.to_string();
        let mut cur = e.source();
        while let Some(err) = cur {
            let t = err.to_string();
            if !s.contains(&t) {
                s.push_str(": ");
                s.push_str(&t);
            }
            cur = err.source();
        }
        s
    }

    fn refused(what: &str, e: &(dyn std::error::Error + 'static)) -> Error {
        match os_error(e) {
            Some(libc::EPERM) | Some(libc::EACCES) => Error::Unavailable(format!(
                "{what} was refused ({}): {}; if it already runs that way, the kernel \
                 forbids it (lockdown, a security module), so the ebpf source cannot run \
                 here; {FALLBACK}",
                chain(e),
                privileges_needed()
            )),
            _ => Error::Unavailable(format!(
                "{what} failed: {}, so the ebpf source cannot run on this kernel; {FALLBACK}",
                chain(e)
            )),
        }
    }

    fn attach_refused(tracepoint: &str, e: &(dyn std::error::Error + 'static)) -> Error {
        match os_error(e) {
            Some(libc::ENOENT) => Error::Unavailable(format!(
                "this kernel has no {tracepoint} tracepoint (Linux 6.3 or newer has it): \
                 so the ebpf source cannot run here; {FALLBACK}"
            )),
            _ => refused(&format!("attaching to the {tracepoint} tracepoint"), e),
        }
    }

    fn read_failed(map: &str, e: &(dyn std::error::Error + 'static)) -> Error {
        Error::Io(io::Error::other(format!(
            "reading the kernel map {map} failed: {}",
            chain(e)
        )))
    }

    /// The object and this code disagree: a build problem, not the user's.
    fn bug(msg: String) -> Error {
        Error::Unavailable(format!(
            "the eBPF object built into this netmon is broken ({msg}), please report it; \
             {FALLBACK}"
        ))
    }
}

#[cfg(not(netmon_ebpf))]
mod loader {
    use std::net::IpAddr;

    use super::{FALLBACK, ProcInfo, ProcKey, Traffic, TrafficKey};
    use crate::source::Error;

    /// This netmon was built without clang: it has no programs to load.
    pub enum Loaded {}

    impl Loaded {
        pub fn load() -> Result<Self, Error> {
            Err(Error::Unavailable(format!(
                "this netmon was built without its eBPF programs (clang was not found when \
                 it was compiled): install clang (Debian/Ubuntu: `apt-get install clang`) and \
                 rebuild netmon; {FALLBACK}"
            )))
        }
        pub fn map_id(&self) -> u32 {
            match *self {}
        }
        pub fn tcp_rx_by_seq(&self) -> bool {
            match *self {}
        }
        pub fn procs(&self) -> Result<Vec<(ProcKey, ProcInfo)>, Error> {
            match *self {}
        }
        pub fn traffic(&self) -> Result<Vec<(TrafficKey, Traffic)>, Error> {
            match *self {}
        }
        pub fn traffic_get(&self, _key: &TrafficKey) -> Result<Option<Traffic>, Error> {
            match *self {}
        }
        pub fn overflow(&self) -> Result<[Traffic; 2], Error> {
            match *self {}
        }
        pub fn remove_traffic(&mut self, _key: &TrafficKey) {
            match *self {}
        }
        pub fn remove_proc(&mut self, _key: &ProcKey) {
            match *self {}
        }
        pub fn add_local(&mut self, _net: &(IpAddr, u8)) {
            match *self {}
        }
        pub fn remove_local(&mut self, _net: &(IpAddr, u8)) {
            match *self {}
        }
    }
}
