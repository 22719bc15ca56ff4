//! The `sockdiag` source: per-connection TCP byte counters from the kernel's sock_diag
//! netlink interface, with no privileges needed.
//!
//! Each tick:
//! 1. Take the destroy notifications queued since the last tick (`netlink::DestroyListener`):
//!    the final counters of every TCP socket that closed, including connections that opened
//!    and closed between two ticks.
//! 2. Dump every TCP socket (IPv4 and IPv6) with its `tcp_info` (`netlink::Diag`).
//! 3. Find the process holding each socket through `/proc` (`owners`).
//! 4. Report one cumulative counter per socket, keyed by its cookie (`sockdiag/<hex>`, as
//!    `ss -e` prints it), with payload bytes (`payload`); closed sockets are reported once
//!    more with `closed: true` and their final figures, owned by the process learned from
//!    earlier dumps (destroy notifications carry no inode and no pid).
//!
//! A socket whose figures did not change is left out of the snapshot, except on the first
//! sample and every [`REPORT_ALL_EVERY`]: the delta engine remembers a counter that is
//! missing for far longer (`delta::Config::forget_after`) and resumes it from its last value,
//! so a quiet socket costs nothing downstream. The IPv4 or IPv6 dump is skipped when
//! `/proc/net/sockstat{,6}` counts no TCP socket of that family: a dump walks the whole
//! connection hash table (262,144 buckets on this 24 GiB machine) even when it is empty.
//!
//! Bytes whose process cannot be named go to an unattributed owner whose reason says why:
//! the connection closed before any dump saw it, the socket belongs to another user's
//! process (only root can read its descriptors), or its process exited before `/proc` was
//! read. A socket is one counter however many processes hold it, so nothing is counted twice.
//!
//! Only the caller's network namespace is visible: sock_diag answers for the namespace the
//! netlink socket was opened in.

mod netlink;
mod owners;
mod payload;

use std::collections::hash_map::Entry;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use crate::source::{
    Cancel, Counter, CounterKey, Error, Owner, Proto, Remote, Snapshot, Source, SourceKind,
    SourceOptions,
};

/// Maps and sets keyed by kernel-assigned integers (socket cookies, inodes, pids): FxHash,
/// the multiplicative hash rustc uses for its own integer maps. SipHash resists keys chosen
/// by an attacker; these are handed out by the kernel, and a tick looks up thousands.
pub(crate) type IdMap<K, V> = rustc_hash::FxHashMap<K, V>;
pub(crate) type IdSet<K> = rustc_hash::FxHashSet<K>;
use netlink::{DestroyListener, Diag, DiagError, Sock};
use owners::Owners;
use payload::Monotonic;

/// Unattributed reasons (the app row a user sees is "(unattributed: <reason>)").
const CLOSED_UNSEEN: &str = "TCP connection closed before its process was seen";
const EXITED_UNSEEN: &str = "process exited before it was seen";
const NOT_FOUND_UNPRIVILEGED: &str =
    "process exited before it was seen, or only root may inspect it";

/// How often every socket is reported, changed or not: well within the delta engine's memory
/// of a counter it has not seen (an hour by default).
pub const REPORT_ALL_EVERY: Duration = Duration::from_secs(600);

/// How many samples a socket that left the dump is remembered, waiting for its destroy
/// notification (the kernel sends it from a work queue, so it can arrive a tick late).
const GRACE_SAMPLES: u64 = 2;

/// What the source remembers of one socket between samples.
#[derive(Debug)]
struct Tracked {
    owner: Owner,
    reported: Monotonic,
    last_seen: u64,
    /// The figures last put in a snapshot.
    sent: (u64, u64),
}

/// The sock_diag source. See the module docs.
pub struct SockdiagSource {
    diag: Diag,
    destroy: Option<DestroyListener>,
    owners: Owners,
    sockets: IdMap<u64, Tracked>,
    samples: u64,
    notes: Vec<String>,
    /// Whether this process can read every process's descriptors.
    privileged: bool,
    my_uid: u32,
    live: Vec<Sock>,
    wanted: IdSet<u32>,
    last_report_all: Option<Instant>,
    /// /proc could not be listed at the last sample (warned once).
    proc_failing: bool,
}

impl SockdiagSource {
    /// Open the netlink sockets and start listening for destroy notifications. `udp_note`
    /// says why UDP is not counted (it depends on how the source was chosen).
    pub fn new(opts: &SourceOptions, udp_note: String) -> Result<Self, Error> {
        let unavailable = |e: DiagError| {
            Error::Unavailable(format!(
                "sock_diag TCP dumps do not work here ({e}); the kernel needs CONFIG_INET_DIAG \
                 and CONFIG_INET_TCP_DIAG (modules inet_diag and tcp_diag)"
            ))
        };
        let mut diag = Diag::open(opts.sample_timeout).map_err(unavailable)?;
        // One dump now, so a kernel without TCP diag is a clear error at start rather than
        // a tick that fails forever.
        diag.dump(true, false, &mut Vec::new())
            .map_err(unavailable)?;
        let mut notes = vec![
            udp_note,
            "TCP in other network namespaces (containers): --source ebpf counts every \
             namespace, or run netmon inside the namespace"
                .to_string(),
        ];
        let destroy = match DestroyListener::start() {
            Ok(d) => Some(d),
            Err(e) => {
                notes.push(format!(
                    "connections that open and close between two samples: the kernel refused \
                     the socket-destroy notifications ({e})"
                ));
                None
            }
        };
        // SAFETY: geteuid has no preconditions and cannot fail.
        let my_uid = unsafe { libc::geteuid() };
        // Reading pid 1's descriptors needs what reading any process's needs (root, or
        // CAP_SYS_PTRACE); in a container whose pid 1 is ours it is true and harmless.
        let privileged = std::fs::read_dir("/proc/1/fd").is_ok();
        if !privileged {
            notes.push(
                "the names of other users' processes: their bytes are recorded as \
                 unattributed (by uid); run as root to name them"
                    .to_string(),
            );
        }
        Ok(SockdiagSource {
            diag,
            destroy,
            owners: Owners::new("/proc"),
            sockets: IdMap::default(),
            samples: 0,
            notes,
            privileged,
            my_uid,
            live: Vec::new(),
            wanted: IdSet::default(),
            last_report_all: None,
            proc_failing: false,
        })
    }

    /// Who to credit with a socket seen in a dump; `None` when it is still `known`'s owner
    /// (nothing to copy).
    fn new_owner(&self, s: &Sock, known: Option<&Tracked>) -> Option<Owner> {
        let known_owner = known.map(|t| &t.owner);
        if s.inode != 0
            && let Some(p) = self.owners.owner_of(s.inode)
        {
            // Same process, same name: nothing to copy (names change on exec and prctl).
            if let Some(Owner::Process(k)) = known_owner
                && k.pid == p.pid
                && k.start_time == p.start_time
                && k.name == p.name
            {
                return None;
            }
            return Some(Owner::Process(p.clone()));
        }
        // No holder now: the process that held it before (it exited, or closed its copy
        // while the connection drains).
        if let Some(Owner::Process(_)) = known_owner {
            return None;
        }
        let reason = if s.inode == 0 {
            CLOSED_UNSEEN.to_string()
        } else if self.privileged {
            EXITED_UNSEEN.to_string()
        } else if s.uid != self.my_uid {
            format!(
                "socket of uid {}, whose processes only root can inspect",
                s.uid
            )
        } else {
            // The user's own processes that made themselves non-dumpable (ssh-agent, setuid
            // programs) are unreadable to the user too.
            NOT_FOUND_UNPRIVILEGED.to_string()
        };
        let owner = Owner::Unattributed { reason };
        (known_owner != Some(&owner)).then_some(owner)
    }
}

impl Source for SockdiagSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Sockdiag
    }

    fn blind_spots(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn sample(&mut self, cancel: &Cancel) -> Result<Snapshot, Error> {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let started = Instant::now();
        let cpu_start = thread_cpu();
        self.samples += 1;
        // Notifications first: a socket destroyed before the dump is not in it, so no socket
        // can be both live and closed in one snapshot.
        let closed = self.destroy.as_ref().map(|d| d.take()).unwrap_or_default();
        if closed.overflows > 0 || closed.dropped > 0 {
            warn!(
                overflows = closed.overflows,
                dropped = closed.dropped,
                "destroy notifications were lost: the last bytes of some closed connections \
                 are not counted"
            );
        }
        let mut live = std::mem::take(&mut self.live);
        live.clear();
        let v4 = tcp_in_use(Path::new("/proc/net/sockstat"), "TCP:") != Some(0);
        let v6 = tcp_in_use(Path::new("/proc/net/sockstat6"), "TCP6:") != Some(0);
        self.diag.dump(v4, v6, &mut live).map_err(diag_error)?;
        let dumped = started.elapsed();
        let dump_cpu = thread_cpu().saturating_sub(cpu_start);

        let mut wanted = std::mem::take(&mut self.wanted);
        wanted.clear();
        wanted.extend(live.iter().map(|s| s.inode).filter(|&i| i != 0));
        // Without /proc the bytes are still counted, as unattributed: better than no tick.
        match self.owners.refresh(&wanted, Instant::now()) {
            Ok(()) => self.proc_failing = false,
            Err(e) if !self.proc_failing => {
                warn!(error = %e, "cannot read /proc: processes are not named until it can be read");
                self.proc_failing = true;
            }
            Err(_) => {}
        }
        self.wanted = wanted;

        let now = Instant::now();
        let report_all = self
            .last_report_all
            .is_none_or(|t| now.duration_since(t) >= REPORT_ALL_EVERY);
        if report_all {
            self.last_report_all = Some(now);
        }
        let closed_cookies: IdSet<u64> = closed.socks.iter().map(|s| s.cookie).collect();
        let mut counters = Vec::new();
        for s in &live {
            if closed_cookies.contains(&s.cookie) {
                continue;
            }
            let Some(c) = &s.counters else { continue };
            let (bytes_in, bytes_out) = payload::payload(c, s.state, false);
            let owner = self.new_owner(s, self.sockets.get(&s.cookie));
            let t = match (self.sockets.entry(s.cookie), owner) {
                (Entry::Occupied(e), owner) => {
                    let t = e.into_mut();
                    if let Some(owner) = owner {
                        t.owner = owner;
                    }
                    t
                }
                (Entry::Vacant(e), owner) => e.insert(Tracked {
                    owner: owner.unwrap_or_else(|| Owner::Unattributed {
                        reason: EXITED_UNSEEN.into(),
                    }),
                    reported: Monotonic::default(),
                    last_seen: 0,
                    sent: (0, 0),
                }),
            };
            t.last_seen = self.samples;
            let figures = t.reported.update(bytes_in, bytes_out);
            if figures != t.sent || report_all {
                t.sent = figures;
                counters.push(counter(s, t.owner.clone(), figures.0, figures.1, false));
            }
        }
        let mut unseen_closed = 0usize;
        for s in &closed.socks {
            let Some(c) = &s.counters else { continue };
            let (bytes_in, bytes_out) = payload::payload(c, s.state, true);
            let (owner, bytes_in, bytes_out) = match self.sockets.remove(&s.cookie) {
                Some(mut t) => {
                    let (i, o) = t.reported.update(bytes_in, bytes_out);
                    (t.owner, i, o)
                }
                None if bytes_in == 0 && bytes_out == 0 => continue,
                None => {
                    unseen_closed += 1;
                    let reason = CLOSED_UNSEEN.to_string();
                    (Owner::Unattributed { reason }, bytes_in, bytes_out)
                }
            };
            counters.push(counter(s, owner, bytes_in, bytes_out, true));
        }
        let horizon = self.samples.saturating_sub(GRACE_SAMPLES);
        self.sockets.retain(|_, t| t.last_seen > horizon);
        self.live = live;
        debug!(
            sockets = self.live.len(),
            closed = closed.socks.len(),
            closed_unseen = unseen_closed,
            processes = self.owners.last.processes,
            fd_dirs_read = self.owners.last.fd_dirs_read,
            listed = self.owners.last.listed,
            searched = self.owners.last.searched,
            reread = self.owners.last.reread,
            dump_us = dumped.as_micros() as u64,
            dump_cpu_us = dump_cpu.as_micros() as u64,
            took_us = started.elapsed().as_micros() as u64,
            cpu_us = thread_cpu().saturating_sub(cpu_start).as_micros() as u64,
            "sockdiag sample"
        );
        Ok(Snapshot { counters })
    }
}

/// CPU time this thread has used (user + system), for the per-sample debug line.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec that lives across the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// `inuse` of the TCP line of /proc/net/sockstat (`TCP:`) or sockstat6 (`TCP6:`): the
/// sockets of this network namespace in the hash tables a dump walks. `None` when unreadable.
fn tcp_in_use(path: &Path, label: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(label))?;
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == "inuse" {
            return words.next()?.parse().ok();
        }
    }
    None
}

fn counter(s: &Sock, owner: Owner, bytes_in: u64, bytes_out: u64, closed: bool) -> Counter {
    let remote = remote(&s.local, &s.remote);
    Counter {
        key: CounterKey(format!("sockdiag/{:x}", s.cookie)),
        owner,
        loopback: remote.loopback,
        remote: Some(remote),
        bytes_in,
        bytes_out,
        closed,
        interface: None,
    }
}

/// The remote end; a connection between two addresses of this machine is loopback traffic
/// (Linux routes it over `lo` whatever the address).
fn remote(local: &SocketAddr, remote: &SocketAddr) -> Remote {
    let ip = remote.ip();
    Remote {
        proto: Proto::Tcp,
        host: ip.to_string(),
        addr: Some(ip),
        port: Some(remote.port()),
        loopback: ip.is_loopback() || local.ip().is_loopback() || ip == local.ip(),
    }
}

fn diag_error(e: DiagError) -> Error {
    match e {
        DiagError::Io(e) => Error::Io(e),
        DiagError::Timeout(timeout) => Error::Timeout {
            tool: "sock_diag".into(),
            timeout,
        },
        other => Error::Io(std::io::Error::other(other.to_string())),
    }
}

#[cfg(test)]
mod tests;
