use super::*;
use crate::source::linux::sockdiag::payload;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};

use proptest::prelude::*;

/// A netlink message: 16-byte header, then the payload, padded to 4 bytes.
fn nl(ty: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let len = 16 + payload.len();
    let mut m = Vec::new();
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&2u16.to_ne_bytes()); // NLM_F_MULTI
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(payload);
    while m.len() % 4 != 0 {
        m.push(0);
    }
    m
}

struct Msg {
    family: u8,
    state: u8,
    local: SocketAddr,
    remote: SocketAddr,
    cookie: u64,
    uid: u32,
    inode: u32,
    info: Option<Vec<u8>>,
}

fn addr16(ip: IpAddr) -> [u8; 16] {
    let mut a = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => a[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => a.copy_from_slice(&v6.octets()),
    }
    a
}

/// `struct inet_diag_msg` and an `INET_DIAG_INFO` attribute, as the kernel lays them out.
fn inet_diag(m: &Msg) -> Vec<u8> {
    let mut p = vec![m.family, m.state, 0, 0];
    p.extend_from_slice(&m.local.port().to_be_bytes());
    p.extend_from_slice(&m.remote.port().to_be_bytes());
    p.extend_from_slice(&addr16(m.local.ip()));
    p.extend_from_slice(&addr16(m.remote.ip()));
    p.extend_from_slice(&0u32.to_ne_bytes()); // interface
    p.extend_from_slice(&((m.cookie & 0xffff_ffff) as u32).to_ne_bytes());
    p.extend_from_slice(&((m.cookie >> 32) as u32).to_ne_bytes());
    for v in [0u32, 0, 0, m.uid, m.inode] {
        p.extend_from_slice(&v.to_ne_bytes());
    }
    assert_eq!(p.len(), INET_DIAG_MSG_LEN);
    // An attribute the parser must step over (INET_DIAG_SHUTDOWN, one byte, padded).
    p.extend_from_slice(&5u16.to_ne_bytes());
    p.extend_from_slice(&8u16.to_ne_bytes());
    p.extend_from_slice(&[3, 0, 0, 0]);
    if let Some(info) = &m.info {
        p.extend_from_slice(&((4 + info.len()) as u16).to_ne_bytes());
        p.extend_from_slice(&INET_DIAG_INFO.to_ne_bytes());
        p.extend_from_slice(info);
        while p.len() % 4 != 0 {
            p.push(0);
        }
    }
    p
}

fn tcp_info(acked: u64, received: u64, sent: u64, retrans: u64) -> Vec<u8> {
    let mut raw = vec![0u8; 248];
    raw[120..128].copy_from_slice(&acked.to_ne_bytes());
    raw[128..136].copy_from_slice(&received.to_ne_bytes());
    raw[200..208].copy_from_slice(&sent.to_ne_bytes());
    raw[208..216].copy_from_slice(&retrans.to_ne_bytes());
    raw
}

fn v4_msg() -> Msg {
    Msg {
        family: AF_INET,
        state: 1,
        local: "10.231.0.1:52576".parse().expect("addr"),
        remote: "10.231.0.2:5001".parse().expect("addr"),
        cookie: 0x1_0000_101a,
        uid: 1000,
        inode: 29332,
        info: Some(tcp_info(1_000_026, 300_001, 1_000_024, 0)),
    }
}

#[test]
fn a_dump_datagram_yields_each_socket_with_its_cookie_addresses_and_counters() {
    let mut buf = nl(SOCK_DIAG_BY_FAMILY, 7, &inet_diag(&v4_msg()));
    let v6 = Msg {
        family: AF_INET6,
        local: SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0x231, 0, 0, 0, 0, 0, 1)),
            40000,
        ),
        remote: SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0x231, 0, 0, 0, 0, 0, 2)),
            5007,
        ),
        cookie: 42,
        ..v4_msg()
    };
    buf.extend(nl(SOCK_DIAG_BY_FAMILY, 7, &inet_diag(&v6)));
    let mut out = Vec::new();
    assert_eq!(
        parse_datagram(&buf, Some(7), &mut out).expect("parses"),
        Datagram::More
    );
    assert_eq!(out.len(), 2);
    let s = &out[0];
    assert_eq!(s.cookie, 0x1_0000_101a);
    assert_eq!(s.inode, 29332);
    assert_eq!(s.uid, 1000);
    assert_eq!(s.state, 1);
    assert_eq!(s.local, "10.231.0.1:52576".parse().expect("addr"));
    assert_eq!(s.remote, "10.231.0.2:5001".parse().expect("addr"));
    assert_eq!(
        s.counters,
        Some(TcpCounters {
            bytes_acked: 1_000_026,
            bytes_received: 300_001,
            sent_once: Some(1_000_024),
        })
    );
    assert_eq!(out[1].remote.port(), 5007);
    assert!(out[1].remote.is_ipv6());
}

#[test]
fn ipv4_mapped_addresses_of_dual_stack_sockets_read_as_ipv4() {
    let m = Msg {
        family: AF_INET6,
        remote: SocketAddr::new(
            IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped()),
            443,
        ),
        local: SocketAddr::new(
            IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped()),
            50000,
        ),
        ..v4_msg()
    };
    let mut out = Vec::new();
    parse_datagram(&nl(SOCK_DIAG_BY_FAMILY, 1, &inet_diag(&m)), None, &mut out).expect("parses");
    assert_eq!(out[0].remote, "192.0.2.7:443".parse().expect("addr"));
}

#[test]
fn done_ends_the_dump_and_stale_answers_are_ignored() {
    let mut buf = nl(SOCK_DIAG_BY_FAMILY, 6, &inet_diag(&v4_msg()));
    buf.extend(nl(NLMSG_DONE, 6, &0i32.to_ne_bytes()));
    let mut out = Vec::new();
    // An answer to an earlier request (seq 6) while seq 7 is awaited.
    assert_eq!(
        parse_datagram(&buf, Some(7), &mut out).expect("parses"),
        Datagram::More
    );
    assert!(out.is_empty());
    assert_eq!(
        parse_datagram(&buf, Some(6), &mut out).expect("parses"),
        Datagram::Done
    );
    assert_eq!(out.len(), 1);
}

#[test]
fn a_refusal_carries_the_kernel_errno() {
    let mut payload = (-libc::EPERM).to_ne_bytes().to_vec();
    payload.extend_from_slice(&[0u8; 16]);
    let err = parse_datagram(&nl(NLMSG_ERROR, 3, &payload), Some(3), &mut Vec::new())
        .expect_err("refused");
    match err {
        DiagError::Refused(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM)),
        other => panic!("expected Refused, got {other:?}"),
    }
    // An error message with code 0 is an acknowledgement.
    let ack = nl(NLMSG_ERROR, 3, &[0u8; 20]);
    assert!(parse_datagram(&ack, Some(3), &mut Vec::new()).is_ok());
}

#[test]
fn a_socket_without_tcp_info_is_kept_without_counters() {
    let m = Msg {
        info: None,
        ..v4_msg()
    };
    let mut out = Vec::new();
    parse_datagram(&nl(SOCK_DIAG_BY_FAMILY, 1, &inet_diag(&m)), None, &mut out).expect("parses");
    assert_eq!(out[0].counters, None);
}

#[test]
fn a_truncated_message_is_an_error_not_a_panic() {
    let full = nl(SOCK_DIAG_BY_FAMILY, 1, &inet_diag(&v4_msg()));
    for cut in [3, 15, 17, 40, 87, 100] {
        let mut b = full[..cut].to_vec();
        // Claim the cut length so the frame itself is consistent.
        if cut >= 4 {
            b[..4].copy_from_slice(&(cut as u32).to_ne_bytes());
        }
        let _ = parse_datagram(&b, None, &mut Vec::new());
    }
    let mut b = full[..40].to_vec();
    b[..4].copy_from_slice(&40u32.to_ne_bytes());
    assert!(matches!(
        parse_datagram(&b, None, &mut Vec::new()),
        Err(DiagError::Malformed(_))
    ));
}

proptest! {
    #[test]
    fn any_bytes_parse_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_datagram(&bytes, None, &mut Vec::new());
    }

    #[test]
    fn any_mutation_of_a_real_message_parses_or_fails_without_panicking(
        at in 0usize..400, byte in any::<u8>()
    ) {
        let mut b = nl(SOCK_DIAG_BY_FAMILY, 1, &inet_diag(&v4_msg()));
        let i = at % b.len();
        b[i] = byte;
        let _ = parse_datagram(&b, None, &mut Vec::new());
    }
}

/// A loopback connection: (client, accepted server end).
fn loopback_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let c = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
    let (s, _) = l.accept().expect("accept");
    (c, s)
}

fn find(socks: &[Sock], local: SocketAddr) -> Option<&Sock> {
    socks.iter().find(|s| s.local == local)
}

fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_kernel_dump_shows_a_loopback_connection_with_exact_payload() {
    let mut diag = Diag::open(Duration::from_secs(5)).expect("sock_diag socket");
    let (mut c, mut s) = loopback_pair();
    c.write_all(&[7u8; 3000]).expect("write");
    let mut got = vec![0u8; 3000];
    s.read_exact(&mut got).expect("read");
    s.write_all(&[1u8; 700]).expect("write");
    let mut back = vec![0u8; 700];
    c.read_exact(&mut back).expect("read");
    let client = c.local_addr().expect("addr");
    let server = s.local_addr().expect("addr");
    let (cs, ss) = poll("both ends fully acknowledged", || {
        let mut socks = Vec::new();
        diag.dump(true, true, &mut socks).expect("dump");
        let cs = find(&socks, client)?.clone();
        let ss = find(&socks, SocketAddr::new(server.ip(), server.port()))
            .filter(|x| x.remote == client)?
            .clone();
        let done = |x: &Sock| {
            x.counters
                .is_some_and(|k| payload::payload(&k, x.state, false).1 == k.sent_once.unwrap_or(0))
        };
        (done(&cs) && done(&ss)).then_some((cs, ss))
    });
    assert_ne!(cs.inode, 0);
    assert_ne!(cs.cookie, ss.cookie);
    let cc = cs.counters.expect("client tcp_info");
    let sc = ss.counters.expect("server tcp_info");
    assert_eq!(payload::payload(&cc, cs.state, false), (700, 3000));
    assert_eq!(payload::payload(&sc, ss.state, false), (3000, 700));
}

#[test]
fn destroy_notifications_carry_the_final_counters_and_the_live_cookie() {
    let listener = DestroyListener::start().expect("join the destroy groups");
    let mut diag = Diag::open(Duration::from_secs(5)).expect("sock_diag socket");
    let (mut c, mut s) = loopback_pair();
    let client = c.local_addr().expect("addr");
    let mut socks = Vec::new();
    diag.dump(true, true, &mut socks).expect("dump");
    let cookie = find(&socks, client).expect("client in dump").cookie;
    c.write_all(&[7u8; 5000]).expect("write");
    let mut got = vec![0u8; 5000];
    s.read_exact(&mut got).expect("read");
    drop(c);
    drop(s);
    let mut seen: Vec<Sock> = Vec::new();
    let closed = poll("the client's destroy notification", || {
        seen.extend(listener.take().socks);
        seen.iter().find(|x| x.cookie == cookie).cloned()
    });
    assert_eq!(closed.local, client);
    assert_eq!(closed.inode, 0, "destroy notifications carry no inode");
    let k = closed.counters.expect("tcp_info in the notification");
    assert_eq!(payload::payload(&k, closed.state, true), (0, 5000));
}

#[test]
fn one_legacy_dump_and_two_family_dumps_see_the_same_ipv4_and_ipv6_sockets() {
    let l6 = TcpListener::bind("[::1]:0").expect("bind ::1");
    let c6 = TcpStream::connect(l6.local_addr().expect("addr")).expect("connect v6");
    let (c4, _s4) = loopback_pair();
    let (a6, a4) = (
        c6.local_addr().expect("addr"),
        c4.local_addr().expect("addr"),
    );
    let mut legacy = Diag::open(Duration::from_secs(5)).expect("sock_diag socket");
    let mut per_family = Diag::open(Duration::from_secs(5)).expect("sock_diag socket");
    per_family.legacy = false;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    legacy.dump(true, true, &mut x).expect("legacy dump");
    per_family
        .dump(true, true, &mut y)
        .expect("per-family dumps");
    assert!(legacy.legacy, "this kernel answers the legacy request");
    for a in [a4, a6] {
        let (p, q) = (find(&x, a), find(&y, a));
        assert!(p.is_some() && q.is_some(), "{a} missing");
        assert_eq!(p.map(|s| s.cookie), q.map(|s| s.cookie));
    }
    let mut none = Vec::new();
    legacy.dump(false, false, &mut none).expect("no dump");
    assert!(none.is_empty());
}
