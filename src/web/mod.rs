//! Websites: what the browser extension reports, and the browser's bytes per host.
//!
//! - `attribute`: per tick, inside the record loop, a browser application's bytes split
//!   across hosts: by connection where a connection's address was observed serving a host,
//!   else by active-tab time share.
//! - `names`: which application a heartbeat's browser name is.
//! - `domain`: host names to registrable domains (Public Suffix List).

pub mod attribute;
pub mod domain;
pub mod names;

pub use crate::tick::Method;
