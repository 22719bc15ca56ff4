//! Interface byte counters and the network each interface is attached to: netmon's second
//! opinion on its own numbers.
//!
//! An [`InterfaceReader`] returns, each tick, every interface's cumulative bytes as the OS
//! keeps them, its kind, and what identifies the network it is attached to. Two readers sit
//! behind the trait: `linux` (`/proc/net/dev` through procfs, which the kernel fills from its
//! 64-bit link statistics, plus sysfs, `/proc/net/route` and `/proc/net/arp`) and `macos`
//! (the interface MIB, `IFMIB_IFDATA`, whose counters are 64-bit: the `if_data64` of
//! `NET_RT_IFLIST2` is cut to 32 bits for programs Apple did not sign, and the `if_data` of
//! `getifaddrs` is 32-bit). Deltas are the pure step in `crate::delta::interfaces`.

#[cfg(target_os = "linux")]
pub mod linux;
#[cfg(target_os = "macos")]
pub mod macos;
pub mod network;

use std::fmt;

pub use network::NetworkId;

/// What an interface is, as far as the OS tells without privileges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Loopback,
    Wifi,
    Ethernet,
    /// A phone tethered over USB, or a mobile broadband modem.
    Cellular,
    /// A tunnel (utun, tun, WireGuard): its bytes also cross the interface under it.
    Vpn,
    /// A bridge or a bridge's port (docker0 and its veths): the same bytes cross another
    /// interface too.
    Bridge,
    /// Software interfaces with no hardware under them (veth pairs, dummies).
    Virtual,
    Other,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Loopback => "loopback",
            Kind::Wifi => "wifi",
            Kind::Ethernet => "ethernet",
            Kind::Cellular => "cellular",
            Kind::Vpn => "vpn",
            Kind::Bridge => "bridge",
            Kind::Virtual => "virtual",
            Kind::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Kind {
        match s {
            "loopback" => Kind::Loopback,
            "wifi" => Kind::Wifi,
            "ethernet" => Kind::Ethernet,
            "cellular" => Kind::Cellular,
            "vpn" => Kind::Vpn,
            "bridge" => Kind::Bridge,
            "virtual" => Kind::Virtual,
            _ => Kind::Other,
        }
    }

    /// Whether this interface's bytes count in "what your interfaces carried": not loopback
    /// (kept apart, as it is for applications), not a tunnel or a bridge, whose bytes also
    /// cross another interface and would be counted twice.
    pub fn carries_off_machine(self) -> bool {
        !matches!(self, Kind::Loopback | Kind::Vpn | Kind::Bridge)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How wide the OS's counters are: a 32-bit counter wraps at 4 GiB, a 64-bit one never does in
/// practice, so a drop in it is a reset, never a wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    Bits32,
    Bits64,
}

/// One interface's cumulative counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceCounters {
    pub name: String,
    /// The OS's interface index, when known: a new index under an old name is a new
    /// interface whose counters started from zero (a USB tether plugged back in).
    pub index: Option<u32>,
    pub kind: Kind,
    pub width: Width,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The network it is attached to; `None` for loopback.
    pub network: Option<NetworkId>,
}

/// Errors reading interface counters.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading interface counters from {path}: {cause}")]
    Read { path: String, cause: String },
    #[error("interface counters are not available on this OS")]
    Unsupported,
}

/// Reads every interface's counters now.
pub trait InterfaceReader {
    fn read(&mut self) -> Result<Vec<InterfaceCounters>, Error>;
}

/// The reader for this OS.
pub fn open() -> Box<dyn InterfaceReader> {
    #[cfg(target_os = "linux")]
    return Box::new(linux::ProcReader::from_env());
    #[cfg(target_os = "macos")]
    return Box::new(macos::SysctlReader::default());
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    return Box::new(Unsupported);
}

/// Where no reader exists: every read says so (the recorder then stores no interface data).
#[allow(dead_code)]
struct Unsupported;

impl InterfaceReader for Unsupported {
    fn read(&mut self) -> Result<Vec<InterfaceCounters>, Error> {
        Err(Error::Unsupported)
    }
}
