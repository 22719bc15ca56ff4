use super::*;
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

const TCP: usize = 0;
const TCP_LO: usize = 1;
const UDP: usize = 2;
const UDP_LO: usize = 3;
const OTHER: usize = 4;

/// Namespace 1 is the recorder's, 2 a container linked to it, 3 an isolated sandbox, 4 the
/// outside.
const HOST: u32 = 1;
const LINKED: u32 = 2;
const ISOLATED: u32 = 3;
const OUTSIDE: u32 = 4;

#[derive(Default)]
struct FakeOs {
    procs: HashMap<u32, Proc>,
    lookups: Rc<RefCell<Vec<(u32, u64)>>>,
    scopes_asked: Rc<RefCell<Vec<u32>>>,
    cgroups: HashMap<u64, String>,
}

impl Os for FakeOs {
    fn process(&mut self, pid: u32, start_ticks: u64) -> Option<Proc> {
        self.lookups.borrow_mut().push((pid, start_ticks));
        self.procs.get(&pid).cloned()
    }
    fn scope(&mut self, netns: u32, _pid: u32) -> Scope {
        self.scopes_asked.borrow_mut().push(netns);
        match netns {
            HOST => Scope::Host,
            LINKED => Scope::Linked,
            OUTSIDE => Scope::Outside,
            _ => Scope::Isolated,
        }
    }
    fn container_of_cgroup(&mut self, id: u64) -> Option<String> {
        self.cgroups.get(&id).cloned()
    }
}

fn tkey(tgid: u32, start_ns: u64, netns: u32) -> TrafficKey {
    TrafficKey {
        tgid,
        netns,
        start_ns,
    }
}

fn pkey(tgid: u32, start_ns: u64) -> ProcKey {
    ProcKey {
        tgid,
        pad: 0,
        start_ns,
    }
}

fn info(comm: &str) -> ProcInfo {
    let mut v = ProcInfo::default();
    v.comm[..comm.len()].copy_from_slice(comm.as_bytes());
    v.uid = 1000;
    v
}

fn exited(mut v: ProcInfo) -> ProcInfo {
    v.exited = 1;
    v
}

fn bytes(classes: &[(usize, u64, u64)]) -> Traffic {
    let mut t = Traffic::default();
    for &(class, bytes_in, bytes_out) in classes {
        t.bytes[class] = [bytes_in, bytes_out];
    }
    t
}

/// One process (`tgid`, start `start`) in the host namespace.
fn one(tgid: u32, start: u64, p: ProcInfo, classes: &[(usize, u64, u64)]) -> Maps {
    Maps {
        traffic: vec![(tkey(tgid, start, HOST), bytes(classes))],
        procs: vec![(pkey(tgid, start), p)],
        overflow: Default::default(),
    }
}

/// A tracker whose /proc knows nothing (every process already gone).
fn tracker() -> Tracker {
    Tracker::new(7, 100, 16384, Box::new(FakeOs::default()))
}

fn by_key(r: &Reading) -> Vec<(String, u64, u64, bool)> {
    let mut v: Vec<_> = r
        .snapshot
        .counters
        .iter()
        .map(|c| (c.key.0.clone(), c.bytes_in, c.bytes_out, c.closed))
        .collect();
    v.sort();
    v
}

#[test]
fn one_counter_per_class_with_bytes_keyed_by_map_pid_start_and_namespace() {
    let mut t = tracker();
    let r = t.snapshot(
        one(
            42,
            5_000_000_000,
            info("curl"),
            &[(TCP, 10, 20), (UDP, 3, 4)],
        ),
        &[],
    );
    assert_eq!(
        by_key(&r),
        vec![
            ("ebpf/7/42/5000000000/1/tcp".into(), 10, 20, false),
            ("ebpf/7/42/5000000000/1/udp".into(), 3, 4, false),
        ]
    );
    assert!(r.delete_traffic.is_empty() && r.delete_procs.is_empty());
    assert!(r.snapshot.counters.iter().all(|c| c.remote.is_none()));
}

#[test]
fn local_classes_carry_a_loopback_remote_for_the_loop_to_filter() {
    let mut t = tracker();
    let r = t.snapshot(
        one(
            1,
            1,
            info("redis"),
            &[(TCP_LO, 5, 6), (UDP_LO, 7, 8), (TCP, 1, 1)],
        ),
        &[],
    );
    let lo: Vec<_> = r
        .snapshot
        .counters
        .iter()
        .filter_map(|c| {
            c.remote
                .as_ref()
                .map(|rm| (rm.proto, rm.loopback, c.bytes_in))
        })
        .collect();
    assert_eq!(lo, vec![(Proto::Tcp, true, 5), (Proto::Udp, true, 7)]);
}

#[test]
fn a_container_reaches_the_network_a_sandbox_only_this_machine_the_outside_not_at_all() {
    let mut t = tracker();
    let classes = [(TCP, 100, 200), (TCP_LO, 1, 2)];
    let maps = Maps {
        traffic: vec![
            (tkey(10, 1, LINKED), bytes(&classes)),
            (tkey(11, 1, ISOLATED), bytes(&classes)),
            (tkey(12, 1, OUTSIDE), bytes(&classes)),
        ],
        procs: vec![
            (pkey(10, 1), info("nginx")),
            (pkey(11, 1), info("sandboxed")),
            (pkey(12, 1), info("server")),
        ],
        overflow: Default::default(),
    };
    let r = t.snapshot(maps, &[]);
    assert_eq!(
        by_key(&r),
        vec![
            ("ebpf/7/10/1/2/tcp".into(), 100, 200, false),
            ("ebpf/7/10/1/2/tcp-lo".into(), 1, 2, false),
            // A sandbox's "network" peer is a process of this machine that relays it.
            ("ebpf/7/11/1/3/tcp-lo".into(), 101, 202, false),
        ]
    );
}

#[test]
fn a_namespace_is_placed_once_per_entry() {
    let os = FakeOs::default();
    let asked = os.scopes_asked.clone();
    let mut t = Tracker::new(7, 100, 16384, Box::new(os));
    for n in 1..=3 {
        t.snapshot(
            Maps {
                traffic: vec![(tkey(10, 1, LINKED), bytes(&[(TCP, n, n)]))],
                procs: vec![(pkey(10, 1), info("nginx"))],
                overflow: Default::default(),
            },
            &[],
        );
    }
    assert_eq!(*asked.borrow(), vec![LINKED]);
}

#[test]
fn one_process_in_two_namespaces_has_a_counter_in_each() {
    let mut t = tracker();
    let r = t.snapshot(
        Maps {
            traffic: vec![
                (tkey(5, 9, HOST), bytes(&[(TCP, 1, 1)])),
                (tkey(5, 9, LINKED), bytes(&[(TCP, 2, 2)])),
            ],
            procs: vec![(pkey(5, 9), info("proxy"))],
            overflow: Default::default(),
        },
        &[],
    );
    assert_eq!(r.snapshot.counters.len(), 2);
    assert_eq!(t.tracked(), 1);
}

#[test]
fn other_protocols_and_packet_sockets_are_counted_in_their_own_class() {
    let mut t = tracker();
    let r = t.snapshot(one(3, 9, info("ping"), &[(OTHER, 0, 64)]), &[]);
    assert_eq!(
        by_key(&r),
        vec![("ebpf/7/3/9/1/other".into(), 0, 64, false)]
    );
}

#[test]
fn an_exited_process_is_emitted_closed_once_then_deleted_and_forgotten() {
    let mut t = tracker();
    t.snapshot(one(9, 100, info("wget"), &[(TCP, 1, 1)]), &[]);
    assert_eq!(t.tracked(), 1);
    let r = t.snapshot(one(9, 100, exited(info("wget")), &[(TCP, 50, 60)]), &[]);
    assert_eq!(
        by_key(&r),
        vec![("ebpf/7/9/100/1/tcp".into(), 50, 60, true)]
    );
    assert_eq!(r.delete_traffic, vec![tkey(9, 100, HOST)]);
    assert_eq!(r.delete_procs, vec![pkey(9, 100)]);
    assert_eq!(t.tracked(), 0);
}

#[test]
fn an_exited_process_without_bytes_is_still_deleted() {
    let mut t = tracker();
    let r = t.snapshot(
        Maps {
            procs: vec![(pkey(5, 5), exited(info("idle")))],
            ..Maps::default()
        },
        &[],
    );
    assert!(r.snapshot.counters.is_empty());
    assert_eq!(r.delete_procs, vec![pkey(5, 5)]);
}

#[test]
fn entries_found_dead_by_the_sweep_are_closed_like_exited_ones() {
    let mut t = tracker();
    let r = t.snapshot(
        Maps {
            traffic: vec![
                (tkey(1, 1, HOST), bytes(&[(TCP, 1, 2)])),
                (tkey(2, 2, HOST), bytes(&[(TCP, 3, 4)])),
            ],
            procs: vec![(pkey(1, 1), info("a")), (pkey(2, 2), info("b"))],
            overflow: Default::default(),
        },
        &[pkey(2, 2)],
    );
    assert_eq!(
        by_key(&r),
        vec![
            ("ebpf/7/1/1/1/tcp".into(), 1, 2, false),
            ("ebpf/7/2/2/1/tcp".into(), 3, 4, true),
        ]
    );
    assert_eq!(r.delete_traffic, vec![tkey(2, 2, HOST)]);
    assert_eq!(r.delete_procs, vec![pkey(2, 2)]);
}

#[test]
fn a_counter_never_goes_down_within_one_key() {
    // A reading that copies a value while the kernel adds to it could see a lower number;
    // handed on, the delta engine would take it for a new counter and count it all again.
    let mut t = tracker();
    t.snapshot(one(4, 4, info("p"), &[(TCP, 1000, 500)]), &[]);
    let r = t.snapshot(one(4, 4, info("p"), &[(TCP, 990, 700)]), &[]);
    assert_eq!(
        by_key(&r),
        vec![("ebpf/7/4/4/1/tcp".into(), 1000, 700, false)]
    );
    let r = t.snapshot(one(4, 4, info("p"), &[(TCP, 1200, 700)]), &[]);
    assert_eq!(
        by_key(&r),
        vec![("ebpf/7/4/4/1/tcp".into(), 1200, 700, false)]
    );
}

#[test]
fn a_key_listed_twice_in_one_reading_gives_one_counter() {
    let mut t = tracker();
    let mut m = one(8, 8, info("dup"), &[(TCP, 1, 1)]);
    m.traffic.push((tkey(8, 8, HOST), bytes(&[(TCP, 2, 2)])));
    let r = t.snapshot(m, &[]);
    assert_eq!(by_key(&r), vec![("ebpf/7/8/8/1/tcp".into(), 2, 2, false)]);
}

#[test]
fn a_reused_pid_with_another_start_time_is_another_counter() {
    let mut t = tracker();
    let r = t.snapshot(
        Maps {
            traffic: vec![
                (tkey(77, 1_000, HOST), bytes(&[(TCP, 10, 10)])),
                (tkey(77, 2_000, HOST), bytes(&[(TCP, 1, 1)])),
            ],
            procs: vec![
                (pkey(77, 1_000), exited(info("old"))),
                (pkey(77, 2_000), info("new")),
            ],
            overflow: Default::default(),
        },
        &[],
    );
    let owners: Vec<_> = r
        .snapshot
        .counters
        .iter()
        .map(|c| match &c.owner {
            Owner::Process(p) => (p.pid, p.name.clone(), c.closed),
            Owner::Unattributed { .. } => (0, String::new(), c.closed),
        })
        .collect();
    assert_eq!(
        owners,
        vec![
            (77, "old".to_string(), true),
            (77, "new".to_string(), false)
        ]
    );
}

#[test]
fn a_live_process_is_named_from_proc_once_with_its_start_in_clock_ticks_and_its_container() {
    let mut os = FakeOs::default();
    os.procs.insert(
        300,
        Proc {
            name: "nginx".into(),
            exe: Some(PathBuf::from("/usr/sbin/nginx")),
            uid: Some(0),
            cmdline: Some("nginx\0-g".into()),
            container: Some("web-1".into()),
        },
    );
    let calls = os.lookups.clone();
    let mut t = Tracker::new(7, 100, 16384, Box::new(os));
    // 12.34 s after boot is 1234 ticks at 100 Hz, as /proc/<pid>/stat's starttime says.
    for n in 1..=3 {
        let mut m = one(300, 12_340_000_000, info("nginx"), &[(TCP, n, n)]);
        m.traffic[0].0.netns = LINKED;
        let r = t.snapshot(m, &[]);
        let Owner::Process(p) = &r.snapshot.counters[0].owner else {
            panic!("attributed");
        };
        assert_eq!(p.name, "nginx");
        assert_eq!(
            p.exe.as_deref(),
            Some(std::path::Path::new("/usr/sbin/nginx"))
        );
        assert_eq!(p.start_time, Some(1234));
        assert_eq!(p.container.as_deref(), Some("web-1"));
        assert_eq!(
            p.pid, 300,
            "the kernel's pid, not the one inside the container"
        );
    }
    assert_eq!(*calls.borrow(), vec![(300, 1234)]);
}

#[test]
fn a_process_gone_from_proc_keeps_the_kernels_name_uid_and_cgroup_and_claims_no_path() {
    let mut os = FakeOs::default();
    os.cgroups.insert(77, "web-1".into());
    let mut t = Tracker::new(7, 100, 16384, Box::new(os));
    let mut p = exited(info("short_tcp"));
    p.cgroup_id = 77;
    let r = t.snapshot(one(12, 3, p, &[(TCP, 5, 5)]), &[]);
    let Owner::Process(p) = &r.snapshot.counters[0].owner else {
        panic!("attributed");
    };
    assert_eq!(p.name, "short_tcp");
    assert_eq!(p.uid, Some(1000));
    assert_eq!(p.exe, None);
    assert_eq!(p.container.as_deref(), Some("web-1"));
}

#[test]
fn an_exited_process_is_not_looked_up_in_proc_where_its_pid_may_name_another() {
    let os = FakeOs::default();
    let calls = os.lookups.clone();
    let mut t = Tracker::new(7, 100, 16384, Box::new(os));
    let r = t.snapshot(one(12, 3, exited(info("gone")), &[(TCP, 5, 5)]), &[]);
    assert_eq!(r.snapshot.counters.len(), 1);
    assert!(calls.borrow().is_empty());
}

#[test]
fn overflow_and_kernel_read_bytes_go_to_unattributed_counters_that_say_why() {
    let mut t = tracker();
    let r = t.snapshot(
        Maps {
            overflow: [
                bytes(&[(TCP, 11, 22), (UDP_LO, 1, 0)]),
                bytes(&[(TCP, 7, 0)]),
            ],
            ..Maps::default()
        },
        &[],
    );
    assert_eq!(
        by_key(&r),
        vec![
            ("ebpf/7/kernel/tcp".into(), 7, 0, false),
            ("ebpf/7/overflow/tcp".into(), 11, 22, false),
            ("ebpf/7/overflow/udp-lo".into(), 1, 0, false),
        ]
    );
    let Owner::Unattributed { reason } = &r.snapshot.counters[0].owner else {
        panic!("unattributed");
    };
    assert!(reason.contains("16384"), "{reason}");
}

#[test]
fn a_comm_of_sixteen_bytes_without_nul_is_read_whole() {
    let mut t = tracker();
    let mut v = exited(info(""));
    v.comm = *b"abcdefghijklmnop";
    let r = t.snapshot(one(1, 1, v, &[(TCP, 1, 1)]), &[]);
    let Owner::Process(p) = &r.snapshot.counters[0].owner else {
        panic!("attributed");
    };
    assert_eq!(p.name, "abcdefghijklmnop");
}

#[test]
fn the_layouts_match_the_kernel_structs() {
    // struct proc_info: char comm[16], u32 uid, u32 exited, u64 cgroup_id.
    assert_eq!(std::mem::size_of::<ProcInfo>(), 16 + 4 + 4 + 8);
    assert_eq!(std::mem::size_of::<ProcKey>(), 16);
    // struct traffic_key: u32 tgid, u32 netns, u64 start_ns; struct traffic: 6 x 2 u64.
    assert_eq!(std::mem::size_of::<TrafficKey>(), 16);
    assert_eq!(std::mem::size_of::<Traffic>(), 6 * 2 * 8);
}
