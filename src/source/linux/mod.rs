//! Linux kernel sources: `ebpf` (per-process TCP and UDP bytes counted in the kernel; root or
//! CAP_BPF + CAP_PERFMON) and `sockdiag` (TCP socket counters over NETLINK_SOCK_DIAG).

pub mod ebpf;
