//! When a recorder that holds the lock counts as stalled: the one rule `netmon status` and
//! `/metrics` (`query::metrics::classify`) both apply, so the two never disagree about the
//! same recorder.
//!
//! A healthy recorder commits within its interval, and a batching one (`record --write-every`,
//! issue 16) up to one write window later; `stalled_after` is the slack on top (a slow disk, a
//! tick that took long). A reader that got the recorder's newest sample from its live socket
//! passes a zero window: that sample is not a window behind.

use std::time::Duration;

/// The slack `netmon status` and `/metrics` allow by default (`status --stalled-after`).
pub const STALLED_AFTER: Duration = Duration::from_secs(60);

/// How long the recorder has been quiet when that is longer than `interval + write_window +
/// stalled_after` (it is stalled), else `None`. `last_activity_ms`: its newest sample, or its
/// start before it committed one (epoch ms). A clock that went back is quiet for zero.
pub fn stalled_for(
    last_activity_ms: i64,
    now_ms: i64,
    interval: Duration,
    write_window: Duration,
    stalled_after: Duration,
) -> Option<Duration> {
    let quiet = Duration::from_millis(now_ms.saturating_sub(last_activity_ms).max(0) as u64);
    let allowed = interval
        .saturating_add(write_window)
        .saturating_add(stalled_after);
    (quiet > allowed).then_some(quiet)
}

/// A stored interval or window in milliseconds (negative means none).
pub fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn quiet_beyond_interval_window_and_slack_is_stalled() {
        // 5 s interval, 60 s slack: 65 s is still running, a millisecond more is stalled.
        assert_eq!(
            stalled_for(100_000, 165_000, 5 * S, Duration::ZERO, 60 * S),
            None
        );
        assert_eq!(
            stalled_for(100_000, 165_001, 5 * S, Duration::ZERO, 60 * S),
            Some(Duration::from_millis(65_001))
        );
    }

    #[test]
    fn a_batching_recorder_gets_its_write_window() {
        assert_eq!(stalled_for(0, 665_000, 5 * S, 600 * S, 60 * S), None);
        assert!(stalled_for(0, 665_001, 5 * S, 600 * S, 60 * S).is_some());
    }

    #[test]
    fn a_clock_that_went_back_is_not_stalled() {
        assert_eq!(stalled_for(200_000, 100_000, S, S, S), None);
        assert_eq!(stalled_for(i64::MAX, i64::MIN, S, S, S), None);
        assert!(stalled_for(i64::MIN, i64::MAX, S, S, S).is_some());
    }

    #[test]
    fn negative_stored_durations_are_none() {
        assert_eq!(millis(-5), Duration::ZERO);
        assert_eq!(millis(1500), Duration::from_millis(1500));
    }
}
