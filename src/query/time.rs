//! Calendar arithmetic for queries: UTC hours (the hourly table's buckets) and local days (the
//! daily table's buckets, and what users mean by "yesterday"), on epoch milliseconds.
//!
//! Functions take the time zone as a parameter so tests can use fixed offsets; the binary
//! passes `chrono::Local`, which honours `TZ`.

use chrono::{DateTime, Duration as ChronoDuration, LocalResult, NaiveDate, TimeZone, Utc};

pub const SECOND_MS: i64 = 1000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// The start of the UTC hour holding `ms`.
pub fn floor_hour(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// The first UTC hour boundary at or after `ms`.
pub fn ceil_hour(ms: i64) -> i64 {
    let f = floor_hour(ms);
    if f == ms { f } else { f + HOUR_MS }
}

/// Epoch ms of the local midnight that starts `date`. A midnight skipped by a DST change
/// starts the day at the first valid local time after it.
pub fn midnight<Tz: TimeZone>(tz: &Tz, date: NaiveDate) -> i64 {
    let mut t = date.and_time(chrono::NaiveTime::MIN);
    // DST gaps are at most a few hours; step through them a quarter hour at a time.
    for _ in 0..16 {
        match tz.from_local_datetime(&t) {
            LocalResult::Single(d) => return d.timestamp_millis(),
            LocalResult::Ambiguous(a, _) => return a.timestamp_millis(),
            LocalResult::None => t += ChronoDuration::minutes(15),
        }
    }
    t.and_utc().timestamp_millis()
}

/// The local date holding `ms`.
pub fn local_date<Tz: TimeZone>(tz: &Tz, ms: i64) -> NaiveDate {
    utc(ms).with_timezone(tz).date_naive()
}

/// The local midnight at or before `ms`.
pub fn day_floor<Tz: TimeZone>(tz: &Tz, ms: i64) -> i64 {
    let m = midnight(tz, local_date(tz, ms));
    // A day whose midnight was skipped starts later than 00:00; `ms` may sit before it.
    if m <= ms {
        m
    } else {
        midnight(tz, local_date(tz, ms).pred_opt().unwrap_or(NaiveDate::MIN))
    }
}

/// The first local midnight strictly after `ms`.
pub fn next_day<Tz: TimeZone>(tz: &Tz, ms: i64) -> i64 {
    let mut date = local_date(tz, ms);
    loop {
        let Some(next) = date.succ_opt() else {
            return i64::MAX;
        };
        let m = midnight(tz, next);
        if m > ms {
            return m;
        }
        date = next;
    }
}

/// The first local midnight at or after `ms`.
pub fn day_ceil<Tz: TimeZone>(tz: &Tz, ms: i64) -> i64 {
    let f = day_floor(tz, ms);
    if f == ms { f } else { next_day(tz, ms) }
}

/// Whether `ms` is a local midnight.
pub fn is_midnight<Tz: TimeZone>(tz: &Tz, ms: i64) -> bool {
    day_floor(tz, ms) == ms
}

/// Epoch ms as a UTC date-time (clamped to chrono's range, which no real data leaves).
pub fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    #[test]
    fn hours_floor_and_ceil_on_epoch_hours() {
        assert_eq!(floor_hour(7_200_000 + 5), 7_200_000);
        assert_eq!(ceil_hour(7_200_000 + 5), 10_800_000);
        assert_eq!(ceil_hour(7_200_000), 7_200_000);
        assert_eq!(floor_hour(-5), -HOUR_MS);
    }

    #[test]
    fn days_follow_the_zone_not_utc() {
        let ist = FixedOffset::east_opt(5 * 3600 + 1800).expect("offset");
        // 2024-05-01T20:00:00Z is 2024-05-02T01:30 in India: the day began at 18:30 UTC.
        let t = Utc
            .with_ymd_and_hms(2024, 5, 1, 20, 0, 0)
            .single()
            .expect("t")
            .timestamp_millis();
        let f = day_floor(&ist, t);
        assert_eq!(
            utc(f),
            Utc.with_ymd_and_hms(2024, 5, 1, 18, 30, 0)
                .single()
                .expect("m")
        );
        assert_eq!(next_day(&ist, t), f + DAY_MS);
        assert_eq!(day_ceil(&ist, f), f);
        assert_eq!(day_ceil(&ist, t), f + DAY_MS);
        assert!(is_midnight(&ist, f) && !is_midnight(&ist, t));
    }
}
