//! Human units, one convention everywhere: decimal SI prefixes (1 kB = 1000 B, 1 MB =
//! 1000 kB), three significant digits, rates per second. Durations are compact (`3d 4h`).
//! `output/` renders with these, and the domain's messages (`status` problems, `top`'s state
//! line) use the same ones.

/// Bytes in human units: `999 B`, `1.23 kB`, `45.6 MB`, `789 GB`.
pub fn bytes(n: u64) -> String {
    scaled(n as f64, "B")
}

/// A rate in bytes per second: `0 B/s`, `1.23 MB/s`.
pub fn rate(bytes_per_s: f64) -> String {
    scaled(bytes_per_s.max(0.0), "B/s")
}

fn scaled(v: f64, unit: &str) -> String {
    const PREFIXES: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    if v < 999.5 {
        return format!("{} {unit}", v.round() as u64);
    }
    let mut x = v;
    let mut i = 0;
    while x >= 999.5 && i + 1 < PREFIXES.len() {
        x /= 1000.0;
        i += 1;
    }
    // Three significant digits; 9.995 would print as "10.00", so pick by the rounded value.
    let text = if x < 9.995 {
        format!("{x:.2}")
    } else if x < 99.95 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    };
    format!("{text} {}{unit}", PREFIXES[i])
}

/// A length of time in at most two units: `45s`, `12m 5s`, `23h 59m`, `6d 4h`.
pub fn duration_ms(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        if h > 0 {
            format!("{d}d {h}h")
        } else {
            format!("{d}d")
        }
    } else if h > 0 {
        if m > 0 {
            format!("{h}h {m}m")
        } else {
            format!("{h}h")
        }
    } else if m > 0 {
        if sec > 0 {
            format!("{m}m {sec}s")
        } else {
            format!("{m}m")
        }
    } else if ms > 0 && s == 0 {
        format!("{}ms", ms)
    } else {
        format!("{sec}s")
    }
}

/// A `Duration` as [`duration_ms`] writes it.
pub fn duration(d: std::time::Duration) -> String {
    duration_ms(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A moment in the local time zone with how long ago it was:
/// "2026-11-24 10:00:05 +01:00 (3m ago)".
pub fn time_ago(t: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> String {
    let stamp = t
        .with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S %:z");
    match (now - t).to_std() {
        Ok(d) => format!("{stamp} ({} ago)", duration(d)),
        Err(_) => format!("{stamp} (in the future: check the clock)"),
    }
}

/// A share that may exceed 100% (the explained share): one decimal, `94.2%`, `103.5%`.
pub fn share_percent(f: f64) -> String {
    if (0.0..1.0).contains(&f) {
        percent(f)
    } else {
        format!("{:.1}%", f * 100.0)
    }
}

/// A fraction as a percentage with one decimal: `100%`, `99.3%`, `<0.1%`, `0%`. Never rounds
/// up to 100% or down to 0% when the fraction is not exactly that.
pub fn percent(f: f64) -> String {
    let p = f * 100.0;
    if f >= 1.0 {
        "100%".into()
    } else if f <= 0.0 {
        "0%".into()
    } else if p >= 99.95 {
        "99.9%".into()
    } else if p < 0.05 {
        "<0.1%".into()
    } else {
        format!("{p:.1}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_use_decimal_prefixes_and_three_digits() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1000), "1.00 kB");
        assert_eq!(bytes(1234), "1.23 kB");
        assert_eq!(bytes(99_949), "99.9 kB");
        assert_eq!(bytes(99_950), "100 kB");
        assert_eq!(bytes(999_499), "999 kB");
        assert_eq!(bytes(999_500), "1.00 MB");
        assert_eq!(bytes(45_600_000), "45.6 MB");
        assert_eq!(bytes(u64::MAX), "18.4 EB");
        assert_eq!(rate(1500.0), "1.50 kB/s");
    }

    #[test]
    fn durations_and_percentages_read_naturally() {
        assert_eq!(duration_ms(45_000), "45s");
        assert_eq!(duration_ms(725_000), "12m 5s");
        assert_eq!(duration_ms(86_340_000), "23h 59m");
        assert_eq!(duration_ms(4 * 3_600_000 + 6 * 86_400_000), "6d 4h");
        assert_eq!(duration_ms(3_600_000), "1h");
        assert_eq!(duration_ms(250), "250ms");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(0.9999), "99.9%");
        assert_eq!(percent(0.993), "99.3%");
        assert_eq!(percent(0.0042), "0.4%");
        assert_eq!(percent(0.0001), "<0.1%");
        assert_eq!(percent(0.0), "0%");
    }
}
