//! How much of a range was actually recorded, from the `runs` and `gaps` tables.
//!
//! A run counts from its first tick (the first tick only sets baselines) to its stop, or to its
//! last tick when it crashed or is still running; gaps (machine asleep, failed ticks) are cut
//! out of it. What is left is recorded time: a quiet hour inside it really was quiet, an hour
//! outside it is unknown. Runs and gaps are never deleted, so this holds for any range.

use rusqlite::{Connection, params};
use serde::Serialize;

/// Recorded time within a range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Milliseconds of the range a recorder was counting.
    pub recorded_ms: i64,
    /// Length of the range in milliseconds.
    pub span_ms: i64,
}

impl Coverage {
    /// Recorded share of the range, 0.0 to 1.0 (1.0 for an empty range).
    pub fn fraction(&self) -> f64 {
        if self.span_ms <= 0 {
            1.0
        } else {
            (self.recorded_ms as f64 / self.span_ms as f64).clamp(0.0, 1.0)
        }
    }
}

/// The recorded intervals within `[a, b)`: sorted, disjoint, clipped to the range.
pub fn recorded(conn: &Connection, a: i64, b: i64) -> rusqlite::Result<Intervals> {
    let mut runs: Vec<(i64, i64)> = {
        let mut st = conn.prepare_cached(
            "SELECT first_tick_at, coalesce(stopped_at, last_tick_at) FROM runs \
             WHERE first_tick_at IS NOT NULL AND first_tick_at < ?2 \
             AND coalesce(stopped_at, last_tick_at) > ?1",
        )?;
        st.query_map(params![a, b], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    let gaps: Vec<(i64, i64)> = {
        let mut st = conn.prepare_cached(
            "SELECT start_at, end_at FROM gaps WHERE start_at < ?2 AND end_at > ?1",
        )?;
        st.query_map(params![a, b], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    for r in &mut runs {
        r.0 = r.0.max(a);
        r.1 = r.1.min(b);
    }
    Ok(Intervals::union(runs).minus(&Intervals::union(gaps)))
}

/// Sorted, disjoint, non-empty half-open intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals(Vec<(i64, i64)>);

impl Intervals {
    /// The union of any intervals.
    pub fn union(mut v: Vec<(i64, i64)>) -> Self {
        v.retain(|(s, e)| s < e);
        v.sort_unstable();
        let mut out: Vec<(i64, i64)> = Vec::with_capacity(v.len());
        for (s, e) in v {
            match out.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => out.push((s, e)),
            }
        }
        Intervals(out)
    }

    /// These intervals with `other` cut out.
    pub fn minus(&self, other: &Intervals) -> Self {
        let mut out = Vec::new();
        let mut j = 0;
        for &(s, e) in &self.0 {
            let mut cur = s;
            while j < other.0.len() && other.0[j].1 <= cur {
                j += 1;
            }
            let mut k = j;
            while k < other.0.len() && other.0[k].0 < e {
                let (gs, ge) = other.0[k];
                if gs > cur {
                    out.push((cur, gs));
                }
                cur = cur.max(ge);
                if cur >= e {
                    break;
                }
                k += 1;
            }
            if cur < e {
                out.push((cur, e));
            }
        }
        Intervals(out)
    }

    /// How much of `[a, b)` these intervals cover.
    pub fn measure(&self, a: i64, b: i64) -> i64 {
        // Binary search to the first interval ending after `a`: timelines ask once per bucket.
        let i = self.0.partition_point(|(_, e)| *e <= a);
        let mut total = 0;
        for &(s, e) in &self.0[i..] {
            if s >= b {
                break;
            }
            total += e.min(b) - s.max(a);
        }
        total
    }

    /// Coverage of `[a, b)`.
    pub fn coverage(&self, a: i64, b: i64) -> Coverage {
        Coverage {
            recorded_ms: self.measure(a, b),
            span_ms: (b - a).max(0),
        }
    }

    pub fn as_slice(&self) -> &[(i64, i64)] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_cut_out_of_runs() {
        let runs = Intervals::union(vec![(0, 100), (50, 150), (200, 300)]);
        assert_eq!(runs.as_slice(), &[(0, 150), (200, 300)]);
        let gaps = Intervals::union(vec![(10, 20), (140, 210), (250, 260)]);
        let rec = runs.minus(&gaps);
        assert_eq!(
            rec.as_slice(),
            &[(0, 10), (20, 140), (210, 250), (260, 300)]
        );
        assert_eq!(rec.measure(0, 300), 10 + 120 + 40 + 40);
        assert_eq!(rec.measure(100, 230), 40 + 20);
        assert_eq!(rec.coverage(300, 400).recorded_ms, 0);
        assert!((rec.coverage(0, 10).fraction() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn recorded_time_comes_from_runs_and_gaps_in_the_database() {
        let conn = crate::store::open_in_memory().expect("db");
        conn.execute_batch(
            "INSERT INTO runs(started_at, first_tick_at, last_tick_at, stopped_at, source, interval_ms, pid, version) VALUES \
               (0, 5, 100, 120, 'nettop', 5, 1, 'x'), \
               (200, 205, 400, NULL, 'nettop', 5, 2, 'x'), \
               (500, NULL, NULL, NULL, 'nettop', 5, 3, 'x'); \
             INSERT INTO gaps(run_id, start_at, end_at, reason) VALUES (2, 300, 320, 'asleep');",
        )
        .expect("rows");
        let rec = recorded(&conn, 0, 1000).expect("recorded");
        assert_eq!(rec.as_slice(), &[(5, 120), (205, 300), (320, 400)]);
        let rec = recorded(&conn, 50, 250).expect("clipped");
        assert_eq!(rec.as_slice(), &[(50, 120), (205, 250)]);
    }
}
