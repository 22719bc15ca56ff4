//! Issue 13, point 8 ("Figures that mislead"): what netmon reports about itself must be true.
//! The stop line's peak memory is netmon's own, not a parent's carried across exec; a full
//! disk while recording shows up as failed ticks and a gap, and the tick that finally stores
//! the kept bytes says how long a span they cover; `status` on a database it cannot read exits
//! non-zero and does not say "never run"; `NO_COLOR` on a terminal draws no box lines. Each
//! test drives the real binary.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

use crate::history;
use crate::safety::{is_root, tree, with_disk_of};
use crate::util::Env;

/// The value of `key=` on the last stderr line that holds `message`.
fn field(log: &str, message: &str, key: &str) -> Option<u64> {
    let line = log.lines().rev().find(|l| l.contains(message))?;
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// A fake nettop step: one process whose counters have reached `n` KB in and `n` * 100 B out.
fn curl_step(env: &Env, n: usize) {
    let (bytes_in, bytes_out) = (1000 * n, 100 * n);
    env.step(
        n,
        "csv",
        &format!(
            ",interface,state,bytes_in,bytes_out,\n\
             curl.5000003,,,{bytes_in},{bytes_out},\n\
             tcp4 192.0.2.1:50030<->198.51.100.30:443,en0,Established,{bytes_in},{bytes_out},\n"
        ),
    );
}

#[test]
fn issue_13_the_stop_line_reports_netmons_own_peak_memory_not_its_launchers() {
    let env = Env::new();
    for n in 1..=3 {
        curl_step(&env, n);
    }
    // A launcher that holds 300 MiB, then execs netmon (as a wrapper script or sudo would):
    // getrusage's ru_maxrss keeps the launcher's peak across exec.
    let out = env
        .command("perl")
        .args([
            "-e",
            "my $x = 'a' x (300 * 1024 * 1024); exec @ARGV or die \"exec: $!\"",
            "--",
        ])
        .arg(crate::util::bin())
        .args(crate::util::record_nettop("3"))
        .output()
        .expect("run perl");
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let rss_kib = field(&log, "stopped", "max_rss_kib")
        .unwrap_or_else(|| panic!("no max_rss_kib in the stop line: {log}"));
    // netmon recording three ticks holds a few tens of MiB; the launcher held 300.
    assert!(
        (1_000..150_000).contains(&rss_kib),
        "max_rss_kib={rss_kib}: not netmon's own peak\n{log}"
    );
}

#[test]
fn issue_16_a_full_disk_while_recording_keeps_every_tick_and_writes_each_once_it_can() {
    let env = Env::new();
    for n in 1..=400 {
        curl_step(&env, n);
    }
    let out_dir = env.dir.path().join("out");
    std::fs::create_dir(&out_dir).expect("mkdir");
    // In the private mount namespace: record onto a 4 MiB tmpfs, fill it once a few ticks are
    // in, let a few commits fail, free it, and let the recorder run to its tick limit. Every
    // wait polls against a deadline (300 polls of 0.1 s); the recorder itself is bounded by
    // `timeout`.
    let script = format!(
        "OUT='{}'\n{}",
        out_dir.display(),
        r#"
        log="$OUT/record.log"
        # Made before the recorder starts: a wait that began before the background job opened
        # it would read no count, end at once, and fill the disk before the database exists.
        : >"$log"
        RUST_LOG=netmon=debug timeout 120 "$NETMON" --db "$FULL/netmon.db" record \
            --source nettop --interval 200ms --ticks 30 2>"$log" &
        pid=$!
        wait_for() {
            i=0
            while [ "$(grep -c "$1" "$log" || true)" -lt "$2" ]; do
                i=$((i + 1))
                if [ "$i" -gt 300 ]; then
                    echo "timed out waiting for $2 x '$1'"; kill -9 "$pid"; exit 98
                fi
                sleep 0.1
            done
        }
        wait_for "batch written" 3
        dd if=/dev/zero of="$FULL/fill" bs=4k 2>/dev/null
        wait_for "writing the database failed" 3
        rm "$FULL/fill"
        wait "$pid"; echo "rc=$?"
        cp "$FULL"/netmon.db* "$OUT"/
        "#
    );
    let Some(run) = with_disk_of(&env, "4m", &script) else {
        return;
    };
    let script_out = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let log = std::fs::read_to_string(out_dir.join("record.log")).unwrap_or_default();
    assert!(
        out_dir.join("netmon.db").exists(),
        "the script did not finish: {script_out}\n{log}"
    );
    let failures = log.matches("writing the database failed").count() as u64;
    assert!(failures >= 3, "{script_out}\n{log}");
    assert!(
        script_out.contains("rc=0"),
        "the recorder stopped at its tick limit: {script_out}\n{log}"
    );
    // The stop line counts the failed writes; no sample failed.
    assert_eq!(
        field(&log, "stopped", "failed_writes"),
        Some(failures),
        "the stop line's failed_writes= is the failed writes\n{log}"
    );

    let db = rusqlite::Connection::open(out_dir.join("netmon.db")).expect("open copy");
    let ticks: Vec<(i64, i64)> = db
        .prepare("SELECT at, elapsed_ms FROM ticks ORDER BY id")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("ticks");
    assert_eq!(ticks.len(), 30, "every tick is stored, late or not");
    // Every tick keeps its own span: the ticks kept while the disk was full were not merged.
    // Each tick's elapsed time is the span since the tick before it, on the wall clock too
    // (the two clocks are read a moment apart; 200 ms allows for a loaded machine).
    for w in ticks.windows(2) {
        let ((prev_at, _), (at, elapsed)) = (w[0], w[1]);
        let span = at - prev_at;
        assert!(
            (elapsed - span).abs() <= 200,
            "a tick at {at} says it covers {elapsed} ms, but {span} ms passed since the one \
             before: {ticks:?}"
        );
        assert!(elapsed < 1000, "no tick covers several: {ticks:?}");
    }
    // No time went uncounted, so there is no gap.
    let gaps: i64 = db
        .query_row("SELECT count(*) FROM gaps", [], |r| r.get(0))
        .expect("gaps");
    assert_eq!(gaps, 0);

    // Nothing lost, nothing twice: the stored bytes are the last sample's counters less the
    // first's (every sample was written, late or not).
    let samples = std::fs::read_to_string(env.steps.join("served"))
        .expect("served")
        .lines()
        .count() as i64;
    let stored: i64 = db
        .query_row("SELECT sum(bytes_in) FROM samples", [], |r| r.get(0))
        .expect("sum");
    assert_eq!(stored, 1000 * (samples - 1), "{samples} samples");
}

/// `netmon status --json` on `db` (as user nobody when asked); (exit code, JSON, stderr).
fn status(env: &Env, db: &Path, as_nobody: bool) -> (Option<i32>, Value, String) {
    let mut cmd = if as_nobody {
        let mut c = env.command("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(crate::util::bin());
        c
    } else {
        env.std_netmon()
    };
    let out = cmd
        .env("NETMON_DB", db)
        .args(["status", "--json"])
        .output()
        .expect("run status");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status --json printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        out.status.code(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn issue_13_status_exits_non_zero_on_a_database_it_cannot_read_and_does_not_call_it_never_run() {
    let env = Env::new();
    let root = env.dir.path().join("cases");
    std::fs::create_dir(&root).expect("mkdir");
    let case = |name: &str| {
        let d = root.join(name);
        std::fs::create_dir(&d).expect("mkdir");
        d.join("netmon.db")
    };
    // A netmon database with runs in it, damaged past its first pages.
    let damaged = case("damaged");
    history::three_tables(&damaged);
    let runs: i64 = rusqlite::Connection::open(&damaged)
        .expect("open")
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .expect("runs");
    assert!(runs > 0);
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&damaged)
            .expect("open for damage");
        let len = f.metadata().expect("len").len();
        f.seek(SeekFrom::Start(8192)).expect("seek");
        f.write_all(&vec![0xA5; (len - 8192) as usize])
            .expect("damage");
    }
    let foreign = case("foreign");
    rusqlite::Connection::open(&foreign)
        .expect("sqlite")
        .execute_batch(
            "CREATE TABLE bookmarks(url TEXT); INSERT INTO bookmarks VALUES ('https://example.org');",
        )
        .expect("foreign");
    let text = case("text");
    std::fs::write(&text, "root:x:0:0:root:/root:/bin/bash\n").expect("text");

    for (what, db) in [
        ("damaged", &damaged),
        ("foreign", &foreign),
        ("text", &text),
    ] {
        let dir = db.parent().expect("dir");
        let before = tree(dir);
        let (code, v, err) = status(&env, db, false);
        assert_eq!(code, Some(1), "{what}: {v}\n{err}");
        assert_eq!(v["recorder"]["state"], "unknown", "{what}: {v}");
        assert_eq!(v["database"]["readable"], false, "{what}: {v}");
        assert!(
            !v["problems"].as_array().expect("problems").is_empty(),
            "{what}: says why: {v}"
        );
        assert!(err.contains("cannot read the database"), "{what}: {err}");
        assert_eq!(tree(dir), before, "{what}: status changed a file");
        // The text form says so too.
        let out = env
            .netmon()
            .env("NETMON_DB", db)
            .arg("status")
            .output()
            .expect("status");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{what}: {text}");
        assert!(
            text.starts_with("Recorder:     unknown") && !text.contains("never"),
            "{what}: {text}"
        );
    }

    // A database it may not read: as root, a good database of root's (0600) read by nobody.
    if !is_root() {
        eprintln!("NOT ROOT: cannot run status as another user; the permission case is skipped");
        return;
    }
    let closed = case("closed");
    history::three_tables(&closed);
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o711))
        .expect("chmod");
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o711)).expect("chmod");
    std::fs::set_permissions(
        closed.parent().expect("dir"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (code, v, err) = status(&env, &closed, true);
    assert_eq!(code, Some(1), "{v}\n{err}");
    assert_eq!(v["recorder"]["state"], "unknown", "{v}");
    assert_eq!(v["database"]["readable"], false, "{v}");
    // Root reads the same file: it is a good database, stopped, not never run.
    let (code, v, err) = status(&env, &closed, false);
    assert_eq!(code, Some(0), "{v}\n{err}");
    assert_eq!(v["database"]["readable"], true, "{v}");
    assert_ne!(v["recorder"]["state"], "never", "{v}");
}

#[test]
fn issue_13_no_color_on_a_terminal_draws_no_box_lines() {
    let env = Env::new();
    history::three_tables(&env.db);
    // `script` gives netmon a terminal for stdout.
    let on_a_terminal = |no_color: bool| {
        let mut c = env.command("script");
        c.args(["-qec"])
            .arg(format!(
                "{} apps --from 2024-05-01 --until 2024-05-09 --now 2024-05-10T12:00:00Z",
                crate::util::bin().display()
            ))
            .arg("/dev/null")
            .env("COLUMNS", "120")
            .env("TERM", "xterm");
        if !no_color {
            c.env_remove("NO_COLOR");
        }
        let out = c.output().expect("run script");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(text.contains("App") && text.contains("Received"), "{text}");
        text
    };
    let coloured = on_a_terminal(false);
    assert!(
        coloured.contains('─') && coloured.contains('\u{1b}'),
        "without NO_COLOR a terminal gets the rule and colour (the check can fail): {coloured}"
    );
    let plain = on_a_terminal(true);
    let drawn: Vec<char> = plain
        .chars()
        .filter(|c| ('\u{2500}'..='\u{257f}').contains(c))
        .collect();
    assert!(
        drawn.is_empty(),
        "box lines under NO_COLOR: {drawn:?}\n{plain}"
    );
    assert!(
        !plain.contains('\u{1b}'),
        "escape codes under NO_COLOR: {plain:?}"
    );
}
