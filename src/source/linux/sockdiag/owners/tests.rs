//! The walk over a fake `/proc`: directories of `<pid>/stat`, `<pid>/fd/<n>` symlinks to
//! `socket:[inode]` (dangling links read like the real ones), `<pid>/exe` and `cmdline`.

use super::*;

use std::os::unix::fs::symlink;

struct FakeProc {
    dir: tempfile::TempDir,
}

impl FakeProc {
    fn new() -> Self {
        FakeProc {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// A process `pid` named `comm`, started at `start` ticks, holding `sockets` (fd 3…).
    fn spawn(&self, pid: u32, comm: &str, start: u64, sockets: &[u32]) {
        let d = self.dir.path().join(pid.to_string());
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("fd")).expect("fd dir");
        self.rename(pid, comm, start);
        symlink(format!("/usr/bin/{comm}"), d.join("exe")).expect("exe link");
        fs::write(d.join("cmdline"), format!("{comm}\0--flag\0")).expect("cmdline");
        symlink("/dev/null", d.join("fd/0")).expect("fd 0");
        symlink("pipe:[99]", d.join("fd/1")).expect("fd 1");
        for (n, inode) in sockets.iter().enumerate() {
            self.open(pid, 3 + n as u32, *inode);
        }
    }

    /// Rewrite `/proc/<pid>/stat` (a rename through prctl, or another process's start time).
    fn rename(&self, pid: u32, comm: &str, start: u64) {
        // 52 fields; starttime is field 22.
        let mut fields: Vec<String> =
            vec![pid.to_string(), format!("({comm})"), "S".into(), "1".into()];
        while fields.len() < 21 {
            fields.push("0".into());
        }
        fields.push(start.to_string());
        while fields.len() < 52 {
            fields.push("0".into());
        }
        let path = self.dir.path().join(pid.to_string()).join("stat");
        fs::write(path, fields.join(" ") + "\n").expect("stat");
    }

    fn open(&self, pid: u32, fd: u32, inode: u32) {
        let p = self.dir.path().join(format!("{pid}/fd/{fd}"));
        let _ = fs::remove_file(&p);
        symlink(format!("socket:[{inode}]"), p).expect("socket link");
    }

    fn close(&self, pid: u32, fd: u32) {
        fs::remove_file(self.dir.path().join(format!("{pid}/fd/{fd}"))).expect("close");
    }

    fn exit(&self, pid: u32) {
        fs::remove_dir_all(self.dir.path().join(pid.to_string())).expect("exit");
    }
}

fn set(inodes: &[u32]) -> IdSet<u32> {
    inodes.iter().copied().collect()
}

fn owner(o: &Owners, inode: u32) -> Option<(u32, String)> {
    o.owner_of(inode).map(|p| (p.pid, p.name.clone()))
}

#[test]
fn socket_links_parse_and_other_links_do_not() {
    assert_eq!(parse_socket_link(b"socket:[29332]"), Some(29332));
    assert_eq!(parse_socket_link(b"socket:[]"), None);
    assert_eq!(parse_socket_link(b"pipe:[29332]"), None);
    assert_eq!(parse_socket_link(b"/home/socket:[1]"), None);
    assert_eq!(parse_socket_link(b"socket:[99999999999]"), None);
}

#[test]
fn the_first_refresh_finds_every_holder_with_its_details() {
    let fake = FakeProc::new();
    fake.spawn(100, "curl", 5000, &[11, 12]);
    fake.spawn(200, "sshd", 10, &[13]);
    let mut o = Owners::new(fake.root());
    o.refresh(&set(&[11, 12, 13]), Instant::now())
        .expect("refresh");
    assert_eq!(owner(&o, 11), Some((100, "curl".into())));
    assert_eq!(owner(&o, 13), Some((200, "sshd".into())));
    let p = o.owner_of(12).expect("holder");
    assert_eq!(p.start_time, Some(5000));
    assert_eq!(p.exe.as_deref(), Some(Path::new("/usr/bin/curl")));
    assert_eq!(p.cmdline.as_deref(), Some("curl\0--flag"));
    assert!(p.uid.is_some());
}

#[test]
fn sockets_not_in_the_dump_are_not_tracked() {
    let fake = FakeProc::new();
    fake.spawn(100, "curl", 5000, &[11, 55]);
    let mut o = Owners::new(fake.root());
    o.refresh(&set(&[11]), Instant::now()).expect("refresh");
    assert_eq!(o.holder_count(55), 0);
    assert_eq!(o.holder_count(11), 1);
}

#[test]
fn steady_state_rereads_only_a_slice_of_the_processes_per_tick() {
    let fake = FakeProc::new();
    for pid in 100..130 {
        fake.spawn(pid, "worker", 1000 + u64::from(pid), &[pid * 10]);
    }
    let wanted: IdSet<u32> = (100..130).map(|p| p * 10).collect();
    let mut o = Owners::new(fake.root()).with_reread_every(Duration::from_secs(60));
    let t0 = Instant::now();
    o.refresh(&wanted, t0).expect("refresh");
    assert_eq!(o.last.fd_dirs_read, 30);
    // 5 s of a 60 s period: a twelfth of 30 processes, rounded up.
    let mut reread = 0;
    for k in 1..=12 {
        o.refresh(&wanted, t0 + Duration::from_secs(5 * k))
            .expect("refresh");
        assert_eq!(o.last.searched, 0);
        assert!(o.last.fd_dirs_read <= 3, "{:?}", o.last);
        reread += o.last.reread;
    }
    assert!(reread >= 30, "every process read again within the period");
}

#[test]
fn a_new_socket_of_a_running_process_is_found_by_searching() {
    let fake = FakeProc::new();
    fake.spawn(100, "idle", 1000, &[]);
    fake.spawn(200, "firefox", 2000, &[21]);
    let mut o = Owners::new(fake.root());
    let t0 = Instant::now();
    o.refresh(&set(&[21]), t0).expect("refresh");
    fake.open(200, 9, 22);
    o.refresh(&set(&[21, 22]), t0 + Duration::from_secs(1))
        .expect("refresh");
    assert_eq!(owner(&o, 22), Some((200, "firefox".into())));
    assert!(o.last.searched >= 1);
}

#[test]
fn the_process_that_made_sockets_last_is_searched_first() {
    let fake = FakeProc::new();
    for pid in 100..120 {
        fake.spawn(pid, "quiet", 1000, &[]);
    }
    fake.spawn(300, "browser", 2000, &[31]);
    let mut o = Owners::new(fake.root());
    let t0 = Instant::now();
    o.refresh(&set(&[31]), t0).expect("refresh");
    fake.open(300, 5, 32);
    o.refresh(&set(&[31, 32]), t0 + Duration::from_secs(1))
        .expect("refresh");
    assert_eq!(o.last.searched, 1, "the browser was read first");
}

#[test]
fn an_inode_nobody_holds_is_searched_for_once() {
    let fake = FakeProc::new();
    for pid in 100..110 {
        fake.spawn(pid, "p", 1000, &[]);
    }
    let mut o = Owners::new(fake.root());
    let t0 = Instant::now();
    o.refresh(&set(&[]), t0).expect("refresh");
    o.refresh(&set(&[77]), t0 + Duration::from_secs(1))
        .expect("refresh");
    assert_eq!(o.last.searched, 10);
    o.refresh(&set(&[77]), t0 + Duration::from_secs(2))
        .expect("refresh");
    assert_eq!(o.last.searched, 0);
    assert_eq!(o.owner_of(77), None);
}

#[test]
fn a_search_is_bounded_per_tick_and_goes_on_until_found() {
    let fake = FakeProc::new();
    for pid in 1000..1200 {
        fake.spawn(pid, "quiet", 1000, &[]);
    }
    let mut o = Owners::new(fake.root()).with_reread_every(Duration::from_secs(3600));
    let t0 = Instant::now();
    o.refresh(&set(&[]), t0).expect("refresh");
    // A process that never made a socket before makes one.
    fake.open(1150, 7, 91);
    let mut ticks = 0;
    while o.owner_of(91).is_none() {
        ticks += 1;
        assert!(ticks <= 2, "not found within 200 processes / 128 per tick");
        o.refresh(&set(&[91]), t0 + Duration::from_secs(ticks))
            .expect("refresh");
        assert!(o.last.searched <= SEARCH_BUDGET);
    }
    assert_eq!(owner(&o, 91).map(|x| x.0), Some(1150));
}

#[test]
fn closed_sockets_are_forgotten() {
    let fake = FakeProc::new();
    fake.spawn(100, "browser", 1000, &[1, 2, 3]);
    let mut o = Owners::new(fake.root());
    let t0 = Instant::now();
    o.refresh(&set(&[1, 2, 3]), t0).expect("refresh");
    o.refresh(&set(&[2]), t0 + Duration::from_secs(1))
        .expect("refresh");
    assert_eq!((o.holder_count(1), o.holder_count(2)), (0, 1));
}

#[test]
fn a_forked_child_sharing_a_socket_is_credited_and_the_socket_counted_once() {
    let fake = FakeProc::new();
    fake.spawn(100, "sock_parent", 1000, &[41]);
    let mut o = Owners::new(fake.root());
    let t0 = Instant::now();
    o.refresh(&set(&[41]), t0).expect("refresh");
    assert_eq!(owner(&o, 41), Some((100, "sock_parent".into())));
    // fork: the child (started later) holds the same socket.
    fake.spawn(101, "sock_child", 1500, &[41]);
    o.refresh(&set(&[41]), t0 + Duration::from_secs(1))
        .expect("refresh");
    assert_eq!(o.holder_count(41), 2);
    assert_eq!(owner(&o, 41), Some((101, "sock_child".into())));
    // The child exits: back to the parent, which still holds it.
    fake.exit(101);
    o.refresh(&set(&[41]), t0 + Duration::from_secs(2))
        .expect("refresh");
    assert_eq!(owner(&o, 41), Some((100, "sock_parent".into())));
}

#[test]
fn a_child_renamed_right_after_fork_is_named_by_its_new_name() {
    let fake = FakeProc::new();
    fake.spawn(100, "sock_parent", 1000, &[41]);
    let mut o = Owners::new(fake.root());
    let t0 = Instant::now();
    o.refresh(&set(&[41]), t0).expect("refresh");
    // Read between fork and prctl(PR_SET_NAME): still the parent's name.
    fake.spawn(101, "sock_parent", 1500, &[41]);
    o.refresh(&set(&[41]), t0 + Duration::from_secs(1))
        .expect("refresh");
    fake.rename(101, "sock_child", 1500);
    o.refresh(&set(&[41]), t0 + Duration::from_secs(2))
        .expect("refresh");
    assert_eq!(owner(&o, 41), Some((101, "sock_child".into())));
}

#[test]
fn a_reused_pid_is_a_new_process() {
    let fake = FakeProc::new();
    fake.spawn(100, "curl", 1000, &[51]);
    let mut o = Owners::new(fake.root()).with_reread_every(Duration::from_secs(3600));
    let t0 = Instant::now();
    o.refresh(&set(&[51]), t0).expect("refresh");
    // curl exits and, before the next tick, pid 100 is reused by wget with a new socket.
    fake.spawn(100, "wget", 9000, &[52]);
    o.refresh(&set(&[52]), t0 + Duration::from_secs(1))
        .expect("refresh");
    let p = o.owner_of(52).expect("found by searching");
    assert_eq!(
        (p.pid, p.name.as_str(), p.start_time),
        (100, "wget", Some(9000))
    );
    assert_eq!(p.exe.as_deref(), Some(Path::new("/usr/bin/wget")));
    assert_eq!(o.owner_of(51), None);
}

#[test]
fn a_process_gone_between_listing_and_reading_is_forgotten() {
    let fake = FakeProc::new();
    fake.spawn(100, "short", 1000, &[61]);
    let mut o = Owners::new(fake.root());
    let t0 = Instant::now();
    o.refresh(&set(&[61]), t0).expect("refresh");
    fake.exit(100);
    o.refresh(&set(&[61]), t0 + Duration::from_secs(1))
        .expect("refresh");
    assert_eq!(o.owner_of(61), None);
    assert_eq!(o.holder_count(61), 0);
}

#[test]
fn a_socket_passed_to_a_running_process_moves_within_the_reread_period() {
    let fake = FakeProc::new();
    fake.spawn(100, "acceptor", 1000, &[71]);
    fake.spawn(200, "worker", 500, &[]);
    let mut o = Owners::new(fake.root()).with_reread_every(Duration::from_secs(30));
    let t0 = Instant::now();
    o.refresh(&set(&[71]), t0).expect("refresh");
    // SCM_RIGHTS: the worker (older) receives it, the acceptor closes its copy.
    fake.open(200, 3, 71);
    fake.close(100, 3);
    o.refresh(&set(&[71]), t0 + Duration::from_secs(31))
        .expect("refresh");
    assert_eq!(owner(&o, 71), Some((200, "worker".into())));
    assert_eq!(o.holder_count(71), 1);
}

#[test]
fn a_missing_proc_is_an_error() {
    let mut o = Owners::new("/nonexistent/proc");
    assert!(o.refresh(&set(&[1]), Instant::now()).is_err());
}

#[test]
fn proc_is_listed_only_when_loadavg_shows_a_task_came_or_went() {
    let fake = FakeProc::new();
    let loadavg = |tasks: u32, last: u32| {
        fs::write(
            fake.root().join("loadavg"),
            format!("0.10 0.20 0.30 1/{tasks} {last}\n"),
        )
        .expect("loadavg");
    };
    loadavg(100, 5000);
    fake.spawn(100, "server", 1000, &[81]);
    let mut o = Owners::new(fake.root()).with_reread_every(Duration::from_secs(3600));
    let t0 = Instant::now();
    o.refresh(&set(&[81]), t0).expect("refresh");
    assert!(o.last.listed);
    o.refresh(&set(&[81]), t0 + Duration::from_secs(1))
        .expect("refresh");
    assert!(!o.last.listed);
    // fork: a child inherits the socket; the last pid moves.
    fake.spawn(5001, "server", 2000, &[81]);
    loadavg(101, 5001);
    o.refresh(&set(&[81]), t0 + Duration::from_secs(2))
        .expect("refresh");
    assert!(o.last.listed);
    assert_eq!(owner(&o, 81).map(|x| x.0), Some(5001));
    // The child exits: the task count drops.
    fake.exit(5001);
    loadavg(100, 5001);
    o.refresh(&set(&[81]), t0 + Duration::from_secs(3))
        .expect("refresh");
    assert_eq!(owner(&o, 81).map(|x| x.0), Some(100));
}

#[test]
fn a_young_process_is_searched_before_old_ones() {
    let fake = FakeProc::new();
    for pid in 1000..1300 {
        fake.spawn(pid, "old", 1000, &[]);
    }
    let mut o = Owners::new(fake.root()).with_reread_every(Duration::from_secs(3600));
    let t0 = Instant::now();
    o.refresh(&set(&[]), t0).expect("refresh");
    // Started later (read when new, before it connected), then it connects.
    fake.spawn(5000, "v6_tcp", 9000, &[]);
    o.refresh(&set(&[]), t0 + Duration::from_secs(1))
        .expect("refresh");
    fake.open(5000, 3, 95);
    o.refresh(&set(&[95]), t0 + Duration::from_secs(2))
        .expect("refresh");
    assert_eq!(owner(&o, 95).map(|x| x.0), Some(5000));
    assert_eq!(o.last.searched, 1);
}
