//! One integration-test binary that drives the real `netmon`, one module per area.

mod history;
mod util;

mod apps;
mod extension;
mod record;
