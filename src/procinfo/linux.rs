//! Linux: /proc, through the procfs crate.

use super::ProcInfo;

pub fn lookup(pid: u32) -> Option<ProcInfo> {
    let p = procfs::process::Process::new(i32::try_from(pid).ok()?).ok()?;
    let stat = p.stat().ok();
    Some(ProcInfo {
        // Unreadable for other users' processes without privileges: None, never a guess.
        exe: p.exe().ok(),
        name: stat.as_ref().map(|s| s.comm.clone()),
        cmdline: p.cmdline().unwrap_or_default(),
        uid: p.uid().ok(),
        start_time: stat.map(|s| s.starttime),
        // Linux has no responsibility relation between processes.
        responsible_pid: None,
    })
}

pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}
