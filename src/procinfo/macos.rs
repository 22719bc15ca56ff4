//! macOS: the process table, through the libproc crate.

use std::path::PathBuf;

use libproc::bsd_info::BSDInfo;
use libproc::proc_pid::{name, pidinfo, pidpath};

use super::ProcInfo;

pub fn lookup(pid: u32) -> Option<ProcInfo> {
    let pid = i32::try_from(pid).ok()?;
    let exe = pidpath(pid)
        .ok()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    let bsd = pidinfo::<BSDInfo>(pid, 0).ok();
    if exe.is_none() && bsd.is_none() {
        return None;
    }
    Some(ProcInfo {
        exe,
        name: name(pid).ok(),
        cmdline: Vec::new(),
        uid: bsd.as_ref().map(|b| b.pbi_uid),
        start_time: bsd.map(|b| b.pbi_start_tvsec),
    })
}

pub fn boot_id() -> Option<String> {
    sysctl_string("kern.bootsessionuuid").or_else(|| {
        // struct timeval of the boot: seconds are enough to tell boots apart.
        let mut tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        let mut len = std::mem::size_of::<libc::timeval>();
        let name = c"kern.boottime";
        // SAFETY: name is NUL-terminated; tv and len describe a valid buffer.
        let rc = unsafe {
            libc::sysctlbyname(
                name.as_ptr(),
                (&mut tv as *mut libc::timeval).cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        (rc == 0).then(|| format!("boottime:{}", tv.tv_sec))
    })
}

fn sysctl_string(name: &str) -> Option<String> {
    let cname = std::ffi::CString::new(name).ok()?;
    let mut buf = [0u8; 128];
    let mut len = buf.len();
    // SAFETY: cname is NUL-terminated; buf and len describe a valid buffer.
    let rc = unsafe {
        libc::sysctlbyname(
            cname.as_ptr(),
            buf.as_mut_ptr().cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 {
        return None;
    }
    let end = buf[..len.min(buf.len())]
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(len.min(buf.len()));
    Some(String::from_utf8_lossy(&buf[..end]).into_owned()).filter(|s| !s.is_empty())
}
