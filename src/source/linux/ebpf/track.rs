//! From the kernel's per-process entries to counters: pure, so it is tested without eBPF.
//!
//! Each tick the loader hands over every entry of the `procs` map (and the overflow entry);
//! [`Tracker::snapshot`] turns them into one [`Counter`] per process and traffic class (TCP,
//! UDP, other IP protocols; network or loopback), names each process once (from /proc while it
//! lives, else from what the kernel recorded), and says which entries to delete: those whose
//! process has exited (their values are final and are emitted once with `closed: true`).

use std::collections::HashMap;

use crate::source::{Counter, CounterKey, Owner, ProcessRef, Proto, Remote, Snapshot};

/// Traffic classes, in the kernel's order: `class = proto * 2 + loopback`.
pub const CLASSES: usize = 6;
const PROTOS: [Proto; 3] = [Proto::Tcp, Proto::Udp, Proto::Other];
const DIR_IN: usize = 0;
const DIR_OUT: usize = 1;

/// A key of the kernel's `procs` map (`struct proc_key` in netmon.bpf.c).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Key {
    pub tgid: u32,
    pub pad: u32,
    /// Start of the thread-group leader, ns since boot (suspend included).
    pub start_ns: u64,
}

/// A value of the kernel's `procs` map (`struct proc_val` in netmon.bpf.c).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Value {
    /// `bytes[class][0]` received, `bytes[class][1]` sent, cumulative.
    pub bytes: [[u64; 2]; CLASSES],
    pub comm: [u8; 16],
    pub uid: u32,
    pub exited: u32,
}

impl Value {
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

/// What /proc says about a live process whose start time matched the kernel's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proc {
    pub name: String,
    pub exe: Option<std::path::PathBuf>,
    pub uid: Option<u32>,
    pub cmdline: Option<String>,
}

/// Asks the OS about a process: `(pid, start in clock ticks)` → its facts, or `None` when no
/// live process has that pid and start time (it exited, or the pid now names another one).
pub type Lookup = Box<dyn FnMut(u32, u64) -> Option<Proc>>;

struct Known {
    owner: ProcessRef,
    /// The last values handed out per class: a counter never goes down within one key.
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
    lookup: Lookup,
    known: HashMap<Key, Known>,
    overflow_reason: String,
}

/// The result of one reading.
#[derive(Debug, Default)]
pub struct Reading {
    pub snapshot: Snapshot,
    /// Entries whose final values were emitted; delete them from the kernel map.
    pub delete: Vec<Key>,
}

impl Tracker {
    pub fn new(map_id: u32, ticks_per_second: u64, capacity: u32, lookup: Lookup) -> Self {
        Tracker {
            prefix: format!("ebpf/{map_id}"),
            ns_per_tick: 1_000_000_000 / ticks_per_second.max(1),
            lookup,
            known: HashMap::new(),
            overflow_reason: format!(
                "more than {capacity} processes with traffic at once; the kernel table was full"
            ),
        }
    }

    /// Processes currently remembered.
    pub fn tracked(&self) -> usize {
        self.known.len()
    }

    /// Turn one reading of the kernel maps into counters. `entries` may hold a key twice
    /// (the kernel's key iteration can restart); the later value wins. `gone` lists entries
    /// the caller found dead without an exit mark (see `EbpfSource::sweep`): treated as exited.
    pub fn snapshot(
        &mut self,
        entries: Vec<(Key, Value)>,
        overflow: Value,
        gone: &[Key],
    ) -> Reading {
        let mut latest: HashMap<Key, Value> = HashMap::with_capacity(entries.len());
        for (k, v) in entries {
            latest.insert(k, v);
        }
        let mut keys: Vec<Key> = latest.keys().copied().collect();
        keys.sort_by_key(|k| (k.tgid, k.start_ns));

        let mut out = Reading::default();
        for key in keys {
            let Some(value) = latest.get(&key) else {
                continue;
            };
            let closed = value.has_exited() || gone.contains(&key);
            let known = self.known.entry(key).or_insert_with(|| Known {
                owner: identify(&key, value, self.ns_per_tick, &mut self.lookup),
                last: [[0; 2]; CLASSES],
            });
            for (class, bytes) in value.bytes.iter().enumerate() {
                let last = &mut known.last[class];
                let now = [
                    bytes[DIR_IN].max(last[DIR_IN]),
                    bytes[DIR_OUT].max(last[DIR_OUT]),
                ];
                *last = now;
                if now == [0, 0] {
                    continue;
                }
                out.snapshot.counters.push(Counter {
                    key: CounterKey(format!(
                        "{}/{}/{}/{}",
                        self.prefix,
                        key.tgid,
                        key.start_ns,
                        class_name(class)
                    )),
                    owner: Owner::Process(known.owner.clone()),
                    remote: class_remote(class),
                    loopback: is_loopback_class(class),
                    bytes_in: now[DIR_IN],
                    bytes_out: now[DIR_OUT],
                    closed,
                });
            }
            if closed {
                self.known.remove(&key);
                out.delete.push(key);
            }
        }

        for (class, bytes) in overflow.bytes.iter().enumerate() {
            if bytes[DIR_IN] == 0 && bytes[DIR_OUT] == 0 {
                continue;
            }
            out.snapshot.counters.push(Counter {
                key: CounterKey(format!("{}/overflow/{}", self.prefix, class_name(class))),
                owner: Owner::Unattributed {
                    reason: self.overflow_reason.clone(),
                },
                remote: class_remote(class),
                loopback: is_loopback_class(class),
                bytes_in: bytes[DIR_IN],
                bytes_out: bytes[DIR_OUT],
                closed: false,
            });
        }
        out
    }
}

/// Name a process once: from /proc while it lives (and its start time matches the kernel's),
/// else from what the kernel recorded (the leader's comm and the uid that made the call).
fn identify(key: &Key, value: &Value, ns_per_tick: u64, lookup: &mut Lookup) -> ProcessRef {
    let start_ticks = key.start_ns / ns_per_tick;
    let found = if value.has_exited() {
        None
    } else {
        lookup(key.tgid, start_ticks)
    };
    let mut p = ProcessRef::new(key.tgid, value.comm());
    p.start_time = Some(start_ticks);
    p.uid = Some(value.uid);
    if let Some(f) = found {
        if !f.name.is_empty() {
            p.name = f.name;
        }
        p.exe = f.exe;
        p.uid = f.uid.or(p.uid);
        p.cmdline = f.cmdline;
    }
    p
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

/// Odd classes are the loopback half of each protocol (netmon.bpf.c: `proto * 2 + loopback`).
fn is_loopback_class(class: usize) -> bool {
    class % 2 == 1
}

/// Per-process counters have no remote; loopback ones carry a loopback remote, which is what
/// the record loop filters on unless `--include-loopback` is given.
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
