//! Tables for people: comfy-table, human units (see `units`), local times, and names with
//! control characters escaped. Box drawing and colour only on a terminal (and colour only
//! without `NO_COLOR`); piped, a table is plain space-aligned columns.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::{DateTime, Local, Utc};
use comfy_table::presets::NOTHING;
use comfy_table::{
    Attribute, Cell, CellAlignment, ContentArrangement, LineStyle, Table, TableStyle,
};

use super::Style;
use super::units;
use crate::query::apps::Apps;
use crate::query::coverage::Coverage;
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
    if style.terminal {
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
pub fn apps(a: &Apps, style: &Style) -> String {
    let mut t = new_table(
        style,
        &[
            "App",
            "Received",
            "Sent",
            "Total",
            "Share",
            "First seen",
            "Last seen",
        ],
        &[1, 2, 3, 4],
    );
    for r in &a.apps {
        let name = sanitize(&r.app);
        let name_cell = if r.kind == Kind::Unattributed && style.color {
            Cell::new(name).add_attribute(Attribute::Italic)
        } else {
            Cell::new(name)
        };
        t.add_row(vec![
            name_cell,
            Cell::new(bytes(style, r.bytes_in)),
            Cell::new(bytes(style, r.bytes_out)),
            Cell::new(bytes(style, r.bytes_total)),
            Cell::new(units::percent(r.share)),
            Cell::new(local_minute(r.first_seen)),
            Cell::new(local_minute(r.last_seen)),
        ]);
    }
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
    let _ = writeln!(out, "{}", range_footer(&a.range, &a.requested, &a.coverage));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
