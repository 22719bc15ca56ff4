use super::*;
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

const TCP: usize = 0;
const TCP_LO: usize = 1;
const UDP: usize = 2;
const UDP_LO: usize = 3;
const OTHER: usize = 4;

fn key(tgid: u32, start_ns: u64) -> Key {
    Key {
        tgid,
        pad: 0,
        start_ns,
    }
}

fn value(comm: &str, classes: &[(usize, u64, u64)]) -> Value {
    let mut v = Value::default();
    v.comm[..comm.len()].copy_from_slice(comm.as_bytes());
    v.uid = 1000;
    for &(class, bytes_in, bytes_out) in classes {
        v.bytes[class] = [bytes_in, bytes_out];
    }
    v
}

fn exited(mut v: Value) -> Value {
    v.exited = 1;
    v
}

/// A tracker whose /proc knows nothing (every process already gone).
fn tracker() -> Tracker {
    Tracker::new(7, 100, 16384, Box::new(|_, _| None))
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
fn one_counter_per_class_with_bytes_keyed_by_map_pid_and_start() {
    let mut t = tracker();
    let r = t.snapshot(
        vec![(
            key(42, 5_000_000_000),
            value("curl", &[(TCP, 10, 20), (UDP, 3, 4)]),
        )],
        Value::default(),
        &[],
    );
    assert_eq!(
        by_key(&r),
        vec![
            ("ebpf/7/42/5000000000/tcp".into(), 10, 20, false),
            ("ebpf/7/42/5000000000/udp".into(), 3, 4, false),
        ]
    );
    assert!(r.delete.is_empty());
    assert!(r.snapshot.counters.iter().all(|c| c.remote.is_none()));
}

#[test]
fn loopback_classes_carry_a_loopback_remote_for_the_loop_to_filter() {
    let mut t = tracker();
    let r = t.snapshot(
        vec![(
            key(1, 1),
            value("redis", &[(TCP_LO, 5, 6), (UDP_LO, 7, 8), (TCP, 1, 1)]),
        )],
        Value::default(),
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
    let net: Vec<_> = r
        .snapshot
        .counters
        .iter()
        .filter(|c| c.remote.is_none())
        .map(|c| c.key.0.clone())
        .collect();
    assert_eq!(net, vec!["ebpf/7/1/1/tcp".to_string()]);
}

#[test]
fn other_ip_protocols_are_counted_in_their_own_class() {
    let mut t = tracker();
    let r = t.snapshot(
        vec![(key(3, 9), value("ping", &[(OTHER, 64, 64)]))],
        Value::default(),
        &[],
    );
    assert_eq!(by_key(&r), vec![("ebpf/7/3/9/other".into(), 64, 64, false)]);
}

#[test]
fn an_exited_process_is_emitted_closed_once_then_deleted_and_forgotten() {
    let mut t = tracker();
    let k = key(9, 100);
    t.snapshot(
        vec![(k, value("wget", &[(TCP, 1, 1)]))],
        Value::default(),
        &[],
    );
    assert_eq!(t.tracked(), 1);
    let r = t.snapshot(
        vec![(k, exited(value("wget", &[(TCP, 50, 60)])))],
        Value::default(),
        &[],
    );
    assert_eq!(by_key(&r), vec![("ebpf/7/9/100/tcp".into(), 50, 60, true)]);
    assert_eq!(r.delete, vec![k]);
    assert_eq!(t.tracked(), 0);
}

#[test]
fn an_entry_without_bytes_yields_no_counter_but_is_still_deleted_at_exit() {
    let mut t = tracker();
    let k = key(5, 5);
    let r = t.snapshot(vec![(k, exited(value("idle", &[])))], Value::default(), &[]);
    assert!(r.snapshot.counters.is_empty());
    assert_eq!(r.delete, vec![k]);
}

#[test]
fn entries_found_dead_by_the_sweep_are_closed_like_exited_ones() {
    let mut t = tracker();
    let (a, b) = (key(1, 1), key(2, 2));
    let r = t.snapshot(
        vec![
            (a, value("a", &[(TCP, 1, 2)])),
            (b, value("b", &[(TCP, 3, 4)])),
        ],
        Value::default(),
        &[b],
    );
    assert_eq!(
        by_key(&r),
        vec![
            ("ebpf/7/1/1/tcp".into(), 1, 2, false),
            ("ebpf/7/2/2/tcp".into(), 3, 4, true),
        ]
    );
    assert_eq!(r.delete, vec![b]);
}

#[test]
fn a_counter_never_goes_down_within_one_key() {
    // A reading that copies a value while the kernel adds to it could see a lower number;
    // handed on, the delta engine would take it for a new counter and count it all again.
    let mut t = tracker();
    let k = key(4, 4);
    t.snapshot(
        vec![(k, value("p", &[(TCP, 1000, 500)]))],
        Value::default(),
        &[],
    );
    let r = t.snapshot(
        vec![(k, value("p", &[(TCP, 990, 700)]))],
        Value::default(),
        &[],
    );
    assert_eq!(
        by_key(&r),
        vec![("ebpf/7/4/4/tcp".into(), 1000, 700, false)]
    );
    let r = t.snapshot(
        vec![(k, value("p", &[(TCP, 1200, 700)]))],
        Value::default(),
        &[],
    );
    assert_eq!(
        by_key(&r),
        vec![("ebpf/7/4/4/tcp".into(), 1200, 700, false)]
    );
}

#[test]
fn a_key_listed_twice_in_one_reading_gives_one_counter() {
    let mut t = tracker();
    let k = key(8, 8);
    let r = t.snapshot(
        vec![
            (k, value("dup", &[(TCP, 1, 1)])),
            (k, value("dup", &[(TCP, 2, 2)])),
        ],
        Value::default(),
        &[],
    );
    assert_eq!(by_key(&r), vec![("ebpf/7/8/8/tcp".into(), 2, 2, false)]);
}

#[test]
fn a_reused_pid_with_another_start_time_is_another_counter() {
    let mut t = tracker();
    let r = t.snapshot(
        vec![
            (key(77, 1_000), exited(value("old", &[(TCP, 10, 10)]))),
            (key(77, 2_000), value("new", &[(TCP, 1, 1)])),
        ],
        Value::default(),
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
fn a_live_process_is_named_from_proc_once_with_its_start_in_clock_ticks() {
    let calls = Rc::new(RefCell::new(Vec::new()));
    let seen = calls.clone();
    let mut t = Tracker::new(
        7,
        100,
        16384,
        Box::new(move |pid, start| {
            seen.borrow_mut().push((pid, start));
            Some(Proc {
                name: "firefox".into(),
                exe: Some(PathBuf::from("/usr/lib/firefox/firefox")),
                uid: Some(1000),
                cmdline: Some("firefox\0--new-window".into()),
            })
        }),
    );
    // 12.34 s after boot is 1234 ticks at 100 Hz, as /proc/<pid>/stat's starttime says.
    let k = key(300, 12_340_000_000);
    for n in 1..=3 {
        let r = t.snapshot(
            vec![(k, value("Socket Thread", &[(TCP, n, n)]))],
            Value::default(),
            &[],
        );
        let Owner::Process(p) = &r.snapshot.counters[0].owner else {
            panic!("attributed");
        };
        assert_eq!(p.name, "firefox");
        assert_eq!(
            p.exe.as_deref(),
            Some(std::path::Path::new("/usr/lib/firefox/firefox"))
        );
        assert_eq!(p.start_time, Some(1234));
        assert_eq!(p.cmdline.as_deref(), Some("firefox\0--new-window"));
    }
    assert_eq!(*calls.borrow(), vec![(300, 1234)]);
}

#[test]
fn a_process_gone_from_proc_keeps_the_kernels_name_and_uid_and_claims_no_path() {
    let mut t = tracker();
    let r = t.snapshot(
        vec![(key(12, 3), exited(value("short_tcp", &[(TCP, 5, 5)])))],
        Value::default(),
        &[],
    );
    let Owner::Process(p) = &r.snapshot.counters[0].owner else {
        panic!("attributed");
    };
    assert_eq!(p.name, "short_tcp");
    assert_eq!(p.uid, Some(1000));
    assert_eq!(p.exe, None);
}

#[test]
fn an_exited_process_is_not_looked_up_in_proc_where_its_pid_may_name_another() {
    let mut t = Tracker::new(
        7,
        100,
        16384,
        Box::new(|_, _| panic!("an exited process must not be looked up")),
    );
    let r = t.snapshot(
        vec![(key(12, 3), exited(value("gone", &[(TCP, 5, 5)])))],
        Value::default(),
        &[],
    );
    assert_eq!(r.snapshot.counters.len(), 1);
}

#[test]
fn overflow_bytes_go_to_an_unattributed_counter_that_says_why() {
    let mut t = tracker();
    let r = t.snapshot(Vec::new(), value("", &[(TCP, 11, 22), (UDP_LO, 1, 0)]), &[]);
    assert_eq!(
        by_key(&r),
        vec![
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
    let mut v = value("", &[(TCP, 1, 1)]);
    v.comm = *b"abcdefghijklmnop";
    v.exited = 1;
    let r = t.snapshot(vec![(key(1, 1), v)], Value::default(), &[]);
    let Owner::Process(p) = &r.snapshot.counters[0].owner else {
        panic!("attributed");
    };
    assert_eq!(p.name, "abcdefghijklmnop");
}

#[test]
fn the_value_layout_matches_the_kernel_struct() {
    // struct proc_val: 6 x 2 u64, char comm[16], u32 uid, u32 exited.
    assert_eq!(std::mem::size_of::<Value>(), 6 * 2 * 8 + 16 + 4 + 4);
    assert_eq!(std::mem::size_of::<Key>(), 16);
}
