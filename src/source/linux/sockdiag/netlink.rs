//! NETLINK_SOCK_DIAG: the TCP socket dump (what `ss -ti` reads) and the socket-destroy
//! notifications (what `ss -E` listens to).
//!
//! One dump covers IPv4 and IPv6: the legacy `TCPDIAG_GETSOCK` request (what `ss` falls back
//! to on old kernels, kept by every kernel since) asks for both families in one walk of the
//! connection hash table, where `SOCK_DIAG_BY_FAMILY` walks it once per family. The walk
//! visits every bucket (262,144 on this 24 GiB machine) whatever the number of sockets, and
//! is most of what an idle tick costs. A kernel that refuses the legacy request gets one
//! `SOCK_DIAG_BY_FAMILY` dump per family instead.
//!
//! Messages are framed and decoded with `netlink-packet-core` and `netlink-packet-sock-diag`
//! buffers, without allocating per socket: at tens of thousands of sockets per tick the
//! allocation of the crate's owned `InetResponse` (one `Vec` per attribute) would cost more
//! than the kernel's work. Only the `INET_DIAG_INFO` attribute (`struct tcp_info`) is read.
//!
//! Destroy notifications are drained by a reader thread as they arrive: the kernel's default
//! socket receive buffer (212,992 bytes) holds about 166 of them (measured here, 380 bytes
//! each), fewer than a busy machine closes in one 5-second tick, and an unprivileged user
//! cannot raise it past `net.core.rmem_max`. The thread only parses and queues; every tick
//! takes what has queued, without blocking.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NetlinkBuffer, NetlinkHeader,
    NetlinkMessage, NlasIterator, Parseable,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{
    AF_INET, AF_INET6, INET_DIAG_INFO, IPPROTO_TCP, SOCK_DIAG_BY_FAMILY,
};
use netlink_packet_sock_diag::inet::{
    ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags,
};
use netlink_sys::{Socket, SocketAddr as NlAddr, protocols::NETLINK_SOCK_DIAG};
use tracing::{debug, warn};

use super::payload::{TcpCounters, parse_tcp_info};

/// The legacy inet_diag dump request (include/uapi/linux/inet_diag.h): both address families.
const TCPDIAG_GETSOCK: u16 = 18;
/// Size of `struct inet_diag_req` (the legacy request).
const INET_DIAG_REQ_LEN: usize = 60;

/// Multicast groups of sock_diag (include/uapi/linux/sock_diag.h).
const SKNLGRP_INET_TCP_DESTROY: u32 = 1;
const SKNLGRP_INET6_TCP_DESTROY: u32 = 3;
/// Size of `struct inet_diag_msg`.
const INET_DIAG_MSG_LEN: usize = 72;
/// The kernel sends dump datagrams of at most 32 KiB; room for any one datagram.
const RECV_BUF: usize = 64 * 1024;
/// Receive buffer asked for the destroy socket (granted in full only with CAP_NET_ADMIN;
/// otherwise up to net.core.rmem_max), to ride out bursts while the reader thread waits
/// for the CPU.
const DESTROY_RCVBUF: libc::c_int = 8 * 1024 * 1024;
/// Notifications queued between two ticks beyond which new ones are dropped and counted
/// (about 100 bytes each), so a recorder that stops sampling cannot grow without bound.
const MAX_QUEUED: usize = 200_000;

/// One TCP socket as the kernel reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sock {
    /// The socket cookie: unique for the life of the boot, the same in the dump and in the
    /// destroy notification (`ss -e` prints it as `sk:<hex>`).
    pub cookie: u64,
    /// The socket's inode (`socket:[inode]` in /proc/<pid>/fd); 0 once no process holds it,
    /// and always 0 in destroy notifications.
    pub inode: u32,
    /// The uid that created the socket (0 in destroy notifications).
    pub uid: u32,
    pub state: u8,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// `None` when the kernel sent no `tcp_info` (not expected for the states dumped).
    pub counters: Option<TcpCounters>,
}

/// Errors of this module; each becomes a `source::Error` in the source.
#[derive(Debug, thiserror::Error)]
pub enum DiagError {
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
    #[error("the kernel refused the sock_diag request: {0}")]
    Refused(io::Error),
    #[error("malformed sock_diag message: {0}")]
    Malformed(String),
    #[error("no complete sock_diag dump within {0:?}")]
    Timeout(Duration),
}

/// What one datagram said.
#[derive(Debug, PartialEq, Eq)]
pub enum Datagram {
    /// More messages of the dump follow.
    More,
    /// The dump is complete.
    Done,
}

/// Decode every message of one datagram, appending the sockets to `out`. Messages with
/// another sequence number than `seq` (when given) are left out: they answer an earlier
/// request that timed out.
pub fn parse_datagram(
    buf: &[u8],
    seq: Option<u32>,
    out: &mut Vec<Sock>,
) -> Result<Datagram, DiagError> {
    let mut rest = buf;
    let mut result = Datagram::More;
    while !rest.is_empty() {
        let msg = NetlinkBuffer::new_checked(rest)
            .map_err(|e| DiagError::Malformed(format!("netlink header: {e}")))?;
        let len = msg.length() as usize;
        let ours = seq.is_none_or(|s| msg.sequence_number() == s);
        match msg.message_type() {
            NLMSG_DONE if ours => result = Datagram::Done,
            NLMSG_ERROR if ours => {
                let payload = msg.payload();
                let code = payload
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .map(i32::from_ne_bytes)
                    .unwrap_or(0);
                if code != 0 {
                    return Err(DiagError::Refused(io::Error::from_raw_os_error(-code)));
                }
            }
            SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK if ours => {
                if let Some(s) = parse_inet(msg.payload())? {
                    out.push(s);
                }
            }
            _ => {}
        }
        // Messages are 4-byte aligned; the last one may end without padding.
        let step = (len + 3) & !3;
        if step == 0 || step >= rest.len() {
            break;
        }
        rest = &rest[step..];
    }
    Ok(result)
}

/// One `inet_diag_msg` and its attributes. `None` for a family other than IPv4/IPv6.
fn parse_inet(payload: &[u8]) -> Result<Option<Sock>, DiagError> {
    let family = payload.first().copied().unwrap_or(0);
    if family != AF_INET && family != AF_INET6 {
        return Ok(None);
    }
    let head = payload
        .get(..INET_DIAG_MSG_LEN)
        .ok_or_else(|| DiagError::Malformed(format!("{} byte inet_diag_msg", payload.len())))?;
    let h = InetResponseHeader::parse(head)
        .map_err(|e| DiagError::Malformed(format!("inet_diag_msg: {e}")))?;
    let mut counters = None;
    for nla in NlasIterator::new(&payload[INET_DIAG_MSG_LEN..]) {
        let nla = nla.map_err(|e| DiagError::Malformed(format!("attribute: {e}")))?;
        if nla.kind() == INET_DIAG_INFO {
            counters = parse_tcp_info(nla.value());
        }
    }
    let id = &h.socket_id;
    // ss prints the cookie as idiag_cookie[1] << 32 | idiag_cookie[0], two host-order u32s.
    let lo = u32::from_ne_bytes([id.cookie[0], id.cookie[1], id.cookie[2], id.cookie[3]]);
    let hi = u32::from_ne_bytes([id.cookie[4], id.cookie[5], id.cookie[6], id.cookie[7]]);
    Ok(Some(Sock {
        cookie: (u64::from(hi) << 32) | u64::from(lo),
        inode: h.inode,
        uid: h.uid,
        state: h.state,
        local: SocketAddr::new(canonical(id.source_address), id.source_port),
        remote: SocketAddr::new(canonical(id.destination_address), id.destination_port),
        counters,
    }))
}

/// An IPv4-mapped IPv6 address (a dual-stack socket talking IPv4) as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The TCP states dumped: every state of a full socket that can hold byte counters. LISTEN
/// has none; TIME_WAIT and NEW_SYN_RECV are mini-sockets without `tcp_info` (a connection's
/// final counters arrive in its destroy notification as it enters TIME_WAIT).
fn dumped_states() -> StateFlags {
    StateFlags::ESTABLISHED
        | StateFlags::SYN_SENT
        | StateFlags::SYN_RECV
        | StateFlags::FIN_WAIT1
        | StateFlags::FIN_WAIT2
        | StateFlags::CLOSE
        | StateFlags::CLOSE_WAIT
        | StateFlags::LAST_ACK
        | StateFlags::CLOSING
}

/// A sock_diag socket for dumps.
pub struct Diag {
    sock: Socket,
    buf: Vec<u8>,
    seq: u32,
    timeout: Duration,
    /// The kernel answers the legacy two-family request.
    legacy: bool,
}

impl Diag {
    pub fn open(timeout: Duration) -> Result<Self, DiagError> {
        let mut sock = Socket::new(NETLINK_SOCK_DIAG)?;
        sock.bind_auto()?;
        sock.connect(&NlAddr::new(0, 0))?;
        set_rcvtimeo(&sock, Duration::from_millis(200))?;
        Ok(Diag {
            sock,
            buf: vec![0; RECV_BUF],
            seq: 0,
            timeout,
            legacy: true,
        })
    }

    /// Every TCP socket of this network namespace, with its counters. `v4` and `v6` say which
    /// families may have sockets (nothing is dumped when neither may).
    pub fn dump(&mut self, v4: bool, v6: bool, out: &mut Vec<Sock>) -> Result<(), DiagError> {
        if !v4 && !v6 {
            return Ok(());
        }
        if self.legacy {
            let before = out.len();
            match self.dump_legacy(out) {
                Ok(()) => return Ok(()),
                Err(DiagError::Refused(e)) => {
                    debug!(error = %e, "legacy two-family dump refused; dumping each family");
                    self.legacy = false;
                    out.truncate(before);
                }
                Err(e) => return Err(e),
            }
        }
        if v4 {
            self.dump_family(AF_INET, out)?;
        }
        if v6 {
            self.dump_family(AF_INET6, out)?;
        }
        Ok(())
    }

    /// `TCPDIAG_GETSOCK`: the kernel sets the family to AF_UNSPEC and returns both.
    fn dump_legacy(&mut self, out: &mut Vec<Sock>) -> Result<(), DiagError> {
        self.seq = self.seq.wrapping_add(1);
        let mut req = vec![0u8; 16 + INET_DIAG_REQ_LEN];
        {
            let mut nl = NetlinkBuffer::new(&mut req[..]);
            nl.set_length((16 + INET_DIAG_REQ_LEN) as u32);
            nl.set_message_type(TCPDIAG_GETSOCK);
            nl.set_flags(NLM_F_REQUEST | NLM_F_DUMP);
            nl.set_sequence_number(self.seq);
        }
        // struct inet_diag_req: family, src_len, dst_len, ext; the socket id (zero: any);
        // then the states bitmask and dbs.
        req[16 + 3] = ExtensionFlags::INFO.bits();
        req[16 + 52..16 + 56].copy_from_slice(&dumped_states().bits().to_ne_bytes());
        self.sock.send(&req, 0)?;
        self.receive(out)
    }

    fn dump_family(&mut self, family: u8, out: &mut Vec<Sock>) -> Result<(), DiagError> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = self.seq;
        let mut msg = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::INFO,
                states: dumped_states(),
                socket_id: if family == AF_INET {
                    SocketId::new_v4()
                } else {
                    SocketId::new_v6()
                },
            })
            .into(),
        );
        msg.finalize();
        let mut req = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut req);
        self.sock.send(&req, 0)?;
        self.receive(out)
    }

    /// Read the answer to the request numbered `self.seq` until its end.
    fn receive(&mut self, out: &mut Vec<Sock>) -> Result<(), DiagError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let n = match self.sock.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    if Instant::now() >= deadline {
                        return Err(DiagError::Timeout(self.timeout));
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if n > self.buf.len() {
                return Err(DiagError::Malformed(format!(
                    "{n} byte datagram exceeds the {} byte buffer",
                    self.buf.len()
                )));
            }
            if parse_datagram(&self.buf[..n], Some(self.seq), out)? == Datagram::Done {
                return Ok(());
            }
        }
    }
}

fn set_rcvtimeo(sock: &Socket, d: Duration) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let tv = libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: a valid socket fd and a timeval that lives across the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Ask for a bigger receive buffer: SO_RCVBUFFORCE (CAP_NET_ADMIN) first, then SO_RCVBUF,
/// which the kernel caps at net.core.rmem_max.
fn grow_rcvbuf(sock: &Socket, bytes: libc::c_int) {
    use std::os::fd::AsRawFd;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: a valid socket fd and an int that lives across the call.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&bytes as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            break;
        }
    }
    if let Ok(granted) = sock.get_rx_buf_sz() {
        debug!(granted, "destroy notification receive buffer");
    }
}

/// Notifications received since the last [`DestroyListener::take`].
#[derive(Debug, Default)]
pub struct Closed {
    pub socks: Vec<Sock>,
    /// Times the kernel dropped notifications because the receive buffer was full.
    pub overflows: u64,
    /// Notifications dropped because too many were queued.
    pub dropped: u64,
}

/// Listens to the TCP destroy groups on a reader thread.
pub struct DestroyListener {
    queue: Arc<Mutex<Closed>>,
    stop: Arc<AtomicBool>,
}

impl DestroyListener {
    /// Join the IPv4 and IPv6 TCP destroy groups and start draining them.
    pub fn start() -> Result<Self, DiagError> {
        let mut sock = Socket::new(NETLINK_SOCK_DIAG)?;
        sock.bind_auto()?;
        sock.add_membership(SKNLGRP_INET_TCP_DESTROY)?;
        sock.add_membership(SKNLGRP_INET6_TCP_DESTROY)?;
        grow_rcvbuf(&sock, DESTROY_RCVBUF);
        // The thread wakes this often to see whether it should stop.
        set_rcvtimeo(&sock, Duration::from_millis(250))?;
        let queue = Arc::new(Mutex::new(Closed::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, s) = (Arc::clone(&queue), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("sockdiag-destroy".into())
            .spawn(move || drain(sock, &q, &s))?;
        Ok(DestroyListener { queue, stop })
    }

    /// Everything received since the last call; never blocks on the socket.
    pub fn take(&self) -> Closed {
        match self.queue.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

impl Drop for DestroyListener {
    fn drop(&mut self) {
        // The thread sees this within its receive timeout and exits; nothing waits for it.
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn drain(sock: Socket, queue: &Mutex<Closed>, stop: &AtomicBool) {
    let mut buf = vec![0u8; RECV_BUF];
    let mut socks = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match sock.recv(&mut &mut buf[..], 0) {
            Ok(n) => {
                socks.clear();
                if let Err(e) = parse_datagram(&buf[..n.min(buf.len())], None, &mut socks) {
                    warn!(error = %e, "skipped a destroy notification that did not parse");
                }
                let Ok(mut q) = queue.lock() else { return };
                let room = MAX_QUEUED.saturating_sub(q.socks.len());
                let take = socks.len().min(room);
                q.dropped += (socks.len() - take) as u64;
                q.socks.extend(socks.drain(..take));
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                if let Ok(mut q) = queue.lock() {
                    q.overflows += 1;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                warn!(error = %e, "destroy notifications stopped: connections that close between two samples are no longer counted");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
