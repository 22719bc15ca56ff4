//! Websites: what the browser extension reports, and the browser's bytes per host.
//!
//! - `ingest`: heartbeats merged into active-tab intervals, and host↔address observations,
//!   as `netmon serve` stores them.
//! - `attribute`: per tick, inside the record loop, a browser application's bytes split
//!   across hosts: by connection where a connection's address was observed serving a host,
//!   else by active-tab time share.
//! - `names`: which application a heartbeat's browser name is.
//! - `domain`: host names to registrable domains (Public Suffix List).

pub mod attribute;
pub mod domain;
pub mod ingest;
pub mod names;

/// How bytes were given to a host; stored with every attributed byte (`web_*.method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// Not given to any host: no observation matched and no tab was active.
    None = 0,
    /// The connection's remote address was observed serving the host.
    Connection = 1,
    /// Split by the share of the tick the host was the active tab.
    ActiveTab = 2,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::None => "none",
            Method::Connection => "connection",
            Method::ActiveTab => "active_tab",
        }
    }

    /// The stored code back to a method (unknown codes read as `None`).
    pub fn from_code(code: i64) -> Method {
        match code {
            1 => Method::Connection,
            2 => Method::ActiveTab,
            _ => Method::None,
        }
    }
}
