//! What time range a query covers: `--since 90m|24h|7d`, or `--from`/`--until` given as dates
//! or date-times in local time, resolved against "now" into a half-open UTC range.
//!
//! Dates mean whole local days: `--from 2024-05-01 --until 2024-05-01` is that one day, since
//! a date given to `--until` means the end of that day. A date-time given to `--until` is the
//! exclusive end. A range reaching into the future ends now.

use std::time::Duration;

use chrono::{
    DateTime, Datelike, Duration as ChronoDuration, FixedOffset, NaiveDate, NaiveDateTime,
    TimeZone, Utc,
};

use super::time::{day_floor, local_date, midnight, next_day, utc};

/// The range every query covers when none is given.
pub const DEFAULT_SINCE: Duration = Duration::from_secs(24 * 3600);

/// A point in time as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Now,
    Today,
    Yesterday,
    Date(NaiveDate),
    /// A local date-time without an offset.
    Local(NaiveDateTime),
    /// A date-time with an explicit offset (RFC 3339).
    Instant(DateTime<FixedOffset>),
}

/// Parse `--from`/`--until`: `2024-05-01`, `2024-05-01T13:30`, `2024-05-01 13:30:15`,
/// RFC 3339 (`2024-05-01T13:30:00Z`), `today`, `yesterday` or `now`.
pub fn parse_when(s: &str) -> Result<When, String> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "now" => return Ok(When::Now),
        "today" => return Ok(When::Today),
        "yesterday" => return Ok(When::Yesterday),
        _ => {}
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        check_year(d.year())?;
        return Ok(When::Date(d));
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        check_year(d.year())?;
        return Ok(When::Instant(d));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, fmt) {
            check_year(d.year())?;
            return Ok(When::Local(d));
        }
    }
    Err(format!(
        "cannot read {s:?} as a date or time: use 2024-05-01, \"2024-05-01 13:30\", \
         2024-05-01T13:30:00Z, today or yesterday (local time unless an offset is given)"
    ))
}

/// What `--since` accepts: a second to a hundred years.
pub const SINCE: crate::input::Span = crate::input::Span::new(
    Duration::from_secs(1),
    Duration::from_secs(36_500 * 86_400),
    "90m, 24h, 7d (units s, m, h, d, w)",
);

/// Parse `--since`: a duration such as `90m`, `24h`, `7d` or `1w`, from 1s to 36500d.
pub fn parse_since(s: &str) -> Result<Duration, String> {
    SINCE.parse(s)
}

/// The dates `--from` and `--until` accept.
const FIRST_YEAR: i32 = 1970;
const LAST_YEAR: i32 = 9999;

fn check_year(year: i32) -> Result<(), String> {
    if (FIRST_YEAR..=LAST_YEAR).contains(&year) {
        Ok(())
    } else {
        Err(format!(
            "year {year} is out of range: give a date from {FIRST_YEAR}-01-01 to \
             {LAST_YEAR}-12-31"
        ))
    }
}

/// The range flags, parsed but not yet resolved against the clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RangeSpec {
    pub since: Option<Duration>,
    pub from: Option<When>,
    pub until: Option<When>,
}

/// A resolved range: `[start, end)` in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Range {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Range {
    pub fn start_ms(&self) -> i64 {
        self.start.timestamp_millis()
    }
    pub fn end_ms(&self) -> i64 {
        self.end.timestamp_millis()
    }
    pub fn from_ms(start: i64, end: i64) -> Self {
        Range {
            start: utc(start),
            end: utc(end),
        }
    }
}

/// Why a range cannot be resolved (a user error: exit 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("--from ({from}) is not before --until ({until}): the range would be empty")]
    Empty { from: String, until: String },
    #[error("--from ({0}) is in the future: nothing has been recorded there yet")]
    Future(String),
    #[error("{0} is not a valid local time in this time zone")]
    Invalid(String),
}

/// Resolve what was typed against `now` in zone `tz`. Without any flag the range is the last
/// [`DEFAULT_SINCE`]; `--until` without `--from` starts at `earliest_ms` (where the recording
/// starts).
pub fn resolve<Tz: TimeZone>(
    spec: &RangeSpec,
    now: DateTime<Utc>,
    tz: &Tz,
    earliest_ms: i64,
) -> Result<Range, RangeError> {
    let now_ms = now.timestamp_millis();
    if spec.from.is_none() && spec.until.is_none() {
        let since = spec.since.unwrap_or(DEFAULT_SINCE);
        let back = ChronoDuration::from_std(since).unwrap_or(ChronoDuration::MAX);
        let start = now
            .checked_sub_signed(back)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        // Milliseconds are the database's resolution.
        return Ok(Range::from_ms(start.timestamp_millis(), now_ms));
    }
    let end = match spec.until {
        Some(w) => instant(w, Side::End, now_ms, tz)?,
        None => now_ms,
    };
    let start = match spec.from {
        Some(w) => instant(w, Side::Start, now_ms, tz)?,
        // An --until before the recording began still gets a (silent, unrecorded) day.
        None => earliest_ms.min(end.min(now_ms) - super::time::DAY_MS),
    };
    if start >= now_ms && spec.from.is_some() {
        return Err(RangeError::Future(show(spec.from)));
    }
    if start >= end {
        return Err(RangeError::Empty {
            from: show(spec.from),
            until: show(spec.until),
        });
    }
    Ok(Range::from_ms(start, end.min(now_ms)))
}

/// `range` starting no earlier than the local day in which recording began (`earliest_ms`).
pub fn from_recording_day<Tz: TimeZone>(range: Range, tz: &Tz, earliest_ms: i64) -> Range {
    let first_day = day_floor(tz, earliest_ms);
    if range.start_ms() < first_day && first_day < range.end_ms() {
        Range::from_ms(first_day, range.end_ms())
    } else {
        range
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Start,
    End,
}

/// The instant a typed time stands for: a date is its local midnight for `--from`, and the
/// next midnight (the end of that day) for `--until`.
fn instant<Tz: TimeZone>(w: When, side: Side, now_ms: i64, tz: &Tz) -> Result<i64, RangeError> {
    let day = |date: NaiveDate| match side {
        Side::Start => midnight(tz, date),
        Side::End => next_day(tz, midnight(tz, date)),
    };
    Ok(match w {
        When::Now => now_ms,
        When::Today => day(local_date(tz, now_ms)),
        When::Yesterday => day(local_date(tz, day_floor(tz, now_ms) - 1)),
        When::Date(d) => day(d),
        When::Local(dt) => tz
            .from_local_datetime(&dt)
            .earliest()
            .map(|d| d.timestamp_millis())
            .ok_or_else(|| RangeError::Invalid(dt.to_string()))?,
        When::Instant(d) => d.timestamp_millis(),
    })
}

fn show(w: Option<When>) -> String {
    match w {
        None => "now".into(),
        Some(When::Now) => "now".into(),
        Some(When::Today) => "today".into(),
        Some(When::Yesterday) => "yesterday".into(),
        Some(When::Date(d)) => d.to_string(),
        Some(When::Local(d)) => d.format("%Y-%m-%d %H:%M:%S").to_string(),
        Some(When::Instant(d)) => d.to_rfc3339(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("ts")
            .with_timezone(&Utc)
    }

    #[test]
    fn since_counts_back_from_now() {
        let now = at("2024-05-02T12:00:00Z");
        let spec = RangeSpec {
            since: Some(parse_since("90m").expect("90m")),
            ..RangeSpec::default()
        };
        let r = resolve(&spec, now, &Utc, 0).expect("range");
        assert_eq!(r.start, at("2024-05-02T10:30:00Z"));
        assert_eq!(r.end, now);
        let default = resolve(&RangeSpec::default(), now, &Utc, 0).expect("default");
        assert_eq!(default.start, at("2024-05-01T12:00:00Z"));
    }

    #[test]
    fn dates_are_whole_local_days() {
        let now = at("2024-05-10T00:00:00Z");
        let tz = FixedOffset::east_opt(2 * 3600).expect("tz");
        let d = parse_when("2024-05-01").expect("date");
        let spec = RangeSpec {
            since: None,
            from: Some(d),
            until: Some(d),
        };
        let r = resolve(&spec, now, &tz, 0).expect("range");
        assert_eq!(r.start, at("2024-04-30T22:00:00Z"));
        assert_eq!(r.end, at("2024-05-01T22:00:00Z"));
    }

    #[test]
    fn times_parse_in_every_documented_form() {
        for s in [
            "2024-05-01 13:30",
            "2024-05-01T13:30",
            "2024-05-01T13:30:15",
            "2024-05-01 13:30:15",
        ] {
            assert!(matches!(parse_when(s), Ok(When::Local(_))), "{s}");
        }
        assert!(matches!(
            parse_when("2024-05-01T13:30:00+02:00"),
            Ok(When::Instant(_))
        ));
        assert_eq!(parse_when("Today"), Ok(When::Today));
        assert!(
            parse_when("May 1st")
                .expect_err("bad")
                .contains("2024-05-01")
        );
    }

    #[test]
    fn bad_durations_say_what_to_type() {
        assert!(parse_since("5x").expect_err("unit").contains("90m"));
        assert!(parse_since("24").expect_err("no unit").contains("24h"));
        for huge in ["99999999d", "999999999999w", "18446744073709551615s"] {
            let e = parse_since(huge).expect_err(huge);
            assert!(e.contains("from 1s to 36500d"), "{e}");
        }
        for far in [
            "0001-01-01",
            "+99999-01-01",
            "0000-01-01T00:00:00Z",
            "1969-12-31 23:00",
        ] {
            let e = parse_when(far).expect_err(far);
            assert!(e.contains("from 1970-01-01 to 9999-12-31"), "{far}: {e}");
        }
        assert!(parse_since("0s").is_err());
        assert_eq!(parse_since("7d"), Ok(Duration::from_secs(7 * 86400)));
    }

    #[test]
    fn from_after_until_and_future_from_are_refused() {
        let now = at("2024-05-10T00:00:00Z");
        let spec = RangeSpec {
            since: None,
            from: Some(parse_when("2024-05-03").expect("d")),
            until: Some(parse_when("2024-05-01").expect("d")),
        };
        assert!(matches!(
            resolve(&spec, now, &Utc, 0),
            Err(RangeError::Empty { .. })
        ));
        let future = RangeSpec {
            since: None,
            from: Some(parse_when("2024-06-01").expect("d")),
            until: None,
        };
        assert!(matches!(
            resolve(&future, now, &Utc, 0),
            Err(RangeError::Future(_))
        ));
    }

    #[test]
    fn a_range_reaching_into_the_future_ends_now() {
        let now = at("2024-05-10T12:00:00Z");
        let spec = RangeSpec {
            since: None,
            from: Some(When::Today),
            until: Some(When::Today),
        };
        let r = resolve(&spec, now, &Utc, 0).expect("range");
        assert_eq!(r.start, at("2024-05-10T00:00:00Z"));
        assert_eq!(r.end, now);
    }
}
