//! What `netmon record --source ebpf` costs: CPU time per tick and resident memory, on an idle
//! system and with 2,000 open loopback sockets across 300 processes (idle, then each socket
//! moving 64 bytes each way every second, so 300 processes have traffic in every tick), plus
//! the kernel programs' own cost per send/receive call.
//!
//!     sudo -E cargo bench --bench ebpf_record            # NETMON_BENCH_TICKS=20 by default
//!
//! Runs in a network namespace of its own (nothing else on the machine is seen or disturbed),
//! at the default-ish 1 s interval. CPU is the recorder's scheduler runtime (all threads, ns)
//! over the measured ticks, after a few warm-up ticks; memory is VmRSS at the end and VmHWM
//! (the peak, reached while the programs are loaded and relocated against the kernel's BTF).
//! Needs root; anywhere else it says so and exits 1.

fn main() {
    #[cfg(target_os = "linux")]
    linux::main();
    #[cfg(not(target_os = "linux"))]
    eprintln!("ebpf_record: the ebpf source exists on Linux only");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    const PROCESSES: usize = 300;
    const CONNECTIONS: usize = 1000; // two sockets each: 2,000 sockets
    const MESSAGE: usize = 64;

    pub fn main() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("ebpf_record: NOT RUN: needs root (a network namespace and eBPF)");
            std::process::exit(1);
        }
        let ticks: u64 = std::env::var("NETMON_BENCH_TICKS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20);
        // SAFETY: unshare only moves this (still single-threaded) process to a new netns.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            eprintln!(
                "ebpf_record: NOT RUN: unshare(CLONE_NEWNET): {}",
                std::io::Error::last_os_error()
            );
            std::process::exit(1);
        }
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status();
        assert!(up.is_ok_and(|s| s.success()), "ip link set lo up");

        println!("netmon record --source ebpf, interval 1s, {ticks} measured ticks per case");
        println!(
            "{:<58} {:>12} {:>10} {:>10}",
            "case", "CPU/tick", "RSS", "peak RSS"
        );
        report("idle system", &measure(ticks, &[]));

        let workers = spawn_workers(false);
        report("2,000 idle sockets, 300 processes", &measure(ticks, &[]));
        drop(workers);

        let stats = BpfStats::enable();
        let workers = spawn_workers(true);
        let m = measure(ticks, &["--include-loopback"]);
        // The same maps read, the same counters made, but loopback is left out before the
        // delta engine and the store: what reading the kernel costs by itself.
        let read_only = measure(ticks, &[]);
        drop(workers);
        drop(stats);
        report(
            "2,000 sockets, 300 processes, all moving bytes every tick",
            &m,
        );
        report(
            "  the same, loopback left out (no rows written)",
            &read_only,
        );
        for (name, count, ns) in &m.programs {
            if *count > 0 {
                println!(
                    "kernel program {name}: {count} runs, {:.0} ns per run",
                    *ns as f64 / *count as f64
                );
            }
        }
    }

    struct Measured {
        cpu_per_tick: Duration,
        rss_kib: u64,
        hwm_kib: u64,
        /// (program, runs, ns) while the recorder ran, when kernel.bpf_stats_enabled is on.
        programs: Vec<(String, u64, u64)>,
    }

    fn report(case: &str, m: &Measured) {
        println!(
            "{case:<58} {:>9.3} ms {:>7.1} MB {:>7.1} MB",
            m.cpu_per_tick.as_secs_f64() * 1000.0,
            m.rss_kib as f64 / 1024.0,
            m.hwm_kib as f64 / 1024.0
        );
    }

    fn netmon() -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_netmon"))
    }

    fn measure(ticks: u64, extra: &[&str]) -> Measured {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("bench.db");
        let mut child = Command::new(netmon())
            // Every tick written, as the figures before batched writes were taken (issue 16).
            .args([
                "record",
                "--source",
                "ebpf",
                "--interval",
                "1s",
                "--write-every",
                "0",
                "--db",
            ])
            .arg(&db)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn netmon");
        let warmup = 3;
        wait_ticks(&mut child, &db, warmup);
        let cpu0 = cpu_ns(child.id());
        wait_ticks(&mut child, &db, warmup + ticks);
        let cpu1 = cpu_ns(child.id());
        let (rss_kib, hwm_kib) = memory_kib(child.id());
        let programs = program_stats();
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let _ = child.wait();
        Measured {
            cpu_per_tick: Duration::from_nanos((cpu1 - cpu0) / ticks),
            rss_kib,
            hwm_kib,
            programs,
        }
    }

    fn wait_ticks(child: &mut Child, db: &Path, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(30 + 2 * n);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("netmon record exited ({status}): {err}");
            }
            let done = rusqlite::Connection::open(db)
                .and_then(|c| c.query_row("SELECT count(*) FROM ticks", [], |r| r.get::<_, i64>(0)))
                .is_ok_and(|t| t as u64 >= n);
            if done {
                return;
            }
            assert!(Instant::now() < deadline, "netmon record stopped ticking");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Scheduler runtime of every thread of `pid`, in ns (/proc/PID/task/*/schedstat).
    fn cpu_ns(pid: u32) -> u64 {
        let mut total = 0;
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks") {
            let path = task.expect("task").path().join("schedstat");
            if let Ok(s) = std::fs::read_to_string(path) {
                total += s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        total
    }

    fn memory_kib(pid: u32) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// 300 forked processes holding 1,000 loopback connections (both ends: 2,000 sockets). They
    /// exit when the returned guard is dropped (their control pipe closes).
    struct Workers {
        pids: Vec<libc::pid_t>,
        control: Option<std::fs::File>,
    }

    impl Drop for Workers {
        fn drop(&mut self) {
            self.control.take();
            for pid in &self.pids {
                // SAFETY: waitpid on our own children; kill first in case one is stuck.
                unsafe {
                    libc::kill(*pid, libc::SIGKILL);
                    libc::waitpid(*pid, std::ptr::null_mut(), 0);
                }
            }
        }
    }

    fn spawn_workers(active: bool) -> Workers {
        let mut fds = [0; 2];
        // SAFETY: pipe(2) into a valid array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
        let (read_fd, write_fd) = (fds[0], fds[1]);
        let mut pids = Vec::with_capacity(PROCESSES);
        let (ready_r, ready_w) = {
            let mut r = [0; 2];
            // SAFETY: as above.
            assert_eq!(unsafe { libc::pipe(r.as_mut_ptr()) }, 0, "pipe");
            (r[0], r[1])
        };
        for i in 0..PROCESSES {
            let conns = CONNECTIONS / PROCESSES + usize::from(i < CONNECTIONS % PROCESSES);
            // SAFETY: this process is single-threaded here; the child only runs `worker`.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork");
            if pid == 0 {
                // SAFETY: closing our copy of the write end, so the pipe closes with the parent.
                unsafe { libc::close(write_fd) };
                worker(conns, active, read_fd, ready_w);
                // SAFETY: leave without running the parent's destructors.
                unsafe { libc::_exit(0) };
            }
            pids.push(pid);
        }
        // SAFETY: closing the ends only children use.
        unsafe {
            libc::close(read_fd);
            libc::close(ready_w);
        }
        // Each worker writes one byte once its connections are up.
        // SAFETY: ready_r is a pipe read end we own.
        let mut ready = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(ready_r) };
        let mut buf = [0u8; PROCESSES];
        ready.read_exact(&mut buf).expect("workers ready");
        // SAFETY: write_fd is the pipe write end we own.
        let control = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(write_fd) };
        Workers {
            pids,
            control: Some(control),
        }
    }

    /// One worker: `conns` connections to its own listener; every second (when `active`) 64 bytes
    /// each way on each; exits when the control pipe closes.
    fn worker(conns: usize, active: bool, control: i32, ready: i32) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut pairs = Vec::with_capacity(conns);
        for _ in 0..conns {
            let c = TcpStream::connect(addr).expect("connect");
            let (s, _) = listener.accept().expect("accept");
            pairs.push((c, s));
        }
        // SAFETY: one byte into our copy of the ready pipe.
        unsafe { libc::write(ready, [1u8].as_ptr().cast(), 1) };
        let mut buf = [0u8; MESSAGE];
        loop {
            let mut pfd = libc::pollfd {
                fd: control,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, 1000) };
            if n != 0 {
                return; // the control pipe closed (or failed): the benchmark is done
            }
            if active {
                for (c, s) in &mut pairs {
                    let _ = c.write_all(&buf);
                    let _ = s.read_exact(&mut buf);
                    let _ = s.write_all(&buf);
                    let _ = c.read_exact(&mut buf);
                }
            }
        }
    }

    /// The kernel's per-program run statistics (kernel.bpf_stats_enabled), on while alive.
    struct BpfStats {
        was: String,
    }

    impl BpfStats {
        const KNOB: &'static str = "/proc/sys/kernel/bpf_stats_enabled";

        fn enable() -> BpfStats {
            let was = std::fs::read_to_string(Self::KNOB).unwrap_or_else(|_| "0".into());
            let _ = std::fs::write(Self::KNOB, "1");
            BpfStats { was }
        }
    }

    /// (name, runs, ns) of netmon's loaded programs.
    fn program_stats() -> Vec<(String, u64, u64)> {
        let mut out = Vec::new();
        for info in aya::programs::loaded_programs().flatten() {
            let name = info.name_as_str().unwrap_or_default().to_string();
            if name.starts_with("netmon_") {
                out.push((name, info.run_count(), info.run_time().as_nanos() as u64));
            }
        }
        out.sort();
        out
    }

    impl Drop for BpfStats {
        fn drop(&mut self) {
            let _ = std::fs::write(Self::KNOB, self.was.trim());
        }
    }
}
