use super::*;
use crate::source::{Counter, ProcessRef};
use proptest::prelude::*;
use std::collections::HashMap;

const TICK: Duration = Duration::from_secs(5);

fn counter(key: &str, bytes_in: u64, bytes_out: u64) -> Counter {
    Counter {
        key: CounterKey(key.to_string()),
        owner: Owner::Process(ProcessRef::new(1, "p")),
        remote: None,
        loopback: false,
        bytes_in,
        bytes_out,
        closed: false,
        interface: None,
    }
}

fn snap(counters: Vec<Counter>) -> Snapshot {
    Snapshot { counters }
}

fn totals(o: &Outcome) -> (u64, u64) {
    o.deltas
        .iter()
        .fold((0, 0), |a, d| (a.0 + d.bytes_in, a.1 + d.bytes_out))
}

fn engine() -> Engine {
    Engine::new(Config::default())
}

#[test]
fn first_sample_only_sets_baselines() {
    let mut e = engine();
    let o = e.apply(&snap(vec![counter("a", 1000, 2000)]), TICK);
    assert!(o.deltas.is_empty());
    assert_eq!(o.baselined, 1);
    assert_eq!(o.state.upsert, vec![(CounterKey("a".into()), 1000, 2000)]);
    let o = e.apply(&snap(vec![counter("a", 1500, 2100)]), TICK);
    assert_eq!(totals(&o), (500, 100));
    assert_eq!(o.deltas[0].cause, Cause::Growth);
}

/// An engine for nettop, whose empty sample says nothing (FORMAT.md §4, §8).
fn nettop_engine(forget_after: Duration) -> Engine {
    Engine::new(Config {
        empty_says_nothing: true,
        forget_after,
        ..Config::default()
    })
}

#[test]
fn an_empty_first_nettop_sample_is_no_baseline_the_first_full_one_is() {
    let mut e = nettop_engine(Duration::from_secs(3600));
    for _ in 0..3 {
        let o = e.apply(&snap(vec![]), TICK);
        assert_eq!(o, Outcome::default());
    }
    // mDNSResponder's socket has moved 9.6 GB since boot: none of it is this tick's.
    let o = e.apply(&snap(vec![counter("mdns", 9_631_465_568, 1000)]), TICK);
    assert!(o.deltas.is_empty(), "{:?}", o.deltas);
    assert_eq!(o.baselined, 1);
    let o = e.apply(&snap(vec![counter("mdns", 9_631_465_600, 1010)]), TICK);
    assert_eq!(totals(&o), (32, 10));
}

#[test]
fn an_empty_nettop_sample_mid_run_is_skipped_not_a_close_of_every_socket() {
    // Forgotten after 10 s: the empty samples below outlast that, and still nothing is
    // forgotten or counted twice, since an empty sample is no reading at all.
    let mut e = nettop_engine(Duration::from_secs(10));
    e.apply(&snap(vec![counter("a", 1000, 100)]), TICK);
    for _ in 0..4 {
        e.apply(&snap(vec![]), TICK);
    }
    let o = e.apply(
        &snap(vec![counter("a", 1500, 150), counter("b", 70, 7)]),
        TICK,
    );
    // a grew 500/50 over the five ticks since its last reading; b is new since then.
    assert_eq!(totals(&o), (570, 57));
    let causes: Vec<Cause> = o.deltas.iter().map(|d| d.cause).collect();
    assert_eq!(causes, vec![Cause::Growth, Cause::New]);
}

#[test]
fn an_empty_linux_sample_is_the_truth_the_next_sockets_are_new() {
    let mut e = engine();
    e.apply(&snap(vec![]), TICK);
    let o = e.apply(&snap(vec![counter("a", 70, 30)]), TICK);
    assert_eq!(totals(&o), (70, 30));
    assert_eq!(o.deltas[0].cause, Cause::New);
}

#[test]
fn a_counter_first_seen_later_counts_from_zero() {
    let mut e = engine();
    e.apply(&snap(vec![counter("a", 1, 1)]), TICK);
    let o = e.apply(&snap(vec![counter("a", 1, 1), counter("b", 70, 30)]), TICK);
    assert_eq!(totals(&o), (70, 30));
    assert_eq!(o.deltas[0].cause, Cause::New);
}

#[test]
fn counter_drop_is_reset_not_negative() {
    let mut e = engine();
    e.apply(&snap(vec![counter("a", 1000, 1000)]), TICK);
    let o = e.apply(&snap(vec![counter("a", 40, 1200)]), TICK);
    // Either direction going down means a new counter: both current values are new bytes.
    assert_eq!(totals(&o), (40, 1200));
    assert_eq!(o.deltas[0].cause, Cause::Reset);
    let o = e.apply(&snap(vec![counter("a", 50, 1300)]), TICK);
    assert_eq!(totals(&o), (10, 100));
}

#[test]
fn pid_reuse_under_a_new_key_counts_from_zero_and_old_key_is_forgotten_later() {
    // nettop keys include pid and name: `ssh.50001` after `curl.50001` is a new key.
    let mut e = Engine::new(Config {
        forget_after: Duration::from_secs(10),
        ..Config::default()
    });
    e.apply(&snap(vec![counter("nettop/50001/curl", 10, 10)]), TICK);
    let o = e.apply(&snap(vec![counter("nettop/50001/ssh", 7, 3)]), TICK);
    assert_eq!(totals(&o), (7, 3));
    let o = e.apply(&snap(vec![counter("nettop/50001/ssh", 7, 3)]), TICK);
    assert_eq!(o.state.remove, vec![CounterKey("nettop/50001/curl".into())]);
    assert_eq!(e.tracked(), 1);
}

#[test]
fn a_counter_that_vanishes_and_returns_resumes_from_its_last_value() {
    let mut e = engine();
    e.apply(&snap(vec![counter("a", 100, 100)]), TICK);
    let o = e.apply(&snap(vec![]), TICK);
    assert!(o.deltas.is_empty());
    let o = e.apply(&snap(vec![counter("a", 160, 110)]), TICK);
    assert_eq!(totals(&o), (60, 10));
}

#[test]
fn process_exit_keeps_what_was_counted_and_counts_nothing_more() {
    let mut e = engine();
    e.apply(&snap(vec![counter("a", 0, 0), counter("b", 5, 5)]), TICK);
    let o = e.apply(&snap(vec![counter("a", 10, 10), counter("b", 9, 9)]), TICK);
    assert_eq!(totals(&o), (14, 14));
    let o = e.apply(&snap(vec![counter("b", 9, 9)]), TICK);
    assert!(o.deltas.is_empty());
}

#[test]
fn socket_close_counts_the_final_value_then_forgets_the_counter() {
    let mut e = engine();
    e.apply(&snap(vec![counter("s", 100, 0)]), TICK);
    let mut fin = counter("s", 180, 20);
    fin.closed = true;
    let o = e.apply(&snap(vec![fin]), TICK);
    assert_eq!(totals(&o), (80, 20));
    assert_eq!(o.state.remove, vec![CounterKey("s".into())]);
    assert_eq!(e.tracked(), 0);
    // A short-lived socket born and closed between two ticks: all of it is new.
    let mut short = counter("t", 50, 60);
    short.closed = true;
    let o = e.apply(&snap(vec![short]), TICK);
    assert_eq!(totals(&o), (50, 60));
    assert!(o.state.upsert.is_empty());
}

#[test]
fn restart_resumes_from_saved_state_without_loss_or_double_count() {
    let mut a = engine();
    a.apply(&snap(vec![counter("x", 100, 100)]), TICK);
    let o = a.apply(&snap(vec![counter("x", 150, 120)]), TICK);
    assert_eq!(totals(&o), (50, 20));
    let (key, bin, bout) = o.state.upsert[0].clone();

    // A new run loads what the old one saved; the counter moved on while nobody watched.
    let mut b = engine();
    b.resume([Saved {
        key,
        bytes_in: bin,
        bytes_out: bout,
        age: Duration::from_secs(30),
    }]);
    let o = b.apply(
        &snap(vec![counter("x", 190, 125), counter("y", 1, 1)]),
        TICK,
    );
    assert_eq!(
        totals(&o),
        (40, 5),
        "only the downtime growth of x; y is a baseline"
    );
    assert_eq!(o.deltas[0].cause, Cause::Resumed);
    assert_eq!(o.baselined, 1);
}

#[test]
fn resumed_counter_that_went_down_is_a_reset() {
    let mut e = engine();
    e.resume([Saved {
        key: CounterKey("x".into()),
        bytes_in: 1000,
        bytes_out: 1000,
        age: TICK,
    }]);
    let o = e.apply(&snap(vec![counter("x", 10, 10)]), TICK);
    assert_eq!(totals(&o), (10, 10));
    assert_eq!(o.deltas[0].cause, Cause::Reset);
}

#[test]
fn impossible_delta_is_not_counted_and_the_counter_is_rebaselined() {
    let mut e = Engine::new(Config {
        max_rate: 1_000,
        ..Config::default()
    });
    e.apply(&snap(vec![counter("a", 0, 0)]), TICK);
    // 5 s + 1 s slack at 1000 B/s: at most 6000 B.
    let o = e.apply(&snap(vec![counter("a", 6_001, 0)]), TICK);
    assert!(o.deltas.is_empty());
    assert_eq!(o.rejected.len(), 1);
    assert_eq!(o.rejected[0].limit, 6_000);
    let o = e.apply(&snap(vec![counter("a", 7_001, 0)]), TICK);
    assert_eq!(totals(&o), (1_000, 0));
    let o = e.apply(&snap(vec![counter("a", 13_001, 0)]), TICK);
    assert_eq!(totals(&o), (6_000, 0), "exactly at the limit is possible");
}

#[test]
fn the_prototype_bug_storing_cumulative_as_delta_cannot_happen() {
    // A counter at 9.5 TB on the first tick is a baseline, not 9.5 TB of traffic.
    let mut e = engine();
    let o = e.apply(&snap(vec![counter("a", 9_500_000_000_000, 0)]), TICK);
    assert!(o.deltas.is_empty());
}

#[test]
fn unchanged_counters_write_no_state() {
    let mut e = engine();
    e.apply(&snap(vec![counter("a", 1, 1)]), TICK);
    let o = e.apply(&snap(vec![counter("a", 1, 1)]), TICK);
    assert!(o.state.upsert.is_empty() && o.state.remove.is_empty());
}

#[test]
fn zero_elapsed_tick_still_allows_a_second_of_traffic() {
    // A wall-clock jump never reaches the engine: it is only given monotonic time.
    let mut e = Engine::new(Config {
        max_rate: 100,
        ..Config::default()
    });
    e.apply(&snap(vec![counter("a", 0, 0)]), Duration::ZERO);
    let o = e.apply(&snap(vec![counter("a", 100, 0)]), Duration::ZERO);
    assert_eq!(totals(&o), (100, 0));
}

/// A model counter: the true bytes moved, and what a source shows of it.
#[derive(Debug, Clone)]
enum Step {
    /// The counter grows by this much before the next reading.
    Grow(u32, u32),
    /// The socket closes and a new one under the same key starts from zero (then grows).
    Reset(u32, u32),
    /// The counter is absent from this reading (still exists, keeps its value).
    Hide,
    /// The recorder restarts here, resuming from its saved state.
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u32..1_000_000, 0u32..1_000_000).prop_map(|(a, b)| Step::Grow(a, b)),
        1 => (0u32..1_000_000, 0u32..1_000_000).prop_map(|(a, b)| Step::Reset(a, b)),
        1 => Just(Step::Hide),
        1 => Just(Step::Restart),
    ]
}

proptest! {
    /// For any sequence, the engine never counts more than really moved after the first
    /// reading, and it counts exactly that when every reset is visible (the new counter is
    /// below the old one in both directions).
    #[test]
    fn never_negative_never_double_counted(
        keys in proptest::collection::vec(proptest::collection::vec(step(), 1..40), 1..4)
    ) {
        let n = keys.iter().map(Vec::len).max().unwrap_or(0);
        let mut engine = Engine::new(Config::default());
        let mut saved: HashMap<CounterKey, (u64, u64)> = HashMap::new();
        let mut value: Vec<(u64, u64)> = vec![(0, 0); keys.len()];
        let mut truth = (0u64, 0u64);
        let mut counted = (0u64, 0u64);
        let mut exact = true;
        for t in 0..=n {
            let mut restart = false;
            let mut counters = Vec::new();
            for (k, steps) in keys.iter().enumerate() {
                let s = if t == 0 { Step::Grow(0, 0) } else { steps.get(t - 1).cloned().unwrap_or(Step::Grow(0, 0)) };
                let v = &mut value[k];
                match s {
                    Step::Grow(a, b) => { v.0 += a as u64; v.1 += b as u64; truth.0 += a as u64; truth.1 += b as u64; }
                    Step::Reset(a, b) => {
                        let (a, b) = (a as u64, b as u64);
                        // A reset shows only if a direction went down; one from zero loses nothing.
                        if a >= v.0 && b >= v.1 && *v != (0, 0) { exact = false; }
                        *v = (a, b);
                        truth.0 += a; truth.1 += b;
                    }
                    Step::Hide => continue,
                    Step::Restart => { restart = true; }
                }
                counters.push(counter(&format!("k{k}"), v.0, v.1));
            }
            if restart {
                let mut fresh = Engine::new(Config::default());
                fresh.resume(saved.iter().map(|(k, v)| Saved { key: k.clone(), bytes_in: v.0, bytes_out: v.1, age: TICK }));
                engine = fresh;
            }
            let o = engine.apply(&snap(counters), TICK);
            prop_assert!(o.rejected.is_empty());
            for d in &o.deltas { counted.0 += d.bytes_in; counted.1 += d.bytes_out; }
            for (k, a, b) in o.state.upsert { saved.insert(k, (a, b)); }
            for k in o.state.remove { saved.remove(&k); }
        }
        prop_assert!(counted.0 <= truth.0 && counted.1 <= truth.1, "counted {counted:?} > truth {truth:?}");
        if exact {
            prop_assert_eq!(counted, truth);
        }
    }
}

// --- Several counters under one key (issue 14): nettop lists sockets that differ only in the
// interface they used last, in no stable order.

fn keyed(key: &str, values: &[(u64, u64)]) -> Vec<Counter> {
    values.iter().map(|&(i, o)| counter(key, i, o)).collect()
}

#[test]
fn identical_rows_are_matched_by_continuity_not_position() {
    let mut e = engine();
    e.apply(
        &snap(keyed(
            "mdns",
            &[(24_743_335, 16_720_863), (23_966_085, 17_041_546)],
        )),
        TICK,
    );
    // The same two sockets, listed the other way round, each a little further on.
    let o = e.apply(
        &snap(keyed(
            "mdns",
            &[(23_978_476, 17_043_766), (24_756_652, 16_722_543)],
        )),
        TICK,
    );
    assert_eq!(totals(&o), (13_317 + 12_391, 1_680 + 2_220));
    assert!(o.deltas.iter().all(|d| d.cause == Cause::Growth));
    assert_eq!(e.tracked(), 2);
}

#[test]
fn a_swap_of_two_twins_is_not_a_reset() {
    let mut e = engine();
    e.apply(&snap(keyed("k", &[(1000, 10), (10, 1000)])), TICK);
    let o = e.apply(&snap(keyed("k", &[(10, 1000), (1000, 10)])), TICK);
    assert!(o.deltas.is_empty(), "{:?}", o.deltas);
    assert!(o.state.upsert.is_empty(), "unchanged twins write no state");
}

#[test]
fn a_twin_that_closes_while_a_new_one_opens_counts_only_the_new_one() {
    let mut e = engine();
    e.apply(&snap(keyed("k", &[(100, 100), (5000, 5000)])), TICK);
    // The big one closed; a new one at (30, 40) took its place; the small one grew by 1.
    let o = e.apply(&snap(keyed("k", &[(30, 40), (101, 101)])), TICK);
    assert_eq!(totals(&o), (30 + 1, 40 + 1));
    assert_eq!(e.tracked(), 2, "the new counter replaced the closed one");
}

#[test]
fn an_ambiguous_close_never_counts_more_in_either_direction() {
    // Two twins, one mostly in and one mostly out. One of them closes and the other now reads
    // (150, 100): it continues either. Matched to the first, it moved (50, 100); matched to the
    // second, (150, 0). Neither can be ruled out, so each direction counts the smaller.
    let mut e = engine();
    e.apply(&snap(keyed("k", &[(100, 0), (0, 100)])), TICK);
    let o = e.apply(&snap(keyed("k", &[(150, 100)])), TICK);
    assert_eq!(totals(&o), (50, 0));
}

#[test]
fn twins_resume_after_a_restart_from_their_own_saved_values() {
    let mut a = engine();
    let o = a.apply(&snap(keyed("k", &[(100, 1), (7, 700)])), TICK);
    let mut saved: HashMap<CounterKey, (u64, u64)> = HashMap::new();
    for (k, i, o) in o.state.upsert {
        saved.insert(k, (i, o));
    }
    assert_eq!(saved.len(), 2, "one state row per twin: {saved:?}");
    assert!(
        saved.contains_key(&CounterKey("k".into())),
        "the first twin keeps the plain key"
    );

    let mut b = engine();
    b.resume(saved.into_iter().map(|(key, (i, o))| Saved {
        key,
        bytes_in: i,
        bytes_out: o,
        age: TICK,
    }));
    assert_eq!(b.tracked(), 2);
    let o = b.apply(&snap(keyed("k", &[(9, 750), (130, 2)])), TICK);
    assert_eq!(totals(&o), (30 + 2, 1 + 50));
    assert!(o.deltas.iter().all(|d| d.cause == Cause::Resumed));
}

#[test]
fn a_large_group_is_matched_without_counting_more() {
    // More twins than the exact matching takes: the greedy fallback still never counts more.
    let n = EXACT_MATCH_LIMIT as u64 + 10;
    let before: Vec<(u64, u64)> = (0..n).map(|i| (i * 10, i * 10)).collect();
    let mut after: Vec<(u64, u64)> = before.iter().map(|&(i, o)| (i + 3, o + 4)).collect();
    after.reverse();
    let mut e = engine();
    e.apply(&snap(keyed("k", &before)), TICK);
    let o = e.apply(&snap(keyed("k", &after)), TICK);
    assert_eq!(totals(&o), (3 * n, 4 * n));
}

/// What happens to one socket of a key in a tick.
#[derive(Debug, Clone)]
enum TwinStep {
    Grow(u32, u32),
    /// The socket closes and a new one under the same key opens with these counts.
    Replace(u32, u32),
}

fn twin_step() -> impl Strategy<Value = TwinStep> {
    prop_oneof![
        8 => (0u32..100_000, 0u32..100_000).prop_map(|(a, b)| TwinStep::Grow(a, b)),
        1 => (0u32..100_000, 0u32..100_000).prop_map(|(a, b)| TwinStep::Replace(a, b)),
    ]
}

proptest! {
    /// Sockets that share one key, listed in any order each tick, with restarts: every
    /// direction's total is exactly the true growth while no socket is replaced, and never
    /// more when some are.
    #[test]
    fn twins_listed_in_any_order_count_exactly_their_growth(
        start in proptest::collection::vec((0u64..1_000_000, 0u64..1_000_000), 1..6),
        ticks in proptest::collection::vec(
            (proptest::collection::vec(twin_step(), 6), any::<u64>(), any::<bool>()),
            1..25,
        ),
    ) {
        let mut values = start.clone();
        let mut engine = engine();
        let mut saved: HashMap<CounterKey, (u64, u64)> = HashMap::new();
        let mut truth = (0u64, 0u64);
        let mut counted = (0u64, 0u64);
        let mut replaced = false;
        let apply = |engine: &mut Engine, values: &[(u64, u64)], order: u64, counted: &mut (u64, u64), saved: &mut HashMap<CounterKey, (u64, u64)>| {
            let mut listed: Vec<(u64, u64)> = values.to_vec();
            // A deterministic shuffle driven by `order`.
            let mut x = order | 1;
            for i in (1..listed.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                listed.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let o = engine.apply(&snap(keyed("k", &listed)), TICK);
            for d in &o.deltas { counted.0 += d.bytes_in; counted.1 += d.bytes_out; }
            for (k, a, b) in o.state.upsert { saved.insert(k, (a, b)); }
            for k in o.state.remove { saved.remove(&k); }
        };
        apply(&mut engine, &values, 0, &mut counted, &mut saved);
        for (steps, order, restart) in ticks {
            for (v, s) in values.iter_mut().zip(steps) {
                match s {
                    TwinStep::Grow(a, b) => {
                        v.0 += a as u64; v.1 += b as u64;
                        truth.0 += a as u64; truth.1 += b as u64;
                    }
                    TwinStep::Replace(a, b) => {
                        *v = (a as u64, b as u64);
                        truth.0 += a as u64; truth.1 += b as u64;
                        replaced = true;
                    }
                }
            }
            if restart {
                let mut fresh = Engine::new(Config::default());
                fresh.resume(saved.iter().map(|(k, v)| Saved { key: k.clone(), bytes_in: v.0, bytes_out: v.1, age: TICK }));
                engine = fresh;
            }
            apply(&mut engine, &values, order, &mut counted, &mut saved);
        }
        prop_assert!(counted.0 <= truth.0 && counted.1 <= truth.1, "counted {:?} > truth {:?}", counted, truth);
        if !replaced {
            prop_assert_eq!(counted, truth);
        }
        prop_assert!(engine.tracked() <= start.len());
    }
}

// --- The interface a counter reports (issue 15): per-connection network split.

fn on(key: &str, iface: &str, bytes_in: u64, bytes_out: u64) -> Counter {
    Counter {
        interface: Some(std::sync::Arc::from(iface)),
        ..counter(key, bytes_in, bytes_out)
    }
}

#[test]
fn a_socket_that_changes_interface_counts_its_delta_once_on_the_interface_it_reports_now() {
    let mut e = engine();
    e.apply(&snap(vec![on("s", "en0", 1000, 100)]), TICK);
    let o = e.apply(&snap(vec![on("s", "en0", 1500, 150)]), TICK);
    assert_eq!(totals(&o), (500, 50));
    assert_eq!(o.deltas[0].interface.as_deref(), Some("en0"));
    // The socket moved to utun0: it keeps its baseline (no reset, nothing counted twice) and
    // this tick's delta is on the interface it reports now.
    let o = e.apply(&snap(vec![on("s", "utun0", 1700, 170)]), TICK);
    assert_eq!(totals(&o), (200, 20));
    assert_eq!(o.deltas.len(), 1);
    assert_eq!(o.deltas[0].interface.as_deref(), Some("utun0"));
    assert_eq!(o.deltas[0].cause, Cause::Growth);
}

#[test]
fn twins_on_two_interfaces_keep_their_own_interface() {
    let mut e = engine();
    e.apply(
        &snap(vec![on("k", "en0", 100, 10), on("k", "utun0", 5000, 500)]),
        TICK,
    );
    let o = e.apply(
        &snap(vec![on("k", "utun0", 5100, 510), on("k", "en0", 130, 13)]),
        TICK,
    );
    let mut got: Vec<(String, u64)> = o
        .deltas
        .iter()
        .map(|d| (d.interface.as_deref().unwrap_or("").to_string(), d.bytes_in))
        .collect();
    got.sort();
    assert_eq!(got, vec![("en0".into(), 30), ("utun0".into(), 100)]);
}
