//! One integration-test binary that drives the real `netmon`, one module per area.

mod browser;
mod history;
mod netns;
mod networks;
mod util;

#[cfg(target_os = "linux")]
mod accuracy;
mod apps;
#[cfg(target_os = "linux")]
mod containers;
mod docs;
#[cfg(target_os = "linux")]
mod e2e;
#[cfg(target_os = "linux")]
mod ebpf;
mod extension;
mod figures;
mod flood;
mod help;
mod metrics;
mod nettop_scenarios;
#[cfg(target_os = "linux")]
mod prometheus;
mod record;
mod regression;
mod report;
mod safety;
mod serve;
mod service;
mod shared_db;
mod status;
mod systemd_user;
mod timeline;
mod top;
mod web;
