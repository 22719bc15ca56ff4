//! Ticks sampled but not yet written: the recorder writes them together every
//! `--write-every` (see `sql/0006_batched_writes.sql`).
//!
//! Each tick stays a tick (its own row, its own samples) unless the batch outgrows its memory
//! bound while writes keep failing (a full disk): then its ticks are merged into one that
//! covers their whole span, so memory stays bounded whatever the number of processes and the
//! length of the outage, and no byte is lost or counted twice.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::delta::StateChanges;
use crate::source::CounterKey;
use crate::store::write::{Gap, Tick};
use crate::tick::{HostTraffic, NetTraffic, NetworkBytes, ProcessRecord, ProcessTraffic};

/// The most rows (processes, connections, hosts) unwritten ticks may hold: a batch this big is
/// written at once; if writing fails, its ticks are merged.
pub const MAX_ROWS: usize = 200_000;

/// One tick, held until its batch is written.
#[derive(Debug, Clone)]
pub struct PendingTick {
    /// Wall clock (epoch ms) when the source was read.
    pub at_ms: i64,
    /// Monotonic time the tick covers.
    pub elapsed_ms: i64,
    /// Epoch second of the local midnight that starts the tick's day.
    pub day: i64,
    pub traffic: Vec<ProcessTraffic>,
    pub web: Vec<HostTraffic>,
    /// The counter values to save; folded into the batch's own when the tick is pushed.
    pub state: StateChanges,
    /// Interface deltas and networks (`None`: no interface reading this tick).
    pub net: Option<NetTraffic>,
    /// Gaps that end at this tick, written just before it.
    pub gaps: Vec<Gap>,
}

impl PendingTick {
    fn rows(&self) -> usize {
        self.traffic
            .iter()
            .map(|t| 1 + t.flows.len())
            .sum::<usize>()
            + self.web.len()
            + 1
    }
}

/// The unwritten ticks, oldest first.
#[derive(Debug, Default)]
pub struct Batch {
    ticks: Vec<PendingTick>,
    rows: usize,
    /// When the oldest unwritten tick was sampled.
    since: Option<Instant>,
    /// The last counter values over the ticks (`fold_state`), and where each key is in it.
    state: StateChanges,
    state_at: FxHashMap<CounterKey, Slot>,
}

/// Where a counter's last word is in the batch's `StateChanges`.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Upsert(usize),
    Remove(usize),
}

impl Batch {
    pub fn push(&mut self, mut tick: PendingTick, sampled_at: Instant) {
        self.rows += tick.rows();
        self.since.get_or_insert(sampled_at);
        self.fold_state(std::mem::take(&mut tick.state));
        self.ticks.push(tick);
    }

    /// Fold a tick's counter values into the batch's: the write saves the last value per
    /// counter, so keeping every tick's (a busy machine changes every counter every tick) would
    /// hold a window's worth of copies of every key for nothing.
    fn fold_state(&mut self, changes: StateChanges) {
        for (key, bytes_in, bytes_out) in changes.upsert {
            match self.state_at.get(&key).copied() {
                Some(Slot::Upsert(i)) => {
                    let e = &mut self.state.upsert[i];
                    (e.1, e.2) = (bytes_in, bytes_out);
                }
                Some(Slot::Remove(i)) => {
                    self.take_removed(i);
                    self.state_at
                        .insert(key.clone(), Slot::Upsert(self.state.upsert.len()));
                    self.state.upsert.push((key, bytes_in, bytes_out));
                }
                None => {
                    self.state_at
                        .insert(key.clone(), Slot::Upsert(self.state.upsert.len()));
                    self.state.upsert.push((key, bytes_in, bytes_out));
                }
            }
        }
        for key in changes.remove {
            match self.state_at.get(&key).copied() {
                Some(Slot::Remove(_)) => {}
                Some(Slot::Upsert(i)) => {
                    self.state.upsert.swap_remove(i);
                    if let Some(moved) = self.state.upsert.get(i) {
                        self.state_at.insert(moved.0.clone(), Slot::Upsert(i));
                    }
                    self.state_at
                        .insert(key.clone(), Slot::Remove(self.state.remove.len()));
                    self.state.remove.push(key);
                }
                None => {
                    self.state_at
                        .insert(key.clone(), Slot::Remove(self.state.remove.len()));
                    self.state.remove.push(key);
                }
            }
        }
    }

    /// Take the forget at `i` out of the batch's list (the counter is set again).
    fn take_removed(&mut self, i: usize) {
        self.state.remove.swap_remove(i);
        if let Some(moved) = self.state.remove.get(i) {
            self.state_at.insert(moved.clone(), Slot::Remove(i));
        }
    }

    /// The counter values the batch saves: the last word per counter over its ticks.
    pub fn state(&self) -> &StateChanges {
        &self.state
    }

    pub fn is_empty(&self) -> bool {
        self.ticks.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ticks.len()
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn ticks(&self) -> &[PendingTick] {
        &self.ticks
    }

    /// Whether it is time to write: `every_ticks` ticks are waiting (the window: `--write-every`
    /// over the interval), or the oldest has waited twice the window (ticks running late or
    /// failing), or the batch reached its bound.
    pub fn due(&self, now: Instant, every: Duration, every_ticks: usize) -> bool {
        !self.ticks.is_empty()
            && (self.ticks.len() >= every_ticks
                || self
                    .since
                    .is_some_and(|s| now.duration_since(s) >= every.saturating_mul(2))
                || self.rows >= MAX_ROWS)
    }

    /// The ticks as the store writes them, each with the gaps it ends; the newest carries the
    /// batch's counter values (the store saves the last word per counter over a batch).
    pub fn as_ticks(&self, run_id: i64) -> Vec<(Tick<'_>, &[Gap])> {
        static NONE: StateChanges = StateChanges {
            upsert: Vec::new(),
            remove: Vec::new(),
        };
        let newest = self.ticks.len().saturating_sub(1);
        self.ticks
            .iter()
            .enumerate()
            .map(|(n, t)| {
                (
                    Tick {
                        run_id,
                        at_ms: t.at_ms,
                        elapsed_ms: t.elapsed_ms,
                        day: t.day,
                        traffic: &t.traffic,
                        web: &t.web,
                        state: if n == newest { &self.state } else { &NONE },
                        net: t.net.as_ref(),
                    },
                    &t.gaps[..],
                )
            })
            .collect()
    }

    /// The batch was written.
    pub fn clear(&mut self) {
        self.ticks.clear();
        self.rows = 0;
        self.since = None;
        self.state = StateChanges::default();
        self.state_at.clear();
    }

    /// Writing keeps failing and the batch is over its bound: merge its ticks into one that
    /// covers their whole span (bytes summed per process, connection and host; the last word
    /// per counter; every gap kept), labelled with the newest tick's time and day.
    pub fn squeeze(&mut self) {
        let Some(last) = self.ticks.last() else {
            return;
        };
        let (at_ms, day) = (last.at_ms, last.day);
        let mut merged = PendingTick {
            at_ms,
            elapsed_ms: 0,
            day,
            traffic: Vec::new(),
            web: Vec::new(),
            state: StateChanges::default(),
            net: None,
            gaps: Vec::new(),
        };
        // The batch's counter values stay as they are: they were folded in at each push.
        let mut ticks = std::mem::take(&mut self.ticks);
        // The merged tick's application bytes are counted on the newest app network
        // (`networks::merge`): a tick whose bytes were on another one lists them there.
        let app_network = ticks
            .iter()
            .rev()
            .find_map(|t| t.net.as_ref().and_then(|n| n.app_network.clone()));
        for t in &mut ticks {
            let own = t.net.as_ref().and_then(|n| n.app_network.clone());
            if own != app_network {
                for p in &mut t.traffic {
                    pin_app_network(p, own.clone());
                }
            }
        }
        for t in ticks {
            merged.elapsed_ms = merged.elapsed_ms.saturating_add(t.elapsed_ms);
            merged.traffic = merge_traffic(std::mem::take(&mut merged.traffic), t.traffic);
            merged.web = merge_web(std::mem::take(&mut merged.web), t.web);
            merged.net = super::networks::merge(merged.net.take(), t.net);
            merged.gaps.extend(t.gaps);
        }
        self.rows = merged.rows();
        self.ticks.push(merged);
    }
}

/// Deltas of two ticks as one: bytes summed per process and per connection, so merged ticks
/// grow with the processes seen, not with the number of ticks.
pub fn merge_traffic(
    earlier: Vec<ProcessTraffic>,
    later: Vec<ProcessTraffic>,
) -> Vec<ProcessTraffic> {
    let mut out: Vec<ProcessTraffic> = Vec::with_capacity(earlier.len().max(later.len()));
    let mut at: HashMap<ProcessRecord, usize> = HashMap::new();
    for t in earlier.into_iter().chain(later) {
        match at.get(&t.process) {
            Some(&i) => {
                let m = &mut out[i];
                m.bytes_in = m.bytes_in.saturating_add(t.bytes_in);
                m.bytes_out = m.bytes_out.saturating_add(t.bytes_out);
                for f in t.flows {
                    match m.flows.iter_mut().find(|g| g.remote == f.remote) {
                        Some(g) => {
                            g.bytes_in = g.bytes_in.saturating_add(f.bytes_in);
                            g.bytes_out = g.bytes_out.saturating_add(f.bytes_out);
                        }
                        None => m.flows.push(f),
                    }
                }
                merge_networks(&mut m.networks, t.networks);
                m.interfaces.extend(t.interfaces);
            }
            None => {
                at.insert(t.process.clone(), out.len());
                out.push(t);
            }
        }
    }
    out
}

/// List what of `p`'s bytes is on its tick's app network (`app_network`) in `p.networks`,
/// so the bytes stay there when the tick is merged with one counted on another network.
fn pin_app_network(p: &mut ProcessTraffic, app_network: Option<crate::tick::Network>) {
    let (moved_in, moved_out) = p
        .networks
        .iter()
        .fold((0u64, 0u64), |(i, o), n| (i + n.bytes_in, o + n.bytes_out));
    let (rest_in, rest_out) = (
        p.bytes_in.saturating_sub(moved_in),
        p.bytes_out.saturating_sub(moved_out),
    );
    if rest_in == 0 && rest_out == 0 {
        return;
    }
    match p.networks.iter_mut().find(|n| n.network == app_network) {
        Some(n) => {
            n.bytes_in += rest_in;
            n.bytes_out += rest_out;
        }
        None => p.networks.push(NetworkBytes {
            network: app_network,
            bytes_in: rest_in,
            bytes_out: rest_out,
        }),
    }
}

/// Per-network bytes of two ticks' process as one.
fn merge_networks(into: &mut Vec<NetworkBytes>, from: Vec<NetworkBytes>) {
    for n in from {
        match into.iter_mut().find(|m| m.network == n.network) {
            Some(m) => {
                m.bytes_in = m.bytes_in.saturating_add(n.bytes_in);
                m.bytes_out = m.bytes_out.saturating_add(n.bytes_out);
            }
            None => into.push(n),
        }
    }
}

/// Browser bytes of two ticks as one, summed per application, host and method.
pub fn merge_web(earlier: Vec<HostTraffic>, later: Vec<HostTraffic>) -> Vec<HostTraffic> {
    let mut out: Vec<HostTraffic> = Vec::with_capacity(earlier.len().max(later.len()));
    for h in earlier.into_iter().chain(later) {
        match out
            .iter_mut()
            .find(|m| m.app == h.app && m.host == h.host && m.method == h.method)
        {
            Some(m) => {
                m.bytes_in = m.bytes_in.saturating_add(h.bytes_in);
                m.bytes_out = m.bytes_out.saturating_add(h.bytes_out);
            }
            None => out.push(h),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(at_ms: i64, bytes: u64) -> PendingTick {
        PendingTick {
            at_ms,
            elapsed_ms: 1000,
            day: 0,
            traffic: vec![ProcessTraffic {
                process: ProcessRecord {
                    pid: Some(1),
                    name: "p".into(),
                    start_time: None,
                    exe: None,
                    uid: None,
                    app: crate::procinfo::App {
                        name: "p".into(),
                        path: None,
                    },
                    kind: crate::tick::AppKind::Application,
                    container: None,
                },
                bytes_in: bytes,
                bytes_out: 1,
                flows: vec![],
                interfaces: vec![],
                networks: vec![],
            }],
            web: vec![],
            state: StateChanges::default(),
            net: None,
            gaps: vec![],
        }
    }

    #[test]
    fn a_batch_is_due_at_its_tick_count_or_after_twice_its_window() {
        let t0 = Instant::now();
        let every = Duration::from_secs(600);
        let mut b = Batch::default();
        assert!(!b.due(t0, every, 1), "nothing to write");
        b.push(tick(1, 1), t0);
        assert!(
            !b.due(t0 + every, every, 2),
            "one of two ticks, one window late"
        );
        assert!(b.due(t0 + every * 2, every, 2), "twice the window");
        b.push(tick(2, 1), t0);
        assert!(b.due(t0, every, 2));
    }

    #[test]
    fn squeezing_keeps_every_byte_and_the_whole_span() {
        let mut b = Batch::default();
        let t0 = Instant::now();
        for n in 1..=50 {
            b.push(tick(n * 1000, n as u64), t0);
        }
        b.squeeze();
        assert_eq!(b.len(), 1);
        let t = &b.ticks()[0];
        assert_eq!(t.at_ms, 50_000);
        assert_eq!(t.elapsed_ms, 50_000);
        assert_eq!(t.traffic.len(), 1);
        assert_eq!(t.traffic[0].bytes_in, (1..=50).sum::<u64>());
        assert_eq!(t.traffic[0].bytes_out, 50);
        assert!(b.rows() < 10);
    }

    #[test]
    fn squeezing_ticks_counted_on_two_networks_keeps_each_byte_on_its_network() {
        let network = |k: &str| crate::tick::Network {
            key: k.into(),
            label: k.into(),
        };
        let on = |k: &str| NetTraffic {
            interfaces: vec![],
            app_network: Some(network(k)),
        };
        let t0 = Instant::now();
        let mut b = Batch::default();
        // Tick 1 on A: 1 byte listed on B. Tick 2 on B: 2 bytes listed on A. Tick 3 on B.
        let mut t1 = tick(1000, 10);
        t1.net = Some(on("a"));
        t1.traffic[0].networks.push(NetworkBytes {
            network: Some(network("b")),
            bytes_in: 1,
            bytes_out: 0,
        });
        let mut t2 = tick(2000, 20);
        t2.net = Some(on("b"));
        t2.traffic[0].networks.push(NetworkBytes {
            network: Some(network("a")),
            bytes_in: 2,
            bytes_out: 0,
        });
        let mut t3 = tick(3000, 30);
        t3.net = Some(on("b"));
        for t in [t1, t2, t3] {
            b.push(t, t0);
        }
        b.squeeze();
        let t = &b.ticks()[0];
        assert_eq!(
            t.net.as_ref().and_then(|n| n.app_network.clone()),
            Some(network("b"))
        );
        let p = &t.traffic[0];
        assert_eq!(p.bytes_in, 60);
        // On A: tick 1's 9 and tick 2's 2, listed; the rest (49 = 1 + 18 + 30) is on B.
        let listed: Vec<(Option<String>, u64, u64)> = p
            .networks
            .iter()
            .map(|n| {
                (
                    n.network.as_ref().map(|n| n.key.clone()),
                    n.bytes_in,
                    n.bytes_out,
                )
            })
            .collect();
        assert_eq!(
            listed,
            vec![(Some("b".into()), 1, 0), (Some("a".into()), 11, 1)]
        );
    }

    /// Normal form of counter values: the last word per key (set or forgotten), by key.
    fn last_words(c: &StateChanges) -> Vec<(String, Option<(u64, u64)>)> {
        let mut v: Vec<(String, Option<(u64, u64)>)> = c
            .upsert
            .iter()
            .map(|(k, i, o)| (k.0.clone(), Some((*i, *o))))
            .chain(c.remove.iter().map(|k| (k.0.clone(), None)))
            .collect();
        v.sort();
        v
    }

    proptest::proptest! {
        /// Folding each tick's counter values in as it is pushed saves what merging every
        /// tick's at write time saved: the last word per counter, each key once.
        #[test]
        fn the_batch_keeps_the_last_word_per_counter_as_merging_every_tick_did(
            steps in proptest::collection::vec(
                proptest::collection::vec((0u8..6, proptest::prelude::any::<bool>(), 0u64..100), 0..8),
                1..12,
            )
        ) {
            let mut batch = Batch::default();
            let mut each = Vec::new();
            for (n, changes) in steps.iter().enumerate() {
                let mut state = StateChanges::default();
                for (key, set, value) in changes {
                    let key = CounterKey(format!("k{key}"));
                    // A tick names a key at most once (the delta engine's rule).
                    if state.upsert.iter().any(|u| u.0 == key) || state.remove.contains(&key) {
                        continue;
                    }
                    if *set {
                        state.upsert.push((key, *value, value + 1));
                    } else {
                        state.remove.push(key);
                    }
                }
                each.push(state.clone());
                let mut t = tick(n as i64, 1);
                t.state = state;
                batch.push(t, Instant::now());
            }
            let expected = crate::store::state::merge(each.iter());
            proptest::prop_assert_eq!(last_words(batch.state()), last_words(&expected));
            let keys = batch.state().upsert.len() + batch.state().remove.len();
            proptest::prop_assert_eq!(keys, last_words(&expected).len());
            // The store is given the batch's values once, with the newest tick.
            let ticks = batch.as_ticks(1);
            let given: usize = ticks
                .iter()
                .map(|(t, _)| t.state.upsert.len() + t.state.remove.len())
                .sum();
            proptest::prop_assert_eq!(given, keys);
            drop(ticks);
            batch.squeeze();
            proptest::prop_assert_eq!(last_words(batch.state()), last_words(&expected));
            batch.clear();
            proptest::prop_assert!(batch.state().upsert.is_empty() && batch.state().remove.is_empty());
        }
    }
}
