//! One integration-test binary that drives the real `netmon`, one module per area.

mod history;
mod util;

mod apps;
mod docs;
mod extension;
mod help;
mod record;
mod regression;
mod service;
mod shared_db;
mod status;
mod systemd_user;
mod timeline;
mod top;
