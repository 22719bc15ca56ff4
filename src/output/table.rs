//! Tables for people: comfy-table, human units (see `units`), local times, and names with
//! control characters escaped. Box lines and colour only on a terminal without `NO_COLOR`;
//! piped, or with `NO_COLOR`, a table is plain space-aligned columns.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::{DateTime, Local, Utc};
use comfy_table::presets::NOTHING;
use comfy_table::{
    Attribute, Cell, CellAlignment, ColumnConstraint, ContentArrangement, LineStyle, Table,
    TableStyle, Width,
};

use super::Style;
use super::units;
use crate::query::apps::Apps;
use crate::query::coverage::Coverage;
use crate::query::domains::{DomainUsage, Domains, SiteKind};
use crate::query::networks::{CapUsage, Explained, Networks};
use crate::query::timeline::Timeline;
use crate::query::top::Top;
use crate::query::{Kind, Range};

/// Escape what must not reach a terminal raw: control characters (an escape sequence in a
/// process name could rewrite the screen), bidirectional overrides and zero-width characters
/// (which make a name look like another). fd's `sanitize.rs` does the same.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    let bad = |c: char| {
        c.is_control()
            || matches!(c,
                '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
                | '\u{2028}' | '\u{2029}' | '\u{FEFF}')
    };
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x100 => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// On a terminal: one rule under the header, no other lines.
const TERMINAL: TableStyle =
    TableStyle::new().header_separator(LineStyle::none().fill('─').junction('─'));

/// A table with these headers; `right` lists the columns holding numbers.
pub fn new_table(style: &Style, headers: &[&str], right: &[usize]) -> Table {
    let mut t = Table::new();
    // NO_COLOR asks for plain output: no box lines either, only aligned columns.
    if style.terminal && style.color {
        t.load_style(TERMINAL);
    } else {
        t.load_style(NOTHING);
    }
    if style.color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    match style.width {
        Some(w) => {
            t.set_width(w);
            t.set_content_arrangement(ContentArrangement::Dynamic);
        }
        None => {
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    t.set_header(headers.iter().map(|h| {
        let c = Cell::new(h);
        if style.color {
            c.add_attribute(Attribute::Bold)
        } else {
            c
        }
    }));
    for &i in right {
        if let Some(col) = t.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// Keep every column but `wrap` at its content width: numbers and times never break over
/// lines; a narrow terminal wraps the names instead.
pub fn keep_whole(t: &mut Table, wrap: usize) {
    for (i, col) in t.column_iter_mut().enumerate() {
        if i != wrap {
            col.set_constraint(ColumnConstraint::ContentWidth);
        } else {
            // Names stay readable: below this, the line is left wider than the terminal.
            col.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(16)));
        }
    }
}

/// The table as text, without the trailing blanks of padded last columns.
pub fn render(t: &Table) -> String {
    let mut out = String::new();
    for line in t.to_string().lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Bytes as the style wants them: human units, or the exact integer with `--bytes`.
pub fn bytes(style: &Style, n: u64) -> String {
    if style.exact {
        n.to_string()
    } else {
        units::bytes(n)
    }
}

/// A time as local wall-clock minutes.
pub fn local_minute(t: DateTime<Utc>) -> String {
    t.with_timezone(&Local).format("%Y-%m-%d %H:%M").to_string()
}

/// A local time with seconds.
pub fn local_second(t: DateTime<Utc>) -> String {
    t.with_timezone(&Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The footer line every range query ends with: the range and how much of it was recorded.
pub fn range_footer(range: &Range, requested: &Range, coverage: &Coverage) -> String {
    let offset = range.end.with_timezone(&Local).format("%:z");
    let mut s = format!(
        "{} → {} (UTC{offset}) · recorded {} of {} ({})",
        local_minute(range.start),
        local_minute(range.end),
        units::duration_ms(coverage.recorded_ms),
        units::duration_ms(coverage.span_ms),
        units::percent(coverage.fraction()),
    );
    if range != requested {
        s.push_str("\nwidened to whole hours or days: older traffic is kept only as hourly or daily totals");
    }
    if coverage.fraction() < 0.995 {
        s.push_str("\ntime not recorded is unknown traffic, not silence");
    }
    s
}

/// `netmon apps` as a table.
pub fn apps(a: &Apps, network: Option<&str>, style: &Style) -> String {
    // A container column only where some row ran in one.
    let containers = a.apps.iter().any(|r| r.container.is_some());
    let mut headers = vec!["App"];
    if containers {
        headers.push("Container");
    }
    headers.extend([
        "Received",
        "Sent",
        "Total",
        "Share",
        "First seen",
        "Last seen",
    ]);
    let right: Vec<usize> = if containers {
        vec![2, 3, 4, 5]
    } else {
        vec![1, 2, 3, 4]
    };
    let mut t = new_table(style, &headers, &right);
    for r in &a.apps {
        let name = sanitize(&r.app);
        let name_cell = if r.kind == Kind::Unattributed && style.color {
            Cell::new(name).add_attribute(Attribute::Italic)
        } else {
            Cell::new(name)
        };
        let mut row = vec![name_cell];
        if containers {
            row.push(Cell::new(sanitize(r.container.as_deref().unwrap_or(""))));
        }
        row.extend([
            Cell::new(bytes(style, r.bytes_in)),
            Cell::new(bytes(style, r.bytes_out)),
            Cell::new(bytes(style, r.bytes_total)),
            Cell::new(units::percent(r.share)),
            Cell::new(local_minute(r.first_seen)),
            Cell::new(local_minute(r.last_seen)),
        ]);
        t.add_row(row);
    }
    keep_whole(&mut t, 0);
    let mut out = if a.apps.is_empty() {
        String::from("No traffic in this range.\n")
    } else {
        render(&t)
    };
    let m = &a.matched;
    if m.apps > a.apps.len() {
        let _ = writeln!(
            out,
            "… {} more (--limit 0 lists all)",
            m.apps - a.apps.len()
        );
    }
    let of_all = if m.apps != a.all.apps {
        format!(" of {}", a.all.apps)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{}{of_all} app{} · received {} · sent {} · total {}",
        m.apps,
        if a.all.apps == 1 { "" } else { "s" },
        bytes(style, m.bytes_in),
        bytes(style, m.bytes_out),
        bytes(style, m.bytes_in + m.bytes_out)
    );
    if let Some(line) = explained_line(&a.explained, network, style) {
        let _ = writeln!(out, "{line}");
    }
    if let Some(n) = network {
        let _ = writeln!(
            out,
            "on network {}: {}",
            sanitize(n),
            split_rule_text(a.split_rules)
        );
    }
    let _ = writeln!(out, "{}", range_footer(&a.range, &a.requested, &a.coverage));
    out
}

/// How applications' bytes were put on networks, for the line under `apps --network`.
pub fn split_rule_text(r: crate::query::networks::SplitRules) -> &'static str {
    const BUSIEST: &str = "each tick's application bytes are counted on the network that \
         carried the most traffic in it (the source does not say which interface each \
         connection used)";
    match (r.per_connection, r.busiest_per_tick) {
        (true, false) => {
            "application bytes are split per connection, by the interface each used (nettop \
             says which); a connection on no known interface counts on the network that \
             carried the most traffic in its tick"
        }
        (true, true) => {
            "application bytes are split per connection where the source says which \
             interface each used (nettop), else counted on the network that carried the most \
             traffic in each tick"
        }
        _ => BUSIEST,
    }
}

/// "applications account for 94.2% of the 6.4 GB your interfaces carried", or `None` when no
/// interface counters were recorded in the range.
pub fn explained_line(e: &Explained, network: Option<&str>, style: &Style) -> Option<String> {
    let share = e.share()?;
    let on = network.map_or(String::new(), |n| format!(" on {}", sanitize(n)));
    let mut line = format!(
        "applications account for {} of the {} your interfaces carried{on}",
        units::share_percent(share),
        bytes(style, e.interface_bytes)
    );
    if share > 1.0 {
        line.push_str(" (more than the interfaces carried: `netmon status` lists it)");
    }
    Some(line)
}

/// `netmon networks` as a table.
pub fn networks(n: &Networks, style: &Style) -> String {
    let mut t = new_table(
        style,
        &[
            "Network",
            "Id",
            "Interface",
            "Kind",
            "Received",
            "Sent",
            "Total",
            "Last seen",
        ],
        &[1, 4, 5, 6],
    );
    for r in &n.rows {
        let kind = if r.counted {
            r.kind.clone()
        } else {
            format!("{} (apart)", r.kind)
        };
        t.add_row(vec![
            Cell::new(sanitize(&r.network)),
            Cell::new(r.network_id),
            Cell::new(sanitize(&r.interface)),
            Cell::new(kind),
            Cell::new(bytes(style, r.bytes_in)),
            Cell::new(bytes(style, r.bytes_out)),
            Cell::new(bytes(style, r.bytes_total)),
            Cell::new(local_minute(r.last_seen)),
        ]);
    }
    keep_whole(&mut t, 0);
    let mut out = if n.rows.is_empty() {
        String::from("No interface traffic in this range.\n")
    } else {
        render(&t)
    };
    match explained_line(&n.explained, None, style) {
        Some(line) => {
            let _ = writeln!(out, "{line}");
        }
        None => {
            let _ = writeln!(
                out,
                "applications: {} (the interfaces carried nothing in this range, or were not read then)",
                bytes(style, n.explained.app_bytes)
            );
        }
    }
    if n.rows.iter().any(|r| !r.counted) {
        let _ = writeln!(
            out,
            "(apart): loopback, tunnels and bridges, whose bytes stay on this machine or cross \
             another interface too, are not in the interfaces' total"
        );
    }
    for c in &n.caps {
        let _ = writeln!(out, "{}", cap_line(c, style));
    }
    let _ = writeln!(out, "{}", range_footer(&n.range, &n.requested, &n.coverage));
    out
}

/// "cap on Phone hotspot: 12.3 GB of 20 GB used (61.5%), 7.7 GB left until 2026-12-12 00:00;
/// at this pace 25.1 GB by then".
pub fn cap_line(c: &CapUsage, style: &Style) -> String {
    let share = c.used_bytes as f64 / c.cap_bytes.max(1) as f64;
    let mut s = format!(
        "cap on {}: {} of {} used ({}) this {}, {} left until {}; at this pace {} by then",
        sanitize(&c.network),
        bytes(style, c.used_bytes),
        bytes(style, c.cap_bytes),
        units::share_percent(share),
        c.period,
        bytes(style, c.left_bytes),
        local_minute(c.period_end),
        bytes(style, c.forecast_bytes),
    );
    if c.used_bytes >= c.cap_bytes {
        s.push_str(" (over the cap)");
    } else if c.forecast_bytes > c.cap_bytes {
        s.push_str(" (on course to go over)");
    }
    s
}

/// Widest bar, in characters.
const BAR_WIDTH: usize = 40;

/// A bar of `value / max` of `width` characters: block characters with eighths on a
/// terminal, `#` otherwise.
pub fn bar(value: u64, max: u64, width: usize, unicode: bool) -> String {
    if max == 0 || value == 0 {
        return String::new();
    }
    let eighths = ((value as u128 * width as u128 * 8 + max as u128 / 2) / max as u128) as usize;
    if !unicode {
        // At least one mark for any traffic, so small is not confused with none.
        return "#".repeat((eighths / 8).max(1));
    }
    const PART: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    let mut s = "█".repeat(eighths / 8);
    s.push_str(PART[eighths % 8]);
    if s.is_empty() {
        s.push('▏');
    }
    s
}

/// `netmon timeline` as a table, a proportional bar on every row.
pub fn timeline(t: &Timeline, style: &Style) -> String {
    let per_app = t.buckets.iter().any(|b| b.app.is_some());
    let mut headers = vec!["Start"];
    if per_app {
        headers.push("App");
    }
    headers.extend(["Received", "Sent", "Total", "Recorded", ""]);
    let first_num = if per_app { 2 } else { 1 };
    let right: Vec<usize> = (first_num..first_num + 4).collect();
    let mut table = new_table(style, &headers, &right);
    let daily = t.bucket_ms % 86_400_000 == 0;
    let max = t.buckets.iter().map(|b| b.bytes_total).max().unwrap_or(0);
    let start_of = |b: &crate::query::timeline::Bucket| {
        if daily {
            b.start
                .with_timezone(&Local)
                .format("%Y-%m-%d %a")
                .to_string()
        } else {
            local_minute(b.start)
        }
    };
    // The bar takes what the other columns leave (each column is padded by one space a side).
    let others: usize = t
        .buckets
        .iter()
        .map(|b| {
            let name = b
                .app
                .as_deref()
                .map_or(0, |a| sanitize(a).chars().count() + 2);
            start_of(b).chars().count()
                + name
                + [b.bytes_in, b.bytes_out, b.bytes_total]
                    .iter()
                    .map(|n| bytes(style, *n).chars().count().max(8) + 2)
                    .sum::<usize>()
                + 2
                + 8
                + 2
        })
        .max()
        .unwrap_or(0);
    let bar_width = style
        .width
        .map(|w| (w as usize).saturating_sub(others).clamp(10, BAR_WIDTH))
        .unwrap_or(BAR_WIDTH);
    for b in &t.buckets {
        let start = if daily {
            b.start
                .with_timezone(&Local)
                .format("%Y-%m-%d %a")
                .to_string()
        } else {
            local_minute(b.start)
        };
        let unrecorded = b.recorded_ms == 0 && b.bytes_total == 0;
        let num = |n: u64| {
            if unrecorded {
                "–".to_string()
            } else {
                bytes(style, n)
            }
        };
        let mut row = vec![Cell::new(start)];
        if let Some(app) = &b.app {
            row.push(Cell::new(sanitize(app)));
        }
        row.extend([
            Cell::new(num(b.bytes_in)),
            Cell::new(num(b.bytes_out)),
            Cell::new(num(b.bytes_total)),
            Cell::new(units::percent(b.coverage)),
            Cell::new(if unrecorded {
                "not recorded".to_string()
            } else {
                bar(b.bytes_total, max, bar_width, style.terminal)
            }),
        ]);
        table.add_row(row);
    }
    keep_whole(&mut table, if per_app { 1 } else { usize::MAX });
    let mut out = render(&table);
    let (bin, bout) = t
        .buckets
        .iter()
        .fold((0u64, 0u64), |(i, o), b| (i + b.bytes_in, o + b.bytes_out));
    let _ = writeln!(
        out,
        "{} bucket{} of {} · received {} · sent {} · total {}",
        t.buckets.len(),
        if t.buckets.len() == 1 { "" } else { "s" },
        units::duration_ms(t.bucket_ms),
        bytes(style, bin),
        bytes(style, bout),
        bytes(style, bin + bout)
    );
    if t.merged {
        out.push_str(
            "some rows span several buckets: only hourly or daily totals are kept that far back\n",
        );
    }
    if let Some(r) = t.split_rules {
        let _ = writeln!(out, "on this network: {}", split_rule_text(r));
    }
    let _ = writeln!(out, "{}", range_footer(&t.range, &t.requested, &t.coverage));
    out
}

/// `netmon top` as a table (the screen's body, and `--once`), at most `rows` applications.
pub fn top(t: &Top, style: &Style, rows: Option<usize>) -> String {
    let mut out = String::new();
    if !t.live {
        let _ = writeln!(out, "{}", t.status);
        let _ = writeln!(
            out,
            "today: received {} · sent {}",
            bytes(style, t.today_in),
            bytes(style, t.today_out)
        );
        return out;
    }
    let mut table = new_table(
        style,
        &["App", "Down/s", "Up/s", "Today down", "Today up"],
        &[1, 2, 3, 4],
    );
    let rate = |r: f64| {
        if style.exact {
            format!("{}", r.round() as u64)
        } else {
            units::rate(r)
        }
    };
    let shown = rows.unwrap_or(usize::MAX).min(t.apps.len());
    for r in &t.apps[..shown] {
        table.add_row(vec![
            Cell::new(sanitize(&r.app)),
            Cell::new(rate(r.rate_in)),
            Cell::new(rate(r.rate_out)),
            Cell::new(bytes(style, r.today_in)),
            Cell::new(bytes(style, r.today_out)),
        ]);
    }
    keep_whole(&mut table, 0);
    if t.apps.is_empty() {
        out.push_str("No traffic in the last ticks.\n");
    } else {
        out.push_str(&render(&table));
    }
    if shown < t.apps.len() {
        let _ = writeln!(out, "… {} more", t.apps.len() - shown);
    }
    let _ = writeln!(
        out,
        "total ↓ {} ↑ {} · today ↓ {} ↑ {}",
        rate(t.rate_in.unwrap_or(0.0)),
        rate(t.rate_out.unwrap_or(0.0)),
        bytes(style, t.today_in),
        bytes(style, t.today_out)
    );
    let _ = writeln!(
        out,
        "{} · rates over {} of ticks",
        t.status,
        units::duration_ms(t.window_ms)
    );
    out
}

/// The one line a SwiftBar/xbar plugin prints: the menu-bar title. Text after `|` would be
/// read as parameters, so names never appear in it; `color=gray` marks a stale state.
pub fn oneline(t: &Top) -> String {
    let today = units::bytes(t.today_in + t.today_out);
    match (t.live, t.rate_in, t.rate_out) {
        (true, Some(i), Some(o)) => {
            format!("↓ {} ↑ {} · {today} today", units::rate(i), units::rate(o))
        }
        _ => format!("netmon: not recording · {today} today | color=gray"),
    }
}

/// What to tell someone whose `domains` answer is empty.
pub fn no_domains_hint(d: &Domains) -> String {
    if d.browsers_reporting.is_empty() {
        "no website traffic: no browser has reported yet. Start `netmon serve`, load the \
         browser extension and paste the token from `netmon serve --print-token` into its \
         options; `netmon record` must be running too"
            .to_string()
    } else {
        format!(
            "no website traffic in this range ({} of it was recorded); browsers reporting: {}",
            units::percent(d.coverage.fraction()),
            d.browsers_reporting.join(", ")
        )
    }
}

/// `netmon domains` as a table.
pub fn domains(d: &Domains, style: &Style) -> String {
    let per_host = d.rows.iter().any(|r| r.host.is_some());
    let mut t = new_table(
        style,
        &[
            if per_host { "Host" } else { "Domain" },
            "Received",
            "Sent",
            "Total",
            "Share",
            "Connection",
            "Browsers",
            "Last seen",
        ],
        &[1, 2, 3, 4, 5],
    );
    let mut add = |r: &DomainUsage, indent: bool| {
        let name = match (&r.host, indent) {
            (Some(h), true) => format!("  {}", sanitize(h)),
            (Some(h), false) => sanitize(h).into_owned(),
            (None, _) => sanitize(&r.domain).into_owned(),
        };
        let name_cell = if r.kind == SiteKind::Unattributed && style.color {
            Cell::new(name).add_attribute(Attribute::Italic)
        } else {
            Cell::new(name)
        };
        let by_connection = if r.kind == SiteKind::Unattributed {
            "–".to_string()
        } else {
            units::percent(r.connection_share)
        };
        t.add_row(vec![
            name_cell,
            Cell::new(bytes(style, r.bytes_in)),
            Cell::new(bytes(style, r.bytes_out)),
            Cell::new(bytes(style, r.bytes_total)),
            Cell::new(units::percent(r.share)),
            Cell::new(by_connection),
            Cell::new(sanitize(&r.apps)),
            Cell::new(local_minute(r.last_seen)),
        ]);
    };
    for r in &d.rows {
        add(r, false);
        let hosts = r.hosts.as_deref().unwrap_or_default();
        // A domain whose only host is itself needs no line under it.
        if let [only] = hosts
            && only.host.as_deref() == Some(r.domain.as_str())
        {
            continue;
        }
        for h in hosts {
            add(h, true);
        }
    }
    let mut out = if d.rows.is_empty() {
        format!("{}.\n", no_domains_hint(d))
    } else {
        render(&t)
    };
    if d.matched_rows > d.rows.len() {
        let _ = writeln!(
            out,
            "… {} more (--limit 0 lists all)",
            d.matched_rows - d.rows.len()
        );
    }
    let m = &d.by_method;
    let total = m.total();
    let pct = |n: u64| {
        units::percent(if total == 0 {
            0.0
        } else {
            n as f64 / total as f64
        })
    };
    let _ = writeln!(
        out,
        "browsers: received {} · sent {} · by connection {} · by active tab {} · no site {}",
        bytes(style, d.bytes_in),
        bytes(style, d.bytes_out),
        pct(m.connection),
        pct(m.active_tab),
        pct(m.none)
    );
    let _ = writeln!(out, "{}", range_footer(&d.range, &d.requested, &d.coverage));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_proportional_and_never_hide_small_traffic() {
        assert_eq!(bar(10, 10, 4, false), "####");
        assert_eq!(bar(5, 10, 4, false), "##");
        assert_eq!(bar(1, 1000, 4, false), "#");
        assert_eq!(bar(0, 1000, 4, false), "");
        assert_eq!(bar(10, 10, 2, true), "██");
        assert_eq!(bar(9, 16, 2, true), "█▏");
        assert_eq!(bar(1, 10_000, 2, true), "▏");
    }

    #[test]
    fn control_bidi_and_zero_width_characters_are_escaped() {
        assert_eq!(sanitize("Safari"), "Safari");
        assert!(matches!(sanitize("Safari"), Cow::Borrowed(_)));
        assert_eq!(sanitize("evil\x1b[2Jname"), "evil\\x1b[2Jname");
        assert_eq!(sanitize("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(sanitize("abc\u{202e}gpj.exe"), "abc\\u{202e}gpj.exe");
        assert_eq!(sanitize("zero\u{200b}width"), "zero\\u{200b}width");
        assert_eq!(sanitize("Café 日本"), "Café 日本");
    }
}
