//! Interface counters to per-tick deltas: a pure step (readings and monotonic elapsed time
//! in, deltas out; no clock, no I/O), with the traps interface counters set.
//!
//! - The first reading, and the first after a failed one, is a baseline: nothing is counted
//!   (what the interfaces carried before netmon looked is not this run's).
//! - Growth is counted.
//! - An interface that was absent from the last reading (a USB tether plugged in, a VPN
//!   `utun` renumbered, an interface deleted and created again) or that comes back under a new
//!   index was created since then: its counters started at zero and are counted whole. One
//!   that comes back with the same index and counters that did not go down simply continued
//!   (the OS kept it; it was only missing from a reading).
//! - A counter that went down: on a 64-bit counter the interface restarted from zero (a driver
//!   reset) and its new values, both directions, are counted. On a 32-bit counter it either wrapped at 4 GiB or restarted;
//!   it is taken for a wrap only when the old value was in the counter's upper half and the
//!   wrapped difference is a rate the link could carry, otherwise for a restart.
//! - Nothing above `max_rate` bytes per second over the time covered is ever counted: such a
//!   delta is dropped and reported (so a misread wrap can never add a phantom 4 GiB).

use std::collections::HashMap;
use std::time::Duration;

use crate::source::interfaces::{InterfaceCounters, Kind, NetworkId, Width};

const WRAP_32: u64 = 1 << 32;

/// Why an interface delta was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Growth,
    /// New since the last reading, or back under a new index: counted from zero.
    New,
    /// A 64-bit counter (or an implausible 32-bit wrap) went down: the interface restarted
    /// from zero, both directions.
    Reset,
    /// A 32-bit counter wrapped at 4 GiB.
    Wrap,
    /// The first reading of a run, continuing from the value the previous run saved.
    Resumed,
}

/// What one interface carried in one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceDelta {
    pub name: String,
    pub kind: Kind,
    pub network: Option<NetworkId>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub cause: Cause,
}

/// A delta dropped because no link could have carried it in the time covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub name: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub covered: Duration,
    pub limit: u64,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Non-zero deltas, in reading order.
    pub deltas: Vec<IfaceDelta>,
    pub dropped: Vec<Dropped>,
    /// Counter values to save so a restart resumes from them (written with the tick, like the
    /// sources' counters): keys from [`state_key`], values that changed this tick.
    pub save: Vec<(String, u64, u64)>,
    /// Saved keys that no longer name an interface (it came back under a new index).
    pub forget: Vec<String>,
}

/// The prefix of interface counters' keys in the saved counter state.
pub const STATE_PREFIX: &str = "iface/";

/// The saved-state key of an interface: `iface/<index>/<name>`.
pub fn state_key(name: &str, index: Option<u32>) -> String {
    match index {
        Some(i) => format!("{STATE_PREFIX}{i}/{name}"),
        None => format!("{STATE_PREFIX}-/{name}"),
    }
}

/// An interface's name and index from its saved-state key.
pub fn parse_state_key(key: &str) -> Option<(String, Option<u32>)> {
    let (index, name) = key.strip_prefix(STATE_PREFIX)?.split_once('/')?;
    let index = if index == "-" {
        None
    } else {
        Some(index.parse().ok()?)
    };
    Some((name.to_string(), index))
}

#[derive(Debug, Clone)]
struct Last {
    index: Option<u32>,
    bytes_in: u64,
    bytes_out: u64,
    /// Present in the last reading.
    present: bool,
}

/// The interface delta engine.
#[derive(Debug)]
pub struct Engine {
    max_rate: u64,
    last: HashMap<String, Last>,
    /// A reading has been taken (and the last one did not fail).
    primed: bool,
    /// Values a previous run saved (same boot), with their age: the first reading continues
    /// from them instead of being a baseline, as the sources' counters do.
    resumed: HashMap<(String, Option<u32>), (u64, u64, Duration)>,
}

impl Engine {
    /// `max_rate`: bytes per second per direction above which a delta is impossible.
    pub fn new(max_rate: u64) -> Self {
        Engine {
            max_rate,
            last: HashMap::new(),
            primed: false,
            resumed: HashMap::new(),
        }
    }

    /// Continue from values a previous run saved in this boot: (name, index, bytes in,
    /// bytes out, how long ago they were saved).
    pub fn resume(
        &mut self,
        saved: impl IntoIterator<Item = (String, Option<u32>, u64, u64, Duration)>,
    ) {
        for (name, index, bin, bout, age) in saved {
            self.resumed.insert((name, index), (bin, bout, age));
        }
    }

    /// The reader failed: the next reading is a baseline, since its difference from the last
    /// good one would cover time this tick does not.
    pub fn failed(&mut self) {
        self.primed = false;
    }

    /// One reading, `elapsed` after the previous one.
    pub fn apply(&mut self, reading: &[InterfaceCounters], elapsed: Duration) -> Outcome {
        let mut out = Outcome::default();
        let limit = limit_for(self.max_rate, elapsed);
        for c in reading {
            let prev = self.last.get(&c.name).cloned();
            self.last.insert(
                c.name.clone(),
                Last {
                    index: c.index,
                    bytes_in: c.bytes_in,
                    bytes_out: c.bytes_out,
                    present: true,
                },
            );
            let changed = prev.as_ref().is_none_or(|p| {
                (p.bytes_in, p.bytes_out, p.index) != (c.bytes_in, c.bytes_out, c.index)
            });
            if changed {
                out.save
                    .push((state_key(&c.name, c.index), c.bytes_in, c.bytes_out));
                if let Some(p) = prev.as_ref().filter(|p| p.index != c.index) {
                    out.forget.push(state_key(&c.name, p.index));
                }
            }
            if !self.primed {
                // Continue from a saved value when the interface is the same one and its
                // counters only grew (the bytes moved while no recorder ran, as the sources'
                // resumed counters count them); else this reading is a baseline.
                let Some((bin, bout, age)) = self.resumed.remove(&(c.name.clone(), c.index)) else {
                    continue;
                };
                if c.bytes_in < bin || c.bytes_out < bout {
                    continue;
                }
                let (din, dout) = (c.bytes_in - bin, c.bytes_out - bout);
                let allowed = limit_for(self.max_rate, age);
                if din > allowed || dout > allowed {
                    out.dropped.push(Dropped {
                        name: c.name.clone(),
                        bytes_in: din,
                        bytes_out: dout,
                        covered: age,
                        limit: allowed,
                    });
                } else if din > 0 || dout > 0 {
                    out.deltas.push(IfaceDelta {
                        name: c.name.clone(),
                        kind: c.kind,
                        network: c.network.clone(),
                        bytes_in: din,
                        bytes_out: dout,
                        cause: Cause::Resumed,
                    });
                }
                continue;
            }
            let (bin, bout, cause) = match prev {
                Some(p) if p.index == c.index || p.index.is_none() || c.index.is_none() => {
                    if c.bytes_in >= p.bytes_in && c.bytes_out >= p.bytes_out {
                        (
                            c.bytes_in - p.bytes_in,
                            c.bytes_out - p.bytes_out,
                            Cause::Growth,
                        )
                    } else {
                        let (i, ci) = went_down(p.bytes_in, c.bytes_in, c.width, limit);
                        let (o, co) = went_down(p.bytes_out, c.bytes_out, c.width, limit);
                        if ci == Cause::Reset || co == Cause::Reset {
                            // A reset restarts the whole interface: both directions count
                            // from zero.
                            let cause = if p.present { Cause::Reset } else { Cause::New };
                            (c.bytes_in, c.bytes_out, cause)
                        } else {
                            (i, o, Cause::Wrap)
                        }
                    }
                }
                // Absent last time, or back under a new index: created since.
                _ => (c.bytes_in, c.bytes_out, Cause::New),
            };
            if bin == 0 && bout == 0 {
                continue;
            }
            if bin > limit || bout > limit {
                out.dropped.push(Dropped {
                    name: c.name.clone(),
                    bytes_in: bin,
                    bytes_out: bout,
                    covered: elapsed,
                    limit,
                });
                continue;
            }
            out.deltas.push(IfaceDelta {
                name: c.name.clone(),
                kind: c.kind,
                network: c.network.clone(),
                bytes_in: bin,
                bytes_out: bout,
                cause,
            });
        }
        for (name, l) in self.last.iter_mut() {
            l.present = reading.iter().any(|c| &c.name == name);
        }
        // Interfaces absent now are remembered (they may come back with the same counters)
        // but marked so; too many stale names (a machine cycling VPN tunnels) are forgotten.
        if self.last.len() > 4 * reading.len().max(16) {
            self.last.retain(|_, l| l.present);
        }
        self.primed = true;
        // Saved interfaces that did not come back as they were are forgotten.
        for ((name, index), _) in self.resumed.drain() {
            out.forget.push(state_key(&name, index));
        }
        out
    }
}

/// Bytes one direction could carry in `elapsed` at `max_rate`.
fn limit_for(max_rate: u64, elapsed: Duration) -> u64 {
    ((max_rate as u128 * elapsed.as_micros()) / 1_000_000).min(u64::MAX as u128) as u64
}

/// One direction of a counter that went from `prev` down to `cur`.
fn went_down(prev: u64, cur: u64, width: Width, limit: u64) -> (u64, Cause) {
    if cur >= prev {
        return (cur - prev, Cause::Growth);
    }
    if width == Width::Bits32 && (WRAP_32 / 2..WRAP_32).contains(&prev) {
        let wrapped = (WRAP_32 - prev) + cur;
        if wrapped <= limit {
            return (wrapped, Cause::Wrap);
        }
    }
    (cur, Cause::Reset)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);
    /// 1 Gbit/s.
    const RATE: u64 = 125_000_000;

    fn iface(name: &str, index: u32, bin: u64, bout: u64) -> InterfaceCounters {
        InterfaceCounters {
            name: name.to_string(),
            index: Some(index),
            kind: Kind::Ethernet,
            width: Width::Bits64,
            bytes_in: bin,
            bytes_out: bout,
            network: None,
        }
    }

    fn wide32(mut c: InterfaceCounters) -> InterfaceCounters {
        c.width = Width::Bits32;
        c
    }

    fn sums(o: &Outcome) -> Vec<(String, u64, u64, Cause)> {
        o.deltas
            .iter()
            .map(|d| (d.name.clone(), d.bytes_in, d.bytes_out, d.cause))
            .collect()
    }

    #[test]
    fn the_first_reading_is_a_baseline_and_growth_is_counted() {
        let mut e = Engine::new(RATE);
        assert!(
            e.apply(&[iface("eth0", 2, 5_000, 7_000)], SEC)
                .deltas
                .is_empty()
        );
        let o = e.apply(&[iface("eth0", 2, 6_000, 7_500)], SEC);
        assert_eq!(sums(&o), vec![("eth0".into(), 1_000, 500, Cause::Growth)]);
    }

    #[test]
    fn an_interface_removed_and_re_added_counts_from_zero_not_its_old_value() {
        let mut e = Engine::new(RATE);
        e.apply(
            &[iface("eth0", 2, 0, 0), iface("usb0", 5, 90_000, 80_000)],
            SEC,
        );
        // Unplugged: gone from the reading.
        assert!(e.apply(&[iface("eth0", 2, 0, 0)], SEC).deltas.is_empty());
        // Plugged back: a new index, counters restarted.
        let o = e.apply(
            &[iface("eth0", 2, 0, 0), iface("usb0", 6, 1_000, 2_000)],
            SEC,
        );
        assert_eq!(sums(&o), vec![("usb0".into(), 1_000, 2_000, Cause::New)]);
    }

    #[test]
    fn an_interface_missing_from_one_reading_with_the_same_index_continues() {
        let mut e = Engine::new(RATE);
        e.apply(&[iface("en0", 4, 1_000_000, 500)], SEC);
        e.apply(&[], SEC);
        let o = e.apply(&[iface("en0", 4, 1_000_400, 600)], SEC);
        assert_eq!(sums(&o), vec![("en0".into(), 400, 100, Cause::Growth)]);
    }

    #[test]
    fn a_new_interface_after_the_baseline_is_counted_whole() {
        let mut e = Engine::new(RATE);
        e.apply(&[iface("eth0", 2, 10, 10)], SEC);
        let o = e.apply(
            &[iface("eth0", 2, 10, 10), iface("utun4", 9, 300, 200)],
            SEC,
        );
        assert_eq!(sums(&o), vec![("utun4".into(), 300, 200, Cause::New)]);
    }

    #[test]
    fn counter_drop_on_a_64_bit_counter_is_a_reset_never_a_wrap() {
        let mut e = Engine::new(RATE);
        e.apply(&[iface("eth0", 2, 4_294_000_000, 50)], SEC);
        let o = e.apply(&[iface("eth0", 2, 1_000, 60)], SEC);
        assert_eq!(sums(&o), vec![("eth0".into(), 1_000, 60, Cause::Reset)]);
        // Both directions restart: `out` grew past its old value, yet it was reset too.
    }

    #[test]
    fn a_32_bit_counter_near_the_top_that_goes_down_wrapped() {
        let mut e = Engine::new(RATE);
        e.apply(&[wide32(iface("en0", 4, 4_294_967_000, 50))], SEC);
        let o = e.apply(&[wide32(iface("en0", 4, 704, 60))], SEC);
        assert_eq!(sums(&o), vec![("en0".into(), 1_000, 10, Cause::Wrap)]);
    }

    #[test]
    fn a_32_bit_counter_low_in_its_range_that_goes_down_was_reset_never_a_phantom_4_gib() {
        let mut e = Engine::new(RATE);
        e.apply(&[wide32(iface("en0", 4, 1_000_000, 50))], SEC);
        let o = e.apply(&[wide32(iface("en0", 4, 2_000, 50))], SEC);
        assert_eq!(sums(&o), vec![("en0".into(), 2_000, 50, Cause::Reset)]);
        // Even a wrap from the upper half is refused when the link could not carry it.
        let mut e = Engine::new(1_000);
        e.apply(&[wide32(iface("en0", 4, 3_000_000_000, 0))], SEC);
        let o = e.apply(&[wide32(iface("en0", 4, 500, 0))], SEC);
        assert_eq!(sums(&o), vec![("en0".into(), 500, 0, Cause::Reset)]);
    }

    #[test]
    fn a_restart_continues_from_the_saved_values_and_saves_only_what_changed() {
        let mut e = Engine::new(RATE);
        let o = e.apply(&[iface("eth0", 2, 1_000, 100), iface("lo", 1, 5, 5)], SEC);
        assert_eq!(o.save.len(), 2);
        let o = e.apply(&[iface("eth0", 2, 1_500, 100), iface("lo", 1, 5, 5)], SEC);
        assert_eq!(o.save, vec![(state_key("eth0", Some(2)), 1_500, 100)]);
        // A new run, 10 s later: eth0 grew by 700 meanwhile; a re-created usb0 is a baseline.
        let mut e = Engine::new(RATE);
        e.resume([
            ("eth0".to_string(), Some(2), 1_500, 100, 10 * SEC),
            ("usb0".to_string(), Some(5), 9_000, 9_000, 10 * SEC),
        ]);
        let o = e.apply(
            &[iface("eth0", 2, 2_200, 100), iface("usb0", 6, 10, 10)],
            SEC,
        );
        assert_eq!(sums(&o), vec![("eth0".into(), 700, 0, Cause::Resumed)]);
        assert_eq!(
            parse_state_key(&state_key("usb0", Some(6))),
            Some(("usb0".into(), Some(6)))
        );
    }

    #[test]
    fn an_impossible_delta_is_dropped_and_reported() {
        let mut e = Engine::new(1_000);
        e.apply(&[iface("eth0", 2, 0, 0)], SEC);
        let o = e.apply(&[iface("eth0", 2, 5_000, 0)], SEC);
        assert!(o.deltas.is_empty());
        assert_eq!(o.dropped.len(), 1);
        assert_eq!(o.dropped[0].limit, 1_000);
    }

    #[test]
    fn after_a_failed_reading_the_next_is_a_baseline() {
        let mut e = Engine::new(RATE);
        e.apply(&[iface("eth0", 2, 0, 0)], SEC);
        e.failed();
        assert!(
            e.apply(&[iface("eth0", 2, 9_000, 9_000)], SEC)
                .deltas
                .is_empty()
        );
        let o = e.apply(&[iface("eth0", 2, 9_100, 9_000)], SEC);
        assert_eq!(sums(&o), vec![("eth0".into(), 100, 0, Cause::Growth)]);
    }

    proptest::proptest! {
        /// Whatever the readings, nothing above the rate limit is ever counted.
        #[test]
        fn never_more_than_the_link_could_carry(
            steps in proptest::collection::vec((0u32..3, 0u64..u64::MAX, 0u64..6_000_000_000, proptest::bool::ANY), 1..40)
        ) {
            let mut e = Engine::new(RATE);
            for (index, bin, bout, narrow) in steps {
                let mut c = iface("en0", index, bin, bout);
                if narrow { c = wide32(c); c.bytes_in %= WRAP_32; c.bytes_out %= WRAP_32; }
                for d in e.apply(&[c], SEC).deltas {
                    proptest::prop_assert!(d.bytes_in <= RATE && d.bytes_out <= RATE);
                }
            }
        }
    }
}
