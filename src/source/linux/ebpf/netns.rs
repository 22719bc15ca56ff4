//! What "this machine" is, seen from the recorder's network namespace (rtnetlink).
//!
//! The recorder's namespace and the namespaces linked to it other than through its default
//! route (containers, `ip netns`, a veth pair per container) are this machine; whatever lies
//! beyond the default route (on a real machine a physical uplink or a VPN; in the tests a peer
//! namespace) is the outside. From one dump of the recorder's links, addresses and routes:
//!
//! - the *uplinks* are the devices of its default routes (IPv4 and IPv6, main table);
//! - its *container links* are the veth, bridge and netkit devices that are not uplinks: what
//!   lies behind them is this machine;
//! - [`HostView::local_nets`] is what the kernel programs match a peer address against: this
//!   namespace's own addresses, and the subnets routed over its container links;
//! - [`HostView::scope_of`] places another namespace, given the id this namespace knows it
//!   by (`RTM_GETNSID`): the peer of a veth that is a container link is [`Scope::Linked`], the
//!   peer of an uplink veth is [`Scope::Outside`], anything else is [`Scope::Isolated`].
//!
//! The parsers are pure and tested on hand-built messages; only [`dump`] and [`nsid_of`]
//! talk to the kernel.

use std::collections::HashSet;
use std::net::IpAddr;

use super::track::Scope;

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWNSID: u16 = 88;
const RTM_GETNSID: u16 = 90;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;

const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_LINK_NETNSID: u16 = 37;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
const NETNSA_NSID: u16 = 1;
const NETNSA_FD: u16 = 3;
const RT_TABLE_MAIN: u32 = 254;
const RTN_UNICAST: u8 = 1;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// A network device of the recorder's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    /// `IFLA_INFO_KIND`: "veth", "bridge", … (empty for physical devices and `lo`).
    pub kind: String,
    /// For a device whose peer lives in another namespace (veth), that namespace's id here.
    pub peer_nsid: Option<i32>,
}

/// A route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpAddr,
    pub prefix_len: u8,
    /// Output devices (several for a multipath route).
    pub oifs: Vec<u32>,
}

/// One reading of the recorder's namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostView {
    pub links: Vec<Link>,
    pub addrs: Vec<IpAddr>,
    pub routes: Vec<Route>,
}

impl HostView {
    /// Devices of the default routes.
    pub fn uplinks(&self) -> HashSet<u32> {
        self.routes
            .iter()
            .filter(|r| r.prefix_len == 0)
            .flat_map(|r| r.oifs.iter().copied())
            .collect()
    }

    fn container_links(&self) -> HashSet<u32> {
        let up = self.uplinks();
        self.links
            .iter()
            .filter(|l| matches!(l.kind.as_str(), "veth" | "bridge" | "netkit"))
            .filter(|l| !up.contains(&l.index))
            .map(|l| l.index)
            .collect()
    }

    /// Prefixes whose addresses are on this machine: this namespace's own addresses, and the
    /// subnets routed over its container links. Link-local and multicast ranges are left out
    /// (every link has them, the uplink too).
    pub fn local_nets(&self) -> Vec<(IpAddr, u8)> {
        let links = self.container_links();
        let mut out: Vec<(IpAddr, u8)> = self
            .addrs
            .iter()
            .map(|a| (*a, if a.is_ipv4() { 32 } else { 128 }))
            .collect();
        for r in &self.routes {
            if r.prefix_len > 0
                && !r.oifs.is_empty()
                && r.oifs.iter().all(|o| links.contains(o))
                && !is_link_scoped(&r.dst)
            {
                out.push((r.dst, r.prefix_len));
            }
        }
        out.retain(|(a, _)| !is_link_scoped(a));
        out.sort();
        out.dedup();
        out
    }

    /// Where the namespace this one knows as `nsid` stands (`None`: it has no id here, so no
    /// device links the two).
    pub fn scope_of(&self, nsid: Option<i32>) -> Scope {
        let Some(nsid) = nsid.filter(|n| *n >= 0) else {
            return Scope::Isolated;
        };
        let up = self.uplinks();
        let peers: Vec<&Link> = self
            .links
            .iter()
            .filter(|l| l.peer_nsid == Some(nsid) && matches!(l.kind.as_str(), "veth" | "netkit"))
            .collect();
        if peers.iter().any(|l| !up.contains(&l.index)) {
            Scope::Linked
        } else if peers.is_empty() {
            Scope::Isolated
        } else {
            Scope::Outside
        }
    }
}

fn is_link_scoped(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => v.is_link_local() || v.is_multicast() || v.is_unspecified(),
        IpAddr::V6(v) => {
            (v.segments()[0] & 0xffc0) == 0xfe80 || v.is_multicast() || v.is_unspecified()
        }
    }
}

/// Netlink messages as (type, payload) pairs.
pub type Messages<'a> = Vec<(u16, &'a [u8])>;

/// Netlink messages of one or more datagrams, up to `NLMSG_DONE`, and whether it was seen.
/// `Err` carries the errno of an `NLMSG_ERROR` that reports one.
pub fn messages(buf: &[u8]) -> Result<(Messages<'_>, bool), i32> {
    let mut out = Vec::new();
    let mut rest = buf;
    while rest.len() >= 16 {
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let ty = u16::from_ne_bytes([rest[4], rest[5]]);
        if len < 16 || len > rest.len() {
            break;
        }
        let payload = &rest[16..len];
        match ty {
            NLMSG_DONE => return Ok((out, true)),
            NLMSG_ERROR => {
                let errno = payload
                    .get(..4)
                    .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(0);
                if errno != 0 {
                    return Err(-errno);
                }
                return Ok((out, true));
            }
            _ => out.push((ty, payload)),
        }
        rest = &rest[align(len).min(rest.len())..];
    }
    Ok((out, false))
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// `(type, value)` attributes after a fixed header of `skip` bytes.
fn attrs(payload: &[u8], skip: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut rest = payload.get(align(skip)..).unwrap_or(&[]);
    while rest.len() >= 4 {
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let ty = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            break;
        }
        out.push((ty, &rest[4..len]));
        rest = &rest[align(len).min(rest.len())..];
    }
    out
}

fn u32_of(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(..4)?.try_into().ok()?))
}

fn ip_of(family: u8, b: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => Some(IpAddr::from(<[u8; 4]>::try_from(b.get(..4)?).ok()?)),
        AF_INET6 => Some(IpAddr::from(<[u8; 16]>::try_from(b.get(..16)?).ok()?)),
        _ => None,
    }
}

/// A `RTM_NEWLINK` payload.
pub fn parse_link(payload: &[u8]) -> Option<Link> {
    let index = u32_of(payload.get(4..8)?)?;
    let mut link = Link {
        index,
        kind: String::new(),
        peer_nsid: None,
    };
    for (ty, v) in attrs(payload, 16) {
        match ty {
            IFLA_LINKINFO => {
                for (t, k) in attrs(v, 0) {
                    if t == IFLA_INFO_KIND {
                        link.kind = String::from_utf8_lossy(k)
                            .trim_end_matches('\0')
                            .to_string();
                    }
                }
            }
            IFLA_LINK_NETNSID => link.peer_nsid = u32_of(v).map(|n| n as i32),
            _ => {}
        }
    }
    Some(link)
}

/// A `RTM_NEWADDR` payload: the address of this end (IFA_LOCAL, else IFA_ADDRESS).
pub fn parse_addr(payload: &[u8]) -> Option<IpAddr> {
    let family = *payload.first()?;
    let mut address = None;
    let mut local = None;
    for (ty, v) in attrs(payload, 8) {
        match ty {
            IFA_LOCAL => local = ip_of(family, v),
            IFA_ADDRESS => address = ip_of(family, v),
            _ => {}
        }
    }
    local.or(address)
}

/// A `RTM_NEWROUTE` payload, if it is a unicast route of the main table.
pub fn parse_route(payload: &[u8]) -> Option<Route> {
    let family = *payload.first()?;
    let prefix_len = *payload.get(1)?;
    let mut table = u32::from(*payload.get(4)?);
    let rtype = *payload.get(7)?;
    let mut dst = None;
    let mut oifs = Vec::new();
    for (ty, v) in attrs(payload, 12) {
        match ty {
            RTA_DST => dst = ip_of(family, v),
            RTA_OIF => oifs.extend(u32_of(v)),
            RTA_TABLE => table = u32_of(v).unwrap_or(table),
            RTA_MULTIPATH => {
                // struct rtnexthop { u16 len; u8 flags; u8 hops; s32 ifindex; } + attributes
                let mut rest = v;
                while rest.len() >= 8 {
                    let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
                    oifs.extend(u32_of(&rest[4..8]));
                    if len < 8 || len > rest.len() {
                        break;
                    }
                    rest = &rest[align(len).min(rest.len())..];
                }
            }
            _ => {}
        }
    }
    if table != RT_TABLE_MAIN || rtype != RTN_UNICAST {
        return None;
    }
    let dst = dst.or_else(|| match family {
        AF_INET => Some(IpAddr::from([0u8; 4])),
        AF_INET6 => Some(IpAddr::from([0u8; 16])),
        _ => None,
    })?;
    Some(Route {
        dst,
        prefix_len,
        oifs,
    })
}

/// Build a HostView from the messages of the three dumps.
pub fn view_from(messages: &[(u16, &[u8])]) -> HostView {
    let mut v = HostView::default();
    for (ty, payload) in messages {
        match *ty {
            RTM_NEWLINK => v.links.extend(parse_link(payload)),
            RTM_NEWADDR => v.addrs.extend(parse_addr(payload)),
            RTM_NEWROUTE => v.routes.extend(parse_route(payload)),
            _ => {}
        }
    }
    v
}

/// The nsid in a `RTM_NEWNSID` answer.
pub fn parse_nsid(payload: &[u8]) -> Option<i32> {
    attrs(payload, 4)
        .into_iter()
        .find(|(t, _)| *t == NETNSA_NSID)
        .and_then(|(_, v)| u32_of(v))
        .map(|n| n as i32)
}

/// A netlink request: header, fixed part, attributes.
fn request(ty: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = 16 + body.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(body);
    m
}

/// A NETLINK_ROUTE socket in the calling thread's network namespace.
pub struct Rtnl {
    fd: std::os::fd::OwnedFd,
    seq: u32,
}

impl Rtnl {
    pub fn open() -> std::io::Result<Self> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain socket(2); the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let tv = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        // SAFETY: setsockopt with a timeval of the right size on our socket.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        Ok(Rtnl { fd, seq: 0 })
    }

    /// Send `msg`; collect the answer (up to `NLMSG_DONE` for a dump, else one datagram).
    fn exchange(&mut self, msg: &[u8], dump: bool, collect: &mut Vec<u8>) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let fd = self.fd.as_raw_fd();
        // SAFETY: send(2) of our buffer on our socket (the kernel is the default peer).
        let n = unsafe { libc::send(fd, msg.as_ptr().cast(), msg.len(), 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 64 * 1024];
        // A dump ends with NLMSG_DONE; a bounded number of datagrams keeps a confused
        // kernel answer from looping forever.
        for _ in 0..4096 {
            // SAFETY: recv(2) into a buffer we own, of its length.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let got = &buf[..n as usize];
            let (_, done) = messages(got).map_err(std::io::Error::from_raw_os_error)?;
            collect.extend_from_slice(got);
            if done || !dump {
                return Ok(());
            }
        }
        Err(std::io::Error::other("netlink dump did not end"))
    }

    /// The recorder's links, addresses and routes.
    pub fn dump(&mut self) -> std::io::Result<HostView> {
        let mut raw: Vec<Vec<u8>> = Vec::new();
        for (ty, fixed) in [(RTM_GETLINK, 16usize), (RTM_GETADDR, 8), (RTM_GETROUTE, 12)] {
            self.seq = self.seq.wrapping_add(1);
            let body = vec![0u8; fixed];
            let mut got = Vec::new();
            self.exchange(&request(ty, NLM_F_DUMP, self.seq, &body), true, &mut got)?;
            raw.push(got);
        }
        let mut all = Vec::new();
        for r in &raw {
            // Whole datagrams, appended: one stream of messages ending at NLMSG_DONE.
            let (msgs, _) = messages(r).map_err(std::io::Error::from_raw_os_error)?;
            all.extend(msgs);
        }
        Ok(view_from(&all))
    }

    /// The id this namespace knows the namespace behind `fd` by (`None`: none assigned).
    pub fn nsid_of(&mut self, fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<Option<i32>> {
        use std::os::fd::AsRawFd;
        self.seq = self.seq.wrapping_add(1);
        // struct rtgenmsg (1 byte, padded to 4), then NETNSA_FD.
        let mut body = vec![0u8; 4];
        body.extend_from_slice(&8u16.to_ne_bytes());
        body.extend_from_slice(&NETNSA_FD.to_ne_bytes());
        body.extend_from_slice(&(fd.as_raw_fd() as u32).to_ne_bytes());
        let mut got = Vec::new();
        self.exchange(&request(RTM_GETNSID, 0, self.seq, &body), false, &mut got)?;
        let (msgs, _) = messages(&got).map_err(std::io::Error::from_raw_os_error)?;
        Ok(msgs
            .iter()
            .find(|(t, _)| *t == RTM_NEWNSID)
            .and_then(|(_, p)| parse_nsid(p))
            .filter(|n| *n >= 0))
    }
}

#[cfg(test)]
mod tests;
