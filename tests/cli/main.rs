//! One integration-test binary that drives the real `netmon`, one module per area.

mod history;
mod netns;
mod util;

mod apps;
#[cfg(target_os = "linux")]
mod ebpf;
mod help;
mod record;
mod timeline;
mod top;
