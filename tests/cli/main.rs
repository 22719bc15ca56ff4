//! One integration-test binary that drives the real `netmon`, one module per area.

mod util;

#[cfg(target_os = "linux")]
mod accuracy;
mod record;
