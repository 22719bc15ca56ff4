//! This process's own resource use, for the recorder's summaries and stop line: CPU time,
//! peak resident memory, and the bytes it handed to write(2).

use std::time::Duration;

/// CPU time (user + system) this process has used so far; children (nettop) are not included.
pub fn cpu_time() -> Duration {
    usage().map_or(Duration::ZERO, |u| u.0)
}

/// Bytes this process's live threads have passed to write(2) so far (Linux: the `wchar` of
/// each `/proc/self/task/<tid>/io`). Not `/proc/self/io`: that one also adds the I/O of every
/// child the process reaped, which for nettop is the whole sample it printed.
pub fn written_bytes() -> Option<u64> {
    // A thread that ends while the list is read is skipped (its writes are then not counted).
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let wchar = |io: String| {
        io.lines()
            .find_map(|l| l.strip_prefix("wchar:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some(
        tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("io")).ok())
            .filter_map(wchar)
            .sum(),
    )
}

/// This process's CPU time and peak resident memory in KiB.
pub fn usage() -> Option<(Duration, u64)> {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: initialised by the successful call above.
    let u = unsafe { u.assume_init() };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    // ru_maxrss is KiB on Linux and bytes on macOS.
    let rss = u.ru_maxrss.max(0) as u64;
    let rss_kib = if cfg!(target_os = "macos") {
        rss / 1024
    } else {
        rss
    };
    Some((tv(u.ru_utime) + tv(u.ru_stime), rss_kib))
}
