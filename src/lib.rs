//! netmon as a library: the binary (`main.rs`) is a thin shell over these modules, and
//! benchmarks and tests use the same write path the recorder does.
//!
//! - `source/`: where counters come from (nettop; Linux kernel sources), behind one trait.
//! - `delta`: cumulative counters to exact deltas.
//! - `procinfo/`: pid to executable to application.
//! - `record/`: the sampling loop.
//! - `store/`: SQLite schema (in `sql/`), writes, retention, the recorder lock.
//! - `query/`: time ranges to typed rows (apps, timeline, top), stitched across tables.
//! - `output/`: tables, JSON and CSV. `commands/`: the query subcommands.
//! - `report/`: `netmon report html`, one offline page drawn from the same queries.
//! - `synth`: synthetic history through the store's write path (tests, benchmark).
//! - `web/`: websites: the extension's reports, browser bytes per host, domains.
//! - `serve/`: the localhost ingest server for the browser extension.
//! - `status`: `netmon status`, what is true about a database and its recorder.
//! - `service/`: `netmon service`, the recorder under launchd or systemd.
//! - `cli`, `exit`, `paths`, `text`: the command line, exit codes, default locations, text helpers.
//! - `docs`: completions, man pages and service examples generated from the code.

pub mod cli;
pub mod commands;
pub mod delta;
pub mod docs;
pub mod exit;
pub mod output;
pub mod paths;
pub mod procinfo;
pub mod query;
pub mod record;
pub mod report;
pub mod serve;
pub mod service;
pub mod source;
pub mod status;
pub mod store;
pub mod synth;
pub mod text;
pub mod tick;
pub mod web;
