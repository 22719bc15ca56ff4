//! One integration-test binary that drives the real `netmon`, one module per area.

mod netns;
mod util;

#[cfg(target_os = "linux")]
mod ebpf;
mod record;
