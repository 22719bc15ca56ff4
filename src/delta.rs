//! The delta engine: consecutive snapshots of cumulative counters in, exact per-tick deltas out.
//!
//! Pure: it is given snapshots and the monotonic time each tick covered, and returns deltas
//! and the state changes to persist. No clock, no I/O. The rules, each with a test below:
//!
//! - **A key names what is stable about a counter, and several counters may share it.**
//!   nettop lists one wildcard `*.5353` socket per interface under mDNSResponder, identical
//!   apart from the interface, which is where the socket was used *last* and so no part of its
//!   identity. The engine keeps one slot per counter seen under a key and, each tick, matches
//!   the key's rows to its slots by **counter continuity** (a row continues a slot when neither
//!   direction went down), never by position: rows come in no stable order. A socket that moved
//!   to another interface, or swapped places with its twin, keeps its baseline.
//! - **Matching counts as little as the readings allow.** Of all ways to match, the engine
//!   takes one that continues the largest slots (a slot left unmatched lets its row count in
//!   full). When some slot is left unmatched, which twin continued which is ambiguous; each
//!   direction then counts no more than the matching most favourable to it would (the
//!   surplus is taken off the key's deltas), so an ambiguity can lose bytes, never add them.
//!   When every slot is matched (moves, reorders) the totals are exact whatever the matching.
//! - **First tick of a run** only sets baselines, except for counters found in state saved by
//!   the previous run (same boot): those resume from the saved value, so a restart neither
//!   loses nor double-counts their bytes.
//!   An empty nettop sample is no reading at all ([`Config::empty_says_nothing`]): it is
//!   skipped, so the first tick is the first sample with rows.
//! - **A counter first seen later** counts from zero: everything it shows is new.
//! - **A counter that goes down** (either direction) is a new counter under an old key (socket
//!   tuple or pid reused, counter restarted): a row that continues no slot while a slot of its
//!   key went unmatched replaces that slot, and its current value is new, never a negative
//!   delta.
//! - **A counter that vanishes** is remembered for [`Config::forget_after`]; if a row of its key
//!   comes back and continues it, it resumes from its last value.
//! - **A closed counter** (the source read its final value) is counted and forgotten.
//! - **An impossible delta** (more bytes than [`Config::max_rate`] allows in the time the
//!   tick covered, plus a second of slack for read latency) is logged and not counted; the
//!   counter is re-baselined at its new value.
//!
//! Cost: rows are grouped by key with one hash lookup each; a key with one row and one slot
//! (nearly all of them) is decided by one comparison, and a larger group pairs equal readings
//! first and runs a small bipartite matching on what is left. Groups larger than
//! [`EXACT_MATCH_LIMIT`] fall back to a greedy matching.
//!
//! Rates are never computed here: the record loop divides bytes by the real elapsed time.

pub mod interfaces;

use std::time::Duration;

use rustc_hash::FxHashMap;

use tracing::warn;

use crate::source::{Counter, CounterKey, Owner, Remote, Snapshot};

/// Slots or rows of one key above which the matching is greedy rather than exact (an exact
/// matching costs up to slots × rows × slots comparisons).
pub const EXACT_MATCH_LIMIT: usize = 64;

/// Separates a key from its slot number in the state a restart resumes from (slot 0 is stored
/// under the key itself, so state saved for keys that never repeat is unchanged). Sources
/// never put control characters in keys.
const SLOT_SEP: char = '\u{1f}';

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct Config {
    /// Bytes per second per direction above which a delta is physically impossible.
    pub max_rate: u64,
    /// How long a vanished counter is remembered in case its key comes back.
    pub forget_after: Duration,
    /// A snapshot with no counters says nothing about the counters (nettop inside a sandbox,
    /// or still settling, prints its header and no rows: FORMAT.md §4, §8), rather than that
    /// every socket closed: it is skipped, so the next snapshot with rows is compared with
    /// the last one that had rows, and is only a baseline while none had. Without this, every
    /// socket of the first full sample after an empty first one would count its lifetime
    /// bytes as new. Off for the Linux sources, whose empty socket table is the truth.
    pub empty_says_nothing: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            // 100 Gbit/s: faster than any interface a laptop or desktop has, loopback included.
            max_rate: 12_500_000_000,
            forget_after: Duration::from_secs(3600),
            empty_says_nothing: false,
        }
    }
}

/// A counter value saved by a previous run, to resume from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub key: CounterKey,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// How long ago (wall clock) the value was saved: bounds what a resumed delta may hold.
    pub age: Duration,
}

/// Why a delta was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The counter grew since the last reading.
    Growth,
    /// First seen after the first tick: counted from zero.
    New,
    /// The counter went down: a new counter under an old key, counted from zero.
    Reset,
    /// First tick, continuing from the value a previous run saved.
    Resumed,
}

/// Bytes one counter moved during one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub key: CounterKey,
    pub owner: Owner,
    pub remote: Option<Remote>,
    /// The interface the counter reports now (`Counter::interface`), when the source says:
    /// a socket that moved since the last tick has this whole delta counted on its new
    /// interface (the source keeps no per-interface history per socket).
    pub interface: Option<std::sync::Arc<str>>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub cause: Cause,
}

/// A delta that was not counted because no link could have carried it in the time.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub key: CounterKey,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub covered: Duration,
    pub limit: u64,
}

/// The state rows to write (in the same transaction as the deltas) so a restart can resume.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateChanges {
    pub upsert: Vec<(CounterKey, u64, u64)>,
    pub remove: Vec<CounterKey>,
}

/// The result of one tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Non-zero deltas only.
    pub deltas: Vec<Delta>,
    pub rejected: Vec<Rejected>,
    pub state: StateChanges,
    /// Counters seen for the first time on the first tick (baselines, not counted).
    pub baselined: usize,
}

/// Per-key working buffers of [`Engine::apply`].
#[derive(Debug, Default)]
struct Scratch {
    values: Vec<(u64, u64)>,
    slot_values: Vec<(u64, u64)>,
    matched: Vec<Option<usize>>,
    taken: Vec<bool>,
    spare: Vec<usize>,
    forget: Vec<usize>,
}

/// One counter remembered under a key.
#[derive(Debug, Clone)]
struct Slot {
    /// Its number within the key; the state row is named by key and number (see [`slot_key`]).
    id: u32,
    bytes_in: u64,
    bytes_out: u64,
    /// Engine time the counter was last seen.
    seen_at: Duration,
    /// Loaded from saved state and not yet seen in this run: its delta may cover the downtime.
    resumed_age: Option<Duration>,
}

impl Slot {
    fn value(&self) -> (u64, u64) {
        (self.bytes_in, self.bytes_out)
    }
}

/// The name of a slot's state row.
fn slot_key(key: &CounterKey, id: u32) -> CounterKey {
    if id == 0 {
        key.clone()
    } else {
        CounterKey(format!("{}{SLOT_SEP}{id}", key.0))
    }
}

/// A state row's key and slot number.
fn split_slot_key(stored: CounterKey) -> (CounterKey, u32) {
    if let Some((key, id)) = stored.0.rsplit_once(SLOT_SEP)
        && let Ok(id) = id.parse::<u32>()
        && id > 0
    {
        return (CounterKey(key.to_string()), id);
    }
    (stored, 0)
}

/// `row` continues `slot`: neither direction went down.
fn continues(row: (u64, u64), slot: (u64, u64)) -> bool {
    row.0 >= slot.0 && row.1 >= slot.1
}

/// Turns cumulative snapshots into deltas. See the module docs for the rules.
#[derive(Debug)]
pub struct Engine {
    cfg: Config,
    /// FxHash: every row of every tick is hashed here (twice) and in the grouping map of
    /// `apply`, and keys are strings of ~50 bytes, slow to hash with SipHash.
    slots: FxHashMap<CounterKey, Vec<Slot>>,
    /// Buffers reused for every key, so a tick allocates nothing per key.
    scratch: Scratch,
    ticks: u64,
    /// Sum of the elapsed time of every tick: the engine's own clock.
    now: Duration,
    /// Time covered by skipped empty snapshots ([`Config::empty_says_nothing`]) since the
    /// last applied one: the next applied snapshot's counters grew over it too.
    skipped: Duration,
}

impl Engine {
    pub fn new(cfg: Config) -> Self {
        Engine {
            cfg,
            slots: FxHashMap::default(),
            scratch: Scratch::default(),
            ticks: 0,
            now: Duration::ZERO,
            skipped: Duration::ZERO,
        }
    }

    /// Load state saved by a previous run (same boot). Call before the first tick.
    pub fn resume(&mut self, saved: impl IntoIterator<Item = Saved>) {
        for s in saved {
            let (key, id) = split_slot_key(s.key);
            let slots = self.slots.entry(key).or_default();
            slots.retain(|x| x.id != id);
            slots.push(Slot {
                id,
                bytes_in: s.bytes_in,
                bytes_out: s.bytes_out,
                seen_at: Duration::ZERO,
                resumed_age: Some(s.age),
            });
        }
    }

    /// Counters currently remembered (seen, vanished or resumed).
    pub fn tracked(&self) -> usize {
        self.slots.values().map(Vec::len).sum()
    }

    /// Apply one snapshot that covers `elapsed` of monotonic time since the previous one.
    pub fn apply(&mut self, snap: &Snapshot, elapsed: Duration) -> Outcome {
        self.now += elapsed;
        if self.cfg.empty_says_nothing && snap.counters.is_empty() {
            self.skipped += elapsed;
            return Outcome::default();
        }
        let elapsed = elapsed + std::mem::take(&mut self.skipped);
        let first = self.ticks == 0;
        self.ticks += 1;
        let mut out = Outcome::default();

        // Rows grouped by key, in the order keys first appear, with no allocation per key:
        // `next[i]` links row i to the next row of its key.
        const END: usize = usize::MAX;
        let counters = &snap.counters;
        let mut next = vec![END; counters.len()];
        let mut last_of: FxHashMap<&CounterKey, usize> =
            FxHashMap::with_capacity_and_hasher(counters.len(), Default::default());
        let mut heads: Vec<usize> = Vec::new();
        for (i, c) in counters.iter().enumerate() {
            match last_of.insert(&c.key, i) {
                Some(prev) => next[prev] = i,
                None => heads.push(i),
            }
        }
        drop(last_of);
        let mut rows: Vec<&Counter> = Vec::new();
        for head in heads {
            rows.clear();
            let mut i = head;
            while i != END {
                rows.push(&counters[i]);
                i = next[i];
            }
            self.apply_key(&counters[head].key, &rows, first, elapsed, &mut out);
        }

        // Forget counters that have been gone too long; they will count from zero if they return.
        if self.now >= self.cfg.forget_after {
            let horizon = self.now.saturating_sub(self.cfg.forget_after);
            let remove = &mut out.state.remove;
            self.slots.retain(|key, slots| {
                slots.retain(|s| {
                    let stale = s.seen_at <= horizon && s.resumed_age.is_none();
                    if stale {
                        remove.push(slot_key(key, s.id));
                    }
                    !stale
                });
                !slots.is_empty()
            });
        }
        // Saved counters that did not reappear on the first tick age like any other.
        if first {
            for s in self.slots.values_mut().flatten() {
                if s.resumed_age.is_some() {
                    s.resumed_age = None;
                    s.seen_at = self.now;
                }
            }
        }
        out
    }

    /// Apply the rows of one key.
    fn apply_key(
        &mut self,
        key: &CounterKey,
        rows: &[&Counter],
        first: bool,
        elapsed: Duration,
        out: &mut Outcome,
    ) {
        let now = self.now;
        let max_rate = self.cfg.max_rate;
        if !self.slots.contains_key(key) {
            self.slots.insert(key.clone(), Vec::new());
        }
        let Some(slots) = self.slots.get_mut(key) else {
            return;
        };
        let Scratch {
            values,
            slot_values,
            matched,
            taken,
            spare,
            forget,
        } = &mut self.scratch;
        values.clear();
        values.extend(rows.iter().map(|c| (c.bytes_in, c.bytes_out)));
        slot_values.clear();
        slot_values.extend(slots.iter().map(Slot::value));
        match_rows_into(
            slot_values,
            values,
            |v| u128::from(v.0) + u128::from(v.1),
            matched,
        );

        // Slots no row continued, most recently seen first: a row that continues nothing
        // replaces one of them (a reset) before it is taken for a counter of its own.
        taken.clear();
        taken.resize(slots.len(), false);
        for s in matched.iter().flatten() {
            taken[*s] = true;
        }
        spare.clear();
        spare.extend((0..slots.len()).filter(|&s| !taken[s]));
        if spare.len() > 1 {
            spare.sort_by_key(|&s| std::cmp::Reverse(slots[s].seen_at));
        }
        let mut spare = spare.iter().copied();

        // The surplus an ambiguous matching could add in each direction (see the module docs).
        let mut surplus = (0u64, 0u64);
        if spare.len() > 0 && slots.len() > 1 && matched.iter().any(Option::is_some) {
            // Bytes of the slots a matching continued, (in, out).
            let used = |m: &[Option<usize>]| -> (u64, u64) {
                m.iter().flatten().fold((0, 0), |acc, &s| {
                    (
                        acc.0.saturating_add(slot_values[s].0),
                        acc.1.saturating_add(slot_values[s].1),
                    )
                })
            };
            let now_used = used(matched);
            let best_in = used(&match_rows(slot_values, values, |v| u128::from(v.0))).0;
            let best_out = used(&match_rows(slot_values, values, |v| u128::from(v.1))).1;
            surplus = (
                best_in.saturating_sub(now_used.0),
                best_out.saturating_sub(now_used.1),
            );
        }

        forget.clear();
        for (row, c) in rows.iter().enumerate() {
            let value = values[row];
            // (slot, previous value, cause, time covered); None: a baseline.
            let target = match matched[row] {
                Some(s) => {
                    let slot = &slots[s];
                    Some(match slot.resumed_age {
                        Some(age) => (Some(s), slot.value(), Cause::Resumed, age + elapsed),
                        None => (Some(s), slot.value(), Cause::Growth, elapsed),
                    })
                }
                None => match spare.next() {
                    Some(s) => {
                        let covered = slots[s].resumed_age.map_or(elapsed, |age| age + elapsed);
                        Some((Some(s), (0, 0), Cause::Reset, covered))
                    }
                    None if first => None,
                    None => Some((None, (0, 0), Cause::New, elapsed)),
                },
            };
            let Some((slot, prev, cause, covered)) = target else {
                out.baselined += 1;
                if !c.closed {
                    let id = free_id(slots);
                    out.state.upsert.push((slot_key(key, id), value.0, value.1));
                    slots.push(Slot {
                        id,
                        bytes_in: value.0,
                        bytes_out: value.1,
                        seen_at: now,
                        resumed_age: None,
                    });
                }
                continue;
            };
            let (mut d_in, mut d_out) = (value.0 - prev.0, value.1 - prev.1);
            let take_in = surplus.0.min(d_in);
            let take_out = surplus.1.min(d_out);
            surplus = (surplus.0 - take_in, surplus.1 - take_out);
            d_in -= take_in;
            d_out -= take_out;
            let limit = limit(max_rate, covered);
            if d_in > limit || d_out > limit {
                warn!(key = %c.key, bytes_in = d_in, bytes_out = d_out,
                    covered_ms = covered.as_millis() as u64, limit,
                    "impossible delta for the time covered: not counted, counter re-baselined");
                out.rejected.push(Rejected {
                    key: c.key.clone(),
                    bytes_in: d_in,
                    bytes_out: d_out,
                    covered,
                    limit,
                });
            } else if d_in > 0 || d_out > 0 {
                out.deltas.push(Delta {
                    key: c.key.clone(),
                    owner: c.owner.clone(),
                    remote: c.remote.clone(),
                    interface: c.interface.clone(),
                    bytes_in: d_in,
                    bytes_out: d_out,
                    cause,
                });
            }
            match slot {
                Some(s) if c.closed => forget.push(s),
                Some(s) => {
                    let slot = &mut slots[s];
                    let changed = slot.value() != value || cause != Cause::Growth;
                    slot.bytes_in = value.0;
                    slot.bytes_out = value.1;
                    slot.seen_at = now;
                    slot.resumed_age = None;
                    if changed {
                        out.state
                            .upsert
                            .push((slot_key(key, slot.id), value.0, value.1));
                    }
                }
                None if c.closed => {}
                None => {
                    let id = free_id(slots);
                    out.state.upsert.push((slot_key(key, id), value.0, value.1));
                    slots.push(Slot {
                        id,
                        bytes_in: value.0,
                        bytes_out: value.1,
                        seen_at: now,
                        resumed_age: None,
                    });
                }
            }
        }
        if !forget.is_empty() {
            forget.sort_unstable();
            for &s in forget.iter().rev() {
                let gone = slots.swap_remove(s);
                out.state.remove.push(slot_key(key, gone.id));
            }
        }
        if slots.is_empty() {
            self.slots.remove(key);
        }
    }
}

/// The smallest slot number not in use under a key.
fn free_id(slots: &[Slot]) -> u32 {
    (0u32..)
        .find(|id| !slots.iter().any(|s| s.id == *id))
        .unwrap_or(u32::MAX)
}

/// Most bytes one direction of one counter can move in `covered`, with a second of slack
/// for the time between the tick timer and the moment the source read the counter.
fn limit(max_rate: u64, covered: Duration) -> u64 {
    let secs = covered.as_secs_f64() + 1.0;
    let limit = max_rate as f64 * secs;
    if limit >= u64::MAX as f64 {
        u64::MAX
    } else {
        limit as u64
    }
}

/// Match rows to slots by continuity: for each row, the slot it continues, if any.
///
/// The matching has as many pairs as possible, and among those continues the slots of the
/// greatest total `weight` (slots are offered in descending weight to an augmenting-path
/// matching, which keeps every slot it has matched: the greedy algorithm of the transversal
/// matroid, so the set of matched slots has the greatest weight). Equal readings are paired
/// first, which never changes that set (an unchanged counter is its own best match).
fn match_rows(
    slots: &[(u64, u64)],
    rows: &[(u64, u64)],
    weight: impl Fn((u64, u64)) -> u128,
) -> Vec<Option<usize>> {
    let mut row_slot = Vec::new();
    match_rows_into(slots, rows, weight, &mut row_slot);
    row_slot
}

/// [`match_rows`] into a buffer the caller reuses; a key with one row and at most one slot
/// (nearly every key) allocates nothing.
fn match_rows_into(
    slots: &[(u64, u64)],
    rows: &[(u64, u64)],
    weight: impl Fn((u64, u64)) -> u128,
    row_slot: &mut Vec<Option<usize>>,
) {
    row_slot.clear();
    row_slot.resize(rows.len(), None);
    if slots.is_empty() || rows.is_empty() {
        return;
    }
    if slots.len() == 1 && rows.len() == 1 {
        if continues(rows[0], slots[0]) {
            row_slot[0] = Some(0);
        }
        return;
    }
    let mut slot_row: Vec<Option<usize>> = vec![None; slots.len()];

    // Equal readings: both sides sorted by value, merged.
    let mut by_slot: Vec<usize> = (0..slots.len()).collect();
    by_slot.sort_by_key(|&s| slots[s]);
    let mut by_row: Vec<usize> = (0..rows.len()).collect();
    by_row.sort_by_key(|&r| rows[r]);
    let (mut i, mut j) = (0, 0);
    while i < by_slot.len() && j < by_row.len() {
        let (s, r) = (by_slot[i], by_row[j]);
        match slots[s].cmp(&rows[r]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                slot_row[s] = Some(r);
                row_slot[r] = Some(s);
                i += 1;
                j += 1;
            }
        }
    }

    let mut open_slots: Vec<usize> = (0..slots.len())
        .filter(|&s| slot_row[s].is_none())
        .collect();
    let open_rows: Vec<usize> = (0..rows.len()).filter(|&r| row_slot[r].is_none()).collect();
    if open_slots.is_empty() || open_rows.is_empty() {
        return;
    }
    open_slots.sort_by_key(|&s| std::cmp::Reverse(weight(slots[s])));

    if open_slots.len() > EXACT_MATCH_LIMIT || open_rows.len() > EXACT_MATCH_LIMIT {
        // Greedy: each slot, heaviest first, takes the lightest row that continues it.
        let mut free: Vec<usize> = open_rows;
        free.sort_by_key(|&r| weight(rows[r]));
        for s in open_slots {
            if let Some(k) = free.iter().position(|&r| continues(rows[r], slots[s])) {
                let r = free.remove(k);
                row_slot[r] = Some(s);
            }
        }
        return;
    }

    // Augmenting paths (Kuhn), slots heaviest first.
    fn augment(
        s: usize,
        slots: &[(u64, u64)],
        rows: &[(u64, u64)],
        open_rows: &[usize],
        row_slot: &mut [Option<usize>],
        seen: &mut [bool],
    ) -> bool {
        for (k, &r) in open_rows.iter().enumerate() {
            if seen[k] || !continues(rows[r], slots[s]) {
                continue;
            }
            seen[k] = true;
            let free = match row_slot[r] {
                None => true,
                Some(other) => augment(other, slots, rows, open_rows, row_slot, seen),
            };
            if free {
                row_slot[r] = Some(s);
                return true;
            }
        }
        false
    }
    let mut seen = vec![false; open_rows.len()];
    for s in open_slots {
        seen.iter_mut().for_each(|x| *x = false);
        augment(s, slots, rows, &open_rows, row_slot, &mut seen);
    }
}

#[cfg(test)]
mod tests;
