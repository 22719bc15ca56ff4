//! macOS interface counters. The interfaces are listed with `sysctl(CTL_NET, PF_ROUTE, 0, 0,
//! NET_RT_IFLIST2, 0)` (one `RTM_IFINFO2` message each: index, type), and each one's byte
//! counters are read from the interface MIB, `sysctl(CTL_NET, PF_LINK, NETLINK_GENERIC,
//! IFMIB_IFDATA, index, IFDATA_GENERAL)`, whose `ifmibdata` holds the full 64-bit counters.
//! Not from the `if_data64` in the RTM_IFINFO2 messages: since macOS 11 the kernel hands
//! those to any program Apple did not sign rounded down to 1 KiB and cut to 32 bits
//! (`sysctl_iflist2` in xnu's bsd/net/rtsock.c: `ALIGN_BYTES`; node_exporter #3333, sysinfo
//! #1378), so they wrap every 4 GiB; nor from `getifaddrs`, whose `if_data` is 32-bit too
//! (vnStat's phantom "+4 GiB"). Should the MIB not answer at all, the RTM_IFINFO2 values are
//! used as what they are for netmon, 32-bit counters whose wraps the delta rules handle.
//! Needs no privileges.
//!
//! The kind comes from `networksetup -listallhardwareports` (read once: it names the Wi-Fi
//! device and iPhone USB tethering) and the interface name (`utun`, `ipsec`, `ppp`: tunnels;
//! `bridge`: bridges); the network from the default gateway's hardware address (`route -n get
//! default`, `arp -n`; each hardware port's scoped default while a full-tunnel VPN holds the
//! default route), refreshed at most once a minute. The Wi-Fi name is not read: since
//! macOS Sonoma (14.4) every interface that reveals the SSID (CoreWLAN, `ipconfig
//! getsummary`, `networksetup -getairportnetwork`, the removed `airport` tool) needs Location
//! Services permission for the calling app, which a background recorder does not have.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::network::{self, parse_hardware_ports};
use super::{Error, InterfaceCounters, InterfaceReader, Kind, Width};

/// How often the default gateway is looked up again.
const GATEWAY_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct SysctlReader {
    /// Device name → kind, from `networksetup` (read once).
    ports: Option<HashMap<String, Kind>>,
    /// Whether the interface MIB answers (decided at the first read, for the reader's life:
    /// one interface's counters never switch between the MIB's 64 bits and RTM_IFINFO2's 32).
    mib: Option<bool>,
    /// Each interface with a default gateway, and that gateway's hardware address, and when
    /// they were read.
    gateway: Option<(Instant, Vec<(String, String)>)>,
}

impl InterfaceReader for SysctlReader {
    fn read(&mut self) -> Result<Vec<InterfaceCounters>, Error> {
        let raw = iflist2()?;
        let ports = self.ports.get_or_insert_with(|| {
            run("networksetup", &["-listallhardwareports"])
                .map(|t| parse_hardware_ports(&t))
                .unwrap_or_default()
        });
        let stale = self
            .gateway
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= GATEWAY_EVERY);
        if stale {
            self.gateway = Some((Instant::now(), gateways(ports)));
        }
        let gw: &[(String, String)] = self.gateway.as_ref().map_or(&[], |(_, g)| g);
        // Each interface's MIB row, read once a tick (none once the MIB is known not to answer).
        let rows: Vec<Option<(String, u64, u64)>> = raw
            .iter()
            .map(|l| {
                if self.mib == Some(false) {
                    None
                } else {
                    ifmib(l.1)
                }
            })
            .collect();
        let mib = *self.mib.get_or_insert_with(|| {
            let answers = rows.iter().any(Option::is_some);
            if !answers {
                tracing::warn!(
                    "the interface MIB (IFMIB_IFDATA) does not answer: interface counters are \
                     read from NET_RT_IFLIST2, which macOS cuts to 32 bits for netmon (wraps \
                     every 4 GiB are handled; bytes are counted in 1 KiB steps)"
                );
            }
            answers
        });
        Ok(raw
            .into_iter()
            .zip(rows)
            .filter_map(|((name, index, ift, listed_in, listed_out), row)| {
                let (width, bytes_in, bytes_out) = if mib {
                    // A row the MIB lacks, or holds for another interface (an index reused
                    // between the two reads), is no reading this tick: the delta rules keep
                    // the interface's last reading.
                    let (mib_name, bytes_in, bytes_out) = row?;
                    if mib_name != name {
                        return None;
                    }
                    (Width::Bits64, bytes_in, bytes_out)
                } else {
                    (
                        Width::Bits32,
                        listed_in & u64::from(u32::MAX),
                        listed_out & u64::from(u32::MAX),
                    )
                };
                let kind = kind_of(&name, ift, ports);
                let mac = gw
                    .iter()
                    .find(|(ifname, _)| *ifname == name)
                    .map(|(_, mac)| mac.as_str());
                Some(InterfaceCounters {
                    network: network::identify(kind, &name, None, mac),
                    name,
                    index: Some(index),
                    kind,
                    width,
                    bytes_in,
                    bytes_out,
                })
            })
            .collect())
    }
}

/// IFT_* values from <net/if_types.h>.
const IFT_LOOP: u8 = 0x18;
const IFT_CELLULAR: u8 = 0xff;
const IFT_BRIDGE: u8 = 0xd1;

fn kind_of(name: &str, ift: u8, ports: &HashMap<String, Kind>) -> Kind {
    if let Some(k) = ports.get(name) {
        return *k;
    }
    match ift {
        IFT_LOOP => Kind::Loopback,
        IFT_CELLULAR => Kind::Cellular,
        IFT_BRIDGE => Kind::Bridge,
        _ if network::is_tunnel_name(name) => Kind::Vpn,
        _ if name.starts_with("bridge") => Kind::Bridge,
        _ if name.starts_with("awdl") || name.starts_with("llw") || name.starts_with("anpi") => {
            Kind::Other
        }
        _ => Kind::Other,
    }
}

/// An interface as NET_RT_IFLIST2 lists it: (name, index, ifi_type, bytes in, bytes out; the
/// bytes cut to 32 bits and 1 KiB steps for netmon: see the module docs).
type Listed = (String, u32, u8, u64, u64);

/// Every interface.
fn iflist2() -> Result<Vec<Listed>, Error> {
    let mut mib = [libc::CTL_NET, libc::PF_ROUTE, 0, 0, libc::NET_RT_IFLIST2, 0];
    let fail = |what: &str| Error::Read {
        path: "sysctl NET_RT_IFLIST2".to_string(),
        cause: format!("{what}: {}", std::io::Error::last_os_error()),
    };
    // Interfaces can appear between the size query and the read: retry a few times with room.
    for _ in 0..4 {
        let mut len: libc::size_t = 0;
        // SAFETY: a size query (null buffer) with a valid mib and length pointer.
        let rc = unsafe {
            libc::sysctl(
                mib.as_mut_ptr(),
                mib.len() as u32,
                std::ptr::null_mut(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc != 0 {
            return Err(fail("size"));
        }
        len += len / 8 + 1024;
        let mut buf = vec![0u8; len];
        // SAFETY: the buffer is valid for `len` bytes; sysctl writes at most that and updates it.
        let rc = unsafe {
            libc::sysctl(
                mib.as_mut_ptr(),
                mib.len() as u32,
                buf.as_mut_ptr().cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc != 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOMEM) {
                continue;
            }
            return Err(fail("read"));
        }
        buf.truncate(len);
        return Ok(walk(&buf));
    }
    Err(fail("the interface list kept growing"))
}

/// The RTM_IFINFO2 messages in a NET_RT_IFLIST2 buffer.
fn walk(buf: &[u8]) -> Vec<Listed> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let hdr = std::mem::size_of::<libc::if_msghdr2>();
    while at + 4 <= buf.len() {
        let msglen = u16::from_ne_bytes([buf[at], buf[at + 1]]) as usize;
        let kind = buf[at + 3];
        if msglen == 0 || at + msglen > buf.len() {
            break;
        }
        if i32::from(kind) == libc::RTM_IFINFO2 && msglen >= hdr {
            // SAFETY: `hdr` bytes from `at` are in the buffer; read_unaligned copies the
            // packed struct out without assuming alignment.
            let m: libc::if_msghdr2 =
                unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
            let index = u32::from(m.ifm_index);
            let data = m.ifm_data;
            if let Some(name) = index_name(index) {
                out.push((name, index, data.ifi_type, data.ifi_ibytes, data.ifi_obytes));
            }
        }
        at += msglen;
    }
    out
}

// What xnu's bsd/net/if_mib.h lays out (if_data64 under `#pragma pack(4)`): the counters are
// read where the kernel writes them, or this does not build.
const _: () = assert!(std::mem::size_of::<libc::ifmibdata>() == 180);
const _: () = assert!(std::mem::offset_of!(libc::ifmibdata, ifmd_data) == 52);

/// Interface `index`'s name and 64-bit byte counters (in, out) from the interface MIB;
/// `None` when the MIB has no such row (ENOENT: the index is free) or answers otherwise.
fn ifmib(index: u32) -> Option<(String, u64, u64)> {
    let mut mib = [
        libc::CTL_NET,
        libc::PF_LINK,
        libc::NETLINK_GENERIC,
        libc::IFMIB_IFDATA,
        libc::c_int::try_from(index).ok()?,
        libc::IFDATA_GENERAL,
    ];
    let size = std::mem::size_of::<libc::ifmibdata>();
    // SAFETY: ifmibdata is plain integers and arrays: all zeroes is a valid value.
    let mut data: libc::ifmibdata = unsafe { std::mem::zeroed() };
    let mut len: libc::size_t = size;
    // SAFETY: `data` is valid for `len` bytes; sysctl writes at most that and updates `len`.
    let rc = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            mib.len() as u32,
            std::ptr::addr_of_mut!(data).cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 || len != size {
        return None;
    }
    // The name may fill its array with no NUL.
    let name: Vec<u8> = data
        .ifmd_name
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    // Copied out of the packed if_data64 by value (no reference into it).
    let (bytes_in, bytes_out) = (data.ifmd_data.ifi_ibytes, data.ifmd_data.ifi_obytes);
    Some((
        String::from_utf8_lossy(&name).into_owned(),
        bytes_in,
        bytes_out,
    ))
}

fn index_name(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: the buffer holds IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// Each interface with a default gateway and the gateway's hardware address: the default
/// route's; and when that is a tunnel's (a full-tunnel VPN), each hardware port's own scoped
/// default (`route -n get -ifscope en0 default`), so Wi-Fi and Ethernet keep naming their
/// networks while the VPN is up.
fn gateways(ports: &HashMap<String, Kind>) -> Vec<(String, String)> {
    let lookup = |args: &[&str]| -> Option<(String, Option<String>)> {
        let (gw, ifname) = network::parse_route_get(&run("route", args)?)?;
        let mac = gw.and_then(|gw| network::parse_arp_mac(&run("arp", &["-n", &gw])?));
        Some((ifname, mac))
    };
    let mut out = Vec::new();
    let default = lookup(&["-n", "get", "default"]);
    let tunnelled = match &default {
        Some((ifname, mac)) if !network::is_tunnel_name(ifname) => {
            out.extend(mac.clone().map(|m| (ifname.clone(), m)));
            false
        }
        _ => true,
    };
    if tunnelled {
        let mut devices: Vec<&String> = ports
            .iter()
            .filter(|(_, k)| matches!(k, Kind::Wifi | Kind::Ethernet | Kind::Cellular))
            .map(|(d, _)| d)
            .collect();
        devices.sort();
        for dev in devices {
            if let Some((ifname, Some(mac))) = lookup(&["-n", "get", "-ifscope", dev, "default"])
                && ifname == *dev
            {
                out.push((ifname, mac));
            }
        }
    }
    out
}

/// A tool's stdout, or `None` if it is missing or fails.
fn run(tool: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
