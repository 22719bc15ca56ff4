//! Sources of cumulative network counters: the one seam between the OS and everything else.
//!
//! A source hands the record loop one [`Snapshot`] per tick: every byte counter it can see, as
//! the cumulative value the OS reports (never a delta), each with a stable [`CounterKey`] and
//! the process that owns it. The delta engine (`crate::delta`) turns consecutive snapshots
//! into exact per-tick deltas, so a source never has to remember anything between ticks
//! beyond what it needs to read the OS.
//!
//! - `nettop`: macOS's `nettop` in CSV logging mode (compiled and tested on every OS; run on
//!   Linux only with `--source nettop` and a fake `nettop` on PATH).
//! - Linux kernel sources (`sockdiag`, `ebpf`) live under `linux/` behind the same trait.

pub mod interfaces;
#[cfg(target_os = "linux")]
pub mod linux;
pub mod nettop;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One reading of every counter a source can see.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub counters: Vec<Counter>,
}

/// A cumulative byte counter, as the OS reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Counter {
    /// Identity of this counter within its source, stable across ticks and restarts (within
    /// one boot). Two readings with the same key are two readings of the same counter.
    pub key: CounterKey,
    /// Who moved these bytes.
    pub owner: Owner,
    /// The remote end, for per-connection counters.
    pub remote: Option<Remote>,
    /// The bytes never leave this machine: the socket is on a loopback interface, or an
    /// address at either end is loopback (a local proxy's `127.0.0.1:10808<->*:*` has no
    /// remote to tell). The record loop leaves these out unless `--include-loopback`.
    pub loopback: bool,
    /// Cumulative bytes received since the counter was created.
    pub bytes_in: u64,
    /// Cumulative bytes sent since the counter was created.
    pub bytes_out: u64,
    /// This is the counter's final value (its socket closed): count it, then forget it.
    pub closed: bool,
    /// The interface the socket used last, when the source says (nettop's `interface`
    /// column: `en0`, `utun3`). Not part of the key: a socket can move (FORMAT.md §5).
    /// Shared text, so a tick's hundreds of counters on `en0` hold one string.
    pub interface: Option<std::sync::Arc<str>>,
}

/// Stable identity of a counter, namespaced by source (`nettop/…`, `sockdiag/…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterKey(pub String);

impl fmt::Display for CounterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The owner of a counter: a process, or bytes the source saw but could not tie to one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    Process(ProcessRef),
    /// Bytes that are real but whose process cannot be named; `reason` says why
    /// (for example "socket closed before its owner was seen").
    Unattributed {
        reason: String,
    },
}

/// A process as a source knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProcessRef {
    pub pid: u32,
    /// The name the source gave (nettop cuts names to 15 characters; Linux `comm` likewise).
    pub name: String,
    /// A start stamp from the OS, when the source knows it, that tells a reused pid apart.
    pub start_time: Option<u64>,
    /// The full executable path, when the source already knows it.
    pub exe: Option<PathBuf>,
    pub uid: Option<u32>,
    /// The command line (argv joined by NUL), when the source already knows it.
    pub cmdline: Option<String>,
    /// The container the process runs in (its name, else its short id), when the source
    /// knows it (Linux ebpf: from the process's cgroup).
    pub container: Option<String>,
}

impl ProcessRef {
    pub fn new(pid: u32, name: impl Into<String>) -> Self {
        ProcessRef {
            pid,
            name: name.into(),
            start_time: None,
            exe: None,
            uid: None,
            cmdline: None,
            container: None,
        }
    }
}

/// Transport protocol of a connection counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Quic,
    Other,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Quic => "quic",
            Proto::Other => "other",
        }
    }
}

/// The remote end of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Remote {
    pub proto: Proto,
    /// Numeric address when the source gives one (scope id stripped), else the host text.
    pub host: String,
    pub addr: Option<IpAddr>,
    pub port: Option<u16>,
    /// The connection stays on this machine (loopback interface or address).
    pub loopback: bool,
}

/// What kind of source is in use; its `as_str` is what the database and status show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceKind {
    /// Pick the best source available to this user on this OS.
    Auto,
    /// macOS `nettop` (no privileges needed).
    Nettop,
    /// Linux sock_diag TCP counters (no privileges needed).
    Sockdiag,
    /// Linux eBPF per-process TCP and UDP counters (root or CAP_BPF + CAP_PERFMON).
    Ebpf,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Auto => "auto",
            SourceKind::Nettop => "nettop",
            SourceKind::Sockdiag => "sockdiag",
            SourceKind::Ebpf => "ebpf",
        }
    }
}

/// A source of counters. Synchronous: `sample` blocks until the snapshot is read, the source's
/// own time bound passes, or `cancel` is set.
pub trait Source {
    fn kind(&self) -> SourceKind;
    /// What this source cannot see, one sentence each, with what to do about it.
    fn blind_spots(&self) -> Vec<String> {
        Vec::new()
    }
    /// Read every counter now.
    fn sample(&mut self, cancel: &Cancel) -> Result<Snapshot, Error>;
}

/// Errors a source reports. Each message says what happened and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{tool} was not found on PATH{hint}")]
    ToolMissing { tool: String, hint: String },
    // The cause is in the message and deliberately not a `source()`: main prints the error
    // chain on one line, which would repeat it.
    #[error("could not start {tool}: {cause}")]
    Spawn { tool: String, cause: std::io::Error },
    #[error("{tool} gave no snapshot within {:?}; it was killed", timeout)]
    Timeout { tool: String, timeout: Duration },
    #[error("{tool} output has no usable header ({detail}); is this a supported {tool}?")]
    BadOutput { tool: String, detail: String },
    #[error("{tool} exited with {status} and no snapshot: {stderr}")]
    Failed {
        tool: String,
        status: String,
        stderr: String,
    },
    #[error("source not available: {0}")]
    Unavailable(String),
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// True when retrying cannot help (the tool is missing, the source is unsupported here).
    pub fn is_permanent(&self) -> bool {
        matches!(self, Error::ToolMissing { .. } | Error::Unavailable(_))
    }
}

/// Cooperative cancellation: set by the signal handler, polled by sources while they wait.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }
}

/// Options every source may use.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// How long one sample may take before the source gives up on it.
    pub sample_timeout: Duration,
}

/// Build the source the user asked for. `Auto` picks the best one for this OS and user.
pub fn open(kind: SourceKind, opts: &SourceOptions) -> Result<Box<dyn Source>, Error> {
    match kind {
        SourceKind::Nettop => Ok(Box::new(nettop::NettopSource::new(opts)?)),
        SourceKind::Auto => auto(opts),
        SourceKind::Sockdiag => sockdiag(opts),
        SourceKind::Ebpf => ebpf(opts),
    }
}

#[cfg(target_os = "linux")]
fn auto(opts: &SourceOptions) -> Result<Box<dyn Source>, Error> {
    linux::auto(opts)
}

#[cfg(target_os = "linux")]
fn sockdiag(opts: &SourceOptions) -> Result<Box<dyn Source>, Error> {
    linux::sockdiag(opts)
}

#[cfg(target_os = "linux")]
fn ebpf(opts: &SourceOptions) -> Result<Box<dyn Source>, Error> {
    linux::ebpf(opts)
}

#[cfg(target_os = "macos")]
fn auto(opts: &SourceOptions) -> Result<Box<dyn Source>, Error> {
    Ok(Box::new(nettop::NettopSource::new(opts)?))
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn auto(_opts: &SourceOptions) -> Result<Box<dyn Source>, Error> {
    Err(Error::Unavailable(
        "no source is built into this netmon for this OS".into(),
    ))
}

#[cfg(not(target_os = "linux"))]
fn sockdiag(_opts: &SourceOptions) -> Result<Box<dyn Source>, Error> {
    Err(linux_only(SourceKind::Sockdiag))
}

#[cfg(not(target_os = "linux"))]
fn ebpf(_opts: &SourceOptions) -> Result<Box<dyn Source>, Error> {
    Err(linux_only(SourceKind::Ebpf))
}

#[cfg(not(target_os = "linux"))]
fn linux_only(kind: SourceKind) -> Error {
    Error::Unavailable(format!(
        "the {} source reads the Linux kernel and exists only on Linux",
        kind.as_str()
    ))
}
