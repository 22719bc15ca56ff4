//! Which process holds which socket: socket inodes found in `/proc/<pid>/fd`, kept up to
//! date incrementally, because reading every descriptor of every process each tick would
//! cost more than everything else a tick does (one readlink per descriptor: about 80 ms for
//! the 700 processes of this machine, browsers included).
//!
//! Each tick, with the set of socket inodes the dump returned:
//! - `/proc` is listed, unless `/proc/loadavg` shows that no task was created or exited
//!   since the last listing (its last allocated pid and its task count are both unchanged).
//!   Processes that are gone are forgotten with their sockets.
//! - New processes have their descriptors read: a forked child holds its parent's sockets.
//! - When the dump has sockets no known process holds (a process made a new socket), other
//!   processes are read, those that made sockets most recently first, then the youngest,
//!   at most [`SEARCH_BUDGET`] a tick; a search goes on over the next ticks until
//!   every process has been read once since the socket appeared, and an inode still not found
//!   (another user's process, or its process exited) is then left to the rolling re-read.
//! - A rolling re-read goes over every process once per [`REREAD_EVERY`], the ones read
//!   longest ago first, a slice each tick: it catches sockets passed between running
//!   processes over UNIX sockets (SCM_RIGHTS) and copies a process closed.
//!
//! A process is identified by pid *and* start time: whenever it is read, its start time is
//! checked, so a reused pid is a new process. Its name, executable, uid and command line are
//! read when it is first found holding a socket, and its name once more a tick later (a
//! forked child often renames itself right after fork).
//!
//! A socket held by several processes (inherited across fork, passed over a UNIX socket) is
//! credited to the most recently started of them: the one that received it, which is the
//! one that uses it in the common cases (a forked worker, a service started by its socket
//! manager). It is counted once either way: bytes are per socket, not per holder.

use std::cmp::Reverse;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::source::ProcessRef;

use super::{IdMap, IdSet};

/// Every process's descriptors are read again within this time.
pub const REREAD_EVERY: Duration = Duration::from_secs(300);
/// Most processes read in one tick to look for sockets no known process holds (new
/// processes are always read, and do not count).
pub const SEARCH_BUDGET: usize = 128;

/// Search order: latest socket maker, then youngest, then read longest ago; then the pid.
type SearchOrder = (Reverse<u64>, Reverse<u64>, Option<Instant>, u32);

/// What is known about one live process.
#[derive(Debug, Default)]
struct Proc {
    /// Start time (clock ticks after boot), read when it was first found holding a socket.
    start_time: Option<u64>,
    info: Option<ProcessRef>,
    /// Socket inodes of interest it held when last read.
    inodes: Vec<u32>,
    /// Its descriptors could not be read (another user's process, without privileges).
    unreadable: bool,
    /// Read its name again on the next tick.
    recheck: bool,
    /// Tick at which it was last found holding a socket not seen before.
    found_new_at: u64,
    /// When its descriptors were last read.
    read_at: Option<Instant>,
    /// Tick at which it first appeared in a listing.
    first_seen: u64,
}

/// Socket inode → holding processes, maintained from `/proc`.
pub struct Owners {
    root: PathBuf,
    procs: IdMap<u32, Proc>,
    holders: IdMap<u32, Vec<u32>>,
    /// Inodes without a known holder, and since when they are searched for.
    searching: IdMap<u32, Instant>,
    /// Inodes searched for in every process without success.
    not_found: IdSet<u32>,
    reread_every: Duration,
    last_refresh: Option<Instant>,
    /// `/proc/loadavg`'s (task count, last pid) at the last listing.
    listed_at: Option<(u64, u64)>,
    tick: u64,
    /// Counters of the last refresh, for logs and tests.
    pub last: RefreshStats,
}

/// What one refresh did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RefreshStats {
    pub processes: usize,
    /// `/proc` was listed (a task was created or exited since the last listing).
    pub listed: bool,
    /// Descriptor directories read: new processes, searches and the rolling re-read.
    pub fd_dirs_read: usize,
    pub searched: usize,
    pub reread: usize,
    pub unreadable: usize,
}

impl Owners {
    /// Owners read from `root` (normally `/proc`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Owners {
            root: root.into(),
            procs: IdMap::default(),
            holders: IdMap::default(),
            searching: IdMap::default(),
            not_found: IdSet::default(),
            reread_every: REREAD_EVERY,
            last_refresh: None,
            listed_at: None,
            tick: 0,
            last: RefreshStats::default(),
        }
    }

    #[cfg(test)]
    pub fn with_reread_every(mut self, d: Duration) -> Self {
        self.reread_every = d;
        self
    }

    /// Bring the map up to date for the socket inodes in `wanted` (those of the dump).
    pub fn refresh(&mut self, wanted: &IdSet<u32>, now: Instant) -> io::Result<()> {
        self.tick += 1;
        let mut stats = RefreshStats::default();
        // Read before listing, so a task created during the listing shows up next time.
        let stamp = read_loadavg(&self.root);
        if self.last_refresh.is_none() || stamp.is_none() || stamp != self.listed_at {
            let pids = list_pids(&self.root)?;
            self.listed_at = stamp;
            stats.listed = true;
            let live: IdSet<u32> = pids.iter().copied().collect();
            let gone: Vec<u32> = self
                .procs
                .keys()
                .filter(|p| !live.contains(p))
                .copied()
                .collect();
            for pid in gone {
                self.forget(pid);
            }
            for pid in pids {
                let tick = self.tick;
                self.procs.entry(pid).or_insert_with(|| Proc {
                    first_seen: tick,
                    ..Proc::default()
                });
            }
        }
        stats.processes = self.procs.len();

        // Sockets that closed are of no more interest.
        self.holders.retain(|i, _| wanted.contains(i));
        for p in self.procs.values_mut() {
            p.inodes.retain(|i| wanted.contains(i));
        }
        self.not_found.retain(|i| wanted.contains(i));

        // A name read just after the process started may change once more (prctl after fork).
        let recheck: Vec<u32> = self
            .procs
            .iter()
            .filter(|(_, p)| p.recheck)
            .map(|(pid, _)| *pid)
            .collect();
        for pid in recheck {
            if let Some(p) = self.procs.get_mut(&pid) {
                p.recheck = false;
            }
            if self.check_identity(pid) {
                // The pid was reused: what the old process held says nothing of the new one.
                self.read_fds(pid, wanted, now);
                stats.fd_dirs_read += 1;
            }
        }

        // New processes (never read).
        let fresh: Vec<u32> = self
            .procs
            .iter()
            .filter(|(_, p)| p.read_at.is_none())
            .map(|(pid, _)| *pid)
            .collect();
        for pid in fresh {
            self.read_fds(pid, wanted, now);
            stats.fd_dirs_read += 1;
        }

        self.search(wanted, now, &mut stats);
        self.reread(wanted, now, &mut stats);
        self.last_refresh = Some(now);
        stats.unreadable = self.procs.values().filter(|p| p.unreadable).count();
        self.last = stats;
        Ok(())
    }

    /// Look for the holders of sockets no known process holds, within the tick's budget.
    fn search(&mut self, wanted: &IdSet<u32>, now: Instant, stats: &mut RefreshStats) {
        let mut missing: Vec<u32> = wanted
            .iter()
            .filter(|i| !self.holders.contains_key(i) && !self.not_found.contains(i))
            .copied()
            .collect();
        self.searching.retain(|i, _| missing.contains(i));
        if missing.is_empty() {
            return;
        }
        for &i in &missing {
            self.searching.entry(i).or_insert(now);
        }
        // Processes read since the oldest search began have been searched already.
        let since = self.searching.values().min().copied().unwrap_or(now);
        // Likeliest first: processes that made sockets lately, then the youngest.
        let mut candidates: Vec<SearchOrder> = self
            .procs
            .iter()
            .filter(|(_, p)| !p.unreadable && p.read_at.is_none_or(|t| t < since))
            .map(|(pid, p)| {
                (
                    Reverse(p.found_new_at),
                    Reverse(p.first_seen),
                    p.read_at,
                    *pid,
                )
            })
            .collect();
        candidates.sort_unstable();
        for (_, _, _, pid) in candidates.into_iter().take(SEARCH_BUDGET) {
            self.read_fds(pid, wanted, now);
            stats.fd_dirs_read += 1;
            stats.searched += 1;
            missing.retain(|i| !self.holders.contains_key(i));
            if missing.is_empty() {
                break;
            }
        }
        // An inode that appeared before every readable process was last read has been looked
        // for everywhere: stop searching for it.
        let mut all_read = true;
        let mut everyone_read_at: Option<Instant> = None;
        for p in self.procs.values().filter(|p| !p.unreadable) {
            match p.read_at {
                None => all_read = false,
                Some(t) => everyone_read_at = Some(everyone_read_at.map_or(t, |e| e.min(t))),
            }
        }
        for i in missing {
            let start = self.searching.get(&i).copied().unwrap_or(now);
            if all_read && everyone_read_at.is_none_or(|t| start <= t) {
                self.searching.remove(&i);
                self.not_found.insert(i);
            }
        }
    }

    /// Read again the processes read longest ago: all of them once per `reread_every`.
    fn reread(&mut self, wanted: &IdSet<u32>, now: Instant, stats: &mut RefreshStats) {
        let Some(last) = self.last_refresh else {
            return;
        };
        let share = self.procs.len() as f64 * now.duration_since(last).as_secs_f64()
            / self.reread_every.as_secs_f64();
        let mut due: Vec<(Option<Instant>, u32)> = self
            .procs
            .iter()
            .filter(|(_, p)| p.read_at.is_some_and(|t| t < now))
            .map(|(pid, p)| (p.read_at, *pid))
            .collect();
        // Whatever is overdue, and at least this tick's share.
        let overdue = due
            .iter()
            .filter(|(t, _)| t.is_some_and(|t| now.duration_since(t) >= self.reread_every))
            .count();
        let n = overdue.max(share.ceil() as usize).min(due.len());
        if n == 0 {
            return;
        }
        due.select_nth_unstable(n - 1);
        for (_, pid) in due.into_iter().take(n) {
            self.read_fds(pid, wanted, now);
            stats.fd_dirs_read += 1;
            stats.reread += 1;
        }
    }

    /// The process to credit with the socket `inode`, if a holder is known.
    pub fn owner_of(&self, inode: u32) -> Option<&ProcessRef> {
        let pids = self.holders.get(&inode)?;
        pids.iter()
            .filter_map(|pid| {
                let p = self.procs.get(pid)?;
                Some((p.start_time.unwrap_or(0), *pid, p.info.as_ref()?))
            })
            .max_by_key(|(start, pid, _)| (*start, *pid))
            .map(|(_, _, info)| info)
    }

    /// How many processes hold `inode`.
    #[cfg(test)]
    pub fn holder_count(&self, inode: u32) -> usize {
        self.holders.get(&inode).map_or(0, Vec::len)
    }

    fn forget(&mut self, pid: u32) {
        if let Some(p) = self.procs.remove(&pid) {
            for inode in p.inodes {
                self.unhold(inode, pid);
            }
        }
    }

    fn unhold(&mut self, inode: u32, pid: u32) {
        if let Some(h) = self.holders.get_mut(&inode) {
            h.retain(|&x| x != pid);
            if h.is_empty() {
                self.holders.remove(&inode);
            }
        }
    }

    /// Read the descriptors of `pid` and record which wanted sockets it holds.
    fn read_fds(&mut self, pid: u32, wanted: &IdSet<u32>, now: Instant) {
        if let Some(p) = self.procs.get_mut(&pid) {
            p.read_at = Some(now);
        }
        let found = match socket_inodes(&self.root.join(pid.to_string()).join("fd"), wanted) {
            Ok(found) => found,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                if let Some(p) = self.procs.get_mut(&pid) {
                    p.unreadable = true;
                }
                return;
            }
            Err(_) => {
                // Exited since the listing.
                self.forget(pid);
                return;
            }
        };
        let old = self
            .procs
            .get(&pid)
            .map(|p| p.inodes.clone())
            .unwrap_or_default();
        let new_socket = found
            .iter()
            .any(|i| !old.contains(i) && !self.holders.contains_key(i));
        for &i in &old {
            if !found.contains(&i) {
                self.unhold(i, pid);
            }
        }
        for &i in &found {
            if !old.contains(&i) {
                self.holders.entry(i).or_default().push(pid);
            }
        }
        let holds = !found.is_empty();
        if let Some(p) = self.procs.get_mut(&pid) {
            p.inodes = found;
            p.unreadable = false;
            if new_socket {
                p.found_new_at = self.tick;
            }
        }
        if holds {
            self.check_identity(pid);
        }
    }

    /// Read the process's start time and name; read the rest when it is new to us, its pid
    /// was reused, or it changed its name (exec, prctl). True when the pid was reused.
    fn check_identity(&mut self, pid: u32) -> bool {
        let dir = self.root.join(pid.to_string());
        let Some((start, comm)) = read_stat(&dir) else {
            self.forget(pid);
            return false;
        };
        let Some(p) = self.procs.get_mut(&pid) else {
            return false;
        };
        let reused = p.start_time.is_some_and(|s| s != start);
        if reused {
            // Another process under the same pid: nothing known of the old one applies.
            p.info = None;
        }
        let fresh = p.info.is_none();
        let renamed = p.info.as_ref().is_some_and(|i| i.name != comm);
        if fresh || renamed {
            p.info = Some(read_info(&dir, pid, start, comm));
            p.recheck = fresh;
        }
        p.start_time = Some(start);
        reused
    }
}

/// (tasks, last pid) from `/proc/loadavg` ("0.52 0.58 0.59 2/455 5854"): any task created
/// moves the last pid, any task that exits without another being created lowers the count.
fn read_loadavg(root: &Path) -> Option<(u64, u64)> {
    use procfs::FromRead;
    let l = procfs::LoadAverage::from_file(root.join("loadavg")).ok()?;
    Some((u64::from(l.max), u64::from(l.latest_pid)))
}

/// The numeric entries of `/proc`.
fn list_pids(root: &Path) -> io::Result<Vec<u32>> {
    let mut out = Vec::with_capacity(512);
    for entry in fs::read_dir(root)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        if let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) {
            out.push(pid);
        }
    }
    Ok(out)
}

/// The wanted socket inodes among a process's descriptors (`socket:[12345]` links).
fn socket_inodes(fd_dir: &Path, wanted: &IdSet<u32>) -> io::Result<Vec<u32>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(fd_dir)? {
        let Ok(entry) = entry else { continue };
        // A descriptor closed since the directory was read is simply skipped.
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        if let Some(inode) = parse_socket_link(target.as_os_str().as_encoded_bytes())
            && wanted.contains(&inode)
            && !out.contains(&inode)
        {
            out.push(inode);
        }
    }
    Ok(out)
}

/// `socket:[12345]` → 12345.
pub fn parse_socket_link(link: &[u8]) -> Option<u32> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Start time and name from `/proc/<pid>/stat`.
fn read_stat(dir: &Path) -> Option<(u64, String)> {
    let p = procfs::process::Process::new_with_root(dir.to_path_buf()).ok()?;
    let stat = p.stat().ok()?;
    Some((stat.starttime, stat.comm))
}

/// Everything netmon records about a process; what cannot be read stays `None`.
fn read_info(dir: &Path, pid: u32, start: u64, comm: String) -> ProcessRef {
    let p = procfs::process::Process::new_with_root(dir.to_path_buf()).ok();
    let exe = p.as_ref().and_then(|p| p.exe().ok());
    let uid = p.as_ref().and_then(|p| p.uid().ok());
    let cmdline = p
        .as_ref()
        .and_then(|p| p.cmdline().ok())
        .filter(|c| !c.is_empty())
        .map(|c| c.join("\0"));
    ProcessRef {
        pid,
        name: comm,
        start_time: Some(start),
        exe,
        uid,
        cmdline,
        container: None,
    }
}

#[cfg(test)]
mod tests;
