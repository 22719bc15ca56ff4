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
///
/// The peak is this program's own: on Linux `VmHWM` from `/proc/self/status`, which starts
/// afresh at exec. `getrusage`'s `ru_maxrss` does not: Linux keeps the largest value of the
/// process across exec, so a netmon launched by a 60 MB parent (a shell script, a service
/// wrapper, `sudo`) would report the parent's peak as its own. macOS has no `/proc`; there the
/// figure is `ru_maxrss`.
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
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    // ru_maxrss is KiB on Linux and bytes on macOS.
    let rss = u.ru_maxrss.max(0) as u64;
    let rusage_kib = if cfg!(target_os = "macos") {
        rss / 1024
    } else {
        rss
    };
    let own_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| vm_hwm_kib(&s));
    Some((
        tv(u.ru_utime) + tv(u.ru_stime),
        own_kib.unwrap_or(rusage_kib),
    ))
}

/// The `VmHWM:` (peak resident set) line of a `/proc/PID/status` text, in KiB.
pub fn vm_hwm_kib(status: &str) -> Option<u64> {
    let rest = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let mut words = rest.split_whitespace();
    let n = words.next()?.parse::<u64>().ok()?;
    match words.next() {
        Some("kB") | None => Some(n),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_from_its_line_in_kib() {
        let status = "Name:\tnetmon\nVmPeak:\t  90000 kB\nVmHWM:\t   26112 kB\nVmRSS:\t 20000 kB\n";
        assert_eq!(vm_hwm_kib(status), Some(26112));
        assert_eq!(vm_hwm_kib("Name:\tnetmon\n"), None);
        assert_eq!(vm_hwm_kib("VmHWM:\tlots kB\n"), None);
        assert_eq!(vm_hwm_kib("VmHWM:\t12 MB\n"), None);
    }
}
