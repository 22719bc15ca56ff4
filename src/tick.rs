//! What one tick of the recorder produces, handed from the loop (`record`, `web::attribute`)
//! to the store (`store::write`): per-process traffic with its connections, and browser bytes
//! per host. Plain data with no behaviour, so the producers and the sink depend on it and not
//! on each other.

pub use crate::procinfo::App;

/// What kind of row an application is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppKind {
    Application = 0,
    /// Bytes the source saw but could not tie to a process; the app name says why.
    Unattributed = 1,
}

/// A process as stored: its identity and the application it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProcessRecord {
    pub pid: Option<u32>,
    pub name: String,
    pub start_time: Option<u64>,
    pub exe: Option<String>,
    pub uid: Option<u32>,
    pub app: App,
    pub kind: AppKind,
    /// The container the process ran in (its name or short id); `None` on the host.
    pub container: Option<String>,
}

/// A remote endpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteRecord {
    pub proto: &'static str,
    pub host: String,
    pub port: u16,
}

/// One process's bytes to one remote endpoint in one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub remote: RemoteRecord,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// One process's traffic in one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessTraffic {
    pub process: ProcessRecord,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Its bytes per remote endpoint, where the source knows them (sorted by host, port, proto).
    pub flows: Vec<Flow>,
    /// Its bytes per interface its connections reported (`Counter::interface`; bytes of
    /// connections that named none are not here). Grouped by `record::attribute`, consumed by
    /// `record::networks::split`, which turns them into `networks`.
    pub interfaces: Vec<InterfaceBytes>,
    /// Its bytes on networks other than the tick's `NetTraffic::app_network`, where the source
    /// said which interface each connection used (`record::networks::split`); the rest of its
    /// bytes are on the tick's app network. Empty on a machine on one network. Never more, in
    /// sum, than its `bytes_in`/`bytes_out`.
    pub networks: Vec<NetworkBytes>,
}

/// A process's bytes over one interface in one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceBytes {
    pub interface: std::sync::Arc<str>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// A process's bytes on one network in one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkBytes {
    /// `None`: no network (a loopback interface).
    pub network: Option<Network>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

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

/// One browser application's bytes to one host by one method, in one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostTraffic {
    pub app: App,
    /// `''` for bytes no host could be given.
    pub host: String,
    pub method: Method,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// A network as the recorder identified it: a stable key and a label to show until the user
/// names it (`crate::source::interfaces::network`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Network {
    pub key: String,
    pub label: String,
}

/// What one interface carried in one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceTraffic {
    pub interface: String,
    /// `crate::source::interfaces::Kind::as_str`.
    pub kind: &'static str,
    /// `None`: loopback.
    pub network: Option<Network>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// A tick's interface deltas, and the network its application bytes are counted on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetTraffic {
    pub interfaces: Vec<InterfaceTraffic>,
    /// The network that carried the most bytes off this machine this tick (else the last
    /// one that did). Application bytes are counted on it unless their connection's interface
    /// is known to be on another network (`ProcessTraffic::networks`).
    pub app_network: Option<Network>,
}
