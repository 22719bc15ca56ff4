//! From the kernel's per-process entries to counters: pure, so it is tested without eBPF.
//!
//! Each tick the loader hands over every entry of the `traffic` map (one per process and
//! network namespace it used sockets in), every entry of `procs` (who each process is, and
//! whether it has exited) and the overflow entries; [`Tracker::snapshot`] turns them into one
//! [`Counter`] per entry and traffic class (TCP, UDP, other; network or local), names each
//! process once (from /proc while it lives, else from what the kernel recorded), and says
//! which entries to delete: those of processes that have exited (their values are final and
//! are emitted once with `closed: true`).
//!
//! Where the traffic went is decided in two steps. The kernel splits each entry's bytes by
//! peer: on this machine (loopback, this machine's addresses, the subnets behind its links to
//! containers) or not. Here each entry's namespace is placed once, when the entry is first
//! read ([`Scope`]): the recorder's own, or one linked to it other than through its default
//! route (a container), is this machine, and a peer beyond is network use; a namespace with
//! no such link (a sandbox, or a rootless container whose traffic a relay process carries
//! out) reaches the network only through another process of this machine, which is counted
//! there, so all of its traffic is local; one behind the default route is the outside, and
//! nothing of it is counted.

use std::collections::HashMap;

use crate::source::{Counter, CounterKey, Owner, ProcessRef, Proto, Remote, Snapshot};

/// Traffic classes, in the kernel's order: `class = proto * 2 + local`.
pub const CLASSES: usize = 6;
const PROTOS: [Proto; 3] = [Proto::Tcp, Proto::Udp, Proto::Other];
const DIR_IN: usize = 0;
const DIR_OUT: usize = 1;

/// A key of the kernel's `procs` map (`struct proc_key` in netmon.bpf.c).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct ProcKey {
    pub tgid: u32,
    pub pad: u32,
    /// Start of the thread-group leader, ns since boot (suspend included).
    pub start_ns: u64,
}

/// A value of the kernel's `procs` map (`struct proc_info` in netmon.bpf.c).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcInfo {
    pub comm: [u8; 16],
    pub uid: u32,
    pub exited: u32,
    /// The cgroup v2 id of the process when its entry was made.
    pub cgroup_id: u64,
}

impl ProcInfo {
    pub fn has_exited(&self) -> bool {
        self.exited != 0
    }
    fn comm(&self) -> String {
        let end = self
            .comm
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.comm.len());
        String::from_utf8_lossy(&self.comm[..end]).into_owned()
    }
}

/// A key of the kernel's `traffic` map (`struct traffic_key` in netmon.bpf.c).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct TrafficKey {
    pub tgid: u32,
    /// Inode of the sockets' network namespace.
    pub netns: u32,
    pub start_ns: u64,
}

impl TrafficKey {
    pub fn proc(&self) -> ProcKey {
        ProcKey {
            tgid: self.tgid,
            pad: 0,
            start_ns: self.start_ns,
        }
    }
}

/// A value of the kernel's `traffic` map (`struct traffic` in netmon.bpf.c).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Traffic {
    /// `bytes[class][0]` received, `bytes[class][1]` sent, cumulative.
    pub bytes: [[u64; 2]; CLASSES],
}

/// Where a network namespace stands from the recorder's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The recorder's own namespace.
    Host,
    /// Linked to the recorder's namespace other than through its default route (a container).
    Linked,
    /// No link to the recorder's namespace (a sandbox, a rootless container behind a relay
    /// process), or gone before it could be placed: all of its traffic stays on this machine.
    Isolated,
    /// Behind the recorder's default route: the outside, not counted.
    Outside,
}

impl Scope {
    /// Whether a peer beyond this machine is network use from here.
    fn reaches_network(self) -> bool {
        matches!(self, Scope::Host | Scope::Linked)
    }
}

/// What /proc says about a live process whose start time matched the kernel's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proc {
    pub name: String,
    pub exe: Option<std::path::PathBuf>,
    pub uid: Option<u32>,
    pub cmdline: Option<String>,
    /// The container it runs in (its name where the engine's files say it, else its id).
    pub container: Option<String>,
}

/// What the tracker asks the OS (replaced in tests).
pub trait Os {
    /// A live process with this pid and start (clock ticks since boot), or `None` when no
    /// live process has that pid and start time (it exited, or the pid now names another one).
    fn process(&mut self, pid: u32, start_ticks: u64) -> Option<Proc>;
    /// Where namespace `netns` stands; `pid` is a process that had a socket in it.
    fn scope(&mut self, netns: u32, pid: u32) -> Scope;
    /// The container of a cgroup (v2 id), for a process that is gone from /proc.
    fn container_of_cgroup(&mut self, cgroup_id: u64) -> Option<String>;
}

struct Entry {
    scope: Scope,
    /// The last values handed out per output class: a counter never goes down within one key.
    last: [[u64; 2]; CLASSES],
}

/// Remembers, per kernel entry, who the process is and what was last reported.
pub struct Tracker {
    /// Prefix of every counter key: `ebpf/<map id>`. The map id is new with every load of the
    /// programs (unique within a boot), so counters of an earlier run, which started from zero
    /// in another map, can never be mistaken for these.
    prefix: String,
    /// Nanoseconds per clock tick, to turn the kernel's start time into /proc's `starttime`.
    ns_per_tick: u64,
    os: Box<dyn Os>,
    owners: HashMap<ProcKey, ProcessRef>,
    entries: HashMap<TrafficKey, Entry>,
    overflow_reason: String,
}

/// Everything one tick read from the kernel maps.
#[derive(Debug, Default, Clone)]
pub struct Maps {
    pub traffic: Vec<(TrafficKey, Traffic)>,
    pub procs: Vec<(ProcKey, ProcInfo)>,
    /// `[0]`: bytes of processes that found no room; `[1]`: TCP data kernel threads read.
    pub overflow: [Traffic; 2],
}

/// The result of one reading.
#[derive(Debug, Default)]
pub struct Reading {
    pub snapshot: Snapshot,
    /// Entries whose final values were emitted; delete them from the kernel maps.
    pub delete_traffic: Vec<TrafficKey>,
    pub delete_procs: Vec<ProcKey>,
}

const KERNEL_READ_REASON: &str =
    "TCP data read by the kernel itself (kTLS, sockmap), for no process it names";

impl Tracker {
    pub fn new(map_id: u32, ticks_per_second: u64, capacity: u32, os: Box<dyn Os>) -> Self {
        Tracker {
            prefix: format!("ebpf/{map_id}"),
            ns_per_tick: 1_000_000_000 / ticks_per_second.max(1),
            os,
            owners: HashMap::new(),
            entries: HashMap::new(),
            overflow_reason: format!(
                "more than {capacity} processes with traffic at once; the kernel table was full"
            ),
        }
    }

    /// Processes currently remembered.
    pub fn tracked(&self) -> usize {
        self.owners.len()
    }

    /// Turn one reading of the kernel maps into counters. A key may be listed twice (the
    /// kernel's key iteration can restart); the later value wins. `gone` lists processes the
    /// caller found dead without an exit mark (see `EbpfSource::sweep`): treated as exited.
    pub fn snapshot(&mut self, maps: Maps, gone: &[ProcKey]) -> Reading {
        let procs: HashMap<ProcKey, ProcInfo> = maps.procs.into_iter().collect();
        let mut latest: HashMap<TrafficKey, Traffic> = HashMap::with_capacity(maps.traffic.len());
        for (k, v) in maps.traffic {
            latest.insert(k, v);
        }
        let mut keys: Vec<TrafficKey> = latest.keys().copied().collect();
        keys.sort();

        let closed_proc =
            |pk: &ProcKey| procs.get(pk).is_some_and(ProcInfo::has_exited) || gone.contains(pk);
        let mut out = Reading::default();
        for key in keys {
            let Some(value) = latest.get(&key) else {
                continue;
            };
            let pk = key.proc();
            let closed = closed_proc(&pk);
            let info = procs.get(&pk);
            if !self.owners.contains_key(&pk) {
                let owner = self.identify(&pk, info);
                self.owners.insert(pk, owner);
            }
            let owner = self.owners.get(&pk).cloned();
            let os = &mut self.os;
            let entry = self.entries.entry(key).or_insert_with(|| Entry {
                scope: os.scope(key.netns, key.tgid),
                last: [[0; 2]; CLASSES],
            });
            if entry.scope != Scope::Outside {
                let reported = fold(&value.bytes, entry.scope);
                for (class, bytes) in reported.iter().enumerate() {
                    let last = &mut entry.last[class];
                    let now = [
                        bytes[DIR_IN].max(last[DIR_IN]),
                        bytes[DIR_OUT].max(last[DIR_OUT]),
                    ];
                    *last = now;
                    if now == [0, 0] {
                        continue;
                    }
                    let owner = match &owner {
                        Some(p) => Owner::Process(p.clone()),
                        None => Owner::Unattributed {
                            reason: "process unknown".into(),
                        },
                    };
                    out.snapshot.counters.push(Counter {
                        key: CounterKey(format!(
                            "{}/{}/{}/{}/{}",
                            self.prefix,
                            key.tgid,
                            key.start_ns,
                            key.netns,
                            class_name(class)
                        )),
                        owner,
                        remote: class_remote(class),
                        loopback: is_loopback_class(class),
                        bytes_in: now[DIR_IN],
                        bytes_out: now[DIR_OUT],
                        closed,
                        interface: None,
                    });
                }
            }
            if closed {
                self.entries.remove(&key);
                out.delete_traffic.push(key);
            }
        }
        // Processes whose entries are all closed now (or that never had one).
        let mut done: Vec<ProcKey> = procs.keys().filter(|pk| closed_proc(pk)).copied().collect();
        done.sort();
        for pk in done {
            self.owners.remove(&pk);
            out.delete_procs.push(pk);
        }

        for (slot, reason) in [(0, self.overflow_reason.as_str()), (1, KERNEL_READ_REASON)] {
            let name = if slot == 0 { "overflow" } else { "kernel" };
            for (class, bytes) in maps.overflow[slot].bytes.iter().enumerate() {
                if bytes[DIR_IN] == 0 && bytes[DIR_OUT] == 0 {
                    continue;
                }
                out.snapshot.counters.push(Counter {
                    key: CounterKey(format!("{}/{name}/{}", self.prefix, class_name(class))),
                    owner: Owner::Unattributed {
                        reason: reason.to_string(),
                    },
                    remote: class_remote(class),
                    loopback: is_loopback_class(class),
                    bytes_in: bytes[DIR_IN],
                    bytes_out: bytes[DIR_OUT],
                    closed: false,
                    interface: None,
                });
            }
        }
        out
    }

    /// Name a process once: from /proc while it lives (and its start time matches the
    /// kernel's), else from what the kernel recorded (the leader's comm, the uid that made the
    /// call, the cgroup it was in).
    fn identify(&mut self, key: &ProcKey, info: Option<&ProcInfo>) -> ProcessRef {
        let start_ticks = key.start_ns / self.ns_per_tick;
        let exited = info.is_some_and(ProcInfo::has_exited);
        let found = if exited {
            None
        } else {
            self.os.process(key.tgid, start_ticks)
        };
        let mut p = ProcessRef::new(key.tgid, info.map(ProcInfo::comm).unwrap_or_default());
        p.start_time = Some(start_ticks);
        p.uid = info.map(|i| i.uid);
        match found {
            Some(f) => {
                if !f.name.is_empty() {
                    p.name = f.name;
                }
                p.exe = f.exe;
                p.uid = f.uid.or(p.uid);
                p.cmdline = f.cmdline;
                p.container = f.container;
            }
            None => {
                p.container = info
                    .map(|i| i.cgroup_id)
                    .filter(|&id| id != 0)
                    .and_then(|id| self.os.container_of_cgroup(id));
            }
        }
        p
    }
}

/// The kernel's classes as reported for a namespace: where only this machine can be reached,
/// bytes to a peer "beyond" went to a process of this machine that carries them out, and are
/// local too.
fn fold(bytes: &[[u64; 2]; CLASSES], scope: Scope) -> [[u64; 2]; CLASSES] {
    if scope.reaches_network() {
        return *bytes;
    }
    let mut out = [[0u64; 2]; CLASSES];
    for proto in 0..CLASSES / 2 {
        for dir in [DIR_IN, DIR_OUT] {
            out[proto * 2 + 1][dir] =
                bytes[proto * 2][dir].saturating_add(bytes[proto * 2 + 1][dir]);
        }
    }
    out
}

fn class_name(class: usize) -> &'static str {
    match class {
        0 => "tcp",
        1 => "tcp-lo",
        2 => "udp",
        3 => "udp-lo",
        4 => "other",
        _ => "other-lo",
    }
}

/// Odd classes are the local half of each protocol (netmon.bpf.c: `proto * 2 + local`).
fn is_loopback_class(class: usize) -> bool {
    class % 2 == 1
}

/// Per-process counters have no remote; local ones carry a loopback remote (the traffic
/// stays on this machine), which is what the record loop filters on unless
/// `--include-loopback` is given.
fn class_remote(class: usize) -> Option<Remote> {
    is_loopback_class(class).then(|| Remote {
        proto: PROTOS[(class / 2).min(PROTOS.len() - 1)],
        host: "localhost".to_string(),
        addr: None,
        port: None,
        loopback: true,
    })
}

#[cfg(test)]
mod tests;
