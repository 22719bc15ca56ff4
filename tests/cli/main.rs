//! One integration-test binary that drives the real `netmon`, one module per area.

mod util;

mod extension;
mod record;
