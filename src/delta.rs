//! The delta engine: consecutive snapshots of cumulative counters in, exact per-tick deltas out.
//!
//! Pure: it is given snapshots and the monotonic time each tick covered, and returns deltas
//! and the state changes to persist. No clock, no I/O. The rules, each with a test below:
//!
//! - **First tick of a run** only sets baselines, except for counters found in state saved by
//!   the previous run (same boot): those resume from the saved value, so a restart neither
//!   loses nor double-counts their bytes.
//! - **A counter first seen later** counts from zero: everything it shows is new.
//! - **A counter that goes down** (either direction) is a new counter under an old key (socket
//!   tuple or pid reused, counter restarted): its current value is new, never a negative delta.
//! - **A counter that vanishes** is remembered for [`Config::forget_after`]; if the same key
//!   comes back it resumes from its last value.
//! - **A closed counter** (the source read its final value) is counted and forgotten.
//! - **An impossible delta** (more bytes than [`Config::max_rate`] allows in the time the
//!   tick covered, plus a second of slack for read latency) is logged and not counted; the
//!   counter is re-baselined at its new value.
//!
//! Rates are never computed here: the record loop divides bytes by the real elapsed time.

use std::collections::HashMap;
use std::time::Duration;

use tracing::warn;

use crate::source::{CounterKey, Owner, Remote, Snapshot};

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct Config {
    /// Bytes per second per direction above which a delta is physically impossible.
    pub max_rate: u64,
    /// How long a vanished counter is remembered in case its key comes back.
    pub forget_after: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            // 100 Gbit/s: faster than any interface a laptop or desktop has, loopback included.
            max_rate: 12_500_000_000,
            forget_after: Duration::from_secs(3600),
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

#[derive(Debug, Clone)]
struct Entry {
    bytes_in: u64,
    bytes_out: u64,
    /// Engine time the counter was last seen.
    seen_at: Duration,
    /// Loaded from saved state and not yet seen in this run: its delta may cover the downtime.
    resumed_age: Option<Duration>,
}

/// Turns cumulative snapshots into deltas. See the module docs for the rules.
#[derive(Debug)]
pub struct Engine {
    cfg: Config,
    entries: HashMap<CounterKey, Entry>,
    ticks: u64,
    /// Sum of the elapsed time of every tick: the engine's own clock.
    now: Duration,
}

impl Engine {
    pub fn new(cfg: Config) -> Self {
        Engine {
            cfg,
            entries: HashMap::new(),
            ticks: 0,
            now: Duration::ZERO,
        }
    }

    /// Load state saved by a previous run (same boot). Call before the first tick.
    pub fn resume(&mut self, saved: impl IntoIterator<Item = Saved>) {
        for s in saved {
            self.entries.insert(
                s.key,
                Entry {
                    bytes_in: s.bytes_in,
                    bytes_out: s.bytes_out,
                    seen_at: Duration::ZERO,
                    resumed_age: Some(s.age),
                },
            );
        }
    }

    /// Counters currently remembered (seen, vanished or resumed).
    pub fn tracked(&self) -> usize {
        self.entries.len()
    }

    /// Apply one snapshot that covers `elapsed` of monotonic time since the previous one.
    pub fn apply(&mut self, snap: &Snapshot, elapsed: Duration) -> Outcome {
        let first = self.ticks == 0;
        self.ticks += 1;
        self.now += elapsed;
        let mut out = Outcome::default();

        for c in &snap.counters {
            let (prev, cause_if_growth, covered) = match self.entries.get(&c.key) {
                Some(e) => match e.resumed_age {
                    Some(age) => ((e.bytes_in, e.bytes_out), Cause::Resumed, age + elapsed),
                    None => ((e.bytes_in, e.bytes_out), Cause::Growth, elapsed),
                },
                None if first => {
                    out.baselined += 1;
                    self.remember(c.key.clone(), c.bytes_in, c.bytes_out, c.closed, &mut out);
                    continue;
                }
                None => ((0, 0), Cause::New, elapsed),
            };
            let (d_in, d_out, cause) = if c.bytes_in < prev.0 || c.bytes_out < prev.1 {
                (c.bytes_in, c.bytes_out, Cause::Reset)
            } else {
                (c.bytes_in - prev.0, c.bytes_out - prev.1, cause_if_growth)
            };
            let changed = (c.bytes_in, c.bytes_out) != prev;
            let limit = self.limit(covered);
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
                    bytes_in: d_in,
                    bytes_out: d_out,
                    cause,
                });
            }
            if changed || c.closed || cause == Cause::Resumed || cause == Cause::New {
                self.remember(c.key.clone(), c.bytes_in, c.bytes_out, c.closed, &mut out);
            } else if let Some(e) = self.entries.get_mut(&c.key) {
                e.seen_at = self.now;
            }
        }

        // Forget counters that have been gone too long; they will count from zero if they return.
        let horizon = self.now.saturating_sub(self.cfg.forget_after);
        if self.now >= self.cfg.forget_after {
            let stale: Vec<CounterKey> = self
                .entries
                .iter()
                .filter(|(_, e)| e.seen_at <= horizon && e.resumed_age.is_none())
                .map(|(k, _)| k.clone())
                .collect();
            for k in stale {
                self.entries.remove(&k);
                out.state.remove.push(k);
            }
        }
        // Saved counters that did not reappear on the first tick age like any other.
        if first {
            for e in self.entries.values_mut() {
                if e.resumed_age.is_some() {
                    e.resumed_age = None;
                    e.seen_at = self.now;
                }
            }
        }
        out
    }

    fn remember(
        &mut self,
        key: CounterKey,
        bytes_in: u64,
        bytes_out: u64,
        closed: bool,
        out: &mut Outcome,
    ) {
        if closed {
            // A state row exists only for counters the engine already knew.
            if self.entries.remove(&key).is_some() {
                out.state.remove.push(key);
            }
            return;
        }
        out.state.upsert.push((key.clone(), bytes_in, bytes_out));
        self.entries.insert(
            key,
            Entry {
                bytes_in,
                bytes_out,
                seen_at: self.now,
                resumed_age: None,
            },
        );
    }

    /// Most bytes one direction of one counter can move in `covered`, with a second of slack
    /// for the time between the tick timer and the moment the source read the counter.
    fn limit(&self, covered: Duration) -> u64 {
        let secs = covered.as_secs_f64() + 1.0;
        let limit = self.cfg.max_rate as f64 * secs;
        if limit >= u64::MAX as f64 {
            u64::MAX
        } else {
            limit as u64
        }
    }
}

#[cfg(test)]
mod tests;
