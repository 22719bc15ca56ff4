//! The `ebpf` source: exact per-process TCP and UDP payload bytes, counted in the kernel.
//!
//! Small kernel programs (`netmon.bpf.c`, compiled by clang in `build.rs`) run on the socket
//! layer's `sock_send_length` and `sock_recv_length` tracepoints, in the process that makes the
//! call, and add each call's byte count to that process's entry in a kernel hash map; a third
//! program marks an entry when its process exits. Each tick this module reads the map
//! synchronously (a few syscalls per process; no async runtime, no ring buffer), and
//! [`track::Tracker`] turns the entries into cumulative per-process counters; entries of
//! exited processes are emitted once with `closed: true`, then deleted.
//!
//! Loading: aya, a pure-Rust loader that applies the CO-RE relocations of the clang-built
//! object against the kernel's BTF, so the build needs clang and nothing else (no libbpf, no
//! libelf, no bpftool). Attaching: raw tracepoints by name, which need neither tracefs nor
//! kprobes nor fentry.
//!
//! Needs: Linux 6.3 or newer (the tracepoints), BTF (`/sys/kernel/btf/vmlinux`), and root or
//! CAP_BPF + CAP_PERFMON. Counts the sockets of the recorder's own network namespace.

mod track;

use std::time::{Duration, Instant};

use tracing::{debug, warn};

use crate::source::{Cancel, Error, Snapshot, Source, SourceKind, SourceOptions};

pub use track::{Key, Lookup, Proc, Tracker, Value};

/// Entries the kernel table holds: processes with traffic that are alive (or exited and not
/// yet read) at once. Beyond that, bytes go to an unattributed overflow counter.
pub const CAPACITY: u32 = 16384;

/// How often entries are checked against /proc for processes that died without an exit mark
/// (which the exit program makes impossible, short of a kernel that skips the tracepoint).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The Linux eBPF source. See the module docs.
pub struct EbpfSource {
    loaded: loader::Loaded,
    tracker: Tracker,
    /// The first reading is empty: every counter then counts from zero on the next one, so
    /// the bytes moved between loading and the first tick are counted, not taken as baseline.
    started: bool,
    /// /proc names the same pids as the kernel (this process is in the initial pid namespace).
    same_pids: bool,
    last_sweep: Instant,
}

impl EbpfSource {
    /// Load and attach the programs. `Error::Unavailable` says why they cannot run here and
    /// what to do (run as root, a newer kernel, rebuild with clang, or another source).
    pub fn new(_opts: &SourceOptions) -> Result<Self, Error> {
        let loaded = loader::Loaded::load()?;
        let same_pids = in_initial_pid_namespace();
        let lookup: Lookup = if same_pids {
            Box::new(proc_lookup)
        } else {
            Box::new(|_, _| None)
        };
        let tracker = Tracker::new(loaded.map_id(), ticks_per_second(), CAPACITY, lookup);
        debug!(
            map_id = loaded.map_id(),
            netns = loaded.netns(),
            same_pids,
            "ebpf programs attached"
        );
        Ok(EbpfSource {
            loaded,
            tracker,
            started: false,
            same_pids,
            last_sweep: Instant::now(),
        })
    }
}

impl Source for EbpfSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Ebpf
    }

    fn blind_spots(&self) -> Vec<String> {
        vec![
            "traffic of processes in other network namespaces (containers): \
             run netmon inside that namespace to count it"
                .to_string(),
        ]
    }

    fn sample(&mut self, cancel: &Cancel) -> Result<Snapshot, Error> {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        if !self.started {
            self.started = true;
            return Ok(Snapshot::default());
        }
        let mut entries = self.loaded.entries()?;
        let gone = if self.same_pids && self.last_sweep.elapsed() >= SWEEP_EVERY {
            self.last_sweep = Instant::now();
            sweep(&entries, ticks_per_second())
        } else {
            Vec::new()
        };
        // Entries about to be closed are read once more, now that their process is gone and
        // nothing can change them: the reading above may have copied the counters just
        // before a last add landed (and an exit mark just after it), or, for one the sweep
        // found gone, before the process moved its last bytes and exited.
        for (key, value) in entries.iter_mut() {
            if (value.has_exited() || gone.contains(key))
                && let Some(v) = self.loaded.get(key)?
            {
                *value = v;
            }
        }
        let overflow = self.loaded.overflow()?;
        let reading = self.tracker.snapshot(entries, overflow, &gone);
        for key in &reading.delete {
            self.loaded.remove(key);
        }
        debug!(
            processes = self.tracker.tracked(),
            counters = reading.snapshot.counters.len(),
            exited = reading.delete.len(),
            "ebpf maps read"
        );
        Ok(reading.snapshot)
    }
}

/// Entries whose process is no longer in /proc under the same start time, though the kernel
/// never marked them exited. Their values are final: emit them as closed and free the room.
fn sweep(entries: &[(Key, Value)], ticks_per_second: u64) -> Vec<Key> {
    let ns_per_tick = 1_000_000_000 / ticks_per_second.max(1);
    let gone: Vec<Key> = entries
        .iter()
        .filter(|(k, v)| !v.has_exited() && proc_start(k.tgid) != Some(k.start_ns / ns_per_tick))
        .map(|(k, _)| *k)
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

/// The inode of this process's network namespace: the programs count only its sockets.
#[cfg_attr(not(netmon_ebpf), allow(dead_code))]
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

    use aya::maps::{Array, HashMap, Map, MapData};
    use aya::programs::RawTracePoint;
    use aya::{Ebpf, EbpfLoader};
    use tracing::warn;

    use super::{CAPACITY, FALLBACK, Key, Value, own_netns};
    use crate::source::Error;

    // SAFETY: both are `repr(C)` structs of integers and byte arrays with no padding the
    // kernel does not also write (`Key::pad` is explicit), valid for any bit pattern.
    unsafe impl aya::Pod for Key {}
    unsafe impl aya::Pod for Value {}

    static OBJECT: &[u8] = include_bytes!(env!("NETMON_BPF_OBJECT"));

    /// (program, tracepoint) pairs; the exit program goes first so no entry can miss its mark.
    const PROGRAMS: [(&str, &str); 3] = [
        ("netmon_exit", "sched_process_exit"),
        ("netmon_send", "sock_send_length"),
        ("netmon_recv", "sock_recv_length"),
    ];

    pub struct Loaded {
        /// Owns the programs and their links: dropping it detaches everything.
        _ebpf: Ebpf,
        procs: HashMap<MapData, Key, Value>,
        overflow: Array<MapData, Value>,
        map_id: u32,
        netns: u32,
    }

    impl Loaded {
        pub fn load() -> Result<Self, Error> {
            preflight()?;
            let netns = own_netns()?;
            let mut ebpf = EbpfLoader::new()
                .override_global("target_netns", &netns, true)
                .map_max_entries("procs", CAPACITY)
                .load(OBJECT)
                .map_err(|e| refused("loading the eBPF programs", &e))?;
            for (name, tracepoint) in PROGRAMS {
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
            }
            let procs_map = ebpf
                .take_map("procs")
                .ok_or_else(|| bug("map procs is missing from the object".into()))?;
            let map_id = match &procs_map {
                Map::HashMap(data) => data
                    .info()
                    .map(|i| i.id())
                    .map_err(|e| bug(format!("reading the id of map procs: {e}")))?,
                _ => return Err(bug("map procs is not a hash map".into())),
            };
            let procs: HashMap<MapData, Key, Value> =
                HashMap::try_from(procs_map).map_err(|e| bug(format!("map procs: {e}")))?;
            let overflow: Array<MapData, Value> = Array::try_from(
                ebpf.take_map("overflow")
                    .ok_or_else(|| bug("map overflow is missing from the object".into()))?,
            )
            .map_err(|e| bug(format!("map overflow: {e}")))?;
            Ok(Loaded {
                _ebpf: ebpf,
                procs,
                overflow,
                map_id,
                netns,
            })
        }

        pub fn map_id(&self) -> u32 {
            self.map_id
        }

        pub fn netns(&self) -> u32 {
            self.netns
        }

        /// Every entry of the per-process map, as it is now.
        pub fn entries(&self) -> Result<Vec<(Key, Value)>, Error> {
            let mut out = Vec::new();
            for item in self.procs.iter() {
                let (k, v) = item.map_err(|e| read_failed("procs", &e))?;
                out.push((k, v));
            }
            Ok(out)
        }

        pub fn get(&self, key: &Key) -> Result<Option<Value>, Error> {
            match self.procs.get(key, 0) {
                Ok(v) => Ok(Some(v)),
                Err(aya::maps::MapError::KeyNotFound) => Ok(None),
                Err(e) => Err(read_failed("procs", &e)),
            }
        }

        pub fn overflow(&self) -> Result<Value, Error> {
            self.overflow
                .get(&0, 0)
                .map_err(|e| read_failed("overflow", &e))
        }

        pub fn remove(&mut self, key: &Key) {
            match self.procs.remove(key) {
                Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => warn!(tgid = key.tgid, error = %e, "could not delete a map entry"),
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
    use super::{FALLBACK, Key, Value};
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
        pub fn netns(&self) -> u32 {
            match *self {}
        }
        pub fn entries(&self) -> Result<Vec<(Key, Value)>, Error> {
            match *self {}
        }
        pub fn get(&self, _key: &Key) -> Result<Option<Value>, Error> {
            match *self {}
        }
        pub fn overflow(&self) -> Result<Value, Error> {
            match *self {}
        }
        pub fn remove(&mut self, _key: &Key) {
            match *self {}
        }
    }
}
