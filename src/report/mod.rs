//! `netmon report html`: one self-contained HTML file (no server, no network) showing a range
//! of the history: headline figures, a timeline stacked by application, top applications and
//! websites, an hour-of-day heatmap, daily and monthly totals, every application in a table.
//!
//! - `data`: the figures, from the same query functions as `apps` and `timeline`; they are
//!   embedded in the page as JSON (`<script type="application/json" id="netmon-data">`).
//! - `chart`: SVG geometry of the charts, drawn by netmon: no chart library, no script needed
//!   to see them, prints as vectors.
//! - `templates/`: the page (minijinja, autoescaped), its CSS and its script, included at build
//!   time. The script only adds hover details and table sorting; its hash is in the page's
//!   Content-Security-Policy, which allows nothing else to load or run.

pub mod chart;
pub mod data;

use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value, context};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use data::{Options, Report, gather};

use crate::output::units;
use crate::query::time::utc;

const TEMPLATE: &str = include_str!("templates/report.html.j2");
const STYLE: &str = include_str!("templates/report.css");
const SCRIPT: &str = include_str!("templates/report.js");

/// Where the JSON data sits in the page (the tests and any reader find it by this id).
pub const DATA_ID: &str = "netmon-data";

/// The page's Content-Security-Policy: nothing may load from anywhere (`default-src 'none'`),
/// the inline styles may apply, and only the report's own script (by hash) may run.
pub fn content_security_policy(script: &str) -> String {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()));
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{hash}'; \
         img-src data:; base-uri 'none'; form-action 'none'"
    )
}

/// JSON safe inside a `<script>` element: no `<`, `>` or `&` (so no `</script>` or `<!--`),
/// and no line separators some parsers choke on.
pub fn script_json<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    let s = serde_json::to_string(value)?;
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// A headline figure.
#[derive(Debug, Clone, Serialize)]
struct Card {
    label: &'static str,
    value: String,
    detail: String,
    /// The exact figure, for a tooltip.
    exact: String,
    /// The value is a name (may wrap), not a figure.
    name: bool,
}

/// A bar of the top lists.
#[derive(Debug, Clone, Serialize)]
struct TopBar {
    name: String,
    unattributed: bool,
    bytes_in: u64,
    bytes_out: u64,
    bytes_total: u64,
    share: f64,
    /// Widths of the received and sent parts, in percent of the largest bar.
    w_in: f64,
    w_out: f64,
}

fn bars<'a>(rows: impl Iterator<Item = (&'a str, bool, u64, u64, f64)>, n: usize) -> Vec<TopBar> {
    let rows: Vec<_> = rows.take(n).collect();
    let max = rows.iter().map(|r| r.2 + r.3).max().unwrap_or(0).max(1) as f64;
    let pct = |v: u64| (v as f64 / max * 1000.0).round() / 10.0;
    rows.into_iter()
        .map(|(name, unattributed, bin, bout, share)| TopBar {
            name: name.to_string(),
            unattributed,
            bytes_in: bin,
            bytes_out: bout,
            bytes_total: bin + bout,
            share,
            w_in: pct(bin),
            w_out: pct(bout),
        })
        .collect()
}

/// `1,234,567`.
pub fn exact(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The range as the CLI takes it, so every figure can be checked with `netmon apps` and
/// `netmon timeline`.
fn cli_range(r: &crate::query::Range) -> String {
    let f = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    format!("--from {} --until {}", f(r.start), f(r.end))
}

/// Render the report as one HTML page, with local times in `tz`.
pub fn render<Tz>(r: &Report, tz: &Tz, opts: &Options) -> Result<String, minijinja::Error>
where
    Tz: TimeZone + Send + Sync + 'static,
    Tz::Offset: std::fmt::Display + Send + Sync,
{
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()?,
    );
    env.add_filter("bytes", |v: u64| units::bytes(v));
    env.add_filter("exact", |v: u64| exact(v));
    env.add_filter("percent", |v: f64| units::percent(v));
    env.add_filter("duration", |v: i64| units::duration_ms(v));
    let ftz = tz.clone();
    env.add_filter("local", move |v: String, fmt: String| -> String {
        DateTime::parse_from_rfc3339(&v)
            .map(|d| d.with_timezone(&ftz).format(&fmt).to_string())
            .unwrap_or(v)
    });
    env.add_template("report.html", TEMPLATE)?;

    let json = script_json(r).map_err(|e| {
        minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string())
    })?;
    let span_ms = r.range.end_ms() - r.range.start_ms();
    let range_label = chart::span_label(tz, r.range.start, r.range.end);
    let h = &r.headline;
    let mut cards = vec![
        Card {
            label: "Received",
            value: units::bytes(r.totals.bytes_in),
            detail: format!("of {} in all", units::bytes(r.totals.bytes_total)),
            exact: format!("{} bytes", exact(r.totals.bytes_in)),
            name: false,
        },
        Card {
            label: "Sent",
            value: units::bytes(r.totals.bytes_out),
            detail: format!(
                "{} of all traffic",
                units::percent(if r.totals.bytes_total == 0 {
                    0.0
                } else {
                    r.totals.bytes_out as f64 / r.totals.bytes_total as f64
                })
            ),
            exact: format!("{} bytes", exact(r.totals.bytes_out)),
            name: false,
        },
        match &h.busiest_day {
            Some(d) => Card {
                label: "Busiest day",
                value: d.start.with_timezone(tz).format("%-d %b").to_string(),
                detail: format!(
                    "{} · {}",
                    d.start.with_timezone(tz).format("%A"),
                    units::bytes(d.bytes_total)
                ),
                exact: format!("{} bytes", exact(d.bytes_total)),
                name: false,
            },
            None => Card {
                label: "Busiest day",
                value: "—".into(),
                detail: "no traffic".into(),
                exact: String::new(),
                name: false,
            },
        },
        match &h.top_app {
            Some(a) => Card {
                label: "Top app",
                name: true,
                value: a.app.clone(),
                detail: format!(
                    "{} · {}",
                    units::bytes(a.bytes_total),
                    units::percent(a.share)
                ),
                exact: format!("{} bytes", exact(a.bytes_total)),
            },
            None => Card {
                label: "Top app",
                value: "—".into(),
                detail: "no traffic".into(),
                exact: String::new(),
                name: false,
            },
        },
        match &h.top_website {
            Some(w) => Card {
                label: "Top website",
                name: true,
                value: w.domain.clone(),
                detail: units::bytes(w.bytes_total),
                exact: format!("{} bytes", exact(w.bytes_total)),
            },
            None => Card {
                label: "Top website",
                value: "—".into(),
                detail: "no website data".into(),
                exact: String::new(),
                name: false,
            },
        },
        match &h.average_per_day {
            Some(a) => Card {
                label: "Average per day",
                value: units::bytes(a.bytes_total),
                detail: format!(
                    "over {} recorded day{}",
                    a.days,
                    if a.days == 1 { "" } else { "s" }
                ),
                exact: format!("{} bytes", exact(a.bytes_total)),
                name: false,
            },
            None => Card {
                label: "Average per day",
                value: "—".into(),
                detail: "no traffic".into(),
                exact: String::new(),
                name: false,
            },
        },
    ];
    // How the applications' bytes were put on networks, briefly (the card stays small) and in
    // full on hover (`output::table::split_rule_text` says it under `apps --network`).
    fn split_rule(r: crate::query::networks::SplitRules) -> (&'static str, &'static str) {
        match (r.per_connection, r.busiest_per_tick) {
            (true, false) => (
                "split per connection",
                "each connection's bytes count on the network of the interface it used",
            ),
            (true, true) => (
                "per connection where known",
                "per connection where the source named the interface (nettop), else each \
                 tick's bytes on the network that carried the most",
            ),
            _ => (
                "busiest network per tick",
                "each tick's bytes count on the network that carried the most in it",
            ),
        }
    }
    if let Some(n) = &r.network {
        cards.insert(
            0,
            Card {
                label: "Network",
                value: n.clone(),
                detail: format!(
                    "applications' bytes here ({}); websites on every network",
                    split_rule(r.split_rules.unwrap_or_default()).0
                ),
                exact: split_rule(r.split_rules.unwrap_or_default()).1.into(),
                name: true,
            },
        );
    }
    if let Some((e, share)) = r.explained.and_then(|e| Some((e, e.share()?))) {
        cards.push(Card {
            label: "Explained",
            value: units::share_percent(share),
            detail: format!(
                "of the {} your interfaces carried",
                units::bytes(e.interface_bytes)
            ),
            exact: format!(
                "{} of {} bytes",
                exact(e.app_bytes),
                exact(e.interface_bytes)
            ),
            name: false,
        });
    }
    let top_apps = bars(
        r.apps.iter().map(|a| {
            (
                a.app.as_str(),
                a.kind == crate::query::Kind::Unattributed,
                a.bytes_in,
                a.bytes_out,
                a.share,
            )
        }),
        opts.top,
    );
    let top_sites = bars(
        r.websites
            .rows
            .iter()
            .map(|w| (w.domain.as_str(), false, w.bytes_in, w.bytes_out, w.share)),
        opts.top,
    );
    let bucket_words = match r.timeline.bucket.as_str() {
        "1h" => "per hour".to_string(),
        "1d" => "per day".to_string(),
        "7d" => "per week".to_string(),
        b => format!("per {b}"),
    };
    let generated = utc(r.generated_at.timestamp_millis()).with_timezone(tz);
    let page = env.get_template("report.html")?.render(context! {
        r => Serde(r),
        cards => Serde(cards),
        top_apps => Serde(top_apps),
        top_sites => Serde(top_sites),
        timeline => Serde(chart::timeline(tz, r)),
        daily => Serde(chart::daily(tz, r)),
        heat => Serde(chart::heatmap(&r.heatmap)),
        heat_desc => heat_desc(&r.heatmap),
        range_label => range_label,
        title_range => chart::range_label(tz, r.range.start, r.range.end),
        span => units::duration_ms(span_ms),
        recorded => units::duration_ms(r.recorded_ms),
        coverage => units::percent(r.coverage),
        generated => generated.format("%a %-d %b %Y %H:%M").to_string(),
        bucket_words => bucket_words,
        cli_range => cli_range(&r.range),
        data_id => DATA_ID,
        data_json => Value::from_safe_string(json),
        style => Value::from_safe_string(STYLE.to_string()),
        script => Value::from_safe_string(SCRIPT.to_string()),
        // Quotes and all, as written: it holds no data.
        csp => Value::from_safe_string(content_security_policy(SCRIPT)),
    })?;
    Ok(page)
}

/// The heatmap in words: its busiest and quietest hours of the day.
fn heat_desc(h: &data::Heatmap) -> String {
    let mut by_hour = [(0u64, false); 24];
    for row in &h.rows {
        for (c, v) in row.cells.iter().enumerate() {
            if let (Some(v), Some(slot)) = (v, by_hour.get_mut(c)) {
                slot.0 += v;
                slot.1 = true;
            }
        }
    }
    let seen: Vec<(usize, u64)> = by_hour
        .iter()
        .enumerate()
        .filter(|(_, (_, seen))| *seen)
        .map(|(i, (v, _))| (i, *v))
        .collect();
    let busiest = seen.iter().max_by_key(|(i, v)| (*v, std::cmp::Reverse(*i)));
    let quietest = seen.iter().min_by_key(|(i, v)| (*v, *i));
    match (busiest, quietest) {
        (Some((b, bv)), Some((q, qv))) => format!(
            "Summed over the range, the busiest hour of the day is {b:02}:00–{:02}:00 ({}) and \
             the quietest {q:02}:00–{:02}:00 ({}).",
            b + 1,
            units::bytes(*bv),
            q + 1,
            units::bytes(*qv)
        ),
        _ => "No hour of this range has hourly figures.".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_json_cannot_close_its_script_element() {
        let evil = serde_json::json!({"app": "</script><script>alert(1)</script><!--&\u{2028}"});
        let s = script_json(&evil).expect("json");
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        assert!(!s.contains('\u{2028}'));
        let back: serde_json::Value = serde_json::from_str(&s).expect("still JSON");
        assert_eq!(back, evil);
    }

    #[test]
    fn the_policy_allows_only_the_scripts_own_hash() {
        let csp = content_security_policy("x");
        assert!(csp.starts_with("default-src 'none';"));
        // sha256("x"), base64.
        assert!(csp.contains("'sha256-LXEWQrcmsEQBYnyp+6wy9chTD7GQPMTbAiWHF5IaSIE='"));
        assert!(!csp.contains("unsafe-eval"));
    }

    #[test]
    fn exact_figures_group_thousands() {
        assert_eq!(exact(0), "0");
        assert_eq!(exact(999), "999");
        assert_eq!(exact(1000), "1,000");
        assert_eq!(exact(1_234_567_890), "1,234,567,890");
    }
}
