//! macOS: the process table, through libproc's C functions as the `libc` crate declares them,
//! and one private libsystem function looked up at run time.
//!
//! No build script and no SDK headers: the `libproc` crate ran bindgen against the macOS SDK,
//! which fails wherever `libproc.h` is not where it looks ("libproc.h not found"), so a Mac
//! build could break on a machine nobody here has. `libc` declares `proc_pidpath`,
//! `proc_pidinfo`, `proc_name` and `struct proc_bsdinfo` by hand, which cannot fail to build.
//!
//! `responsibility_get_pid_responsible_for_pid` (libsystem, no public header) gives the process
//! macOS holds responsible for another one: the app behind its XPC services. It is looked up
//! with `dlsym` rather than declared: a private symbol that a future macOS drops would make a
//! linked binary fail to start, while a failed lookup only loses this one fact.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::path::PathBuf;
use std::sync::OnceLock;

use super::ProcInfo;

pub fn lookup(pid: u32) -> Option<ProcInfo> {
    let pid = c_int::try_from(pid).ok()?;
    let exe = pidpath(pid).map(PathBuf::from);
    let bsd = bsdinfo(pid);
    if exe.is_none() && bsd.is_none() {
        return None;
    }
    Some(ProcInfo {
        exe,
        name: name(pid),
        cmdline: Vec::new(),
        uid: bsd.as_ref().map(|b| b.pbi_uid),
        start_time: bsd.map(|b| b.pbi_start_tvsec),
        responsible_pid: responsible_pid(pid),
    })
}

fn pidpath(pid: c_int) -> Option<String> {
    let mut buf = vec![0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
    // SAFETY: buf is writable for the length passed; proc_pidpath writes at most that much.
    let n = unsafe { libc::proc_pidpath(pid, buf.as_mut_ptr().cast::<c_void>(), buf.len() as u32) };
    c_string(&buf, n)
}

fn name(pid: c_int) -> Option<String> {
    // 2 * MAXCOMLEN + 1, as libproc.h sizes the name.
    let mut buf = [0u8; 2 * 16 + 1];
    // SAFETY: buf is writable for the length passed.
    let n = unsafe { libc::proc_name(pid, buf.as_mut_ptr().cast::<c_void>(), buf.len() as u32) };
    c_string(&buf, n)
}

/// The first `n` bytes of `buf` up to a NUL, when the call succeeded (`n > 0`).
fn c_string(buf: &[u8], n: c_int) -> Option<String> {
    let n = usize::try_from(n).ok().filter(|&n| n > 0)?.min(buf.len());
    let end = buf[..n].iter().position(|&b| b == 0).unwrap_or(n);
    Some(String::from_utf8_lossy(&buf[..end]).into_owned()).filter(|s| !s.is_empty())
}

fn bsdinfo(pid: c_int) -> Option<libc::proc_bsdinfo> {
    let mut info = std::mem::MaybeUninit::<libc::proc_bsdinfo>::zeroed();
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as c_int;
    // SAFETY: info is a writable proc_bsdinfo of the size passed.
    let n = unsafe {
        libc::proc_pidinfo(
            pid,
            libc::PROC_PIDTBSDINFO,
            0,
            info.as_mut_ptr().cast::<c_void>(),
            size,
        )
    };
    // SAFETY: zero-initialised, and fully written when the call returns the whole size.
    (n == size).then(|| unsafe { info.assume_init() })
}

type ResponsibleFn = unsafe extern "C" fn(c_int) -> c_int;

/// The responsible pid, when libsystem has the function and gives a real pid (`-1`: unknown).
fn responsible_pid(pid: c_int) -> Option<u32> {
    static FUNCTION: OnceLock<Option<ResponsibleFn>> = OnceLock::new();
    let f = (*FUNCTION.get_or_init(|| {
        let symbol: &CStr = c"responsibility_get_pid_responsible_for_pid";
        // SAFETY: a NUL-terminated name looked up in every loaded image (RTLD_DEFAULT).
        let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, symbol.as_ptr() as *const c_char) };
        if p.is_null() {
            tracing::debug!("responsibility_get_pid_responsible_for_pid is not in libsystem");
            return None;
        }
        // SAFETY: the symbol is the C function `pid_t f(pid_t)` (declared so by Chromium's
        // base/process/process_info_mac.cc and every tool that calls it).
        Some(unsafe { std::mem::transmute::<*mut c_void, ResponsibleFn>(p) })
    }))?;
    // SAFETY: takes and returns a pid; no memory is passed.
    let r = unsafe { f(pid) };
    u32::try_from(r).ok().filter(|&r| r > 0)
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
