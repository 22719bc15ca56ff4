//! What `/metrics` (on `netmon serve`) exports: the stored history read as Prometheus
//! counters, the recorder's state as gauges, and the rule that keeps the number of series
//! bounded without ever making a counter go down.
//!
//! **Counters come from the daily totals**, which the recorder updates in every tick's own
//! transaction and retention never deletes (sql/0001_init.sql, `store::retention`): an
//! application's all-time bytes are the sum of its daily rows. That sum only grows while
//! ticks are committed, does not change when raw and hourly rows age out, and survives
//! recorder restarts, so a counter read from it is monotonic by construction; it never depends
//! on what a running process holds in memory. Websites read `web_daily` the same way, recorded
//! time and gaps read `runs` and `gaps` (never deleted either).
//!
//! **Bounded cardinality.** Each family with open-ended names (applications, websites) gives
//! its own series only to *members* (`store::metrics`): the first names whose all-time bytes
//! reach `min_bytes`, largest first when several qualify at once, up to a cap. Everything
//! else is counted in one `(other)` series. Membership only grows, so no series disappears,
//! and a name that joins late brings a base: its bytes at the moment it joined stay in
//! `(other)`, and its own series counts from zero after that. So `(other)` never goes down
//! (it keeps all it ever counted; only new bytes of a new member go elsewhere), each member's
//! series never goes down, and the family's series always add up to its exact total. On the
//! very first answer nothing has been exported yet, so the first members join with base zero
//! and their series carry their whole history.
//!
//! **Networks** (issue 15) are a third family, read from `net_daily` (kept forever too) and,
//! between full reads, from the ticks' `net` column: one series per network, interface and
//! kind ([`NetSeries`]), so a Docker host's ever-new veth pairs, or a laptop's hotels and
//! cafés, cannot add series without bound. The network label is the network's stable key
//! (`wifi:SSID`, `gw:MAC`…), never its display name: a name can change (`netmon networks
//! name`) and two labels can read the same, and either would move or merge a counter; the name
//! is a separate info series. What no member counts goes to `(other)` series, one per
//! interface kind, so the kind filters that give the explained share still add up. Data caps
//! are gauges: the cap, and what the counted interfaces carried in its current period.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

use super::coverage::Intervals;
use super::stall;
use crate::store::metrics::{Family, Join, Member, Tracked};
use crate::store::{self, lock};
use crate::web::domain;

/// The series holding what no member of its family counts.
pub const OTHER: &str = "(other)";
/// The website series of browser bytes no site could be given (as `netmon domains` names it).
pub const NO_SITE: &str = super::domains::NO_SITE;
/// The network label of traffic that stayed on this machine.
pub const LOOPBACK: &str = "(loopback)";
/// The network label of the cap over all networks together.
pub const ALL_NETWORKS: &str = "(all)";

/// How many names of each family get series of their own, and from what size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub apps: usize,
    pub websites: usize,
    /// Network and interface pairs ([`NetSeries`]).
    pub networks: usize,
    /// All-time bytes (in + out) a name needs before it can join.
    pub min_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            apps: 100,
            websites: 100,
            networks: 50,
            min_bytes: 1_000_000,
        }
    }
}

/// Bytes received and sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bytes {
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Bytes {
    pub fn total(&self) -> u64 {
        self.bytes_in.saturating_add(self.bytes_out)
    }
    fn add(&mut self, bin: i64, bout: i64) {
        self.bytes_in = self.bytes_in.saturating_add(bin.max(0) as u64);
        self.bytes_out = self.bytes_out.saturating_add(bout.max(0) as u64);
    }
    fn plus(self, o: Bytes) -> Bytes {
        Bytes {
            bytes_in: self.bytes_in.saturating_add(o.bytes_in),
            bytes_out: self.bytes_out.saturating_add(o.bytes_out),
        }
    }
    fn minus_base(self, m: &Member) -> Bytes {
        Bytes {
            bytes_in: self.bytes_in.saturating_sub(m.base_in),
            bytes_out: self.bytes_out.saturating_sub(m.base_out),
        }
    }
    fn base_part(self, m: &Member) -> Bytes {
        Bytes {
            bytes_in: self.bytes_in.min(m.base_in),
            bytes_out: self.bytes_out.min(m.base_out),
        }
    }
}

/// Why a stretch of time was not recorded, in a few stable words (a gap's stored reason is a
/// sentence, and failed ticks carry their error text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GapReason {
    /// The machine slept, or the wall clock was stepped forward.
    Asleep,
    /// No recorder was running.
    NotRunning,
    /// The recorder crashed or was killed; the time until the next one started.
    Crashed,
    /// The source failed for one or more ticks.
    FailedTicks,
    Other,
}

impl GapReason {
    pub const ALL: [GapReason; 5] = [
        GapReason::Asleep,
        GapReason::NotRunning,
        GapReason::Crashed,
        GapReason::FailedTicks,
        GapReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GapReason::Asleep => "asleep",
            GapReason::NotRunning => "not_running",
            GapReason::Crashed => "crashed",
            GapReason::FailedTicks => "failed_ticks",
            GapReason::Other => "other",
        }
    }

    /// The reason of a stored gap (`store::write` and `record` write these sentences).
    pub fn of(stored: &str) -> GapReason {
        if stored.starts_with("machine asleep") {
            GapReason::Asleep
        } else if stored == "recorder not running" {
            GapReason::NotRunning
        } else if stored == "recorder crashed" {
            GapReason::Crashed
        } else if stored.contains("tick(s) failed") {
            GapReason::FailedTicks
        } else {
            GapReason::Other
        }
    }
}

/// Gaps of one reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gaps {
    pub count: u64,
    pub ms: u64,
}

/// What the recorder is doing (the same rule as `netmon status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecorderState {
    Running,
    Stalled,
    Stopped,
    Crashed,
    Never,
}

impl RecorderState {
    pub const ALL: [RecorderState; 5] = [
        RecorderState::Running,
        RecorderState::Stalled,
        RecorderState::Stopped,
        RecorderState::Crashed,
        RecorderState::Never,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecorderState::Running => "running",
            RecorderState::Stalled => "stalled",
            RecorderState::Stopped => "stopped",
            RecorderState::Crashed => "crashed",
            RecorderState::Never => "never",
        }
    }
}

/// The recorder as the lock and the last run tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorder {
    pub state: RecorderState,
    /// A recorder holds the lock.
    pub running: bool,
    /// The newest committed tick (epoch ms).
    pub last_tick_ms: Option<i64>,
    /// When the last run started (epoch ms).
    pub started_ms: Option<i64>,
    /// The last run's source, interval and netmon version.
    pub source: Option<String>,
    pub interval_ms: Option<i64>,
    pub version: Option<String>,
    /// What the last run's source cannot see, one sentence each.
    pub not_counted: Vec<String>,
}

/// Everything `/metrics` reports, read from one snapshot of the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// All-time bytes per application name (as `netmon apps` groups them).
    pub apps: BTreeMap<String, Bytes>,
    /// All-time unattributed bytes per reason.
    pub unattributed: BTreeMap<String, Bytes>,
    /// All-time browser bytes per registrable domain, since browsers began to report.
    pub websites: BTreeMap<String, Bytes>,
    /// Browser bytes no site could be given.
    pub no_site: Bytes,
    /// Whether any browser bytes were ever split across sites.
    pub any_web: bool,
    /// All-time bytes per network and interface, by [`NetSeries::name`].
    pub networks: BTreeMap<String, Bytes>,
    /// Every network's display name (the user's name, else its label), by key.
    pub network_names: BTreeMap<String, String>,
    /// Data caps measured now; filled by [`caps`] (they need the clock and time zone).
    pub caps: Vec<CapGauge>,
    /// Recorded time, all time (milliseconds).
    pub recorded_ms: u64,
    pub gaps: BTreeMap<GapReason, Gaps>,
}

/// Application ids below this are summed in a vector (they are rowids: 1, 2, 3…).
const DENSE_IDS: usize = 1 << 20;

/// All-time bytes per application id and per web host id, as of one tick: what [`History`]
/// is grouped from. A full read sums the daily tables; afterwards [`sums_since`] adds only the
/// per-tick rows of the ticks committed since, which is what keeps a scrape cheap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sums {
    /// The newest tick included (id, `at`); `None`: there was no tick.
    pub upto: Option<(i64, i64)>,
    pub apps: HashMap<i64, Bytes>,
    pub hosts: HashMap<i64, Bytes>,
    /// By (network id, interface id); network 0 is loopback.
    pub nets: HashMap<(i64, i64), Bytes>,
    /// Whether any browser bytes were ever split across sites.
    pub any_web: bool,
}

/// One per-network series: the network's key (or [`LOOPBACK`]), the interface and its kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetSeries {
    pub network: String,
    pub interface: String,
    pub kind: String,
}

impl NetSeries {
    /// The member name stored in `metrics_series`: interface, kind and network, tab-separated.
    /// Interface names and kinds hold no whitespace (Linux refuses it in a name; macOS names
    /// are `en0`-like), so the network key, last, may hold anything an SSID can.
    pub fn name(&self) -> String {
        format!("{}\t{}\t{}", self.interface, self.kind, self.network)
    }

    pub fn parse(name: &str) -> Option<NetSeries> {
        let mut parts = name.splitn(3, '\t');
        Some(NetSeries {
            interface: parts.next()?.to_string(),
            kind: parts.next()?.to_string(),
            network: parts.next()?.to_string(),
        })
    }
}

/// A data cap as `/metrics` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapGauge {
    /// The network's key, or [`ALL_NETWORKS`].
    pub network: String,
    /// `day`, `week` or `month`.
    pub period: String,
    pub cap_bytes: u64,
    /// What the counted interfaces carried in the current period, the running recorder's
    /// unwritten ticks included.
    pub used_bytes: u64,
}

/// Every data cap, measured at `now_ms` in the local time zone with the recorder's unwritten
/// ticks ([`super::networks::unwritten`], asked before the database is read), as the
/// recorder's alerts and `netmon status` measure it.
pub fn caps(
    conn: &Connection,
    now_ms: i64,
    unwritten: &[crate::live::NetBytes],
) -> Result<Vec<CapGauge>, super::Error> {
    let infos = super::networks::infos(conn)?;
    let caps = super::networks::caps_with(conn, &chrono::Local, now_ms, unwritten)?;
    Ok(caps
        .into_iter()
        .map(|c| CapGauge {
            network: match c.network_id {
                None => ALL_NETWORKS.to_string(),
                Some(id) => infos
                    .get(&id)
                    .map_or_else(|| format!("(network #{id})"), |n| n.key.clone()),
            },
            period: c.period,
            cap_bytes: c.cap_bytes,
            used_bytes: c.used_bytes,
        })
        .collect())
}

/// Add `(host_id, bytes_in, bytes_out)` rows to the per-host sums (a full read of `web_daily`,
/// or the web samples of newer ticks).
fn add_hosts(s: &mut Sums, mut rows: rusqlite::Rows<'_>) -> rusqlite::Result<()> {
    while let Some(r) = rows.next()? {
        s.any_web = true;
        s.hosts
            .entry(r.get(0)?)
            .or_default()
            .add(r.get(1)?, r.get(2)?);
    }
    Ok(())
}

fn newest_tick(conn: &Connection) -> rusqlite::Result<Option<(i64, i64)>> {
    conn.prepare_cached("SELECT id, at FROM ticks ORDER BY id DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// Sum the daily tables (kept forever): every byte ever committed.
pub fn sums(conn: &Connection) -> rusqlite::Result<Sums> {
    let mut s = Sums {
        upto: newest_tick(conn)?,
        ..Sums::default()
    };
    // The daily table is most of a full read (31,000 rows for the benchmark year). Summed
    // here rather than with SQL's GROUP BY (a sort), and in a vector indexed by id (ids are
    // small, dense rowids) rather than a hash map.
    let mut dense: Vec<Bytes> = Vec::new();
    {
        let mut st = conn.prepare_cached("SELECT app_id, bytes_in, bytes_out FROM daily")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let slot = match usize::try_from(id) {
                Ok(i) if i < DENSE_IDS => {
                    if i >= dense.len() {
                        dense.resize(i + 1, Bytes::default());
                    }
                    &mut dense[i]
                }
                _ => s.apps.entry(id).or_default(),
            };
            slot.add(r.get(1)?, r.get(2)?);
        }
    }
    for (i, b) in dense.into_iter().enumerate() {
        if b != Bytes::default() {
            s.apps.insert(i as i64, b);
        }
    }
    {
        let mut st = conn.prepare_cached("SELECT host_id, bytes_in, bytes_out FROM web_daily")?;
        add_hosts(&mut s, st.query([])?)?;
    }
    let mut st =
        conn.prepare_cached("SELECT network_id, interface_id, bytes_in, bytes_out FROM net_daily")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        s.nets
            .entry((r.get(0)?, r.get(1)?))
            .or_default()
            .add(r.get(2)?, r.get(3)?);
    }
    Ok(s)
}

/// `prev` plus the ticks committed since it was read, or `None` when that cannot be known
/// exactly (its newest tick is gone, or a new row names a process that is not there): then
/// read [`sums`] again.
///
/// Exact because every tick adds the same bytes to its per-tick rows and to the daily totals
/// in one transaction (`store::write`), and tick ids only grow while the newest one `prev`
/// saw is still there: the ticks with a larger id are exactly those committed since.
pub fn sums_since(conn: &Connection, prev: &Sums) -> rusqlite::Result<Option<Sums>> {
    let after = match prev.upto {
        Some((id, at)) => {
            let still: Option<i64> = conn
                .prepare_cached("SELECT at FROM ticks WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            if still != Some(at) {
                return Ok(None);
            }
            id
        }
        None => 0,
    };
    let mut s = prev.clone();
    s.upto = newest_tick(conn)?.or(prev.upto);
    {
        let mut st = conn.prepare_cached(
            "SELECT p.app_id, s.bytes_in, s.bytes_out FROM samples s \
             LEFT JOIN processes p ON p.id = s.process_id WHERE s.tick_id > ?1",
        )?;
        let mut rows = st.query([after])?;
        while let Some(r) = rows.next()? {
            let Some(app) = r.get::<_, Option<i64>>(0)? else {
                return Ok(None);
            };
            s.apps.entry(app).or_default().add(r.get(1)?, r.get(2)?);
        }
    }
    {
        let mut st = conn.prepare_cached(
            "SELECT host_id, bytes_in, bytes_out FROM web_samples WHERE tick_id > ?1",
        )?;
        add_hosts(&mut s, st.query([after])?)?;
    }
    // The tick's interface rows: the same (network, interface, bytes) `store::networks` adds
    // to `net_daily` in the tick's transaction. A blob that does not decode cannot be
    // continued from: read the daily table again.
    let mut st = conn.prepare_cached("SELECT net FROM ticks WHERE id > ?1 AND net IS NOT NULL")?;
    let mut rows = st.query([after])?;
    while let Some(r) = rows.next()? {
        let blob: Vec<u8> = r.get(0)?;
        let Some(d) = crate::store::networks::decode(&blob) else {
            return Ok(None);
        };
        for (n, i, bin, bout) in d.rows {
            let e = s.nets.entry((n, i)).or_default();
            *e = e.plus(Bytes {
                bytes_in: bin,
                bytes_out: bout,
            });
        }
    }
    Ok(Some(s))
}

/// Read the all-time totals, recorded time and gaps. Call inside one read transaction so
/// every figure comes from the same commit.
pub fn history(conn: &Connection) -> rusqlite::Result<History> {
    history_from(conn, &sums(conn)?)
}

/// The history, from sums read in the same transaction.
pub fn history_from(conn: &Connection, sums: &Sums) -> rusqlite::Result<History> {
    let mut h = History {
        any_web: sums.any_web,
        ..History::default()
    };
    let mut names: HashMap<i64, (String, bool)> = HashMap::new();
    {
        let mut st = conn.prepare_cached("SELECT id, name, kind FROM apps")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            names.insert(r.get(0)?, (r.get(1)?, r.get::<_, i64>(2)? == 1));
        }
    }
    for (id, b) in &sums.apps {
        let (name, unattributed) = names
            .get(id)
            .cloned()
            .unwrap_or_else(|| (format!("(unknown app #{id})"), false));
        if unattributed {
            let reason = name
                .strip_prefix("(unattributed: ")
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or(&name)
                .to_string();
            let e = h.unattributed.entry(reason).or_default();
            *e = e.plus(*b);
        } else {
            let e = h.apps.entry(name).or_default();
            *e = e.plus(*b);
        }
    }
    if !sums.hosts.is_empty() {
        let mut st = conn.prepare_cached("SELECT id, name FROM web_hosts")?;
        let hosts: HashMap<i64, String> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (id, b) in &sums.hosts {
            match hosts.get(id).filter(|h| !h.is_empty()) {
                Some(host) => {
                    let e = h.websites.entry(domain::registrable(host)).or_default();
                    *e = e.plus(*b);
                }
                None => h.no_site = h.no_site.plus(*b),
            }
        }
    }

    if !sums.nets.is_empty() {
        let infos = super::networks::infos(conn)?;
        let mut st = conn.prepare_cached("SELECT id, name, kind FROM interfaces")?;
        let ifaces: HashMap<i64, (String, String)> = st
            .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
            .collect::<Result<_, _>>()?;
        for ((nid, iid), b) in &sums.nets {
            let network = match (*nid, infos.get(nid)) {
                (0, _) => LOOPBACK.to_string(),
                (_, Some(n)) => n.key.clone(),
                (id, None) => format!("(network #{id})"),
            };
            let (interface, kind) = ifaces
                .get(iid)
                .cloned()
                .unwrap_or_else(|| (format!("(interface #{iid})"), "other".to_string()));
            let name = NetSeries {
                network,
                interface,
                kind,
            }
            .name();
            let e = h.networks.entry(name).or_default();
            *e = e.plus(*b);
        }
        h.network_names = infos
            .into_values()
            .map(|n| (n.key.clone(), n.display()))
            .collect();
    }

    h.recorded_ms = recorded_ms(conn)?;
    {
        let mut st = conn.prepare_cached(
            "SELECT reason, count(*), sum(max(end_at - start_at, 0)) FROM gaps GROUP BY reason",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let reason: String = r.get(0)?;
            let e = h.gaps.entry(GapReason::of(&reason)).or_default();
            e.count += r.get::<_, i64>(1)?.max(0) as u64;
            e.ms += r.get::<_, Option<i64>>(2)?.unwrap_or(0).max(0) as u64;
        }
    }
    Ok(h)
}

/// Recorded time as a counter: every run from its first to its last committed tick, minus
/// the gaps. Unlike a query's coverage (`coverage::recorded`), a stopped run ends at its last
/// tick rather than at its stop: the next run's "recorder not running" gap starts at that
/// tick, and would otherwise take back the stretch between the last tick and the stop that an
/// earlier answer had counted. Gaps are written before the tick that ends them and always
/// start at or after the run's last tick then, so no gap ever takes back counted time.
fn recorded_ms(conn: &Connection) -> rusqlite::Result<u64> {
    let runs: Vec<(i64, i64)> = conn
        .prepare_cached(
            "SELECT first_tick_at, last_tick_at FROM runs \
             WHERE first_tick_at IS NOT NULL AND last_tick_at IS NOT NULL",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let gaps: Vec<(i64, i64)> = conn
        .prepare_cached("SELECT start_at, end_at FROM gaps")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let recorded = Intervals::union(runs).minus(&Intervals::union(gaps));
    Ok(recorded.measure(i64::MIN / 4, i64::MAX / 4).max(0) as u64)
}

/// The recorder's state, from its lock (`db`'s lock file) and the last run.
pub fn recorder(conn: &Connection, db: &Path, now_ms: i64) -> Result<Recorder, store::Error> {
    let holder = lock::holder(db)?;
    let last: Option<Run> = conn
        .query_row(
            "SELECT pid, started_at, last_tick_at, stopped_at, stop_reason, source, interval_ms, \
             version, notes, write_every_ms FROM runs ORDER BY id DESC LIMIT 1",
            [],
            |r| {
                Ok(Run {
                    pid: r.get(0)?,
                    started_ms: r.get(1)?,
                    last_tick_ms: r.get(2)?,
                    stopped_ms: r.get(3)?,
                    stop_reason: r.get(4)?,
                    source: r.get(5)?,
                    interval_ms: r.get(6)?,
                    version: r.get(7)?,
                    notes: r.get(8)?,
                    write_every_ms: r.get(9)?,
                })
            },
        )
        .optional()?;
    let newest_tick: Option<i64> = conn.query_row(
        "SELECT coalesce((SELECT max(at) FROM ticks), (SELECT max(last_tick_at) FROM runs))",
        [],
        |r| r.get(0),
    )?;
    let holder_pid = holder.as_ref().and_then(|h| h.pid.parse::<i64>().ok());
    let holder_since_ms = holder.as_ref().and_then(|h| {
        chrono::DateTime::parse_from_rfc3339(&h.since)
            .ok()
            .map(|d| d.timestamp_millis())
    });
    Ok(Recorder {
        state: classify(
            holder.is_some(),
            holder_pid,
            holder_since_ms,
            last.as_ref(),
            now_ms,
        ),
        running: holder.is_some(),
        last_tick_ms: newest_tick,
        started_ms: last.as_ref().map(|r| r.started_ms),
        source: last.as_ref().map(|r| r.source.clone()),
        interval_ms: last.as_ref().map(|r| r.interval_ms),
        version: last.as_ref().map(|r| r.version.clone()),
        not_counted: last
            .as_ref()
            .and_then(|r| r.notes.as_deref())
            .unwrap_or("")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// The last row of `runs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub pid: i64,
    pub started_ms: i64,
    pub last_tick_ms: Option<i64>,
    pub stopped_ms: Option<i64>,
    pub stop_reason: Option<String>,
    pub source: String,
    pub interval_ms: i64,
    pub version: String,
    pub notes: Option<String>,
    /// How often the run writes its ticks (0: every tick): its last tick in the file may be
    /// this much older than its newest.
    pub write_every_ms: i64,
}

/// `netmon status`'s rule: a lock holder is running, or stalled (`query::stall`, with the
/// default slack) when neither its run's last tick nor its start (nor, before its run row
/// exists, the lock's own time) is within its interval and write window; without a holder the
/// last run stopped, or crashed when it never stopped.
pub fn classify(
    locked: bool,
    holder_pid: Option<i64>,
    holder_since_ms: Option<i64>,
    last: Option<&Run>,
    now_ms: i64,
) -> RecorderState {
    if locked {
        let current = last.filter(|r| holder_pid == Some(r.pid));
        let activity = current
            .map(|r| r.last_tick_ms.unwrap_or(r.started_ms))
            .or(holder_since_ms);
        let stalled = activity.and_then(|t| {
            stall::stalled_for(
                t,
                now_ms,
                current.map_or(Duration::ZERO, |r| stall::millis(r.interval_ms)),
                current.map_or(Duration::ZERO, |r| stall::millis(r.write_every_ms)),
                stall::STALLED_AFTER,
            )
        });
        return if stalled.is_some() {
            RecorderState::Stalled
        } else {
            RecorderState::Running
        };
    }
    match last {
        None => RecorderState::Never,
        Some(r) if r.stopped_ms.is_none() || r.stop_reason.as_deref() == Some("crashed") => {
            RecorderState::Crashed
        }
        Some(_) => RecorderState::Stopped,
    }
}

/// Names that would collide with the series netmon adds itself, so they never get one.
fn reserved(name: &str) -> bool {
    name == OTHER || name == NO_SITE
}

/// The names that join their family's set now: those not yet members whose all-time bytes
/// reach `limits.min_bytes`, largest first, while the family has room. On the exporter's first
/// answer (`tracked.since_ms` is `None`) they join with base zero (nothing was exported, so
/// their whole history goes to their own series); later, with their bytes so far as base
/// (which `(other)` has been counting). The caller must read `history` and `tracked` in the
/// write transaction that stores the joins.
pub fn joins(history: &History, tracked: &Tracked, limits: &Limits, now_ms: i64) -> Vec<Join> {
    let first = tracked.since_ms.is_none();
    let mut out = Vec::new();
    for (family, totals, cap) in [
        (Family::App, &history.apps, limits.apps),
        (Family::Website, &history.websites, limits.websites),
        (Family::Network, &history.networks, limits.networks),
    ] {
        let room = cap.saturating_sub(tracked.count(family));
        if room == 0 {
            continue;
        }
        let mut candidates: Vec<(&String, &Bytes)> = totals
            .iter()
            .filter(|(name, b)| {
                !reserved(name)
                    && b.total() > 0
                    && b.total() >= limits.min_bytes
                    && tracked.get(family, name).is_none()
            })
            .collect();
        candidates.sort_by(|a, b| b.1.total().cmp(&a.1.total()).then_with(|| a.0.cmp(b.0)));
        for (name, b) in candidates.into_iter().take(room) {
            out.push(Join {
                family,
                name: name.clone(),
                member: Member {
                    joined_ms: now_ms,
                    base_in: if first { 0 } else { b.bytes_in },
                    base_out: if first { 0 } else { b.bytes_out },
                },
            });
        }
    }
    out
}

/// One family's series: each member's bytes since it joined, by name, and `(other)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    pub members: BTreeMap<String, Bytes>,
    pub other: Bytes,
}

/// Split a family's totals into its members' series and `(other)`. Members without bytes
/// (none yet, or a database restored from before they joined) keep a series at zero.
pub fn split(totals: &BTreeMap<String, Bytes>, tracked: &Tracked, family: Family) -> Split {
    let (members, other) = split_by(totals, tracked, family, |_| ());
    Split {
        members,
        other: other.into_values().next().unwrap_or_default(),
    }
}

/// [`split`] with `(other)` kept apart per group of names (`group` of a name), for families
/// whose `(other)` is split by a label (networks: by interface kind). Groups with no bytes
/// outside members are absent.
pub fn split_by<G: Ord>(
    totals: &BTreeMap<String, Bytes>,
    tracked: &Tracked,
    family: Family,
    group: impl Fn(&str) -> G,
) -> (BTreeMap<String, Bytes>, BTreeMap<G, Bytes>) {
    let mut members = BTreeMap::new();
    let mut other: BTreeMap<G, Bytes> = BTreeMap::new();
    for (name, b) in totals {
        let (own, rest) = match tracked.get(family, name).filter(|_| !reserved(name)) {
            Some(m) => (Some(b.minus_base(m)), b.base_part(m)),
            None => (None, *b),
        };
        if let Some(own) = own {
            members.insert(name.clone(), own);
        }
        if rest != Bytes::default() {
            let e = other.entry(group(name)).or_default();
            *e = e.plus(rest);
        }
    }
    for (f, name) in tracked.members.keys() {
        if *f == family && !reserved(name) {
            members.entry(name.clone()).or_default();
        }
    }
    (members, other)
}

/// A metric family in the exposition: name (without the `_total` or `_info` suffix its type
/// adds), type, unit, help, samples. `output::prometheus` renders it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricFamily {
    pub name: &'static str,
    pub kind: MetricKind,
    /// OpenMetrics unit; the name ends with it.
    pub unit: Option<&'static str>,
    pub help: &'static str,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    /// Labels describing something, value always 1.
    Info,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
}

/// Everything one answer of `/metrics` exports.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub families: Vec<MetricFamily>,
}

fn directions(labels: Vec<(&'static str, String)>, b: Bytes) -> [Sample; 2] {
    let with = |dir: &str, v: u64| {
        let mut l = labels.clone();
        l.push(("direction", dir.to_string()));
        Sample {
            labels: l,
            value: Value::Int(v),
        }
    };
    [with("in", b.bytes_in), with("out", b.bytes_out)]
}

fn seconds(ms: i64) -> Value {
    Value::Float(ms as f64 / 1000.0)
}

/// Build the exposition from the history, the recorder's state and the member sets.
pub fn metrics(h: &History, rec: &Recorder, tracked: &Tracked, limits: &Limits) -> Metrics {
    let mut families = Vec::new();

    let apps = split(&h.apps, tracked, Family::App);
    let mut samples = Vec::new();
    for (name, b) in &apps.members {
        samples.extend(directions(vec![("app", name.clone())], *b));
    }
    samples.extend(directions(vec![("app", OTHER.to_string())], apps.other));
    families.push(MetricFamily {
        name: "netmon_app_bytes",
        kind: MetricKind::Counter,
        unit: Some("bytes"),
        help: "Bytes received (direction=in) and sent (out) per application since recording \
               began; applications without a series of their own are counted in app=\"(other)\"",
        samples,
    });

    let mut samples = Vec::new();
    for (reason, b) in &h.unattributed {
        samples.extend(directions(vec![("reason", reason.clone())], *b));
    }
    families.push(MetricFamily {
        name: "netmon_unattributed_bytes",
        kind: MetricKind::Counter,
        unit: Some("bytes"),
        help: "Bytes the source saw but could not tie to a process, per reason",
        samples,
    });

    let all = h
        .apps
        .values()
        .chain(h.unattributed.values())
        .fold(Bytes::default(), |a, b| a.plus(*b));
    families.push(MetricFamily {
        name: "netmon_bytes",
        kind: MetricKind::Counter,
        unit: Some("bytes"),
        help: "All bytes recorded on this machine: every application and every unattributed byte",
        samples: directions(Vec::new(), all).to_vec(),
    });

    let mut samples = Vec::new();
    if h.any_web || tracked.count(Family::Website) > 0 {
        let sites = split(&h.websites, tracked, Family::Website);
        for (name, b) in &sites.members {
            samples.extend(directions(vec![("domain", name.clone())], *b));
        }
        samples.extend(directions(vec![("domain", OTHER.to_string())], sites.other));
        samples.extend(directions(vec![("domain", NO_SITE.to_string())], h.no_site));
    }
    families.push(MetricFamily {
        name: "netmon_website_bytes",
        kind: MetricKind::Counter,
        unit: Some("bytes"),
        help: "Browser bytes per website (registrable domain) since the browser extension began \
               reporting; domain=\"(no active tab)\" had no site",
        samples,
    });

    networks(&mut families, h, tracked);

    families.push(MetricFamily {
        name: "netmon_recorded_seconds",
        kind: MetricKind::Counter,
        unit: Some("seconds"),
        help: "Time a recorder was counting (runs minus gaps)",
        samples: vec![Sample {
            labels: Vec::new(),
            value: seconds(h.recorded_ms.min(i64::MAX as u64) as i64),
        }],
    });
    let gap = |f: fn(&Gaps) -> Value| -> Vec<Sample> {
        GapReason::ALL
            .iter()
            .map(|r| Sample {
                labels: vec![("reason", r.as_str().to_string())],
                value: f(&h.gaps.get(r).copied().unwrap_or_default()),
            })
            .collect()
    };
    families.push(MetricFamily {
        name: "netmon_gaps",
        kind: MetricKind::Counter,
        unit: None,
        help: "Stretches of time not recorded, per reason",
        samples: gap(|g| Value::Int(g.count)),
    });
    families.push(MetricFamily {
        name: "netmon_gap_seconds",
        kind: MetricKind::Counter,
        unit: Some("seconds"),
        help: "Length of the stretches of time not recorded, per reason",
        samples: gap(|g| seconds(g.ms.min(i64::MAX as u64) as i64)),
    });

    families.push(MetricFamily {
        name: "netmon_recorder_running",
        kind: MetricKind::Gauge,
        unit: None,
        help: "1 when a netmon record process holds this database, else 0",
        samples: vec![Sample {
            labels: Vec::new(),
            value: Value::Int(u64::from(rec.running)),
        }],
    });
    families.push(MetricFamily {
        name: "netmon_recorder_state",
        kind: MetricKind::Gauge,
        unit: None,
        help: "The recorder's state as netmon status tells it: 1 for the current one",
        samples: RecorderState::ALL
            .iter()
            .map(|s| Sample {
                labels: vec![("state", s.as_str().to_string())],
                value: Value::Int(u64::from(*s == rec.state)),
            })
            .collect(),
    });
    let one = |ms: Option<i64>| {
        ms.map(|t| Sample {
            labels: Vec::new(),
            value: seconds(t),
        })
        .into_iter()
        .collect::<Vec<_>>()
    };
    families.push(MetricFamily {
        name: "netmon_recorder_last_tick_timestamp_seconds",
        kind: MetricKind::Gauge,
        unit: Some("seconds"),
        help: "When the newest committed tick was sampled (Unix time)",
        samples: one(rec.last_tick_ms),
    });
    families.push(MetricFamily {
        name: "netmon_recorder_start_time_seconds",
        kind: MetricKind::Gauge,
        unit: Some("seconds"),
        help: "When the last recorder run started (Unix time)",
        samples: one(rec.started_ms),
    });
    families.push(MetricFamily {
        name: "netmon_recorder_interval_seconds",
        kind: MetricKind::Gauge,
        unit: Some("seconds"),
        help: "The last recorder run's sampling interval",
        samples: one(rec.interval_ms),
    });
    families.push(MetricFamily {
        name: "netmon_recorder",
        kind: MetricKind::Info,
        unit: None,
        help: "The last recorder run's source and netmon version",
        samples: match (&rec.source, &rec.version) {
            (Some(s), Some(v)) => vec![Sample {
                labels: vec![("source", s.clone()), ("version", v.clone())],
                value: Value::Int(1),
            }],
            _ => Vec::new(),
        },
    });
    families.push(MetricFamily {
        name: "netmon_recorder_not_counted",
        kind: MetricKind::Info,
        unit: None,
        help: "What the last recorder run's source cannot see, one sentence per series",
        samples: rec
            .not_counted
            .iter()
            .map(|n| Sample {
                labels: vec![("what", n.clone())],
                value: Value::Int(1),
            })
            .collect(),
    });

    let tracked_samples = |f: fn(Family, &Tracked, &Limits) -> u64| {
        [Family::App, Family::Website, Family::Network]
            .iter()
            .map(|fam| Sample {
                labels: vec![("family", fam.as_str().to_string())],
                value: Value::Int(f(*fam, tracked, limits)),
            })
            .collect::<Vec<_>>()
    };
    families.push(MetricFamily {
        name: "netmon_tracked_names",
        kind: MetricKind::Gauge,
        unit: None,
        help: "Applications (family=app), websites (family=website) and network interfaces \
               (family=network) with a series of their own",
        samples: tracked_samples(|f, t, _| t.count(f) as u64),
    });
    families.push(MetricFamily {
        name: "netmon_tracked_names_limit",
        kind: MetricKind::Gauge,
        unit: None,
        help: "How many names of each family may get a series of their own (the rest is (other))",
        samples: tracked_samples(|f, _, l| match f {
            Family::App => l.apps as u64,
            Family::Website => l.websites as u64,
            Family::Network => l.networks as u64,
        }),
    });
    families.push(MetricFamily {
        name: "netmon_build",
        kind: MetricKind::Info,
        unit: None,
        help: "The netmon serving these metrics",
        samples: vec![Sample {
            labels: vec![("version", env!("CARGO_PKG_VERSION").to_string())],
            value: Value::Int(1),
        }],
    });
    Metrics { families }
}

/// The per-network families: bytes per member network and interface and `(other)` per kind,
/// the member networks' names, and the data caps.
fn networks(families: &mut Vec<MetricFamily>, h: &History, tracked: &Tracked) {
    let kind_of = |name: &str| NetSeries::parse(name).map(|s| s.kind).unwrap_or_default();
    let (members, other) = split_by(&h.networks, tracked, Family::Network, kind_of);
    let mut rows: Vec<(NetSeries, Bytes)> = members
        .iter()
        .filter_map(|(name, b)| NetSeries::parse(name).map(|s| (s, *b)))
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut samples = Vec::new();
    let labels = |s: &NetSeries| {
        vec![
            ("network", s.network.clone()),
            ("interface", s.interface.clone()),
            ("kind", s.kind.clone()),
        ]
    };
    for (s, b) in &rows {
        samples.extend(directions(labels(s), *b));
    }
    for (kind, b) in other {
        let s = NetSeries {
            network: OTHER.to_string(),
            interface: OTHER.to_string(),
            kind,
        };
        samples.extend(directions(labels(&s), b));
    }
    families.push(MetricFamily {
        name: "netmon_network_bytes",
        kind: MetricKind::Counter,
        unit: Some("bytes"),
        help: "Bytes each interface received (direction=in) and sent (out) per network (its \
               stable key; network=\"(loopback)\" stayed on this machine) since interfaces were \
               recorded; pairs without a series of their own are counted in network=\"(other)\", \
               per kind",
        samples,
    });

    let mut named: Vec<&str> = rows.iter().map(|(s, _)| s.network.as_str()).collect();
    named.extend(h.caps.iter().map(|c| c.network.as_str()));
    named.sort_unstable();
    named.dedup();
    families.push(MetricFamily {
        name: "netmon_network",
        kind: MetricKind::Info,
        unit: None,
        help: "The name netmon networks shows for each network with a series (the user's name, \
               else its label)",
        samples: named
            .into_iter()
            .filter_map(|k| h.network_names.get(k).map(|name| (k, name)))
            .map(|(k, name)| Sample {
                labels: vec![("network", k.to_string()), ("name", name.clone())],
                value: Value::Int(1),
            })
            .collect(),
    });

    let cap = |f: fn(&CapGauge) -> u64| -> Vec<Sample> {
        h.caps
            .iter()
            .map(|c| Sample {
                labels: vec![("network", c.network.clone()), ("period", c.period.clone())],
                value: Value::Int(f(c)),
            })
            .collect()
    };
    families.push(MetricFamily {
        name: "netmon_network_cap_bytes",
        kind: MetricKind::Gauge,
        unit: Some("bytes"),
        help: "The data cap set on a network (netmon networks cap) per period; network=\"(all)\" \
               is the cap over all networks together",
        samples: cap(|c| c.cap_bytes),
    });
    families.push(MetricFamily {
        name: "netmon_network_cap_used_bytes",
        kind: MetricKind::Gauge,
        unit: Some("bytes"),
        help: "What the counted interfaces carried on a capped network in its current period, \
               the recorder's ticks not yet written included (as netmon status counts it)",
        samples: cap(|c| c.used_bytes),
    });
}

#[cfg(test)]
mod tests;
