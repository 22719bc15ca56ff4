//! What a user types, range-checked: durations, counts and ports, each accepted only inside a
//! range named in the refusal ("must be from 10ms to 1h"), so that no typed value can reach an
//! overflow further on (an `Instant` plus 300000000000 years panics; a bucket of
//! 18446744073709551615 s wraps when turned into milliseconds).
//!
//! The clap flags in `cli` use these as value parsers, through a [`Span`] or [`Count`] that
//! states the range once. Pure functions: the randomised run (`benches/parsers.rs`) feeds them
//! arbitrary text.

use std::time::Duration;

/// A range of durations a flag accepts, with examples for the refusal.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub min: Duration,
    pub max: Duration,
    /// Shown after "e.g.", like "5s, 500ms or 2m".
    pub examples: &'static str,
}

impl Span {
    pub const fn new(min: Duration, max: Duration, examples: &'static str) -> Self {
        Span { min, max, examples }
    }

    /// Parse `s` (`5s`, `500ms`, `2m`, `1h 30m`, `7d`) and check it lies in the range.
    pub fn parse(&self, s: &str) -> Result<Duration, String> {
        let t = s.trim();
        let d = humantime::parse_duration(t).map_err(|e| {
            let why = match e {
                humantime::DurationError::NumberOverflow => "the number is too large".to_string(),
                other => other.to_string(),
            };
            format!("{why}: {}", self.range_hint())
        })?;
        if d < self.min || d > self.max {
            return Err(format!("out of range: {}", self.range_hint()));
        }
        Ok(d)
    }

    /// "give a duration from 10ms to 1h, e.g. 5s, 500ms or 2m".
    pub fn range_hint(&self) -> String {
        format!(
            "give a duration from {} to {}, e.g. {}",
            compact(self.min),
            compact(self.max),
            self.examples
        )
    }
}

/// A range of whole numbers a flag accepts.
#[derive(Debug, Clone, Copy)]
pub struct Count {
    pub min: u64,
    pub max: u64,
}

impl Count {
    pub const fn new(min: u64, max: u64) -> Self {
        Count { min, max }
    }

    /// Parse a decimal whole number (`_` and `,` not accepted) inside the range.
    pub fn parse(&self, s: &str) -> Result<u64, String> {
        let t = s.trim();
        let hint = || format!("give a whole number from {} to {}", self.min, self.max);
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("not a whole number: {}", hint()));
        }
        match t.parse::<u64>() {
            Ok(n) if (self.min..=self.max).contains(&n) => Ok(n),
            _ => Err(format!("out of range: {}", hint())),
        }
    }

    /// The same, as a `usize` (the range must fit one, which every caller's does).
    pub fn parse_usize(&self, s: &str) -> Result<usize, String> {
        self.parse(s)
            .and_then(|n| usize::try_from(n).map_err(|_| format!("{n} is too large here")))
    }

    /// The same, as a `u32`.
    pub fn parse_u32(&self, s: &str) -> Result<u32, String> {
        self.parse(s)
            .and_then(|n| u32::try_from(n).map_err(|_| format!("{n} is too large here")))
    }
}

/// `ADDR:PORT` (`127.0.0.1:7500`, `[::1]:7500`), the port from 0 to 65535.
pub fn socket_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    let t = s.trim();
    if let Ok(a) = t.parse() {
        return Ok(a);
    }
    let hint = "give ADDR:PORT with a port from 0 to 65535 (0 picks a free one), \
                e.g. 127.0.0.1:7500 or [::1]:7500";
    let Some((host, port)) = t.rsplit_once(':') else {
        return Err(format!("no port: {hint}"));
    };
    if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_err()
    {
        return Err(format!("the port is out of range: {hint}"));
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.parse::<std::net::IpAddr>().is_err() {
        return Err(format!(
            "{} is not an IP address (names are not looked up): {hint}",
            show(host)
        ));
    }
    Err(format!("not an address and port: {hint}"))
}

/// A duration in the largest unit that states it exactly: `10ms`, `90s`, `1h`, `36500d`.
pub fn compact(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    for (unit, len) in [("w", 604_800_000u128), ("d", 86_400_000), ("h", 3_600_000)] {
        if ms.is_multiple_of(len) && ms / len >= 1 && !(unit == "w" && ms / len > 52) {
            return format!("{}{unit}", ms / len);
        }
    }
    if ms.is_multiple_of(60_000) {
        return format!("{}m", ms / 60_000);
    }
    if ms.is_multiple_of(1000) {
        return format!("{}s", ms / 1000);
    }
    format!("{ms}ms")
}

/// What was typed, quoted and cut short for a message.
fn show(s: &str) -> String {
    format!("{:?}", crate::text::excerpt(s, 40))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPAN: Span = Span::new(
        Duration::from_millis(10),
        Duration::from_secs(3600),
        "5s, 500ms or 2m",
    );

    #[test]
    fn a_duration_inside_the_range_parses() {
        assert_eq!(SPAN.parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(SPAN.parse(" 10ms "), Ok(Duration::from_millis(10)));
        assert_eq!(SPAN.parse("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn every_refusal_names_the_range() {
        for s in [
            "300000000000y",
            "18446744073709551615s",
            "99999999999999999999999s",
            "1h1ms",
            "9ms",
            "0s",
            "5x",
            "",
            "-5s",
        ] {
            let e = SPAN.parse(s).expect_err(s);
            assert!(e.contains("from 10ms to 1h"), "{s}: {e}");
        }
    }

    #[test]
    fn counts_are_whole_numbers_inside_the_range() {
        let c = Count::new(1, 10);
        assert_eq!(c.parse("10"), Ok(10));
        for s in ["0", "11", "-1", "1.5", "1e3", "", "99999999999999999999999"] {
            let e = c.parse(s).expect_err(s);
            assert!(e.contains("from 1 to 10"), "{s}: {e}");
        }
        assert_eq!(Count::new(0, 5).parse_usize("5"), Ok(5));
    }

    #[test]
    fn addresses_need_a_port_in_range() {
        assert_eq!(
            socket_addr("127.0.0.1:7500"),
            Ok("127.0.0.1:7500".parse().expect("addr"))
        );
        assert_eq!(socket_addr("[::1]:0"), Ok("[::1]:0".parse().expect("addr")));
        let e = socket_addr("127.0.0.1:70000").expect_err("port");
        assert!(
            e.contains("out of range") && e.contains("0 to 65535"),
            "{e}"
        );
        for s in ["127.0.0.1", "localhost:7500", "1.2.3.4:x", ""] {
            let e = socket_addr(s).expect_err(s);
            assert!(e.contains("0 to 65535"), "{s}: {e}");
        }
    }

    #[test]
    fn ranges_are_shown_in_the_unit_that_states_them() {
        assert_eq!(compact(Duration::from_millis(10)), "10ms");
        assert_eq!(compact(Duration::from_secs(90)), "90s");
        assert_eq!(compact(Duration::from_secs(120)), "2m");
        assert_eq!(compact(Duration::from_secs(3600)), "1h");
        assert_eq!(compact(Duration::from_secs(7 * 86_400)), "1w");
        assert_eq!(compact(Duration::from_secs(36_500 * 86_400)), "36500d");
    }
}

/// A size such as `20GB`, `500 MB`, `1.5TB`, `3GiB` or `1000000` (bytes): decimal units (kB,
/// MB, GB, TB: powers of 1000, as netmon prints them) and binary ones (KiB…TiB), from 1 byte to
/// 1 EB. Used by `networks cap` and, with `/s`, by `record --alert-rate`.
pub fn size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let hint = "give a size such as 20GB, 500MB, 1.5TB or 3GiB (1 kB = 1000 bytes)";
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size: {hint}"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("unknown unit in {s:?}: {hint}")),
    };
    let bytes = (n * mult).round();
    if !(1.0..=1e18).contains(&bytes) {
        return Err(format!("out of range: {hint}, from 1 byte to 1 EB"));
    }
    Ok(bytes as u64)
}

/// A rate such as `50MB/s` (bytes per second; `/s` may be left out).
pub fn rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    size(t.strip_suffix("/s").unwrap_or(t)).map_err(|e| {
        e.replace(
            "a size such as 20GB, 500MB, 1.5TB or 3GiB",
            "a rate such as 50MB/s or 2MB/s",
        )
    })
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn sizes_are_decimal_unless_binary_is_asked_for() {
        assert_eq!(size("20GB"), Ok(20_000_000_000));
        assert_eq!(size("1.5 TB"), Ok(1_500_000_000_000));
        assert_eq!(size("3GiB"), Ok(3 * 1024 * 1024 * 1024));
        assert_eq!(size("1000"), Ok(1000));
        assert_eq!(rate("50MB/s"), Ok(50_000_000));
        assert!(size("0").is_err());
        assert!(size("12 parsecs").is_err());
        assert!(size("9999999EB").is_err());
        assert!(size("").is_err());
    }
}
