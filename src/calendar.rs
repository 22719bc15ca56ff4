//! The calendar: UTC hours (the hourly table's buckets) and local days (the daily table's
//! buckets, and what users mean by "yesterday"), on epoch milliseconds. The one place that
//! says where a local day starts: the recorder keys its daily rows with [`day_floor`] and the
//! queries split ranges with it, so they agree on every day, including days whose midnight a
//! DST change skips (America/Santiago, Asia/Tehran, Asia/Beirut, America/Havana: the day starts
//! at the first local time that exists, 01:00) or repeats (the day starts at the first 00:00).
//!
//! Functions take the time zone as a parameter so tests can use any zone (chrono-tz); the
//! binary passes `chrono::Local`, which honours `TZ`.

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
/// starts the day at the first valid local time after it; a repeated one at its first
/// occurrence. A date a zone skipped whole (Pacific/Apia, 2011-12-30) starts where the next
/// date does: a day of length zero.
pub fn midnight<Tz: TimeZone>(tz: &Tz, date: NaiveDate) -> i64 {
    let mut t = date.and_time(chrono::NaiveTime::MIN);
    // DST gaps are an hour or two, a skipped date 24 hours: step through them a quarter hour
    // at a time (every zone's offsets are whole quarter hours since 1980).
    for _ in 0..(2 * 24 * 4) {
        match tz.from_local_datetime(&t) {
            LocalResult::Single(d) => return d.timestamp_millis(),
            LocalResult::Ambiguous(a, _) => return a.timestamp_millis(),
            LocalResult::None => t += ChronoDuration::minutes(15),
        }
    }
    // No zone has a gap this long; read the date as UTC rather than fail.
    date.and_time(chrono::NaiveTime::MIN)
        .and_utc()
        .timestamp_millis()
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

    /// Every date of 2010–2025 in `tz`: each day starts at its midnight (or the first time
    /// after a skipped one), ends where the next starts, and every function agrees on it.
    /// Returns how many days started late (skipped midnight) and how many were 25 hours long.
    fn check_every_day<Tz: TimeZone>(tz: &Tz) -> (usize, usize) {
        let (mut late, mut long) = (0, 0);
        let mut date = NaiveDate::from_ymd_opt(2010, 1, 1).expect("date");
        let end = NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
        while date < end {
            let next = date.succ_opt().expect("next");
            let (m, n) = (midnight(tz, date), midnight(tz, next));
            let len = n - m;
            assert!(
                (22 * HOUR_MS..=26 * HOUR_MS).contains(&len),
                "{date}: {len} ms long"
            );
            assert_eq!(local_date(tz, m), date, "{date} starts on its own date");
            let clock = utc(m).with_timezone(tz).time();
            if clock != chrono::NaiveTime::MIN {
                late += 1;
                assert!(
                    tz.from_local_datetime(&date.and_time(chrono::NaiveTime::MIN))
                        .single()
                        .is_none(),
                    "{date} starts at {clock} though its midnight exists"
                );
            }
            if len > 24 * HOUR_MS {
                long += 1;
            }
            for t in [m, m + 1, m + len / 2, n - 1] {
                assert_eq!(day_floor(tz, t), m, "{date}: floor of {}", utc(t));
                assert_eq!(next_day(tz, t), n, "{date}: next day after {}", utc(t));
            }
            assert!(is_midnight(tz, m) && !is_midnight(tz, m + 1));
            assert_eq!((day_ceil(tz, m), day_ceil(tz, m + 1)), (m, n));
            date = next;
        }
        (late, long)
    }

    #[test]
    fn zones_that_skip_or_repeat_midnight_keep_days_whole_and_in_order() {
        use chrono_tz::{America, Asia};
        // Santiago, Tehran (until 2022), Beirut and Havana spring forward at 00:00: those days
        // start at 01:00. Havana falls back at 01:00 (midnight happens twice: the first one
        // starts the day); Beirut and Santiago at 00:00 (the evening before gets 25 hours).
        for (name, tz) in [
            ("America/Santiago", America::Santiago),
            ("Asia/Tehran", Asia::Tehran),
            ("Asia/Beirut", Asia::Beirut),
            ("America/Havana", America::Havana),
        ] {
            let (late, long) = check_every_day(&tz);
            assert!(
                late >= 10,
                "{name}: only {late} days with a skipped midnight"
            );
            assert!(long >= 10, "{name}: only {long} 25-hour days");
        }
        let (late, _) = check_every_day(&chrono_tz::Europe::London);
        assert_eq!(late, 0, "London changes at 01:00, never at midnight");
    }

    #[test]
    fn a_date_a_zone_skipped_whole_is_a_day_of_no_length() {
        // Samoa moved across the date line: 2011-12-30 never happened in Apia.
        let tz = chrono_tz::Pacific::Apia;
        let d = |day| NaiveDate::from_ymd_opt(2011, 12, day).expect("date");
        assert_eq!(midnight(&tz, d(30)), midnight(&tz, d(31)));
        let before = midnight(&tz, d(29));
        assert_eq!(next_day(&tz, before), midnight(&tz, d(31)));
        assert_eq!(day_floor(&tz, midnight(&tz, d(31)) - 1), before);
    }
}

/// How often a data cap starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    pub fn parse(s: &str) -> Option<Period> {
        match s {
            "day" => Some(Period::Day),
            "week" => Some(Period::Week),
            "month" => Some(Period::Month),
            _ => None,
        }
    }
}

/// The cap period holding `ms`, as `[start, end)` local midnights: a day; a week starting on
/// weekday `resets_on` (1 = Monday … 7 = Sunday); a month starting on day `resets_on` of the
/// month (clamped to the month's last day: 31 resets on 30 April, 28 or 29 February).
pub fn period_bounds<Tz: TimeZone>(tz: &Tz, period: Period, resets_on: u32, ms: i64) -> (i64, i64) {
    use chrono::Datelike;
    let date = local_date(tz, ms);
    let start = match period {
        Period::Day => date,
        Period::Week => {
            let want = resets_on.clamp(1, 7);
            let back = (date.weekday().number_from_monday() + 7 - want) % 7;
            date - ChronoDuration::days(i64::from(back))
        }
        Period::Month => {
            let day = resets_on.clamp(1, 31);
            let this = reset_day(date.year(), date.month(), day);
            if date >= this {
                this
            } else {
                let (y, m) = if date.month() == 1 {
                    (date.year() - 1, 12)
                } else {
                    (date.year(), date.month() - 1)
                };
                reset_day(y, m, day)
            }
        }
    };
    let end = match period {
        Period::Day => start + ChronoDuration::days(1),
        Period::Week => start + ChronoDuration::days(7),
        Period::Month => {
            let (y, m) = if start.month() == 12 {
                (start.year() + 1, 1)
            } else {
                (start.year(), start.month() + 1)
            };
            reset_day(y, m, resets_on.clamp(1, 31))
        }
    };
    (midnight(tz, start), midnight(tz, end))
}

/// Day `day` of the month, or its last day when the month is shorter.
fn reset_day(year: i32, month: u32, day: u32) -> NaiveDate {
    (1..=day)
        .rev()
        .find_map(|d| NaiveDate::from_ymd_opt(year, month, d))
        .unwrap_or(NaiveDate::MIN)
}

#[cfg(test)]
mod period_tests {
    use super::*;

    fn at(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .timestamp_millis()
    }

    #[test]
    fn a_month_resetting_on_the_12th_runs_from_the_12th_to_the_12th() {
        let (s, e) = period_bounds(&Utc, Period::Month, 12, at("2026-03-05T10:00:00Z"));
        assert_eq!(
            (s, e),
            (at("2026-02-12T00:00:00Z"), at("2026-03-12T00:00:00Z"))
        );
        let (s, e) = period_bounds(&Utc, Period::Month, 12, at("2026-12-12T00:00:00Z"));
        assert_eq!(
            (s, e),
            (at("2026-12-12T00:00:00Z"), at("2027-01-12T00:00:00Z"))
        );
    }

    #[test]
    fn a_reset_day_past_the_months_end_is_its_last_day() {
        let (s, e) = period_bounds(&Utc, Period::Month, 31, at("2026-03-01T00:00:00Z"));
        assert_eq!(
            (s, e),
            (at("2026-02-28T00:00:00Z"), at("2026-03-31T00:00:00Z"))
        );
    }

    #[test]
    fn weeks_start_on_the_given_weekday_and_days_at_midnight() {
        // 2026-12-06 is a Sunday.
        let (s, e) = period_bounds(&Utc, Period::Week, 1, at("2026-12-06T12:00:00Z"));
        assert_eq!(
            (s, e),
            (at("2026-11-30T00:00:00Z"), at("2026-12-07T00:00:00Z"))
        );
        let (s, e) = period_bounds(&Utc, Period::Day, 1, at("2026-12-06T12:00:00Z"));
        assert_eq!(
            (s, e),
            (at("2026-12-06T00:00:00Z"), at("2026-12-07T00:00:00Z"))
        );
    }
}
