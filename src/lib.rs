//! netmon as a library: the binary (`main.rs`) is a thin shell over these modules, and
//! benchmarks and tests use the same write path the recorder does.
//!
//! - `commands/`: one file per subcommand: check its options, call the domain, hand the
//!   result to `output/`. `cli`: the clap types they read.
//! - `source/`: where counters come from (nettop; Linux kernel sources), behind one trait.
//! - `delta`: cumulative counters to exact deltas.
//! - `procinfo/`: pid to executable to application; this process's own resource use.
//! - `record/`: the sampling loop (open, loop, finish).
//! - `tick`: what one tick hands the store (per-process traffic, flows, browser hosts).
//! - `store/`: the sink that owns the SQL: schema (in `sql/`), writes, retention, the counter
//!   journal, the recorder lock, `meta` keys, the websites' tables, read-only inspection.
//! - `query/`: time ranges to typed rows (apps, timeline, top, domains), stitched across tables.
//! - `output/`: tables, JSON, CSV, and the `status` and `service` reports.
//! - `report/`: `netmon report html`, one offline page drawn from the same queries.
//! - `synth`: synthetic history through the store's write path (tests, benchmark).
//! - `web/`: websites: browser bytes per host, browser names, domains.
//! - `serve/`: the localhost ingest server for the browser extension.
//! - `status`: what is true about a database and its recorder (data; `output::status` prints).
//! - `service/`: the recorder under launchd or systemd, behind the `Manager` trait.
//! - `exit`, `paths`, `text`: exit codes, default locations, text helpers and human units.
//! - `input`: what users type (durations, counts, ports), range-checked, the range named.
//! - `calendar`: where local days start (the recorder's daily rows and the queries agree).
//! - `files`: writing files a user names (reports, the token) without harming what is there.
//! - `docs`: completions, man pages and service examples generated from the code.
//!
//! README.md's "Architecture" section follows a byte from a source to `apps --json`.

pub mod calendar;
pub mod cli;
pub mod commands;
pub mod delta;
pub mod docs;
pub mod exit;
pub mod files;
pub mod input;
pub mod live;
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
