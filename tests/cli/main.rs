//! One integration-test binary that drives the real `netmon`, one module per area.

mod history;
mod util;

mod apps;
mod help;
mod record;
mod serve;
mod timeline;
mod top;
mod web;
