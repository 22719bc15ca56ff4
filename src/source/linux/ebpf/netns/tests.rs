use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn link(index: u32, kind: &str, peer: Option<i32>) -> Link {
    Link {
        index,
        kind: kind.into(),
        peer_nsid: peer,
    }
}

fn route(dst: &str, len: u8, oif: u32) -> Route {
    Route {
        dst: dst.parse().expect("addr"),
        prefix_len: len,
        oifs: vec![oif],
    }
}

/// The test topology: `up0` (2) is a veth to the outside (nsid 0) carrying the default
/// route, `vc0` (3) a veth to a container (nsid 1), `eth0` (4) a physical LAN port, `docker0`
/// (5) a bridge.
fn host() -> HostView {
    HostView {
        links: vec![
            link(1, "", None),
            link(2, "veth", Some(0)),
            link(3, "veth", Some(1)),
            link(4, "", None),
            link(5, "bridge", None),
        ],
        addrs: vec![
            "127.0.0.1".parse().expect("a"),
            "10.171.0.1".parse().expect("a"),
            "10.172.0.1".parse().expect("a"),
            "192.168.1.10".parse().expect("a"),
            "fe80::1".parse().expect("a"),
            "fd00:172::1".parse().expect("a"),
        ],
        routes: vec![
            route("0.0.0.0", 0, 2),
            route("::", 0, 2),
            route("10.171.0.0", 24, 2),
            route("10.172.0.0", 24, 3),
            route("fd00:172::", 64, 3),
            route("fe80::", 64, 3),
            route("192.168.1.0", 24, 4),
            route("172.17.0.0", 16, 5),
        ],
    }
}

#[test]
fn this_machine_is_its_addresses_and_the_subnets_behind_container_links() {
    let nets = host().local_nets();
    let has = |a: &str, l: u8| nets.contains(&(a.parse().expect("a"), l));
    assert!(has("10.172.0.0", 24) && has("172.17.0.0", 16) && has("fd00:172::", 64));
    assert!(has("10.171.0.1", 32) && has("192.168.1.10", 32) && has("127.0.0.1", 32));
    // The uplink's subnet and a physical LAN lead to other machines; link-local is everywhere.
    assert!(!has("10.171.0.0", 24) && !has("192.168.1.0", 24));
    assert!(
        !nets
            .iter()
            .any(|(a, _)| matches!(a, IpAddr::V6(v) if v.segments()[0] == 0xfe80))
    );
}

#[test]
fn namespaces_are_placed_by_the_device_that_leads_to_them() {
    let h = host();
    assert_eq!(h.uplinks(), HashSet::from([2]));
    assert_eq!(h.scope_of(Some(1)), Scope::Linked);
    assert_eq!(h.scope_of(Some(0)), Scope::Outside);
    assert_eq!(h.scope_of(Some(7)), Scope::Isolated);
    assert_eq!(h.scope_of(None), Scope::Isolated);
    assert_eq!(h.scope_of(Some(-1)), Scope::Isolated);
}

#[test]
fn without_a_default_route_every_veth_leads_to_this_machine() {
    let mut h = host();
    h.routes.retain(|r| r.prefix_len > 0);
    assert_eq!(h.scope_of(Some(0)), Scope::Linked);
    assert!(
        h.local_nets()
            .contains(&("10.171.0.0".parse().expect("a"), 24))
    );
}

fn nlmsg(ty: u16, payload: &[u8]) -> Vec<u8> {
    let len = 16 + payload.len();
    let mut m = Vec::new();
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&[0; 10]);
    m.extend_from_slice(payload);
    while m.len() % 4 != 0 {
        m.push(0);
    }
    m
}

fn attr(ty: u16, v: &[u8]) -> Vec<u8> {
    let mut a = Vec::new();
    a.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
    a.extend_from_slice(&ty.to_ne_bytes());
    a.extend_from_slice(v);
    while a.len() % 4 != 0 {
        a.push(0);
    }
    a
}

#[test]
fn link_address_and_route_messages_are_parsed() {
    let mut ifinfo = vec![0u8; 16];
    ifinfo[4..8].copy_from_slice(&3u32.to_ne_bytes());
    ifinfo.extend(attr(IFLA_LINKINFO, &attr(IFLA_INFO_KIND, b"veth\0")));
    ifinfo.extend(attr(IFLA_LINK_NETNSID, &1i32.to_ne_bytes()));
    let mut ifaddr = vec![AF_INET, 24, 0, 0, 3, 0, 0, 0];
    ifaddr.extend(attr(IFA_ADDRESS, &[10, 172, 0, 1]));
    let mut ifaddr6 = vec![AF_INET6, 64, 0, 0, 3, 0, 0, 0];
    ifaddr6.extend(attr(IFA_ADDRESS, &Ipv6Addr::LOCALHOST.octets()));
    let mut rt = vec![AF_INET, 24, 0, 0, 254, 2, 253, RTN_UNICAST, 0, 0, 0, 0];
    rt.extend(attr(RTA_DST, &[10, 172, 0, 0]));
    rt.extend(attr(RTA_OIF, &3u32.to_ne_bytes()));
    let mut default = vec![AF_INET, 0, 0, 0, 254, 2, 0, RTN_UNICAST, 0, 0, 0, 0];
    // Multipath default route over devices 2 and 4.
    let mut hops = Vec::new();
    for dev in [2u32, 4] {
        hops.extend_from_slice(&8u16.to_ne_bytes());
        hops.extend_from_slice(&[0, 0]);
        hops.extend_from_slice(&dev.to_ne_bytes());
    }
    default.extend(attr(RTA_MULTIPATH, &hops));
    // A local-table route is not the main table's.
    let mut local = vec![AF_INET, 32, 0, 0, 255, 2, 254, 2, 0, 0, 0, 0];
    local.extend(attr(RTA_DST, &[10, 172, 0, 1]));
    let mut stream = Vec::new();
    for (ty, p) in [
        (RTM_NEWLINK, &ifinfo),
        (RTM_NEWADDR, &ifaddr),
        (RTM_NEWADDR, &ifaddr6),
        (RTM_NEWROUTE, &rt),
        (RTM_NEWROUTE, &default),
        (RTM_NEWROUTE, &local),
    ] {
        stream.extend(nlmsg(ty, p));
    }
    stream.extend(nlmsg(NLMSG_DONE, &[0; 4]));
    let (msgs, done) = messages(&stream).expect("messages");
    assert!(done);
    let v = view_from(&msgs);
    assert_eq!(v.links, vec![link(3, "veth", Some(1))]);
    assert_eq!(
        v.addrs,
        vec![
            IpAddr::V4(Ipv4Addr::new(10, 172, 0, 1)),
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        ]
    );
    assert_eq!(
        v.routes,
        vec![
            route("10.172.0.0", 24, 3),
            Route {
                dst: "0.0.0.0".parse().expect("a"),
                prefix_len: 0,
                oifs: vec![2, 4]
            }
        ]
    );
    assert_eq!(v.uplinks(), HashSet::from([2, 4]));
}

#[test]
fn an_error_answer_carries_its_errno_and_truncated_input_does_not_panic() {
    let err = nlmsg(NLMSG_ERROR, &(-libc::EPERM).to_ne_bytes());
    assert_eq!(messages(&err).err(), Some(libc::EPERM));
    let mut nsid = vec![0u8; 4];
    nsid.extend(attr(NETNSA_NSID, &5i32.to_ne_bytes()));
    assert_eq!(parse_nsid(&nsid), Some(5));
    for cut in 0..40 {
        let msg = nlmsg(RTM_NEWLINK, &[0xff; 30]);
        let _ = messages(&msg[..cut.min(msg.len())]);
        let _ = parse_link(&[0xff; 30][..cut.min(30)]);
        let _ = parse_route(&[0xff; 30][..cut.min(30)]);
        let _ = parse_addr(&[0xff; 30][..cut.min(30)]);
    }
}
