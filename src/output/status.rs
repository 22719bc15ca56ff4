//! `netmon status` as text: one fact a line, problems last, each saying what to do.

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, Local, Utc};

use crate::status::{RecorderState, Status};
use crate::text::units;

/// The text form of `netmon status`.
pub fn render(s: &Status, now: DateTime<Utc>, w: &mut dyn Write) -> std::io::Result<()> {
    let r = &s.recorder;
    let who = match (r.pid, r.since) {
        (Some(pid), Some(since)) => format!(" (pid {pid}, since {})", units::time_ago(since, now)),
        (Some(pid), None) => format!(" (pid {pid})"),
        _ => String::new(),
    };
    writeln!(w, "Recorder:     {}{who}", r.state.as_str())?;
    if let Some(t) = r.last_sample_at {
        let every = r
            .interval_ms
            .map(|i| {
                format!(
                    ", every {}",
                    units::duration(Duration::from_millis(i.max(0) as u64))
                )
            })
            .unwrap_or_default();
        writeln!(w, "Last sample:  {}{every}", units::time_ago(t, now))?;
    } else if s.database.readable == Some(true) {
        writeln!(w, "Last sample:  none yet")?;
    }
    let every = r.write_every_ms.filter(|e| *e > 0).map(|e| {
        format!(
            ", every {}",
            units::duration(Duration::from_millis(e.max(0) as u64))
        )
    });
    if let Some(unwritten) = r.unwritten_samples {
        let when = r
            .written_at
            .map_or("nothing yet".to_string(), |t| units::time_ago(t, now));
        writeln!(
            w,
            "Written:      {when}{} ({unwritten} newer sample{} in memory)",
            every.unwrap_or_default(),
            if unwritten == 1 { "" } else { "s" }
        )?;
    } else if let (Some(t), Some(every)) = (r.written_at, every)
        && matches!(r.state, RecorderState::Running | RecorderState::Stalled)
    {
        writeln!(w, "Written:      {}{every}", units::time_ago(t, now))?;
    }
    if let Some(src) = &r.source {
        writeln!(w, "Source:       {src}")?;
        for n in &r.not_counted {
            writeln!(w, "  not counted: {n}")?;
        }
    }
    if let Some(run) = &s.last_run
        && r.state != RecorderState::Running
        && r.state != RecorderState::Stalled
    {
        let ended = match (&run.stopped_at, &run.stop_reason) {
            (Some(t), Some(why)) => format!("stopped {} ({why})", units::time_ago(*t, now)),
            (Some(t), None) => format!("stopped {}", units::time_ago(*t, now)),
            (None, _) => "never stopped".into(),
        };
        writeln!(
            w,
            "Last run:     #{} pid {}, started {}, {ended}",
            run.id,
            run.pid,
            run.started_at
                .map_or("at an unknown time".into(), |t| units::time_ago(t, now))
        )?;
    }
    let d = &s.database;
    if d.exists {
        let mut facts = vec![units::bytes(d.size_bytes)];
        if let Some(f) = d.free_bytes.filter(|f| *f > 0) {
            facts.push(format!("{} free inside", units::bytes(f)));
        }
        if let Some(v) = d.schema {
            facts.push(format!("schema {v}"));
        }
        if let Some(m) = &d.mode {
            facts.push(format!("mode {m}"));
        }
        writeln!(
            w,
            "Database:     {} ({})",
            d.path.display(),
            facts.join(", ")
        )?;
    } else {
        writeln!(w, "Database:     {} (does not exist)", d.path.display())?;
    }
    if let Some(e) = &s.explained {
        writeln!(
            w,
            "Explained:    applications account for {} of the {} your interfaces carried \
             (last 7 days; `netmon networks`)",
            units::share_percent(e.share),
            units::bytes(e.interface_bytes)
        )?;
    }
    for c in &s.caps {
        writeln!(
            w,
            "Data cap:     {}",
            super::table::cap_line(c, &super::Style::plain(false))
        )?;
    }
    if !s.tables.is_empty() {
        let rows: Vec<String> = s
            .tables
            .iter()
            .map(|t| format!("{} {}", t.table, t.rows))
            .collect();
        writeln!(w, "Rows:         {}", rows.join(", "))?;
    }
    if let Some(ret) = &s.retention {
        let keep = |k: Option<u64>| {
            if !ret.known {
                "as the recorder is told".to_string()
            } else {
                k.map_or("forever".into(), |s| {
                    units::duration(Duration::from_secs(s))
                })
            }
        };
        let from = |t: Option<DateTime<Utc>>| {
            t.map(|t| {
                format!(
                    " (from {})",
                    t.with_timezone(&Local).format("%Y-%m-%d %H:%M")
                )
            })
            .unwrap_or_default()
        };
        writeln!(
            w,
            "Retention:    samples {}{}, hourly totals {}{}, daily totals forever{}",
            keep(ret.raw_keep_s),
            from(ret.raw_oldest_at),
            keep(ret.hourly_keep_s),
            from(ret.hourly_oldest_at),
            from(ret.daily_oldest_at)
        )?;
    }
    if s.service.is_empty() {
        writeln!(w, "Service:      not installed")?;
    } else {
        for f in &s.service {
            writeln!(w, "Service:      {} ({})", f.name, f.path.display())?;
        }
    }
    if s.problems.is_empty() {
        writeln!(w, "Problems:     none")?;
    } else {
        writeln!(w, "Problems:")?;
        for p in &s.problems {
            // Messages quote names from outside (paths, interface names, tool output):
            // escaped like every name a table prints.
            writeln!(w, "  - {}", super::table::sanitize(&p.message))?;
        }
    }
    Ok(())
}
