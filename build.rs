//! Build script: compiles the eBPF programs of the Linux `ebpf` source with clang.
//!
//! The build degrades instead of failing: on a Linux machine without clang the binary is built
//! without the programs (the `netmon_ebpf` cfg stays off), and `netmon record --source ebpf`
//! says so and what to install. If clang is there but the programs do not compile, that is a
//! bug in them and the build fails. `NETMON_CLANG` names another clang binary.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const BPF_DIR: &str = "src/source/linux/ebpf";
const BPF_SOURCE: &str = "src/source/linux/ebpf/netmon.bpf.c";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(netmon_ebpf)");
    println!("cargo::rerun-if-changed={BPF_SOURCE}");
    println!("cargo::rerun-if-changed={BPF_DIR}/bpf_defs.h");
    println!("cargo::rerun-if-env-changed=NETMON_CLANG");
    // Installing clang later changes nothing cargo watches; a changed PATH at least re-checks.
    println!("cargo::rerun-if-env-changed=PATH");

    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let clang = env::var("NETMON_CLANG").unwrap_or_else(|_| "clang".to_string());
    match Command::new(&clang).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => {
            println!(
                "cargo::warning=`{clang}` not found: building netmon without its eBPF programs \
                 (--source ebpf will be unavailable). Install clang (Debian/Ubuntu: \
                 `apt-get install clang`) and rebuild to include them."
            );
            return;
        }
    }

    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out_dir.join("netmon.bpf.o");
    let endian = match env::var("CARGO_CFG_TARGET_ENDIAN").as_deref() {
        Ok("big") => "bpfeb",
        _ => "bpfel",
    };
    let output = Command::new(&clang)
        .args(["-O2", "-g", "-Wall", "-Werror", "-target", endian, "-c"])
        .arg(BPF_SOURCE)
        .arg("-o")
        .arg(&object)
        .output()
        .unwrap_or_else(|e| panic!("running {clang}: {e}"));
    if !output.status.success() {
        panic!(
            "{clang} could not compile {BPF_SOURCE}:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    println!("cargo::rustc-cfg=netmon_ebpf");
    println!(
        "cargo::rustc-env=NETMON_BPF_OBJECT={}",
        object.to_str().expect("OUT_DIR is UTF-8")
    );
}
