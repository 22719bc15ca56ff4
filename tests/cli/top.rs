//! `netmon top`: one snapshot with and without a live recorder (rates are bytes over the ticks'
//! measured duration), the menu-bar line, and the interactive screen driven under tmux
//! (refresh in place; q and Ctrl-C quit and restore the terminal).

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::history;
use crate::util::{Env, finish, signal, wait_until};

const H: &str = ",interface,state,bytes_in,bytes_out,\n";

/// Fake nettop steps whose counters grow every tick: Safari +10000/+1000, Mail +500/+50.
fn growing(env: &Env, steps: usize) {
    for n in 1..=steps {
        let (s_in, s_out, m_in, m_out) = (n * 10_000, n * 1000, n * 500, n * 50);
        env.step(
            n,
            "csv",
            &format!(
                "{H}Safari.5000001,,,{s_in},{s_out},\n\
                 tcp4 192.0.2.1:50000<->198.51.100.10:443,en0,Established,{s_in},{s_out},\n\
                 Mail.5000003,,,{m_in},{m_out},\n\
                 tcp4 192.0.2.1:50010<->203.0.113.5:993,en0,Established,{m_in},{m_out},\n"
            ),
        );
    }
}

fn recorder(env: &Env) -> std::process::Child {
    growing(env, 3000);
    let child = env.spawn_record(&["--source", "nettop", "--interval", "100ms"]);
    assert!(
        wait_until(Duration::from_secs(30), || {
            // The table appears once the recorder has migrated the new database.
            env.sql()
                .query_row("SELECT count(*) FROM ticks", [], |r| r.get::<_, i64>(0))
                .unwrap_or(0)
                >= 6
        }),
        "the recorder wrote no ticks"
    );
    child
}

fn top_json(env: &Env) -> Value {
    let out = env
        .netmon()
        .args(["top", "--once", "--json"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn top_once_without_a_recorder_says_so_instead_of_showing_rates() {
    let env = Env::new();
    history::three_tables(&env.db);
    let out = env.netmon().args(["top", "--once"]).output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).expect("utf8");
    assert!(
        text.starts_with("not recording: no `netmon record` is writing to"),
        "{text}"
    );
    assert!(!text.contains("/s"), "no rate is shown: {text}");
    let v = top_json(&env);
    let keys: Vec<&str> = v
        .as_object()
        .expect("one object")
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "live",
            "status",
            "recorder_pid",
            "last_tick",
            "window_start",
            "window_end",
            "window_ms",
            "rate_in",
            "rate_out",
            "today_start",
            "today_in",
            "today_out",
            "apps"
        ]
    );
    assert_eq!(v["live"], false);
    assert!(v["rate_in"].is_null() && v["rate_out"].is_null());
    assert_eq!(v["apps"].as_array().map(Vec::len), Some(0));
    assert!(v["status"].as_str().expect("s").contains("last tick"));
    let line = env
        .netmon()
        .args(["top", "--oneline"])
        .output()
        .expect("run");
    assert_eq!(
        String::from_utf8_lossy(&line.stdout),
        "netmon: not recording · 0 B today | color=gray\n"
    );
}

#[test]
fn top_once_with_a_live_recorder_shows_rates_over_the_ticks_real_duration() {
    let env = Env::new();
    let child = recorder(&env);
    let v = top_json(&env);
    assert_eq!(v["live"], true, "{v}");
    assert_eq!(v["recorder_pid"].as_u64(), Some(u64::from(child.id())));
    let window_ms = v["window_ms"].as_i64().expect("window_ms");
    assert!(window_ms > 0);
    let apps = v["apps"].as_array().expect("apps");
    let app_keys: Vec<&str> = apps[0]
        .as_object()
        .expect("object")
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        app_keys,
        [
            "app",
            "kind",
            "rate_in",
            "rate_out",
            "bytes_in",
            "bytes_out",
            "today_in",
            "today_out"
        ]
    );
    let safari = apps
        .iter()
        .find(|a| a["app"] == "Safari")
        .expect("Safari is live");
    let bytes_in = safari["bytes_in"].as_u64().expect("in");
    // Every counted tick added exactly 10000 bytes to Safari's counter.
    assert!(bytes_in > 0 && bytes_in % 10_000 == 0, "{bytes_in}");
    let rate = safari["rate_in"].as_f64().expect("rate");
    let want = bytes_in as f64 * 1000.0 / window_ms as f64;
    assert!((rate - want).abs() < 0.01, "{rate} vs {want}");
    // The denominator is the ticks' measured durations as stored, over the window's ticks,
    // and each of those ticks carried Safari's 10000 bytes.
    let end = chrono::DateTime::parse_from_rfc3339(v["window_end"].as_str().expect("end"))
        .expect("rfc3339")
        .timestamp_millis();
    let conn = env.sql();
    let (n, elapsed): (i64, i64) = conn
        .query_row(
            "SELECT count(*), sum(elapsed_ms) FROM ticks WHERE at > ?1 - 15000 AND at <= ?1 \
             AND elapsed_ms > 0",
            [end],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("window ticks");
    assert_eq!(elapsed, window_ms);
    assert_eq!(n as u64 * 10_000, bytes_in);
    let total = v["rate_in"].as_f64().expect("total");
    assert!(total >= rate);
    assert!(v["today_in"].as_u64().expect("today") >= bytes_in);
    let line = env
        .netmon()
        .args(["top", "--oneline"])
        .output()
        .expect("run");
    let line = String::from_utf8(line.stdout).expect("utf8");
    assert!(
        line.starts_with("↓ ") && line.contains("B/s ↑ ") && line.ends_with(" today\n"),
        "{line}"
    );
    let table = env.netmon().args(["top", "--once"]).output().expect("run");
    let text = String::from_utf8(table.stdout).expect("utf8");
    assert!(text.contains("Safari") && text.contains("recording: netmon record (pid"));
    // Once the recorder stops, its numbers are no longer shown as live.
    signal(&child, libc::SIGINT);
    let (code, err) = finish(child, Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");
    let v = top_json(&env);
    assert_eq!(v["live"], false);
    assert!(
        v["status"]
            .as_str()
            .expect("s")
            .starts_with("not recording")
    );
}

/// A private tmux server for one test, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(env: &Env, name: &str, command: &str) -> Tmux {
        let socket = format!("netmon-test-{}-{name}", std::process::id());
        let t = Tmux { socket };
        let fake = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-nettop");
        let status = Command::new("tmux")
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("TERM", "xterm-256color")
            .args(["-L", &t.socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "100", "-y", "30", "-s", "top"])
            .arg(format!(
                "env -i PATH={}:/usr/bin:/bin TERM=tmux-256color TZ=UTC NETMON_DB={} \
                 FAKE_NETTOP_DIR={} sh -c '{} top --refresh 200ms; echo \"EXIT=$?\"; \
                 stty -a | tr \";\" \"\\n\" | grep -E \"icanon|echo \"; sleep 60'",
                fake.display(),
                env.db.display(),
                env.steps.display(),
                command
            ))
            .status()
            .expect("tmux must be installed (tests/install-deps.sh installs it)");
        assert!(status.success(), "tmux new-session failed");
        t
    }

    fn capture(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "top"])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        let ok = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "top", keys])
            .status()
            .expect("send-keys")
            .success();
        assert!(ok, "send-keys {keys}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn interactive_session(quit_with: &str) {
    let env = Env::new();
    let child = recorder(&env);
    let bin = crate::util::bin();
    let tmux = Tmux::new(&env, quit_with, &bin.display().to_string());
    let mut first = String::new();
    assert!(
        wait_until(Duration::from_secs(20), || {
            first = tmux.capture();
            first.contains("netmon top —") && first.contains("Safari")
        }),
        "top never drew its screen:\n{first}"
    );
    // Refreshed in place: the clock in the header moves on, and there is one header.
    let header = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("netmon top —"))
            .unwrap_or("")
            .to_string()
    };
    let mut later = String::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            later = tmux.capture();
            header(&later) != header(&first) && !header(&later).is_empty()
        }),
        "the screen did not refresh:\n{later}"
    );
    assert_eq!(later.matches("netmon top —").count(), 1, "{later}");
    assert!(later.contains("Down/s") && later.contains("recording: netmon record"));

    tmux.keys(quit_with);
    let mut after = String::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            after = tmux.capture();
            // Wait for the stty line too, printed just after.
            after.contains("EXIT=") && after.contains("icanon")
        }),
        "top did not quit on {quit_with}:\n{after}"
    );
    assert!(after.contains("EXIT=0"), "{after}");
    // The alternate screen is gone and the terminal is back in cooked mode with echo.
    assert!(!after.contains("netmon top —"), "{after}");
    let flags: Vec<&str> = after.split_whitespace().collect();
    for f in ["icanon", "echo", "isig"] {
        assert!(flags.contains(&f), "{f} is back on: {after}");
    }
    signal(&child, libc::SIGINT);
    let (code, err) = finish(child, Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn top_in_a_terminal_refreshes_in_place_and_q_quits_restoring_the_terminal() {
    interactive_session("q");
}

#[test]
fn top_in_a_terminal_quits_on_ctrl_c_restoring_the_terminal() {
    interactive_session("C-c");
}

/// Issue 16: with a long write window nothing is in the file yet, and `top` still shows the
/// running recorder's rates at the tick rate, from the recorder itself (its live socket), with
/// the same arithmetic as from the file.
#[test]
fn issue_16_top_shows_a_recorders_rates_live_before_anything_is_written() {
    let env = Env::new();
    growing(&env, 3000);
    let child = env.spawn_record(&[
        "--source",
        "nettop",
        "--interval",
        "100ms",
        "--write-every",
        "1h",
    ]);
    let live_with = |min_ticks: i64| {
        let mut last = Value::Null;
        let ok = wait_until(Duration::from_secs(30), || {
            // Until the recorder has created the database, top says there is none.
            let out = env
                .netmon()
                .args(["top", "--once", "--json"])
                .output()
                .expect("run");
            last = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            last["live"] == true && last["window_ms"].as_i64().unwrap_or(0) >= min_ticks * 100
        });
        (ok, last)
    };
    let (ok, v) = live_with(5);
    assert!(ok, "top never went live: {v}");
    assert_eq!(
        env.sql()
            .query_row("SELECT count(*) FROM ticks", [], |r| r.get::<_, i64>(0))
            .unwrap_or(0),
        0,
        "nothing is written within the hour: the rates came from the recorder"
    );
    let window_ms = v["window_ms"].as_i64().expect("window_ms");
    let safari = v["apps"]
        .as_array()
        .expect("apps")
        .iter()
        .find(|a| a["app"] == "Safari")
        .cloned()
        .expect("Safari is live");
    let bytes_in = safari["bytes_in"].as_u64().expect("in");
    assert!(bytes_in > 0 && bytes_in % 10_000 == 0, "{bytes_in}");
    let rate = safari["rate_in"].as_f64().expect("rate");
    assert!((rate - bytes_in as f64 * 1000.0 / window_ms as f64).abs() < 0.01);
    assert!(v["today_in"].as_u64().expect("today") >= bytes_in);
    // It moves at the tick rate: a later look has a newer last tick.
    let first_tick = v["last_tick"].as_str().expect("last tick").to_string();
    assert!(
        wait_until(Duration::from_secs(10), || top_json(&env)["last_tick"]
            .as_str()
            .is_some_and(|t| t > first_tick.as_str())),
        "top's last tick never moved"
    );
    // status says what is on disk and what is only in memory.
    let status = env.netmon().args(["status"]).output().expect("status");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("Written:      nothing yet, every 1h") && text.contains("in memory)"),
        "{text}"
    );
    // A clean stop writes everything, and the file then says what top said.
    signal(&child, libc::SIGINT);
    let (code, err) = finish(child, Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");
    let written: i64 = env
        .sql()
        .query_row("SELECT count(*) FROM ticks", [], |r| r.get(0))
        .expect("ticks");
    assert!(written >= 6, "{written} ticks written at the stop");
}
