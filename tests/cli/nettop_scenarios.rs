//! Issue 14 ("macOS, the first platform: right numbers under real nettop"): the nettop
//! behaviours FORMAT.md records, each played by the model in `netmon::source::nettop::sim`
//! through the fake `nettop`, recorded by the real binary, and checked against the model's
//! truth exactly: interface moves, reorders, identical rows, wildcard and loopback-bound
//! sockets, padded output and rows of processes that exited.

use std::collections::BTreeMap;
use std::time::Duration;

use netmon::source::nettop::sim::{Sim, Style, socket};

use crate::util::{Env, finish};

/// Pids above Linux's pid_max, so no real process is found under them and the names stay
/// nettop's.
const MDNS: u32 = 5_000_690;
const SAFARI: u32 = 5_000_501;
const TUNNEL: u32 = 5_041_723;

const INTERFACES: [&str; 4] = ["en0", "awdl0", "utun4", "en1"];

/// Write the samples as the fake nettop's steps, record one tick per sample, and return the
/// per-application totals in the database.
fn record(samples: &[String], extra: &[&str]) -> BTreeMap<String, (u64, u64)> {
    let env = Env::new();
    for (n, text) in samples.iter().enumerate() {
        env.step(n + 1, "csv", text);
    }
    let ticks = samples.len().to_string();
    let mut args = vec![
        "--source",
        "nettop",
        "--interval",
        "100ms",
        "--ticks",
        &ticks,
    ];
    args.extend_from_slice(extra);
    let child = env.spawn_record(&args);
    let (code, stderr) = finish(child, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !stderr.contains("skipped a nettop line"),
        "every line of the model's output parses: {stderr}"
    );
    let conn = env.sql();
    let mut st = conn
        .prepare(
            "SELECT a.name, sum(s.bytes_in), sum(s.bytes_out) FROM samples s \
             JOIN processes p ON p.id = s.process_id JOIN apps a ON a.id = p.app_id GROUP BY a.name",
        )
        .expect("prepare");
    st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            (r.get::<_, i64>(1)?, r.get::<_, i64>(2)?),
        ))
    })
    .expect("query")
    .map(|r| {
        let (name, (i, o)) = r.expect("row");
        (name, (i as u64, o as u64))
    })
    .collect()
}

/// mDNSResponder as the real captures show it: one wildcard `*.5353` socket per interface
/// (twins, identical but for the interface), a v4 wildcard, and a DNS connection over a VPN.
fn mdns(sim: &mut Sim) -> Vec<netmon::source::nettop::sim::SocketId> {
    sim.spawn("mDNSResponder", MDNS);
    let mut ids = Vec::new();
    for (n, iface) in ["awdl0", "en0", "en1"].iter().enumerate() {
        let id = sim.open(MDNS, socket("udp6", "*.5353", "*.*", iface));
        sim.traffic(id, 23_966_085 + n as u64 * 1_000_000, 17_041_546);
        ids.push(id);
    }
    let v4 = sim.open(MDNS, socket("udp4", "*:5353", "*:*", "en0"));
    sim.traffic(v4, 24_743_335, 16_720_863);
    ids.push(v4);
    let dns = sim.open(
        MDNS,
        socket("tcp4", "198.18.0.1:64818", "1.1.1.1:443", "utun8"),
    );
    sim.traffic(dns, 922_471, 363_938);
    ids.push(dns);
    ids
}

#[test]
fn issue_14_a_socket_that_moves_between_interfaces_is_counted_once() {
    let mut sim = Sim::new();
    let ids = mdns(&mut sim);
    let mut samples = vec![sim.render(Style::default())];
    sim.mark();
    // awdl0 → en0 (AirDrop ends), then on to a VPN, then back; traffic on each.
    for (step, iface) in ["en0", "utun4", "awdl0"].iter().enumerate() {
        sim.move_to(ids[0], iface);
        sim.traffic(ids[0], 12_391 + step as u64, 2_220);
        sim.traffic(ids[3], 13_317, 1_680);
        samples.push(sim.render(Style::default()));
    }
    let got = record(&samples, &[]);
    assert_eq!(got, sim.moved(false));
    assert_eq!(
        got["mDNSResponder"],
        (3 * 12_391 + 3 + 3 * 13_317, 3 * 2_220 + 3 * 1_680)
    );
}

#[test]
fn issue_14_rows_in_a_new_order_every_sample_change_nothing() {
    let mut sim = Sim::new();
    let ids = mdns(&mut sim);
    sim.spawn("Safari", SAFARI);
    let mut safari = Vec::new();
    for port in 50_000..50_006 {
        let id = sim.open(
            SAFARI,
            socket(
                "quic4",
                &format!("192.0.2.7:{port}"),
                "198.51.100.1:443",
                "en0",
            ),
        );
        sim.traffic(id, 40_000, 4_000);
        safari.push(id);
    }
    let mut samples = vec![sim.render(Style::default())];
    sim.mark();
    for seed in [3, 17, 99, 12345] {
        for (n, id) in safari.iter().enumerate() {
            sim.traffic(*id, 1_000 * n as u64, 10 * n as u64 + seed % 7);
        }
        sim.traffic(ids[1], seed, 1);
        samples.push(sim.render(Style {
            shuffle: seed,
            ..Style::default()
        }));
    }
    assert_eq!(record(&samples, &[]), sim.moved(false));
}

#[test]
fn issue_14_identical_rows_are_told_apart_by_their_counters() {
    // Three twins; only one moves bytes, and the listing order changes every sample. Numbering
    // repeats in listing order would turn each swap into a reset and count whole counters.
    let mut sim = Sim::new();
    let ids = mdns(&mut sim);
    // All three on one interface now: their rows are identical but for the counts.
    for id in &ids[..3] {
        sim.move_to(*id, "en0");
    }
    let mut samples = vec![sim.render(Style::default())];
    sim.mark();
    for seed in [5, 6, 7, 8, 9] {
        sim.traffic(ids[2], 100, 10);
        samples.push(sim.render(Style {
            shuffle: seed,
            ..Style::default()
        }));
    }
    let got = record(&samples, &[]);
    assert_eq!(got, sim.moved(false));
    assert_eq!(got["mDNSResponder"], (500, 50));
}

/// A local proxy as in the captures (`Tunnel`): a UDP socket bound to 127.0.0.1 with a
/// wildcard remote on lo0, carrying hundreds of MB that never leave the machine, and one
/// outside connection.
fn tunnel(
    sim: &mut Sim,
) -> (
    netmon::source::nettop::sim::SocketId,
    netmon::source::nettop::sim::SocketId,
) {
    sim.spawn("Tunnel", TUNNEL);
    let mut local = socket("udp4", "127.0.0.1:10808", "*:*", "lo0");
    local.loopback = true;
    let local = sim.open(TUNNEL, local);
    sim.traffic(local, 295_705_815, 659_660_415);
    let out = sim.open(
        TUNNEL,
        socket("tcp4", "192.168.1.134:62372", "144.31.99.109:443", "en0"),
    );
    (local, out)
}

#[test]
fn issue_14_wildcard_sockets_count_and_loopback_bound_ones_do_not() {
    let mut sim = Sim::new();
    let ids = mdns(&mut sim);
    let (local, out) = tunnel(&mut sim);
    let mut samples = vec![sim.render(Style::default())];
    sim.mark();
    for _ in 0..3 {
        sim.traffic(ids[3], 2_000, 200); // the v4 wildcard: real mDNS traffic
        sim.traffic(local, 50_000_000, 70_000_000);
        sim.traffic(out, 6_702, 2_786);
        samples.push(sim.render(Style::default()));
    }
    let got = record(&samples, &[]);
    assert_eq!(got, sim.moved(false));
    assert_eq!(
        got["Tunnel"],
        (3 * 6_702, 3 * 2_786),
        "the proxy's loopback bytes are left out"
    );
    assert_eq!(got["mDNSResponder"], (6_000, 600));
    // Asked for, loopback is counted too, exactly.
    let all = record(&samples, &["--include-loopback"]);
    assert_eq!(all, sim.moved(true));
}

#[test]
fn issue_14_space_padded_output_records_the_same_totals() {
    let mut sim = Sim::new();
    let ids = mdns(&mut sim);
    let padded = Style {
        padded: true,
        ..Style::default()
    };
    let mut samples = vec![sim.render(padded)];
    sim.mark();
    for (n, iface) in INTERFACES.iter().enumerate() {
        sim.move_to(ids[1], iface);
        sim.traffic(ids[1], 1_000 + n as u64, 100);
        sim.traffic(ids[4], 5, 7);
        samples.push(sim.render(Style {
            shuffle: n as u64 + 1,
            ..padded
        }));
    }
    assert!(samples[1].contains("   "), "the samples really are padded");
    assert_eq!(record(&samples, &[]), sim.moved(false));
}

#[test]
fn issue_14_rows_of_a_process_that_exited_count_nothing_more() {
    // A process that exited keeps being listed for a while with its last counts (bandpeek saw
    // "historical exited nettop rows"); then it is gone, and its pid comes back as another
    // program, counted from zero.
    let mut sim = Sim::new();
    sim.spawn("curl", SAFARI);
    let c = sim.open(
        SAFARI,
        socket("tcp4", "192.0.2.1:50020", "198.51.100.20:443", "en0"),
    );
    sim.traffic(c, 5_000, 50);
    let mut samples = vec![sim.render(Style::default())];
    sim.mark();
    sim.traffic(c, 1_000, 10);
    samples.push(sim.render(Style::default()));
    // curl has exited: its row stays, frozen, for two samples.
    samples.push(sim.render(Style::default()));
    samples.push(sim.render(Style::default()));
    sim.vanish(SAFARI);
    samples.push(sim.render(Style::default()));
    sim.spawn("ssh", SAFARI);
    let s = sim.open(
        SAFARI,
        socket("tcp4", "192.0.2.1:50030", "198.51.100.30:22", "en0"),
    );
    sim.traffic(s, 700, 300);
    samples.push(sim.render(Style::default()));
    let got = record(&samples, &[]);
    assert_eq!(got, sim.moved(false));
    assert_eq!(got["curl"], (1_000, 10));
    assert_eq!(got["ssh"], (700, 300));
}
