//! The Prometheus exposition of `/metrics` (`query::metrics::Metrics` to text), in the two
//! formats scrapers ask for:
//!
//! - the text format 0.0.4 (`text/plain; version=0.0.4`): a counter's `# TYPE` names its
//!   samples (`netmon_app_bytes_total`), an info metric is a gauge named `…_info`;
//! - OpenMetrics 1.0 (`application/openmetrics-text; version=1.0.0`), which Prometheus asks for
//!   first: families are named without the suffix their type adds (`# TYPE netmon_app_bytes
//!   counter`, samples `netmon_app_bytes_total`), carry `# UNIT`, info metrics are `info`, and
//!   the exposition ends with `# EOF`.
//!
//! Label values are escaped as both formats require (`\\`, `\"`, `\n`); names netmon did not
//! choose (applications, websites, reasons) only ever appear as label values.

use std::fmt::Write as _;

use crate::query::metrics::{MetricFamily, MetricKind, Metrics, Value};

/// Which exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
}

impl Format {
    /// The Content-Type of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Render every family.
pub fn render(m: &Metrics, format: Format) -> String {
    let mut out = String::with_capacity(8 * 1024);
    for f in &m.families {
        family(&mut out, f, format);
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

fn family(out: &mut String, f: &MetricFamily, format: Format) {
    let suffix = match f.kind {
        MetricKind::Counter => "_total",
        MetricKind::Info => "_info",
        MetricKind::Gauge => "",
    };
    let sample_name = format!("{}{suffix}", f.name);
    match format {
        Format::Text => {
            let kind = match f.kind {
                MetricKind::Counter => "counter",
                MetricKind::Gauge | MetricKind::Info => "gauge",
            };
            let _ = writeln!(out, "# HELP {sample_name} {}", help(f.help));
            let _ = writeln!(out, "# TYPE {sample_name} {kind}");
        }
        Format::OpenMetrics => {
            let kind = match f.kind {
                MetricKind::Counter => "counter",
                MetricKind::Gauge => "gauge",
                MetricKind::Info => "info",
            };
            let _ = writeln!(out, "# TYPE {} {kind}", f.name);
            if let Some(unit) = f.unit {
                let _ = writeln!(out, "# UNIT {} {unit}", f.name);
            }
            let _ = writeln!(out, "# HELP {} {}", f.name, help(f.help));
        }
    }
    for s in &f.samples {
        out.push_str(&sample_name);
        if !s.labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in s.labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                label_value(out, v);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        match s.value {
            Value::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Float(v) if v.is_finite() => {
                let _ = write!(out, "{v}");
            }
            Value::Float(_) => out.push_str("NaN"),
        }
        out.push('\n');
    }
}

/// HELP text: backslashes and line breaks escaped (both formats).
fn help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::metrics::Sample;

    fn fixture() -> Metrics {
        Metrics {
            families: vec![
                MetricFamily {
                    name: "netmon_app_bytes",
                    kind: MetricKind::Counter,
                    unit: Some("bytes"),
                    help: "Bytes per application",
                    samples: vec![
                        Sample {
                            labels: vec![
                                ("app", "Fire\"fox\\ \nnightly".into()),
                                ("direction", "in".into()),
                            ],
                            value: Value::Int(12),
                        },
                        Sample {
                            labels: vec![("app", "(other)".into()), ("direction", "in".into())],
                            value: Value::Int(0),
                        },
                    ],
                },
                MetricFamily {
                    name: "netmon_recorder_last_tick_timestamp_seconds",
                    kind: MetricKind::Gauge,
                    unit: Some("seconds"),
                    help: "When",
                    samples: vec![Sample {
                        labels: vec![],
                        value: Value::Float(1_767_225_600.25),
                    }],
                },
                MetricFamily {
                    name: "netmon_recorder",
                    kind: MetricKind::Info,
                    unit: None,
                    help: "Source",
                    samples: vec![Sample {
                        labels: vec![("source", "nettop".into())],
                        value: Value::Int(1),
                    }],
                },
            ],
        }
    }

    #[test]
    fn the_text_format_names_counters_by_their_samples() {
        let text = render(&fixture(), Format::Text);
        insta::assert_snapshot!(text, @r#"
        # HELP netmon_app_bytes_total Bytes per application
        # TYPE netmon_app_bytes_total counter
        netmon_app_bytes_total{app="Fire\"fox\\ \nnightly",direction="in"} 12
        netmon_app_bytes_total{app="(other)",direction="in"} 0
        # HELP netmon_recorder_last_tick_timestamp_seconds When
        # TYPE netmon_recorder_last_tick_timestamp_seconds gauge
        netmon_recorder_last_tick_timestamp_seconds 1767225600.25
        # HELP netmon_recorder_info Source
        # TYPE netmon_recorder_info gauge
        netmon_recorder_info{source="nettop"} 1
        "#);
    }

    #[test]
    fn openmetrics_names_families_gives_units_and_ends_with_eof() {
        let text = render(&fixture(), Format::OpenMetrics);
        insta::assert_snapshot!(text, @r#"
        # TYPE netmon_app_bytes counter
        # UNIT netmon_app_bytes bytes
        # HELP netmon_app_bytes Bytes per application
        netmon_app_bytes_total{app="Fire\"fox\\ \nnightly",direction="in"} 12
        netmon_app_bytes_total{app="(other)",direction="in"} 0
        # TYPE netmon_recorder_last_tick_timestamp_seconds gauge
        # UNIT netmon_recorder_last_tick_timestamp_seconds seconds
        # HELP netmon_recorder_last_tick_timestamp_seconds When
        netmon_recorder_last_tick_timestamp_seconds 1767225600.25
        # TYPE netmon_recorder info
        # HELP netmon_recorder Source
        netmon_recorder_info{source="nettop"} 1
        # EOF
        "#);
    }
}
