//! One integration-test binary that drives the real `netmon`, one module per area.

mod browser;
mod history;
mod util;

mod apps;
mod help;
mod record;
mod report;
mod timeline;
mod top;
