//! What the last sample's rows gave, by their identity: a nettop row whose text up to its
//! counts (identifier, interface, state) reads exactly as one did a sample ago gives the same
//! key, owner and remote as then, so only its two counts are read.
//!
//! Why: parsing a row and building its key cost about 1 µs, most of the recorder's CPU per
//! tick (issue 16), and a row's identity almost never changes between two samples, while its
//! counts often do. Looking a row up costs finding its last commas and hashing its identity.
//!
//! What it rests on: a row's counter depends only on its own text, the header's columns and,
//! for a connection, the process row above it. Entries are therefore kept per header (another
//! header empties the cache), a connection's entry holds only its own part of the key, and
//! the process part comes from the process row it is listed under in this sample. Only the
//! last sample's identities are kept.
//!
//! It takes only the plain case: a header whose last columns are the counts (the one netmon's
//! command makes nettop print), then rows that all parse. Anything else (a row the parser
//! skips, a second header, a cut last line, other columns) returns `None`, and the caller
//! takes the full parser, which reports what it skipped. The cache never decides what a row
//! means on its own: a new identity goes through the same parser and the same key code as
//! [`to_snapshot`](super::to_snapshot), counts are read by the parser's own field rule, and
//! tests hold the two paths equal.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::parse::{self, BytesOrder, Header, Row};
use super::{Counter, CounterKey, Owner, ProcessRef, Remote, Snapshot};

/// What a row's identity (its text up to the counts) gives.
#[derive(Debug, Clone)]
enum Entry {
    Process {
        owner: Owner,
        /// `nettop/PID/NAME`.
        key: String,
    },
    Connection {
        /// What the connection adds to its process's key.
        key_part: String,
        remote: Option<Remote>,
        loopback: bool,
        interface: Option<Arc<str>>,
    },
}

#[derive(Debug)]
struct Slot {
    entry: Entry,
    /// The last sample the identity was seen in.
    seen: u64,
}

/// The rows of the last sample, by identity, under the header they were read with.
#[derive(Debug, Default)]
pub struct RowCache {
    header: String,
    columns: Option<Header>,
    /// `None`: the header's counts are not its last columns, and the cache stands aside.
    order: Option<BytesOrder>,
    rows: FxHashMap<Box<str>, Slot>,
    sample: u64,
}

/// The process whose connection rows are being read.
struct Current {
    owner: Owner,
    key: String,
    bytes_in: u64,
    bytes_out: u64,
    /// Connection rows listed under it (listeners included).
    rows: usize,
}

/// What is being built from one sample.
#[derive(Default)]
struct Build {
    counters: Vec<Counter>,
    current: Option<Current>,
    /// Counters of processes listed without connection rows, and whether any connection row
    /// was listed: they count only if none was (as in `to_snapshot`), and then they are the
    /// only counters, in listing order.
    lone: Vec<Counter>,
    connections: bool,
}

impl RowCache {
    /// Forget every row (the next sample is parsed in full).
    pub fn clear(&mut self) {
        self.rows.clear();
        self.columns = None;
        self.order = None;
        self.header.clear();
    }

    /// Row identities kept from the last sample.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The counters of `text`, equal to `to_snapshot` of its one block; `None` when `text`
    /// is not one header followed by rows that all parse, or its header does not end with
    /// the counts (the cache is then emptied).
    pub fn snapshot(&mut self, text: &str) -> Option<Snapshot> {
        let result = self.read(text);
        if result.is_none() {
            self.clear();
        }
        result
    }

    fn read(&mut self, text: &str) -> Option<Snapshot> {
        if !text.ends_with('\n') {
            return None; // a cut last line: the parser reports it
        }
        self.sample += 1;
        let sample = self.sample;
        let mut build = Build {
            counters: Vec::with_capacity(self.rows.len() + self.rows.len() / 2),
            current: None,
            lone: Vec::new(),
            connections: false,
        };
        let mut interfaces: Vec<Arc<str>> = Vec::new();
        let mut fields: Vec<&str> = Vec::new();
        let mut seen_header = false;
        let mut live = 0usize;
        for (idx, raw) in text.split('\n').enumerate() {
            let line = parse::clean(raw);
            if line.is_empty() {
                continue;
            }
            if !seen_header {
                let columns = parse::header(line)??;
                if line != self.header {
                    self.rows.clear();
                    self.header.clear();
                    self.header.push_str(line);
                    self.order = columns.counts_last();
                    self.columns = Some(columns);
                }
                seen_header = true;
                continue;
            }
            let order = self.order?;
            // `IDENTITY,COUNT,COUNT,`: a header here (its last names are not counts) or a row
            // without its trailing comma is left to the parser.
            let body = line.strip_suffix(',')?;
            let (rest, second) = body.rsplit_once(',')?;
            let (identity, first) = rest.rsplit_once(',')?;
            let first = parse::count_field(first).ok()?;
            let second = parse::count_field(second).ok()?;
            let (bytes_in, bytes_out) = match order {
                BytesOrder::InOut => (first, second),
                BytesOrder::OutIn => (second, first),
            };
            if let Some(slot) = self.rows.get_mut(identity) {
                if slot.seen != sample {
                    slot.seen = sample;
                    live += 1;
                }
                build.row(&slot.entry, bytes_in, bytes_out)?;
                continue;
            }
            if parse::header(line).is_some() {
                return None; // a second header: the parser keeps the last block
            }
            let columns = self.columns.as_ref()?;
            let entry = entry_of(columns, line, idx + 1, &mut fields, &mut interfaces)?;
            build.row(&entry, bytes_in, bytes_out)?;
            self.rows.insert(
                identity.into(),
                Slot {
                    entry,
                    seen: sample,
                },
            );
            live += 1;
        }
        if !seen_header {
            return None;
        }
        if self.rows.len() > live {
            self.rows.retain(|_, slot| slot.seen == sample);
        }
        let Build {
            mut counters,
            current,
            mut lone,
            connections,
        } = build;
        finish(current, &mut lone);
        if !connections {
            counters.append(&mut lone);
        }
        Some(Snapshot { counters })
    }
}

impl Build {
    /// One row's counter; `None` for a connection listed before any process (the parser
    /// skips and reports it).
    fn row(&mut self, entry: &Entry, bytes_in: Option<u64>, bytes_out: Option<u64>) -> Option<()> {
        match entry {
            Entry::Process { owner, key } => {
                finish(self.current.take(), &mut self.lone);
                self.current = Some(Current {
                    owner: owner.clone(),
                    key: key.clone(),
                    // Process rows always carry numbers; an empty field is read as no traffic.
                    bytes_in: bytes_in.unwrap_or(0),
                    bytes_out: bytes_out.unwrap_or(0),
                    rows: 0,
                });
            }
            Entry::Connection {
                key_part,
                remote,
                loopback,
                interface,
            } => {
                let p = self.current.as_mut()?;
                p.rows += 1;
                self.connections = true;
                if bytes_in.is_none() && bytes_out.is_none() {
                    return Some(()); // listener or unbound socket: no counter
                }
                let mut key = String::with_capacity(p.key.len() + key_part.len());
                key.push_str(&p.key);
                key.push_str(key_part);
                self.counters.push(Counter {
                    key: CounterKey(key),
                    owner: p.owner.clone(),
                    remote: remote.clone(),
                    loopback: *loopback,
                    bytes_in: bytes_in.unwrap_or(0),
                    bytes_out: bytes_out.unwrap_or(0),
                    closed: false,
                    interface: interface.clone(),
                });
            }
        }
        Some(())
    }
}

/// A process listed without connection rows is counted by its own row, kept in `lone` (used
/// only if the sample lists no connection row at all).
fn finish(p: Option<Current>, lone: &mut Vec<Counter>) {
    if let Some(p) = p.filter(|p| p.rows == 0) {
        lone.push(Counter {
            key: CounterKey(p.key),
            owner: p.owner,
            remote: None,
            loopback: false,
            bytes_in: p.bytes_in,
            bytes_out: p.bytes_out,
            closed: false,
            interface: None,
        });
    }
}

/// Parse one row into what it gives, with the key code `to_snapshot` uses.
fn entry_of<'a>(
    columns: &Header,
    line: &'a str,
    number: usize,
    fields: &mut Vec<&'a str>,
    interfaces: &mut Vec<Arc<str>>,
) -> Option<Entry> {
    Some(
        match parse::parse_row(columns, line, number, fields).ok()? {
            Row::Process(p) => {
                let mut key = String::new();
                super::push_process_key(&mut key, p.pid, &p.name);
                Entry::Process {
                    owner: Owner::Process(ProcessRef::new(p.pid, &*p.name)),
                    key,
                }
            }
            Row::Connection(c) => {
                let mut key_part = String::new();
                super::push_connection_key(&mut key_part, &c);
                let remote_addr = c.remote.host.as_deref().and_then(super::parse_ip);
                let loopback = super::is_loopback(&c, remote_addr);
                Entry::Connection {
                    key_part,
                    remote: super::remote_of(&c, remote_addr, loopback),
                    loopback,
                    interface: c.interface.map(|i| super::interned(interfaces, i)),
                }
            }
        },
    )
}

#[cfg(test)]
mod tests;
