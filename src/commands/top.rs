//! `netmon top`: a snapshot, a menu-bar line, or a screen refreshed in place until q/Ctrl-C.
//!
//! The interactive screen uses the terminal's alternate screen in raw mode (crossterm), so
//! quitting leaves the shell's screen as it was. Raw mode turns Ctrl-C into a key press (no
//! SIGINT), handled like q; SIGTERM and SIGHUP also end the loop, and a guard restores the
//! terminal on every way out, including an error.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{Local, Utc};
use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::{cursor, execute, queue, terminal};

use crate::cli::TopArgs;
use crate::output::{self, Format, Output, Style, table};
use crate::query::{Db, top};

pub fn run(db_path: &Path, a: &TopArgs) -> anyhow::Result<()> {
    let out = Output::from_args(&a.output);
    let db = Db::open(db_path)?;
    let snap = || top::snapshot(&db, db_path, &Local, Utc::now(), a.window);
    if a.oneline {
        return super::print(&format!("{}\n", table::oneline(&snap()?)));
    }
    match out.format {
        Format::Json => {
            let mut t = snap()?;
            round(&mut t);
            output::json::write_value(&mut std::io::stdout().lock(), &t)
        }
        Format::Ndjson | Format::Csv => {
            let mut t = snap()?;
            round(&mut t);
            if !t.live {
                eprintln!("netmon top: {}", t.status);
            }
            output::write_rows(&mut std::io::stdout().lock(), out.format, &t.apps)
        }
        Format::Table if a.once || !std::io::stdout().is_terminal() => {
            super::print(&table::top(&snap()?, &out.style, None))
        }
        Format::Table => interactive(&db, db_path, a, out.style),
    }
}

/// Rates to 0.001 B/s in JSON: no float noise.
fn round(t: &mut top::Top) {
    let r = |x: f64| (x * 1000.0).round() / 1000.0;
    t.rate_in = t.rate_in.map(r);
    t.rate_out = t.rate_out.map(r);
    for a in &mut t.apps {
        a.rate_in = r(a.rate_in);
        a.rate_out = r(a.rate_out);
    }
}

/// Restores the terminal however the screen ends.
struct Screen;

impl Screen {
    fn enter() -> std::io::Result<Screen> {
        terminal::enable_raw_mode()?;
        let screen = Screen;
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cursor::Hide
        )?;
        Ok(screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = execute!(
            std::io::stdout(),
            cursor::Show,
            terminal::LeaveAlternateScreen
        );
        let _ = terminal::disable_raw_mode();
    }
}

fn interactive(db: &Db, db_path: &Path, a: &TopArgs, style: Style) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGINT,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let _screen = Screen::enter()?;
    loop {
        let (cols, rows) = terminal::size().unwrap_or((80, 24));
        let snap = top::snapshot(db, db_path, &Local, Utc::now(), a.window)?;
        let style = Style {
            width: Some(cols),
            ..style
        };
        let header = format!(
            "netmon top — {} — q or Ctrl-C quits",
            table::local_second(Utc::now())
        );
        // Header, table header and rule, footer: 6 lines besides the application rows.
        let body = table::top(
            &snap,
            &style,
            Some((rows as usize).saturating_sub(7).max(1)),
        );
        let mut out = std::io::stdout().lock();
        queue!(
            out,
            cursor::MoveTo(0, 0),
            terminal::Clear(terminal::ClearType::All)
        )?;
        let mut text = String::new();
        for line in std::iter::once(header.as_str())
            .chain(std::iter::once(""))
            .chain(body.lines())
            .take(rows as usize)
        {
            text.push_str(line);
            text.push_str("\r\n");
        }
        out.write_all(text.trim_end_matches("\r\n").as_bytes())?;
        out.flush()?;
        drop(out);

        let next = Instant::now() + a.refresh;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let left = next.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if event::poll(left.min(Duration::from_millis(200)))? {
                match event::read()? {
                    Event::Key(k) if k.kind == KeyEventKind::Press => {
                        let ctrl_c = k.code == KeyCode::Char('c')
                            && k.modifiers.contains(KeyModifiers::CONTROL);
                        if ctrl_c || matches!(k.code, KeyCode::Char('q') | KeyCode::Esc) {
                            return Ok(());
                        }
                    }
                    Event::Resize(..) => break,
                    _ => {}
                }
            }
        }
    }
}
