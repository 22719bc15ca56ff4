//! The source against the real kernel, on loopback sockets this test makes. Other tests run
//! in parallel, so counters are picked out by this test's own ports.

use super::*;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

fn source() -> SockdiagSource {
    SockdiagSource::new(
        &SourceOptions {
            sample_timeout: Duration::from_secs(5),
        },
        "UDP not counted (test)".into(),
    )
    .expect("sockdiag source")
}

/// Sample until `pick` finds what it wants in a snapshot, within 10 s.
fn sample_until<T>(
    src: &mut SockdiagSource,
    what: &str,
    mut pick: impl FnMut(&Snapshot) -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let snap = src.sample(&Cancel::new()).expect("sample");
        if let Some(v) = pick(&snap) {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The counter of the connection whose remote end is `peer`.
fn by_peer(snap: &Snapshot, peer: SocketAddr, closed: bool) -> Option<Counter> {
    snap.counters
        .iter()
        .find(|c| {
            c.closed == closed
                && c.remote
                    .as_ref()
                    .is_some_and(|r| r.addr == Some(peer.ip()) && r.port == Some(peer.port()))
        })
        .cloned()
}

#[test]
fn a_connection_is_one_counter_owned_by_this_process_until_its_final_value() {
    let mut src = source();
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let server = l.local_addr().expect("addr");
    let mut c = TcpStream::connect(server).expect("connect");
    let (mut s, client) = l.accept().expect("accept");

    let first = sample_until(&mut src, "the client socket", |snap| {
        by_peer(snap, server, false)
    });
    assert!(first.key.0.starts_with("sockdiag/"));
    assert_eq!((first.bytes_in, first.bytes_out), (0, 0), "idle shows 0");
    let remote = first.remote.as_ref().expect("remote");
    assert!(remote.loopback);
    assert_eq!(remote.proto, Proto::Tcp);
    match &first.owner {
        Owner::Process(p) => {
            assert_eq!(p.pid, std::process::id());
            assert!(p.exe.is_some() && p.start_time.is_some());
        }
        other => panic!("expected this process, got {other:?}"),
    }

    c.write_all(&[1u8; 4000]).expect("write");
    let mut buf = vec![0u8; 4000];
    s.read_exact(&mut buf).expect("read");
    s.write_all(&[2u8; 1500]).expect("write");
    let mut back = vec![0u8; 1500];
    c.read_exact(&mut back).expect("read");
    // Unchanged sockets are left out of snapshots: keep what each one last reported.
    let mut server_end: Option<Counter> = None;
    let live = sample_until(&mut src, "all 4000 bytes acknowledged", |snap| {
        if let Some(k) = by_peer(snap, client, false) {
            server_end = Some(k);
        }
        by_peer(snap, server, false).filter(|k| k.bytes_out == 4000)
    });
    assert_eq!(live.key, first.key);
    assert_eq!(live.bytes_in, 1500);
    let server_end = server_end.expect("server end reported");
    assert_ne!(server_end.key, live.key, "each end is its own counter");

    drop(c);
    drop(s);
    let last = sample_until(&mut src, "the closed client counter", |snap| {
        by_peer(snap, server, true)
    });
    assert_eq!(last.key, first.key, "joined by cookie");
    assert_eq!((last.bytes_in, last.bytes_out), (1500, 4000));
    assert!(matches!(&last.owner, Owner::Process(p) if p.pid == std::process::id()));
}

#[test]
fn a_connection_that_opens_and_closes_between_samples_is_counted_unattributed() {
    let mut src = source();
    src.sample(&Cancel::new()).expect("first sample");
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let server = l.local_addr().expect("addr");
    {
        let mut c = TcpStream::connect(server).expect("connect");
        let (mut s, _) = l.accept().expect("accept");
        c.write_all(&[3u8; 2222]).expect("write");
        let mut buf = vec![0u8; 2222];
        s.read_exact(&mut buf).expect("read");
        c.shutdown(std::net::Shutdown::Both).expect("shutdown");
    }
    let closed = sample_until(&mut src, "the destroy notification", |snap| {
        by_peer(snap, server, true)
    });
    assert_eq!((closed.bytes_in, closed.bytes_out), (0, 2222));
    assert_eq!(
        closed.owner,
        Owner::Unattributed {
            reason: CLOSED_UNSEEN.into()
        }
    );
}

#[test]
fn a_quiet_socket_is_reported_once_then_left_out_until_it_changes() {
    let mut src = source();
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let server = l.local_addr().expect("addr");
    let mut c = TcpStream::connect(server).expect("connect");
    let (mut s, _) = l.accept().expect("accept");
    // The first sample reports every socket (the delta engine's baselines).
    let first = src.sample(&Cancel::new()).expect("sample");
    assert!(by_peer(&first, server, false).is_some());
    let quiet = src.sample(&Cancel::new()).expect("sample");
    assert!(by_peer(&quiet, server, false).is_none());
    c.write_all(&[5u8; 100]).expect("write");
    let mut buf = [0u8; 100];
    s.read_exact(&mut buf).expect("read");
    let moved = sample_until(&mut src, "the socket that moved", |snap| {
        by_peer(snap, server, false).filter(|k| k.bytes_out == 100)
    });
    assert_eq!(moved.bytes_in, 0);
}

#[test]
fn cancellation_is_honoured_before_reading() {
    let mut src = source();
    let cancel = Cancel::new();
    cancel.cancel();
    assert!(matches!(src.sample(&cancel), Err(Error::Cancelled)));
}

#[test]
fn loopback_is_any_connection_between_two_addresses_of_this_machine() {
    let a = |s: &str| s.parse::<SocketAddr>().expect("addr");
    assert!(remote(&a("127.0.0.1:1"), &a("127.0.0.1:2")).loopback);
    assert!(remote(&a("[::1]:1"), &a("[::1]:2")).loopback);
    assert!(remote(&a("10.0.0.5:1"), &a("10.0.0.5:2")).loopback);
    assert!(!remote(&a("10.0.0.5:1"), &a("10.0.0.6:443")).loopback);
}

#[test]
fn sockstat_tcp_in_use_is_read_per_family() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v4 = dir.path().join("sockstat");
    std::fs::write(
        &v4,
        "sockets: used 2027\nTCP: inuse 2001 orphan 0 tw 1000 alloc 2001 mem 0\nUDP: inuse 0 mem 0\n",
    )
    .expect("write");
    let v6 = dir.path().join("sockstat6");
    std::fs::write(&v6, "TCP6: inuse 0\nUDP6: inuse 3\n").expect("write");
    assert_eq!(tcp_in_use(&v4, "TCP:"), Some(2001));
    assert_eq!(tcp_in_use(&v6, "TCP6:"), Some(0));
    assert_eq!(tcp_in_use(&v6, "TCP:"), None);
    assert_eq!(tcp_in_use(&dir.path().join("missing"), "TCP:"), None);
}
