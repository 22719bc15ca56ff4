//! Time for the loop: the monotonic clock schedules ticks and measures what each covers; the
//! wall clock only labels them. The two are compared to notice a machine that slept (or a
//! clock stepped forward), which becomes a gap; a wall clock that steps back is logged and
//! changes nothing, since no interval or rate is ever computed from wall time.

use std::time::{Duration, Instant};

use chrono::{DateTime, Local, TimeZone, Utc};

/// Epoch second of the local midnight that starts the day containing `at`.
pub fn local_day_start(at: DateTime<Utc>) -> i64 {
    local_day_floor(at.timestamp())
}

/// Epoch second of the local midnight that starts the day containing epoch second `secs`:
/// the calendar's [`day_floor`](crate::calendar::day_floor), the same the queries use, so a
/// daily row and a day query agree even on a day whose midnight a DST change skips.
pub fn local_day_floor(secs: i64) -> i64 {
    day_floor_secs(&Local, secs)
}

/// [`local_day_floor`] in any zone (tests).
pub fn day_floor_secs<Tz: TimeZone>(tz: &Tz, secs: i64) -> i64 {
    crate::calendar::day_floor(tz, secs.saturating_mul(1000)).div_euclid(1000)
}

/// What the wall clock did between two readings, judged against the monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WallJump {
    None,
    /// The wall clock advanced this much more than the monotonic clock: the machine slept
    /// (the monotonic clock stops in sleep on Linux and macOS) or the clock was stepped.
    Forward(Duration),
    /// The wall clock fell this much behind the monotonic clock (it was stepped back).
    Backward(Duration),
}

/// Compare a wall-clock step with the monotonic time it should match. Differences below
/// `tolerance` are ordinary jitter (NTP slewing, scheduling).
pub fn wall_jump(wall_ms: i64, mono: Duration, tolerance: Duration) -> WallJump {
    let mono_ms = mono.as_millis() as i64;
    let diff = wall_ms - mono_ms;
    let tol = tolerance.as_millis() as i64;
    if diff > tol {
        WallJump::Forward(Duration::from_millis(diff as u64))
    } else if diff < -tol {
        WallJump::Backward(Duration::from_millis((-diff) as u64))
    } else {
        WallJump::None
    }
}

/// Drift-free tick schedule on the monotonic clock: tick k is due at start + k × interval.
/// A tick that runs late does not push later ticks back; ticks already missed are skipped.
#[derive(Debug, Clone)]
pub struct Schedule {
    start: Instant,
    interval: Duration,
    next: u64,
}

impl Schedule {
    pub fn new(start: Instant, interval: Duration) -> Self {
        Schedule {
            start,
            interval,
            next: 0,
        }
    }

    /// When the next tick is due.
    pub fn due(&self) -> Instant {
        self.start
            + self
                .interval
                .saturating_mul(self.next.min(u32::MAX as u64) as u32)
    }

    /// Move past `now`: the next due tick is the first one strictly after it. Returns how
    /// many due ticks were skipped because the previous one ran long.
    pub fn advance(&mut self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start);
        let k = (elapsed.as_nanos() / self.interval.as_nanos().max(1)) as u64 + 1;
        let skipped = k.saturating_sub(self.next + 1);
        self.next = k.max(self.next + 1);
        skipped
    }

    /// Push the next tick to no earlier than `at` (backoff after failures).
    pub fn not_before(&mut self, at: Instant) {
        while self.due() < at {
            self.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;

    #[test]
    fn schedule_does_not_drift_and_skips_missed_ticks() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, Duration::from_millis(100));
        assert_eq!(s.due(), t0);
        assert_eq!(s.advance(t0 + Duration::from_millis(7)), 0);
        assert_eq!(s.due(), t0 + Duration::from_millis(100));
        // The tick due at 100 ms ran until 350 ms: 200 and 300 are skipped, next is 400.
        assert_eq!(s.advance(t0 + Duration::from_millis(350)), 2);
        assert_eq!(s.due(), t0 + Duration::from_millis(400));
        s.not_before(t0 + Duration::from_millis(650));
        assert_eq!(s.due(), t0 + Duration::from_millis(700));
    }

    #[test]
    fn wall_clock_jumps_are_told_from_jitter() {
        let tol = Duration::from_secs(2);
        assert_eq!(
            wall_jump(5_100, Duration::from_secs(5), tol),
            WallJump::None
        );
        assert_eq!(
            wall_jump(3_605_000, Duration::from_secs(5), tol),
            WallJump::Forward(Duration::from_secs(3600))
        );
        assert_eq!(
            wall_jump(-60_000, Duration::from_secs(5), tol),
            WallJump::Backward(Duration::from_secs(65))
        );
    }

    #[test]
    fn the_recorder_keys_a_day_whose_midnight_is_skipped_where_queries_start_it() {
        // Chile skipped 2024-09-08 00:00 (to 01:00 -03); the recorder used to fall back to
        // the UTC day (2024-09-08T00:00Z, still the 7th in Santiago) there.
        let tz = chrono_tz::America::Santiago;
        let noon = Utc
            .with_ymd_and_hms(2024, 9, 8, 16, 0, 0)
            .single()
            .expect("t")
            .timestamp();
        let key = day_floor_secs(&tz, noon);
        assert_eq!(
            key,
            Utc.with_ymd_and_hms(2024, 9, 8, 4, 0, 0)
                .single()
                .expect("01:00 -03")
                .timestamp()
        );
        assert_eq!(key * 1000, crate::query::time::day_floor(&tz, noon * 1000));
    }

    #[test]
    fn local_day_start_is_a_midnight_at_or_before_the_time() {
        let now = Utc::now();
        let d = local_day_start(now);
        assert!(d <= now.timestamp() && now.timestamp() - d < 25 * 3600);
        let local = DateTime::<Utc>::from_timestamp(d, 0)
            .expect("ts")
            .with_timezone(&Local);
        assert_eq!(local.time(), NaiveTime::MIN);
    }
}
