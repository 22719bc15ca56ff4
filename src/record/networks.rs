//! The record loop's interface side: read every interface's counters each tick, turn them
//! into deltas (`crate::delta::interfaces`), pick the network the tick's application bytes
//! are counted on, and split each process's bytes by network where its connections said which
//! interface they used ([`split`]).

use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::delta::interfaces::{Engine, IfaceDelta, STATE_PREFIX, parse_state_key};
use crate::delta::{Saved, StateChanges};
use crate::source::CounterKey;
use crate::source::interfaces::{self, InterfaceReader, Kind, NetworkId};
use crate::tick::{InterfaceTraffic, NetTraffic, Network, NetworkBytes, ProcessTraffic};

/// The interface reader, its delta engine, and the last network application bytes went to.
pub struct Interfaces {
    reader: Box<dyn InterfaceReader>,
    engine: Engine,
    last_read: Option<Instant>,
    last_network: Option<Network>,
    /// Every interface the last successful reading listed (moved or not), with its network:
    /// what a connection's interface is mapped with. Empty while the reader fails.
    seen: Vec<(String, Option<Network>)>,
    /// The reader is failing (logged once per streak).
    failing: bool,
    /// Loopback is read only with `--include-loopback`, as for applications: it is not
    /// network use, and a busy one would cost a write every tick.
    include_loopback: bool,
}

impl Interfaces {
    pub fn new(reader: Box<dyn InterfaceReader>, max_rate: u64, include_loopback: bool) -> Self {
        Interfaces {
            reader,
            engine: Engine::new(max_rate),
            last_read: None,
            last_network: None,
            seen: Vec::new(),
            failing: false,
            include_loopback,
        }
    }

    /// Continue from the interface counters a previous run saved in this boot; returns the
    /// saved values that are the sources' (not interfaces').
    pub fn resume(&mut self, saved: Vec<Saved>) -> Vec<Saved> {
        let (mine, theirs): (Vec<Saved>, Vec<Saved>) = saved
            .into_iter()
            .partition(|s| s.key.0.starts_with(STATE_PREFIX));
        self.engine.resume(mine.into_iter().filter_map(|s| {
            let (name, index) = parse_state_key(&s.key.0)?;
            Some((name, index, s.bytes_in, s.bytes_out, s.age))
        }));
        theirs
    }

    /// Read the interfaces now: this tick's deltas (`None` when they cannot be read), with
    /// the counter values to save in `state` so a restart continues from them.
    pub fn tick(&mut self, now: Instant, state: &mut StateChanges) -> Option<NetTraffic> {
        let mut reading = match self.reader.read() {
            Ok(r) => r,
            Err(e) => {
                if !self.failing {
                    warn!(error = %e, "interface counters could not be read; \
                          interface totals are not recorded until they can");
                }
                self.failing = true;
                self.engine.failed();
                self.seen.clear();
                return None;
            }
        };
        if self.failing {
            info!("interface counters can be read again");
            self.failing = false;
        }
        let elapsed = self
            .last_read
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        self.last_read = Some(now);
        if !self.include_loopback {
            reading.retain(|c| c.kind != Kind::Loopback);
        }
        // Networks change rarely: the list is rebuilt only when a name or network differs.
        let same = self.seen.len() == reading.len()
            && self.seen.iter().zip(&reading).all(|((name, n), c)| {
                *name == c.name
                    && match (n, &c.network) {
                        (None, None) => true,
                        (Some(n), Some(m)) => n.key == m.key && n.label == m.label,
                        _ => false,
                    }
            });
        if !same {
            self.seen = reading
                .iter()
                .map(|c| (c.name.clone(), c.network.clone().map(network)))
                .collect();
        }
        let outcome = self.engine.apply(&reading, elapsed);
        state.upsert.extend(
            outcome
                .save
                .into_iter()
                .map(|(k, bin, bout)| (CounterKey(k), bin, bout)),
        );
        state
            .remove
            .extend(outcome.forget.into_iter().map(CounterKey));
        for d in &outcome.dropped {
            warn!(interface = %d.name, bytes_in = d.bytes_in, bytes_out = d.bytes_out,
                covered_ms = d.covered.as_millis() as u64, limit = d.limit,
                "interface delta above what any link could carry in the time; not counted");
        }
        if let Some(n) = busiest(&outcome.deltas) {
            self.last_network = Some(n);
        }
        Some(NetTraffic {
            interfaces: outcome
                .deltas
                .into_iter()
                .map(|d| InterfaceTraffic {
                    interface: d.name,
                    kind: d.kind.as_str(),
                    network: d.network.map(network),
                    bytes_in: d.bytes_in,
                    bytes_out: d.bytes_out,
                })
                .collect(),
            app_network: self.last_network.clone(),
        })
    }
}

impl Interfaces {
    /// Split each process's bytes by network ([`split`]) with this tick's reading; `net`:
    /// what [`Interfaces::tick`] returned (`None`: no reading, nothing is split).
    pub fn split(&self, traffic: &mut [ProcessTraffic], net: Option<&NetTraffic>) {
        match net {
            Some(net) => split(traffic, &self.seen, net.app_network.as_ref()),
            None => traffic.iter_mut().for_each(|t| t.interfaces.clear()),
        }
    }
}

/// Turn each process's bytes per interface (`ProcessTraffic::interfaces`, emptied) into its
/// bytes on networks other than `app_network` (`ProcessTraffic::networks`). An interface is
/// mapped with `seen` (every interface of the tick's reading, moved or not); a connection on
/// an interface the reading does not list, or that named none, stays on `app_network`. Bytes
/// are only moved between networks, never added: per process, what `networks` holds plus what
/// stays on `app_network` is exactly its total.
pub fn split(
    traffic: &mut [ProcessTraffic],
    seen: &[(String, Option<Network>)],
    app_network: Option<&Network>,
) {
    for t in traffic {
        for b in std::mem::take(&mut t.interfaces) {
            let Some((_, on)) = seen.iter().find(|(name, _)| **name == *b.interface) else {
                continue;
            };
            if on.as_ref() == app_network {
                continue;
            }
            match t.networks.iter_mut().find(|n| n.network == *on) {
                Some(n) => {
                    n.bytes_in += b.bytes_in;
                    n.bytes_out += b.bytes_out;
                }
                None => t.networks.push(NetworkBytes {
                    network: on.clone(),
                    bytes_in: b.bytes_in,
                    bytes_out: b.bytes_out,
                }),
            }
        }
    }
}

fn network(n: NetworkId) -> Network {
    Network {
        key: n.key,
        label: n.label,
    }
}

/// The network that carried the most bytes off this machine (tunnels, bridges and loopback
/// aside: their bytes cross another interface too, or none).
fn busiest(deltas: &[IfaceDelta]) -> Option<Network> {
    deltas
        .iter()
        .filter(|d| d.kind.carries_off_machine())
        .filter_map(|d| Some((d.network.as_ref()?, d.bytes_in + d.bytes_out)))
        .fold(Vec::<(&NetworkId, u64)>::new(), |mut acc, (n, b)| {
            match acc.iter_mut().find(|(m, _)| *m == n) {
                Some(e) => e.1 += b,
                None => acc.push((n, b)),
            }
            acc
        })
        .into_iter()
        .max_by_key(|(_, b)| *b)
        .map(|(n, _)| network(n.clone()))
}

/// Two ticks' interface deltas as one (a commit failed and they are stored together).
pub fn merge(earlier: Option<NetTraffic>, later: Option<NetTraffic>) -> Option<NetTraffic> {
    match (earlier, later) {
        (None, x) | (x, None) => x,
        (Some(mut a), Some(b)) => {
            for i in b.interfaces {
                match a
                    .interfaces
                    .iter_mut()
                    .find(|j| j.interface == i.interface && j.network == i.network)
                {
                    Some(j) => {
                        j.bytes_in = j.bytes_in.saturating_add(i.bytes_in);
                        j.bytes_out = j.bytes_out.saturating_add(i.bytes_out);
                    }
                    None => a.interfaces.push(i),
                }
            }
            a.app_network = b.app_network.or(a.app_network);
            Some(a)
        }
    }
}

/// The reader this OS has.
pub fn open(max_rate: u64, include_loopback: bool) -> Interfaces {
    Interfaces::new(interfaces::open(), max_rate, include_loopback)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tick::{AppKind, InterfaceBytes, ProcessRecord};

    fn net(key: &str) -> Network {
        Network {
            key: key.into(),
            label: key.into(),
        }
    }

    fn process(bytes: (u64, u64), interfaces: &[(&str, u64, u64)]) -> ProcessTraffic {
        ProcessTraffic {
            process: ProcessRecord {
                pid: Some(1),
                name: "curl".into(),
                start_time: None,
                exe: None,
                uid: None,
                app: crate::procinfo::App {
                    name: "curl".into(),
                    path: None,
                },
                kind: AppKind::Application,
                container: None,
            },
            bytes_in: bytes.0,
            bytes_out: bytes.1,
            flows: vec![],
            interfaces: interfaces
                .iter()
                .map(|&(i, bin, bout)| InterfaceBytes {
                    interface: i.into(),
                    bytes_in: bin,
                    bytes_out: bout,
                })
                .collect(),
            networks: vec![],
        }
    }

    /// en0 on home Wi-Fi, utun0 a VPN, en5 idle on a hotspot (moved nothing this tick).
    fn seen() -> Vec<(String, Option<Network>)> {
        vec![
            ("en0".into(), Some(net("wifi:home"))),
            ("utun0".into(), Some(net("vpn:utun0"))),
            ("en5".into(), Some(net("gw:hotspot"))),
            ("lo0".into(), None),
        ]
    }

    fn on(t: &ProcessTraffic) -> Vec<(Option<&str>, u64, u64)> {
        t.networks
            .iter()
            .map(|n| {
                (
                    n.network.as_ref().map(|n| n.key.as_str()),
                    n.bytes_in,
                    n.bytes_out,
                )
            })
            .collect()
    }

    #[test]
    fn two_connections_of_one_app_on_two_interfaces_are_on_two_networks() {
        let mut t = vec![process(
            (1500, 150),
            &[("en0", 1000, 100), ("utun0", 500, 50)],
        )];
        split(&mut t, &seen(), Some(&net("wifi:home")));
        // The app network keeps en0's bytes implicitly; only the VPN's are listed.
        assert_eq!(on(&t[0]), vec![(Some("vpn:utun0"), 500, 50)]);
        assert!(t[0].interfaces.is_empty(), "consumed");
    }

    #[test]
    fn an_interface_that_moved_nothing_this_tick_still_names_its_network() {
        let mut t = vec![process((300, 30), &[("en5", 300, 30)])];
        split(&mut t, &seen(), Some(&net("wifi:home")));
        assert_eq!(on(&t[0]), vec![(Some("gw:hotspot"), 300, 30)]);
    }

    #[test]
    fn an_interface_the_reader_does_not_know_or_none_stays_on_the_app_network() {
        let mut t = vec![
            process((700, 70), &[("en9", 400, 40)]),
            // 300/30 of its bytes named no interface.
            process((300, 30), &[]),
        ];
        split(&mut t, &seen(), Some(&net("wifi:home")));
        assert!(t[0].networks.is_empty() && t[1].networks.is_empty());
    }

    #[test]
    fn loopback_bytes_are_on_no_network_and_the_sum_is_the_total() {
        let mut t = vec![process(
            (1110, 111),
            &[("lo0", 10, 1), ("utun0", 100, 10), ("en5", 1000, 100)],
        )];
        split(&mut t, &seen(), Some(&net("wifi:home")));
        assert_eq!(
            on(&t[0]),
            vec![
                (None, 10, 1),
                (Some("vpn:utun0"), 100, 10),
                (Some("gw:hotspot"), 1000, 100)
            ]
        );
        let listed: u64 = t[0].networks.iter().map(|n| n.bytes_in).sum();
        assert_eq!(listed, t[0].bytes_in, "nothing left on the app network");
    }

    #[test]
    fn with_no_app_network_known_every_named_network_is_listed() {
        let mut t = vec![process((1000, 100), &[("en0", 1000, 100)])];
        split(&mut t, &seen(), None);
        assert_eq!(on(&t[0]), vec![(Some("wifi:home"), 1000, 100)]);
    }
}
