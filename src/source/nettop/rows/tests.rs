use super::*;
use crate::source::nettop::sim::{self, Sim, Style};
use crate::source::nettop::to_snapshot;
use proptest::prelude::*;
use std::path::PathBuf;

/// What the full parser makes of `text`: the counters of its last block, and whether the
/// text is the plain case the cache takes (one header, nothing skipped).
fn full(text: &str) -> (Option<Snapshot>, bool) {
    match parse::parse(text) {
        Ok(p) => {
            let plain = p.blocks.len() == 1 && p.skipped.is_empty();
            (p.blocks.last().map(to_snapshot), plain)
        }
        Err(_) => (None, false),
    }
}

/// The header ends with the two byte columns (the cache reads counts from the line's end).
fn counts_last(text: &str) -> bool {
    let header = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let names: Vec<&str> = header.trim().split(',').map(str::trim).collect();
    let n = names.len();
    n >= 4
        && matches!(
            (names[n - 3], names[n - 2]),
            ("bytes_in", "bytes_out") | ("bytes_out", "bytes_in")
        )
}

/// The cache must give what the full parser gives, or step aside where the parser reports
/// something or the counts are not the last columns (then it starts again empty).
fn check(cache: &mut RowCache, text: &str) {
    let (expected, plain) = full(text);
    let got = cache.snapshot(text);
    if plain && counts_last(text) {
        assert_eq!(
            got, expected,
            "the cache differs from the parser on:\n{text}"
        );
    } else {
        assert_eq!(
            got, None,
            "the cache took a sample the parser reports on:\n{text}"
        );
        assert!(cache.is_empty());
    }
}

fn fixture_dir() -> PathBuf {
    std::env::var_os("NETMON_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/nettop")
        })
}

#[test]
fn every_fixture_gives_what_the_parser_gives_first_time_and_from_the_cache() {
    let dir = fixture_dir();
    assert!(
        dir.is_dir(),
        "nettop fixtures not found at {}",
        dir.display()
    );
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "found {} fixtures", files.len());
    let mut plain = 0;
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read");
        let mut cache = RowCache::default();
        check(&mut cache, &text);
        // The same text again: every row from the cache.
        check(&mut cache, &text);
        // Each count one larger: every identity from the cache, every count from the line.
        let bumped = bump_counts(&text);
        check(&mut cache, &bumped);
        if cache.snapshot(&bumped).is_some() {
            plain += 1;
            assert!(!cache.is_empty(), "{}", path.display());
        }
    }
    assert!(plain >= 3, "only {plain} fixtures are the plain case");
}

/// Every all-digit field one larger (counts and the odd digit-only name alike).
fn bump_counts(text: &str) -> String {
    text.split('\n')
        .map(|l| {
            l.split(',')
                .map(|f| match f.trim().parse::<u64>() {
                    Ok(n) if f.trim() == f => (n + 1).to_string(),
                    _ => f.to_string(),
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A machine whose counters move, whose processes come and go and whose sockets change
/// interface, printed tick after tick.
fn machine() -> (Sim, Vec<sim::SocketId>) {
    let mut s = Sim::new();
    let mut ids = Vec::new();
    for pid in 0..12u32 {
        s.spawn(&format!("proc {pid}"), 100 + pid);
        for c in 0..3u32 {
            let id = s.open(
                100 + pid,
                sim::socket(
                    if c == 2 { "udp4" } else { "tcp4" },
                    &format!("192.168.1.5:{}", 50000 + pid * 3 + c),
                    &format!("203.0.113.{}:443", c + 1),
                    "en0",
                ),
            );
            ids.push(id);
        }
    }
    s.spawn("quiet", 400); // a process without connection rows
    s.open(
        400,
        sim::Socket {
            state: "Listen".into(),
            ..sim::socket("tcp4", "*:22", "*:*", "")
        },
    );
    (s, ids)
}

#[test]
fn unchanged_rows_changed_rows_and_a_second_process_over_the_same_line() {
    let (mut s, ids) = machine();
    let mut cache = RowCache::default();
    check(&mut cache, &s.render(Style::default()));
    s.traffic(ids[0], 1000, 10);
    s.move_to(ids[4], "utun3");
    check(&mut cache, &s.render(Style::default()));
    // The same connection line listed under a reused pid's new process: its key takes the
    // new process's part, not the cached one.
    s.spawn("renamed", 101);
    s.open(
        101,
        sim::socket("tcp4", "192.168.1.5:50003", "203.0.113.1:443", "en0"),
    );
    check(&mut cache, &s.render(Style::default()));
    s.vanish(105);
    check(
        &mut cache,
        &s.render(Style {
            shuffle: 7,
            ..Style::default()
        }),
    );
    // Only the last sample's rows are kept.
    let rows = s.render(Style::default()).lines().count() - 1;
    check(&mut cache, &s.render(Style::default()));
    assert!(
        cache.len() <= rows,
        "{} entries for {rows} rows",
        cache.len()
    );
}

#[test]
fn a_new_header_a_cut_line_or_a_junk_line_goes_to_the_parser_and_empties_the_cache() {
    let (mut s, ids) = machine();
    let mut cache = RowCache::default();
    let text = s.render(Style::default());
    check(&mut cache, &text);
    // Other columns: the rows read differently, so nothing is reused.
    let other = text.replacen(sim::HEADER, ",state,interface,bytes_in,bytes_out,", 1);
    check(&mut cache, &other);
    check(&mut cache, &text);
    // Counts not at the end: the cache stands aside.
    let moved = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{},{},{},{},{},\n", f[0], f[3], f[4], f[1], f[2])
        })
        .collect::<String>();
    assert!(full(&moved).1, "{moved}");
    assert_eq!(cache.snapshot(&moved), None);
    check(&mut cache, &text);
    check(&mut cache, &text[..text.len() - 5]);
    check(&mut cache, &format!("{text}garbage line\n"));
    check(&mut cache, &format!("{text}{text}"));
    check(&mut cache, "");
    s.traffic(ids[3], 5, 5);
    check(
        &mut cache,
        &s.render(Style::default()).replace('\n', "\r\n"),
    );
    check(
        &mut cache,
        &s.render(Style {
            padded: true,
            ..Style::default()
        }),
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any run of samples, with traffic, interface moves, closes, exits, pid reuse, shuffled
    /// listing order and padding: the cache gives what the parser gives, every sample.
    #[test]
    fn the_cache_equals_the_parser_over_any_run(
        steps in proptest::collection::vec(
            (0usize..36, 0u8..6, 0u64..5000, 0u64..8, any::<bool>()),
            1..40,
        )
    ) {
        let (mut s, ids) = machine();
        let mut cache = RowCache::default();
        for (at, what, bytes, seed, padded) in steps {
            let id = ids[at];
            match what {
                0 | 1 => s.traffic(id, bytes, bytes / 3),
                2 => s.move_to(id, if bytes % 2 == 0 { "en0" } else { "utun3" }),
                3 => s.close(id),
                4 => s.vanish(100 + (at as u32 / 3)),
                _ => s.spawn("reused", 100 + (at as u32 / 3)),
            }
            let text = s.render(Style { shuffle: seed, padded, header_only: false });
            let (expected, plain) = full(&text);
            let got = cache.snapshot(&text);
            if plain && counts_last(&text) {
                prop_assert_eq!(got, expected);
            } else {
                prop_assert_eq!(got, None);
            }
        }
    }
}
