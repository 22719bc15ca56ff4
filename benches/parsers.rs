//! A randomised run of every parser that takes outside input (issue 13): nettop output, HTTP
//! request heads and bodies and the serve guard's header checks (both tokens, `/metrics`'
//! Accept header), the extension's JSON, the counter journal, the cgroup paths a container's
//! starter chooses, and the time ranges, durations and numbers users type (resolved against
//! the clock too, so an overflow in the arithmetic would show). Inputs are random bytes and mutations
//! (bytes flipped, inserted, deleted, spliced, lines repeated) of real seeds: the nettop
//! fixtures in ../shared/fixtures/nettop/, valid requests and bodies, valid durations and dates.
//!
//! `cargo bench --bench parsers` runs 10 million inputs (`NETMON_FUZZ_INPUTS` to change, and
//! `NETMON_FUZZ_SEED` to start elsewhere) on the stable toolchain, and prints how many each
//! parser got, how long it took, and every panic with the input that caused it (saved under
//! target/tmp/fuzz-panics/); it exits 1 if there was any. Not part of `cargo test`.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};

/// splitmix64: small, fast, and the same sequence everywhere for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to the parsers, to insert more often than chance would.
const INTERESTING: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b",",
    b":",
    b" ",
    b"\t",
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b"0",
    b"-1",
    b"18446744073709551615",
    b"9223372036854775808",
    b"99999999999999999999",
    b"1e308",
    b"NaN",
    b"null",
    b"true",
    b"\xff",
    b"\xc3\xa9",
    b"\xe2\x80\xae",
    b"\0",
    b"Content-Length: ",
    b"Transfer-Encoding: chunked",
    b"Expect: 100-continue",
    b"Host: ",
    b"Origin: ",
    b"Authorization: Bearer ",
    b"bytes_in",
    b"bytes_out",
    b"time",
    b"interface",
    b"state",
    b".",
    b"<->",
    b"*",
    b"%",
    b"y",
    b"d",
    b"w",
    b"ms",
    b"ns",
    b"T",
    b"Z",
    b"+",
    b"24:00",
    b"9999-12-31",
    b"1970-01-01",
    b"0000-00-00",
];

fn mutate(rng: &mut Rng, seed: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seed.to_vec();
    let edits = 1 + rng.below(8);
    for _ in 0..edits {
        match rng.below(9) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(v.len() + 1);
                let ins = INTERESTING[rng.below(INTERESTING.len())];
                v.splice(i..i, ins.iter().copied());
            }
            3 if !v.is_empty() => {
                let a = rng.below(v.len());
                let b = (a + 1 + rng.below(16)).min(v.len());
                v.drain(a..b);
            }
            4 if !v.is_empty() => {
                // Repeat a slice (a line, a field) a few times.
                let a = rng.below(v.len());
                let b = (a + 1 + rng.below(64)).min(v.len());
                let piece = v[a..b].to_vec();
                for _ in 0..1 + rng.below(4) {
                    v.splice(b..b, piece.iter().copied());
                }
            }
            5 if !corpus.is_empty() => {
                // Splice in part of another seed.
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = (a + 1 + rng.below(128)).min(other.len());
                    let i = rng.below(v.len() + 1);
                    v.splice(i..i, other[a..b].iter().copied());
                }
            }
            6 if !v.is_empty() => {
                let cut = rng.below(v.len() + 1);
                v.truncate(cut);
            }
            7 => {
                let i = rng.below(v.len() + 1);
                let digits: Vec<u8> = (0..1 + rng.below(25))
                    .map(|_| b'0' + rng.below(10) as u8)
                    .collect();
                v.splice(i..i, digits);
            }
            _ => {
                let i = rng.below(v.len() + 1);
                let n = rng.below(8);
                let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(i..i, junk);
            }
        }
    }
    v
}

/// An input for a parser: mostly mutated seeds, sometimes random bytes or printable text.
fn input(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    match rng.below(10) {
        0 => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
        1 => (0..rng.below(64))
            .map(|_| b' ' + rng.below(95) as u8)
            .collect(),
        _ => {
            let seed = &seeds[rng.below(seeds.len())];
            mutate(rng, seed, seeds)
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Target {
    name: &'static str,
    seeds: Vec<Vec<u8>>,
    /// Share of the inputs (weights).
    weight: usize,
    run: fn(&[u8]),
}

fn nettop_seeds() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/nettop");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "csv"))
                .filter_map(|e| std::fs::read(e.path()).ok())
                .map(|b| b[..b.len().min(16 * 1024)].to_vec())
                .collect()
        })
        .unwrap_or_default();
    if seeds.is_empty() {
        eprintln!(
            "WARNING: no nettop fixtures in {}: nettop inputs are mutations of one line only",
            dir.display()
        );
    }
    seeds.push(
        b"time,,interface,state,bytes_in,bytes_out,\n12:00:00.1,curl.123,,,100,200,\n\
          12:00:00.1,tcp4 10.0.0.1:5000<->1.2.3.4:443,en0,Established,100,200,\n"
            .to_vec(),
    );
    seeds
}

fn http_seeds() -> Vec<Vec<u8>> {
    vec![
        b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:7500\r\nAuthorization: Bearer 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n\r\n".to_vec(),
        b"POST /v1/heartbeats HTTP/1.1\r\nHost: localhost\r\nOrigin: moz-extension://abc-def\r\nContent-Type: application/json\r\nContent-Length: 18\r\nExpect: 100-continue\r\n\r\n{\"heartbeats\": []}".to_vec(),
        b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:7500\r\nAccept: application/openmetrics-text;version=1.0.0;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1\r\nAuthorization: Bearer fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210\r\n\r\n".to_vec(),
        b"OPTIONS /v1/observations HTTP/1.1\r\nHost: [::1]:7500\r\nOrigin: chrome-extension://abcdefghijklmnop\r\nAccess-Control-Request-Method: POST\r\n\r\n".to_vec(),
    ]
}

fn json_seeds() -> Vec<Vec<u8>> {
    vec![
        br#"{"heartbeats": [{"browser": "Firefox", "host": "www.example.org", "time": "2026-11-24T10:00:05Z", "duration": 30, "private": false}, {"browser": "Chrome", "host": null, "time": "2026-11-24T10:00:35.250+01:00", "duration": 0.5}]}"#.to_vec(),
        br#"{"observations": [{"browser": "Firefox", "host": "static.example.org", "ip": "192.0.2.10", "time": "2026-11-24T10:00:05Z"}, {"browser": "Safari", "host": "a.b.c.example.co.uk", "ip": "2001:db8::1", "time": "2026-11-24T10:00:06Z"}]}"#.to_vec(),
    ]
}

fn journal_seeds() -> Vec<Vec<u8>> {
    // Version 1, then entries: SET_NEW len key in out, SET_ID id in out, FORGET_NEW len key,
    // FORGET_ID id (varints).
    vec![
        [
            &[1u8, 1, 5][..],
            b"k:1/a",
            &[0x80, 0x01, 7],
            &[2, 0, 9, 10],
            &[0, 3],
            b"k:2",
            &[3, 0],
        ]
        .concat(),
        vec![
            1, 2, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0,
        ],
    ]
}

fn cgroup_seeds() -> Vec<Vec<u8>> {
    [
        "0::/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope\n",
        "12:pids:/docker/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n0::/\n",
        "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope/container\n",
        "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice/cri-containerd-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope\n",
        "0::/lxc.payload.web/init.scope\n",
        "0::/machine.slice/machine-build\\x2dbox.scope/payload\n",
        "0::/kubepods/besteffort/pod1234-5678/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn time_seeds() -> Vec<Vec<u8>> {
    [
        "5s",
        "500ms",
        "2m",
        "1h 30m",
        "7d",
        "2w",
        "36500d",
        "0",
        "auto",
        "15m",
        "1d",
        "2024-05-01",
        "2024-05-01 13:30",
        "2024-05-01T13:30:15",
        "2024-05-01T13:30:00Z",
        "2024-05-01T13:30:00+05:30",
        "today",
        "yesterday",
        "now",
        "127.0.0.1:7500",
        "[::1]:0",
        "1000000",
        "12500000000",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn run_nettop(b: &[u8]) {
    let _ = netmon::source::nettop::parse::parse(&text(b));
}

fn run_http(b: &[u8]) {
    use netmon::serve::{guard, http};
    let token = netmon::serve::token::Token::from_secret(
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    );
    let metrics_token = netmon::serve::token::Token::from_secret(
        "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
    );
    // Fed whole and in two pieces, as a connection delivers it.
    let split = b.len() / 2;
    let _ = http::parse_head(&b[..split]);
    if let Ok(Some(mut head)) = http::parse_head(b) {
        let _ = http::check_body(&head, 64 * 1024);
        let _ = head.push_body(&b[split..]);
        let r = &head.request;
        if let Ok(h) = r.header("host") {
            let _ = guard::host(h, "127.0.0.1".parse().expect("ip"));
        }
        if let Ok(o) = r.header("origin") {
            let _ = guard::origin(o);
        }
        if let Ok(a) = r.header("authorization") {
            let _ = guard::token(a, &token);
            let _ = guard::metrics_token(a, &metrics_token);
        }
        if let Ok(a) = r.header("accept") {
            let _ = netmon::serve::metrics::negotiate(a);
        }
        let _ = guard::is_metrics(&r.target);
        let _ = guard::route(&r.method, &r.target);
        let _ = guard::allowed_method(&r.target);
        let _ = head.complete();
    }
}

fn run_json(b: &[u8]) {
    let now = 1_795_000_000_000;
    let _ = netmon::serve::api::heartbeats(b, now);
    let _ = netmon::serve::api::observations(b, now);
}

fn run_journal(b: &[u8]) {
    let mut keys = Vec::new();
    let mut into = HashMap::new();
    let _ = netmon::store::state::decode_into(b, 1, &mut keys, &mut into);
    // A second row referring to the first row's keys.
    let _ = netmon::store::state::decode_into(b, 2, &mut keys, &mut into);
}

fn run_cgroup(b: &[u8]) {
    let _ = netmon::procinfo::container::from_cgroup_file(&text(b));
}

fn run_time(b: &[u8]) {
    use netmon::query::range::{self, RangeSpec};
    let s = text(b);
    let since = range::parse_since(&s).ok();
    let when = range::parse_when(&s).ok();
    let _ = netmon::query::timeline::parse_bucket(&s);
    let _ = netmon::cli::parse_interval(&s);
    let _ = netmon::cli::parse_keep(&s);
    let _ = netmon::input::socket_addr(&s);
    let _ = netmon::cli::LIMIT.parse(&s);
    let _ = netmon::cli::MAX_RATE.parse(&s);
    let _ = netmon::cli::METRICS_MIN_BYTES.parse(&s);
    // Resolve what parsed against a few clocks and zones: the arithmetic must not overflow.
    let nows = [
        Utc.with_ymd_and_hms(2024, 9, 8, 3, 30, 0).single(),
        DateTime::<Utc>::from_timestamp(0, 0),
        Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).single(),
    ];
    for now in nows.into_iter().flatten() {
        for spec in [
            RangeSpec {
                since,
                from: None,
                until: None,
            },
            RangeSpec {
                since: None,
                from: when,
                until: None,
            },
            RangeSpec {
                since: None,
                from: when,
                until: when,
            },
            RangeSpec {
                since: None,
                from: None,
                until: when,
            },
        ] {
            let _ = range::resolve(&spec, now, &chrono_tz::America::Santiago, i64::MIN / 4);
            let _ = range::resolve(&spec, now, &Utc, now.timestamp_millis());
        }
    }
}

fn main() {
    let total: u64 = std::env::var("NETMON_FUZZ_INPUTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let seed: u64 = std::env::var("NETMON_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(13);
    let targets = [
        Target {
            name: "nettop output",
            seeds: nettop_seeds(),
            weight: 2,
            run: run_nettop,
        },
        Target {
            name: "HTTP request + guard",
            seeds: http_seeds(),
            weight: 3,
            run: run_http,
        },
        Target {
            name: "extension JSON",
            seeds: json_seeds(),
            weight: 2,
            run: run_json,
        },
        Target {
            name: "counter journal",
            seeds: journal_seeds(),
            weight: 2,
            run: run_journal,
        },
        Target {
            name: "container cgroup paths",
            seeds: cgroup_seeds(),
            weight: 1,
            run: run_cgroup,
        },
        Target {
            name: "durations, times, ranges",
            seeds: time_seeds(),
            weight: 3,
            run: run_time,
        },
    ];
    // Panics are caught and counted; their default message would flood the terminal.
    std::panic::set_hook(Box::new(|_| {}));
    let weights: usize = targets.iter().map(|t| t.weight).sum();
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp/fuzz-panics");
    println!("randomised parser run: {total} inputs, seed {seed}");
    let started = Instant::now();
    let mut panics = 0u64;
    let mut given = 0u64;
    for (k, t) in targets.iter().enumerate() {
        // The last target takes what rounding left, so the inputs add up to `total` exactly.
        let n = if k + 1 == targets.len() {
            total - given
        } else {
            total * t.weight as u64 / weights as u64
        };
        given += n;
        let mut rng = Rng(seed.wrapping_mul(1000).wrapping_add(k as u64));
        let t0 = Instant::now();
        let mut bytes = 0u64;
        let mut mine = 0u64;
        for i in 0..n {
            let inp = input(&mut rng, &t.seeds);
            bytes += inp.len() as u64;
            let run = t.run;
            if std::panic::catch_unwind(|| run(&inp)).is_err() {
                mine += 1;
                if mine <= 5 {
                    let _ = std::fs::create_dir_all(&out_dir);
                    let file = out_dir.join(format!("{}-{i}.bin", t.name.replace(' ', "_")));
                    let _ = std::fs::write(&file, &inp);
                    println!(
                        "  PANIC in {} on input {i}: saved to {}",
                        t.name,
                        file.display()
                    );
                }
            }
        }
        let took = t0.elapsed();
        println!(
            "  {:<26} {:>10} inputs ({:>6.1} MB) in {:>6.1} s: {} panics",
            t.name,
            n,
            bytes as f64 / 1e6,
            took.as_secs_f64(),
            mine
        );
        panics += mine;
    }
    let took: Duration = started.elapsed();
    println!(
        "total: {given} inputs in {:.1} s, {panics} panics",
        took.as_secs_f64()
    );
    if panics > 0 {
        std::process::exit(1);
    }
}
