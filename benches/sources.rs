//! What `netmon record` costs per source: CPU time per tick and resident memory, on an idle
//! system and with thousands of open loopback sockets spread over hundreds of processes.
//!
//!     cargo bench --bench sources                       # every source, every scenario
//!     cargo bench --bench sources -- --sources sockdiag --scenarios 2000-quiet
//!     cargo bench --bench sources -- --scenarios 2000-active --hold 600   # load only
//!
//! Each scenario forks its processes (no exec: a few hundred KiB each), which open loopback
//! TCP connections to themselves and keep them; "active" ones also move 100 bytes each way on
//! every connection every second, so every counter changes every tick and every tick writes.
//! Then `netmon record --include-loopback --interval 1s` (the release binary) runs for 33
//! ticks. "record ms" is the recorder's process CPU clock (all threads, nanoseconds) from
//! its 2nd to its 33rd tick (its debug `tick` lines), per tick, at the default write window
//! (10 minutes: no write falls inside the 33 ticks; `NETMON_WRITE_EVERY=0 cargo bench …`
//! writes every tick, as before batched writes): startup and the first tick (which reads
//! every process's descriptors) are left out. The sockdiag source re-reads a slice of the
//! processes each tick (each once per 5 minutes), so that share grows with the interval:
//! at the default 5 s it is five times the 1 s share.
//!
//! "dump ms" is the CPU of the sock_diag dump alone (the kernel walking its socket table and
//! filling one message per socket, and their decoding); "source ms" is the source's own CPU per sample (dump, /proc, counters) when it logs it on
//! its debug line (`cpu_us=`); the rest of a tick is the delta engine, attribution and
//! SQLite. The recorder runs with `--log-level debug` for that line (a few lines a tick).
//! Memory is VmRSS after the last tick and the peak (VmHWM). Needs root only for sources that
//! do (ebpf); a source that cannot start is reported with its reason.

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("the sources benchmark measures the Linux sources; nothing to measure on this OS");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    struct Scenario {
        name: &'static str,
        processes: usize,
        sockets: usize,
        active: bool,
    }

    const SCENARIOS: &[Scenario] = &[
        Scenario {
            name: "idle",
            processes: 0,
            sockets: 0,
            active: false,
        },
        Scenario {
            name: "2000-quiet",
            processes: 300,
            sockets: 2000,
            active: false,
        },
        Scenario {
            name: "2000-active",
            processes: 300,
            sockets: 2000,
            active: true,
        },
        Scenario {
            name: "20000-quiet",
            processes: 300,
            sockets: 20000,
            active: false,
        },
    ];

    const TICKS: i64 = 33;

    pub fn main() {
        let args: Vec<String> = std::env::args().collect();
        let list = |flag: &str, default: &str| -> Vec<String> {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
                .map_or(default, String::as_str)
                .split(',')
                .map(String::from)
                .collect()
        };
        let sources = list("--sources", "sockdiag,ebpf");
        let scenarios = list("--scenarios", "idle,2000-quiet,2000-active,20000-quiet");
        let netmon = Path::new(env!("CARGO_BIN_EXE_netmon"));
        if let Some(secs) = list("--hold", "")
            .first()
            .and_then(|s| s.parse::<u64>().ok())
        {
            // Keep the first scenario's load up, to profile a recorder by hand.
            let sc = SCENARIOS
                .iter()
                .find(|s| scenarios.iter().any(|n| n == s.name))
                .expect("a scenario");
            let _load = Load::start(sc);
            println!("holding {} ({} sockets) for {secs} s", sc.name, sc.sockets);
            std::thread::sleep(Duration::from_secs(secs));
            return;
        }
        println!(
            "netmon record cost: {} (kernel {}), {} CPUs, --interval 1s --include-loopback, {TICKS} ticks",
            netmon.display(),
            kernel(),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        println!(
            "{:<9} {:<12} {:>8} {:>10} {:>10} {:>10} {:>9} {:>9}",
            "source",
            "scenario",
            "sockets",
            "dump ms",
            "source ms",
            "record ms",
            "RSS MiB",
            "peak MiB"
        );
        for sc in SCENARIOS
            .iter()
            .filter(|s| scenarios.iter().any(|n| n == s.name))
        {
            let load = Load::start(sc);
            for source in &sources {
                match measure(netmon, source) {
                    Ok(m) => println!(
                        "{:<9} {:<12} {:>8} {:>10} {:>10} {:>10.3} {:>9.1} {:>9.1}",
                        source,
                        sc.name,
                        sc.sockets,
                        m.dump_ms.map_or("-".into(), |v| format!("{v:.3}")),
                        m.source_ms.map_or("-".into(), |v| format!("{v:.3}")),
                        m.record_ms,
                        m.rss_kib as f64 / 1024.0,
                        m.peak_kib as f64 / 1024.0
                    ),
                    Err(why) => println!("{source:<9} {:<12} unavailable: {why}", sc.name),
                }
            }
            drop(load);
        }
    }

    struct Measured {
        /// The source's own CPU per sample, when it logs it (`cpu_us=` on its debug line).
        source_ms: Option<f64>,
        /// Of which the sock_diag dump (`dump_cpu_us=`): almost all kernel time.
        dump_ms: Option<f64>,
        record_ms: f64,
        rss_kib: u64,
        peak_kib: u64,
    }

    fn measure(netmon: &Path, source: &str) -> Result<Measured, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let db = dir.path().join("bench.db");
        let err_path = dir.path().join("stderr");
        let err_file = std::fs::File::create(&err_path).map_err(|e| e.to_string())?;
        let mut child = Command::new(netmon)
            .args(["record", "--db"])
            .arg(&db)
            .args(["--source", source, "--interval", "1s", "--include-loopback"])
            .args(["--ticks", &(TICKS + 1).to_string(), "--log-level", "debug"])
            .stdout(Stdio::null())
            .stderr(err_file)
            .spawn()
            .map_err(|e| e.to_string())?;
        let pid = child.id() as i32;
        let mut clock: libc::clockid_t = 0;
        // SAFETY: clock_getcpuclockid writes one clockid_t for a pid we own.
        if unsafe { libc::clock_getcpuclockid(pid, &mut clock) } != 0 {
            let _ = child.kill();
            return Err("clock_getcpuclockid failed".into());
        }
        let mut marks = Vec::new();
        let mut mem = (0, 0);
        let deadline = Instant::now() + Duration::from_secs(TICKS as u64 * 3 + 30);
        for want in [2, TICKS] {
            loop {
                if ticks(&err_path) >= want {
                    break;
                }
                if let Ok(Some(status)) = child.try_wait() {
                    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
                    let why = err
                        .lines()
                        .find(|l| l.contains("error"))
                        .or(err.lines().last())
                        .unwrap_or("no output");
                    return Err(format!("{status}: {why}"));
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("tick {want} not reached in time"));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            marks.push(cpu_ns(clock));
            if want == TICKS {
                mem = memory(pid);
            }
        }
        let _ = child.wait();
        let record_ms = (marks[1] - marks[0]) as f64 / (TICKS - 2) as f64 / 1e6;
        let log = std::fs::read_to_string(&err_path).unwrap_or_default();
        let mean_ms = |field: &str| -> Option<f64> {
            let v: Vec<f64> = log
                .lines()
                .filter_map(|l| l.split(field).nth(1))
                .filter_map(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .skip(2)
                .collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64 / 1000.0)
        };
        let source_ms = mean_ms(" cpu_us=");
        let dump_ms = mean_ms(" dump_cpu_us=");
        Ok(Measured {
            source_ms,
            dump_ms,
            record_ms,
            rss_kib: mem.0,
            peak_kib: mem.1,
        })
    }

    fn cpu_ns(clock: libc::clockid_t) -> i64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid clock id and a timespec that lives across the call.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    }

    /// (VmRSS, VmHWM) in KiB; zeros once the process is gone.
    fn memory(pid: i32) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Ticks the recorder has taken: its debug `tick` lines (one a tick, before the tick is
    /// written: at the default window ticks reach the database in batches, every 10 minutes).
    fn ticks(log: &Path) -> i64 {
        std::fs::read_to_string(log)
            .map(|l| l.lines().filter(|l| l.contains(" tick counters=")).count() as i64)
            .unwrap_or(0)
    }

    fn kernel() -> String {
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }

    /// The scenario's processes; they exit when this is dropped (their control pipe closes).
    struct Load {
        pids: Vec<i32>,
        control: Option<OwnedFd>,
    }

    impl Load {
        fn start(sc: &Scenario) -> Load {
            let mut fds = [0; 2];
            // SAFETY: pipe writes two descriptors into the array.
            assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
            // SAFETY: both descriptors were just created and are owned here.
            let (ctl_r, ctl_w) =
                unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            let mut ready = [0; 2];
            // SAFETY: as above.
            assert_eq!(unsafe { libc::pipe(ready.as_mut_ptr()) }, 0, "pipe");
            // SAFETY: as above.
            let (ready_r, ready_w) = unsafe {
                (
                    OwnedFd::from_raw_fd(ready[0]),
                    OwnedFd::from_raw_fd(ready[1]),
                )
            };
            let mut pids = Vec::new();
            for i in 0..sc.processes {
                // Spread the sockets (two per connection) over the processes.
                let conns =
                    (sc.sockets / 2 * (i + 1)) / sc.processes - (sc.sockets / 2 * i) / sc.processes;
                // SAFETY: this program is single-threaded here; the child only runs `child`.
                let pid = unsafe { libc::fork() };
                assert!(pid >= 0, "fork");
                if pid == 0 {
                    drop(ctl_w);
                    drop(ready_r);
                    child(conns, sc.active, ctl_r.as_raw_fd(), ready_w.as_raw_fd());
                    // SAFETY: leave without running the parent's destructors.
                    unsafe { libc::_exit(0) };
                }
                pids.push(pid);
            }
            drop(ready_w);
            drop(ctl_r);
            // One byte per ready child; EOF once every child wrote or died.
            let mut got = 0;
            let mut r = std::fs::File::from(ready_r);
            let mut buf = [0u8; 512];
            while got < sc.processes {
                match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            assert_eq!(got, sc.processes, "every load process set up its sockets");
            Load {
                pids,
                control: Some(ctl_w),
            }
        }
    }

    impl Drop for Load {
        fn drop(&mut self) {
            self.control.take();
            for pid in &self.pids {
                let mut status = 0;
                // SAFETY: waiting for our own children.
                unsafe { libc::waitpid(*pid, &mut status, 0) };
            }
        }
    }

    /// A load process: `conns` loopback connections to itself, kept open (and, when `active`,
    /// 100 bytes each way on each of them every second) until `control` closes.
    fn child(conns: usize, active: bool, control: i32, ready: i32) {
        let mut pairs = Vec::new();
        if conns > 0 {
            let Ok(l) = TcpListener::bind("127.0.0.1:0") else {
                return;
            };
            let Ok(addr) = l.local_addr() else { return };
            for _ in 0..conns {
                let (Ok(c), Ok((s, _))) = (TcpStream::connect(addr), l.accept()) else {
                    return;
                };
                pairs.push((c, s));
            }
        }
        // SAFETY: one byte from a live buffer to our pipe.
        unsafe { libc::write(ready, b"r".as_ptr().cast(), 1) };
        let mut buf = [0u8; 100];
        loop {
            let mut pfd = libc::pollfd {
                fd: control,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, 1000) };
            if n != 0 {
                return; // the parent closed the control pipe (or poll failed)
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
}
