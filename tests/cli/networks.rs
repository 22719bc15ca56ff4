//! Issue 15: what each interface carried, on which network, and the share netmon explains.
//! The recorder runs with the fake nettop and its interface reader pointed at fixture files
//! (`NETMON_NET_ROOT`, filled per step by tests/fake-nettop/nettop from `step-N.net/`), so the
//! interfaces' counters are scripted like the sockets' and every total is known exactly.

use std::collections::BTreeMap;
use std::path::Path;

use std::time::Duration;

use crate::util::{
    Env, Serve, finish, json_array, place_script, proc_net_dev, record_nettop, signal, u,
    wait_until,
};

const H: &str = ",interface,state,bytes_in,bytes_out,\n";
const CURL: &str = "curl.5000002";

fn curl(b: (u64, u64)) -> String {
    format!(
        "{H}{CURL},,,{},{},\ntcp4 192.0.2.1:50020<->198.51.100.20:443,en0,Established,{},{},\n",
        b.0, b.1, b.0, b.1
    )
}

/// An interface in a step: name, index, bytes in, bytes out.
pub type If<'a> = (&'a str, u32, u64, u64);

pub const GW_A: &str = "aa:bb:cc:dd:ee:01";
pub const GW_B: &str = "aa:bb:cc:dd:ee:02";

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

/// Step `n`: nettop prints curl at `app`; the interfaces are `ifaces`, eth0's default gateway
/// has hardware address `gw`. eth0 is Ethernet (it has a device), usb0 a cellular modem
/// (DEVTYPE=wwan), lo loopback.
pub fn step(env: &Env, n: usize, app: (u64, u64), ifaces: &[If<'_>], gw: &str) {
    env.step(n, "csv", &curl(app));
    interfaces(env, n, ifaces, gw);
}

/// Step `n`'s interfaces only (`step-N.net/`), for tests whose nettop steps are written
/// otherwise.
pub fn interfaces(env: &Env, n: usize, ifaces: &[If<'_>], gw: &str) {
    let root = env.steps.join(format!("step-{n:04}.net"));
    let rows: Vec<(&str, u64, u64)> = ifaces.iter().map(|i| (i.0, i.2, i.3)).collect();
    write(&root, "proc/net/dev", &proc_net_dev(&rows));
    write(
        &root,
        "proc/net/route",
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
         eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n",
    );
    write(
        &root,
        "proc/net/arp",
        &format!(
            "IP address       HW type     Flags       HW address            Mask     Device\n\
             10.0.0.1         0x1         0x2         {gw}     *        eth0\n"
        ),
    );
    for (name, index, _, _) in ifaces {
        let sys = format!("sys/class/net/{name}");
        write(&root, &format!("{sys}/ifindex"), &format!("{index}\n"));
        let arphrd = if *name == "lo" { "772" } else { "1" };
        write(&root, &format!("{sys}/type"), &format!("{arphrd}\n"));
        match *name {
            "eth0" => write(&root, &format!("{sys}/device/vendor"), "0x8086\n"),
            "usb0" => write(&root, &format!("{sys}/uevent"), "DEVTYPE=wwan\n"),
            n if n.starts_with("tun") => write(&root, &format!("{sys}/tun_flags"), "0x1001\n"),
            _ => {}
        }
    }
}

/// (network key, interface) → (bytes in, bytes out), from `networks --json ARGS`.
pub fn by_network(env: &Env, args: &[&str]) -> BTreeMap<(String, String), (u64, u64)> {
    let mut full = vec!["networks", "--json"];
    full.extend_from_slice(args);
    json_array(&mut env.netmon(), &full)
        .iter()
        .map(|r| {
            (
                (
                    r["key"].as_str().expect("key").to_string(),
                    r["interface"].as_str().expect("interface").to_string(),
                ),
                (u(r, "bytes_in"), u(r, "bytes_out")),
            )
        })
        .collect()
}

fn expect(rows: &[(&str, &str, u64, u64)]) -> BTreeMap<(String, String), (u64, u64)> {
    rows.iter()
        .map(|(k, i, a, b)| ((k.to_string(), i.to_string()), (*a, *b)))
        .collect()
}

/// Sum of `apps --json ARGS` (bytes in, bytes out).
fn apps_sum(env: &Env, args: &[&str]) -> (u64, u64) {
    let mut full = vec!["apps", "--json"];
    full.extend_from_slice(args);
    json_array(&mut env.netmon(), &full)
        .iter()
        .fold((0, 0), |(a, b), r| {
            (a + u(r, "bytes_in"), b + u(r, "bytes_out"))
        })
}

/// The five steps of the main scenario.
pub fn scenario(env: &Env) {
    // 1: baselines.
    step(
        env,
        1,
        (1000, 100),
        &[
            ("lo", 1, 10, 10),
            ("eth0", 2, 1000, 100),
            ("usb0", 5, 500, 50),
        ],
        GW_A,
    );
    // 2: eth0 +2000/+200 and usb0 +1000/+100 on network A; loopback +10/+10; curl +600/+60.
    step(
        env,
        2,
        (1600, 160),
        &[
            ("lo", 1, 20, 20),
            ("eth0", 2, 3000, 300),
            ("usb0", 5, 1500, 150),
        ],
        GW_A,
    );
    // 3: usb0 unplugged; eth0 +1000/+100; curl +300/+30.
    step(
        env,
        3,
        (1900, 190),
        &[("lo", 1, 20, 20), ("eth0", 2, 4000, 400)],
        GW_A,
    );
    // 4: usb0 back under a new index, counters restarted: +200/+20; eth0's counters reset:
    //    +500/+50; curl +100/+10 (eth0 carried most: network A).
    step(
        env,
        4,
        (2000, 200),
        &[
            ("lo", 1, 20, 20),
            ("eth0", 2, 500, 50),
            ("usb0", 6, 200, 20),
        ],
        GW_A,
    );
    // 5: eth0 now behind another router (network B): +1000/+100; curl +400/+40 on B.
    step(
        env,
        5,
        (2400, 240),
        &[
            ("lo", 1, 20, 20),
            ("eth0", 2, 1500, 150),
            ("usb0", 6, 200, 20),
        ],
        GW_B,
    );
}

pub fn expected_interfaces() -> BTreeMap<(String, String), (u64, u64)> {
    expect(&[
        ("gw:aa:bb:cc:dd:ee:01", "eth0", 3500, 350),
        ("gw:aa:bb:cc:dd:ee:02", "eth0", 1000, 100),
        ("if:usb0", "usb0", 1200, 120),
    ])
}

/// Whole UTC hours around every tick, as RFC 3339 (the hourly table answers them).
fn whole_hours(env: &Env) -> (String, String) {
    let first = env.one("SELECT min(at) FROM ticks");
    let last = env.one("SELECT max(at) FROM ticks");
    let h = 3_600_000;
    let fmt = |ms: i64| {
        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
            .expect("time")
            .to_rfc3339()
    };
    (
        fmt(first.div_euclid(h) * h),
        fmt((last.div_euclid(h) + 1) * h),
    )
}

#[test]
fn issue_15_interfaces_removed_re_added_and_reset_and_a_network_change_are_counted_exactly() {
    let env = Env::new();
    scenario(&env);
    env.netmon().args(record_nettop("5")).assert().success();
    let want = expected_interfaces();
    // Raw ticks, hourly rows and daily rows agree.
    assert_eq!(by_network(&env, &["--since", "1h"]), want, "raw");
    let (from, until) = whole_hours(&env);
    assert_eq!(
        by_network(&env, &["--from", &from, "--until", &until]),
        want,
        "hourly"
    );
    assert_eq!(
        by_network(&env, &["--from", "today", "--until", "today"]),
        want,
        "daily"
    );
    // Kinds as the OS files say.
    let rows = json_array(&mut env.netmon(), &["networks", "--json", "--since", "1h"]);
    let kind = |i: &str| {
        rows.iter().find(|r| r["interface"] == i).map(|r| {
            (
                r["kind"].as_str().unwrap_or("").to_string(),
                r["counted"].as_bool(),
            )
        })
    };
    assert_eq!(kind("eth0"), Some(("ethernet".into(), Some(true))));
    assert_eq!(kind("usb0"), Some(("cellular".into(), Some(true))));
    // Loopback is not read without --include-loopback, as for applications.
    assert_eq!(kind("lo"), None);
}

#[test]
fn issue_15_apps_on_a_network_sum_to_what_was_attributed_there_and_name_works() {
    let env = Env::new();
    scenario(&env);
    // With --include-loopback the loopback interface is listed, apart.
    env.netmon()
        .args(record_nettop("5"))
        .arg("--include-loopback")
        .assert()
        .success();
    let rows = json_array(&mut env.netmon(), &["networks", "--json", "--since", "1h"]);
    let id = |key: &str| {
        rows.iter()
            .find(|r| r["key"] == key)
            .map(|r| u(r, "network_id").to_string())
            .expect("network")
    };
    let lo = rows
        .iter()
        .find(|r| r["interface"] == "lo")
        .expect("lo listed");
    assert_eq!((u(lo, "bytes_in"), u(lo, "bytes_out")), (10, 10));
    assert_eq!(
        (lo["kind"].as_str(), lo["counted"].as_bool()),
        (Some("loopback"), Some(false))
    );
    let (a, b) = (id("gw:aa:bb:cc:dd:ee:01"), id("gw:aa:bb:cc:dd:ee:02"));
    let (from, until) = whole_hours(&env);
    for range in [
        vec!["--since", "1h"],
        vec!["--from", &from, "--until", &until],
        vec!["--from", "today", "--until", "today"],
    ] {
        let on = |n: &str| {
            let mut args = vec!["--network", n];
            args.extend_from_slice(&range);
            apps_sum(&env, &args)
        };
        assert_eq!(on(&a), (1000, 100), "network A over {range:?}");
        assert_eq!(on(&b), (400, 40), "network B over {range:?}");
        assert_eq!(apps_sum(&env, &range), (1400, 140), "all over {range:?}");
        // The timeline limited to a network adds up to the same.
        let mut args = vec!["timeline", "--json", "--network", &b];
        args.extend_from_slice(&range);
        let buckets = json_array(&mut env.netmon(), &args);
        let sum = buckets.iter().fold((0, 0), |(i, o), r| {
            (i + u(r, "bytes_in"), o + u(r, "bytes_out"))
        });
        assert_eq!(sum, (400, 40), "timeline on B over {range:?}");
    }
    env.netmon()
        .args(["networks", "name", &b, "Phone hotspot"])
        .assert()
        .success();
    assert_eq!(apps_sum(&env, &["--network", "phone HOTSPOT"]), (400, 40));
    // JSON and CSV rows limited to a network say which, and how bytes were put on it (nettop
    // names each connection's interface: per connection); unlimited rows do not.
    for cmd in ["apps", "timeline"] {
        let rows = json_array(
            &mut env.netmon(),
            &[cmd, "--json", "--network", "phone HOTSPOT", "--since", "1h"],
        );
        assert!(!rows.is_empty(), "{cmd}: no rows");
        for r in &rows {
            assert_eq!(r["network"], "Phone hotspot", "{cmd}: {r}");
            assert_eq!(r["network_split"], "connection", "{cmd}: {r}");
        }
        let all = json_array(&mut env.netmon(), &[cmd, "--json", "--since", "1h"]);
        assert!(
            all.iter().all(|r| r.get("network").is_none()),
            "{cmd}: {all:?}"
        );
        let csv = env
            .netmon()
            .args([cmd, "--csv", "--network", &b, "--since", "1h"])
            .output()
            .expect("csv");
        let csv = String::from_utf8_lossy(&csv.stdout);
        let mut lines = csv.lines();
        let header = lines.next().unwrap_or_default();
        assert!(
            header.ends_with(",network,network_split"),
            "{cmd}: {header}"
        );
        assert!(
            lines.all(|l| l.ends_with(",Phone hotspot,connection")),
            "{cmd}: {csv}"
        );
    }
    let table = env
        .netmon()
        .args(["networks", "--since", "1h"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("Phone hotspot"), "{text}");
    // 1540 of the 6270 bytes the counted interfaces (eth0, usb0) carried.
    assert!(
        text.contains("applications account for 24.6% of the 6.27 kB your interfaces carried"),
        "{text}"
    );
    // The report limited to the network names it and counts only its bytes.
    let page = env
        .netmon()
        .args([
            "report",
            "html",
            "--network",
            "Phone hotspot",
            "--since",
            "1h",
            "-o",
            "-",
        ])
        .output()
        .expect("report");
    assert!(
        page.status.success(),
        "{}",
        String::from_utf8_lossy(&page.stderr)
    );
    let page = String::from_utf8_lossy(&page.stdout);
    assert!(
        page.contains("Phone hotspot"),
        "the report does not name the network"
    );
    assert!(
        page.contains("applications&#x27; bytes here (split per connection)")
            || page.contains("applications' bytes here (split per connection)"),
        "the report does not say how the applications' bytes were put on networks"
    );
    assert!(
        page.contains("Explained"),
        "the report's headline has no explained share"
    );
    assert!(
        page.contains("\"bytes_total\":440"),
        "the report's totals are not network B's"
    );
    let apps = env
        .netmon()
        .args(["apps", "--since", "1h"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&apps.stdout);
    assert!(text.contains("applications account for 24.6%"), "{text}");
    // An unknown network is a user error naming the known ones.
    env.netmon()
        .args(["apps", "--network", "nowhere"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("no network called \"nowhere\""))
        .stderr(predicates::str::contains("Phone hotspot"));
}

#[test]
fn issue_15_a_recorder_restart_between_two_ticks_loses_and_double_counts_nothing() {
    let env = Env::new();
    let ifs = |eth: (u64, u64)| [("lo", 1, 0, 0), ("eth0", 2, eth.0, eth.1)];
    step(&env, 1, (100, 10), &ifs((1000, 100)), GW_A);
    step(&env, 2, (200, 20), &ifs((2000, 200)), GW_A);
    step(&env, 3, (300, 30), &ifs((3000, 300)), GW_A);
    // Between the runs eth0 carried 500/50 and curl 50/5: the second run's first tick
    // continues from the saved counters, as it does for applications.
    step(&env, 4, (350, 35), &ifs((3500, 350)), GW_A);
    step(&env, 5, (450, 45), &ifs((4500, 450)), GW_A);
    env.netmon().args(record_nettop("3")).assert().success();
    env.netmon().args(record_nettop("2")).assert().success();
    assert_eq!(
        by_network(&env, &["--since", "1h"]),
        expect(&[("gw:aa:bb:cc:dd:ee:01", "eth0", 3500, 350)])
    );
    assert_eq!(apps_sum(&env, &["--since", "1h"]), (350, 35));
}

/// A fake `notify-send` first on PATH that appends its arguments to `notified` in `dir`.
pub fn fake_notifier(env: &Env) -> String {
    let bin = env.dir.path().join("fakebin");
    std::fs::create_dir_all(&bin).expect("fakebin");
    let log = env.dir.path().join("notified");
    let script = bin.join("notify-send");
    place_script(
        &script,
        &format!("#!/bin/sh\necho \"$*\" >> '{}'\n", log.display()),
    );
    let fake_nettop = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-nettop");
    format!(
        "{}:{}:/usr/local/bin:/usr/bin:/bin",
        bin.display(),
        fake_nettop.display()
    )
}

pub fn notified(env: &Env) -> Vec<String> {
    std::fs::read_to_string(env.dir.path().join("notified"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The cap scenario: a 10 kB daily cap over all networks, a baseline tick recorded, and five
/// steps to come that bring eth0 to 50%, 85% (80% crossed), 95%, 105% (100% crossed) and 115%.
/// Returns the PATH with the fake notifier first.
fn cap_scenario(env: &Env) -> String {
    let path = fake_notifier(env);
    let ifs = |eth: u64| [("lo", 1, 0, 0), ("eth0", 2, eth, 0)];
    for (n, eth) in [
        (1, 0),
        (2, 5000),
        (3, 8500),
        (4, 9500),
        (5, 10_500),
        (6, 11_500),
    ] {
        step(env, n, (100 * n as u64, 0), &ifs(eth), GW_A);
    }
    env.netmon().args(record_nettop("1")).assert().success();
    env.netmon()
        .args(["networks", "cap", "all", "10kB", "--period", "day"])
        .assert()
        .success();
    path
}

#[test]
fn issue_15_a_cap_crossing_notifies_once_per_threshold_and_status_shows_it() {
    let env = Env::new();
    let path = cap_scenario(&env);
    // Ticks are ~100 ms apart, well within the recorder's minute between reloads: every
    // tick after the first adds to the running total.
    env.netmon()
        .env("PATH", &path)
        .args(record_nettop("5"))
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "80% of the data cap used on all networks",
        ))
        .stderr(predicates::str::contains(
            "100% of the data cap used on all networks",
        ));
    let sent = notified(&env);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].contains("80% of the data cap"), "{sent:?}");
    assert!(sent[1].contains("100% of the data cap"), "{sent:?}");
    // A restart in the same period does not repeat them.
    env.netmon()
        .env("PATH", &path)
        .args(record_nettop("2"))
        .assert()
        .success();
    assert_eq!(notified(&env).len(), 2);
    let status = env
        .netmon()
        .args(["status", "--json"])
        .output()
        .expect("status");
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    let cap = &v["caps"][0];
    assert_eq!(cap["network"], "all networks");
    assert_eq!(cap["cap_bytes"], 10_000);
    assert_eq!(cap["used_bytes"], 11_500);
    assert_eq!(cap["left_bytes"], 0);
    let table = env
        .netmon()
        .args(["networks", "--since", "1h"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("cap on all networks: 11.5 kB of 10.0 kB used"),
        "{text}"
    );
}

#[test]
fn issue_15_bad_cap_arguments_are_user_errors() {
    let env = Env::new();
    step(&env, 1, (0, 0), &[("lo", 1, 0, 0)], GW_A);
    env.netmon().args(record_nettop("1")).assert().success();
    env.netmon()
        .args(["networks", "cap", "all", "12 parsecs"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("unknown unit"));
    env.netmon()
        .args(["networks", "cap", "nowhere", "1GB"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("no network called"));
    env.netmon()
        .args([
            "networks",
            "cap",
            "all",
            "1GB",
            "--period",
            "week",
            "--resets-on",
            "9",
        ])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("not a weekday"));
}

/// curl credited 5000 bytes while eth0 carried 100, beside interface `other` carrying
/// `other_bytes` in: `status --json` and the explained_over_100 problem's message.
fn over_100(other: &str, other_bytes: u64) -> (Env, serde_json::Value, String) {
    let env = Env::new();
    step(
        &env,
        1,
        (0, 0),
        &[(other, 1, 0, 0), ("eth0", 2, 0, 0)],
        GW_A,
    );
    step(
        &env,
        2,
        (5000, 0),
        &[(other, 1, other_bytes, 0), ("eth0", 2, 100, 0)],
        GW_A,
    );
    env.netmon().args(record_nettop("2")).assert().success();
    let out = env
        .netmon()
        .args(["status", "--json"])
        .output()
        .expect("status");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let message = v["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .find(|p| p["code"] == "explained_over_100")
        .and_then(|p| p["message"].as_str())
        .unwrap_or_else(|| panic!("no explained_over_100 problem in {v}"))
        .to_string();
    (env, v, message)
}

#[test]
fn issue_15_applications_counted_above_what_the_interfaces_carried_is_a_status_problem() {
    // Bytes that crossed no interface (lo is not counted).
    let (env, v, message) = over_100("lo", 0);
    assert_eq!(v["explained"]["app_bytes"], 5000, "{v}");
    assert_eq!(v["explained"]["interface_bytes"], 100, "{v}");
    assert!(
        message.contains("5.00 kB") && message.contains("100 B") && message.contains("5000.0%"),
        "{message}"
    );
    assert!(
        message.contains("never crossed an interface") && !message.contains("VPN"),
        "{message}"
    );
    let text = env.netmon().arg("status").output().expect("status");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("applications account for 5000.0% of the 100 B your interfaces carried"),
        "{text}"
    );

    // The same with a VPN interface up that day: the problem names the likely cause, an
    // app-based VPN whose own process carries the tunnelled bytes again.
    let (_env, _, message) = over_100("tun0", 2000);
    assert!(
        message.contains("a VPN was up that day (tun0 carried 2.00 kB)")
            && message.contains("counts both"),
        "{message}"
    );
    // A name with a terminal escape in it is exact in JSON and escaped on the terminal.
    let (env, _, message) = over_100("tun\u{1b}[2J", 2000);
    assert!(message.contains("(tun\u{1b}[2J carried"), "{message}");
    let text = env.netmon().arg("status").output().expect("status");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("(tun\\x1b[2J carried") && !text.contains('\u{1b}'),
        "{text}"
    );
}

#[test]
fn issue_15_a_wifi_network_is_named_by_the_ssid_iw_prints() {
    let env = Env::new();
    // A fake `iw` first on PATH: `iw dev wlan0 link` as a connected client sees it.
    let bin = env.dir.path().join("fakebin");
    std::fs::create_dir_all(&bin).expect("fakebin");
    let iw = bin.join("iw");
    place_script(
        &iw,
        "#!/bin/sh\n[ \"$1 $2 $3\" = \"dev wlan0 link\" ] || exit 1\n\
         printf 'Connected to 11:22:33:44:55:66 (on wlan0)\\n\\tSSID: Café Wi-Fi\\n\\tfreq: 5180\\n'\n",
    );
    let fake_nettop = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-nettop");
    let path = format!("{}:{}:/usr/bin:/bin", bin.display(), fake_nettop.display());
    for (n, bytes) in [(1, 0), (2, 4000)] {
        env.step(n, "csv", &curl((0, 0)));
        let root = env.steps.join(format!("step-{n:04}.net"));
        write(
            &root,
            "proc/net/dev",
            &proc_net_dev(&[("wlan0", bytes, bytes / 2)]),
        );
        write(&root, "sys/class/net/wlan0/ifindex", "3\n");
        write(&root, "sys/class/net/wlan0/type", "1\n");
        write(
            &root,
            "sys/class/net/wlan0/uevent",
            "DEVTYPE=wlan\nINTERFACE=wlan0\n",
        );
    }
    env.netmon()
        .env("PATH", &path)
        .args(record_nettop("2"))
        .assert()
        .success();
    let rows = json_array(&mut env.netmon(), &["networks", "--json", "--since", "1h"]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["key"], "wifi:Café Wi-Fi");
    assert_eq!(rows[0]["network"], "Café Wi-Fi");
    assert_eq!(rows[0]["kind"], "wifi");
    assert_eq!(
        (u(&rows[0], "bytes_in"), u(&rows[0], "bytes_out")),
        (4000, 2000)
    );
}

#[test]
fn issue_15_the_share_covers_only_the_time_interfaces_were_counted() {
    let env = Env::new();
    // Steps 1-3: applications only (as a database recorded before interface counters).
    for n in 1..=3u64 {
        env.step(n as usize, "csv", &curl((1000 * n, 0)));
    }
    env.netmon().args(record_nettop("3")).assert().success();
    // Steps 4-6: eth0 appears (its first reading is a baseline) and carries 2000 a tick
    // while curl moves 500 a tick.
    for n in 4..=6u64 {
        step(
            &env,
            n as usize,
            (3000 + 500 * (n - 3), 0),
            &[("eth0", 2, 2000 * (n - 3), 0)],
            GW_A,
        );
    }
    env.netmon().args(record_nettop("3")).assert().success();
    // Counted together: ticks 5 and 6, 1000 application bytes of 4000 interface bytes.
    let out = env
        .netmon()
        .args(["apps", "--since", "1h"])
        .output()
        .expect("apps");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("applications account for 25.0% of the 4.00 kB your interfaces carried"),
        "{text}"
    );
    // And the day interface counting began is not a problem in status.
    let out = env
        .netmon()
        .args(["status", "--json"])
        .output()
        .expect("status");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        !v["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .any(|p| p["code"] == "explained_over_100"),
        "{v}"
    );
}

/// A connection row in a step: local port, the interface nettop says it used, bytes in, out.
type Conn<'a> = (u16, &'a str, u64, u64);

/// nettop's rows for one process (`name.pid`) and its connections.
fn process_rows(process: &str, conns: &[Conn<'_>]) -> String {
    let (i, o) = conns.iter().fold((0, 0), |(i, o), c| (i + c.2, o + c.3));
    let mut s = format!("{process},,,{i},{o},\n");
    for (port, iface, bin, bout) in conns {
        s.push_str(&format!(
            "tcp4 192.0.2.1:{port}<->198.51.100.20:443,{iface},Established,{bin},{bout},\n"
        ));
    }
    s
}

/// Per application: (bytes in, bytes out) from `apps --json ARGS`.
fn per_app(env: &Env, args: &[&str]) -> BTreeMap<String, (u64, u64)> {
    let mut full = vec!["apps", "--json"];
    full.extend_from_slice(args);
    json_array(&mut env.netmon(), &full)
        .iter()
        .map(|r| {
            (
                r["app"].as_str().expect("app").to_string(),
                (u(r, "bytes_in"), u(r, "bytes_out")),
            )
        })
        .collect()
}

#[test]
fn issue_15_an_apps_connections_on_two_networks_are_split_per_connection_and_add_up() {
    let env = Env::new();
    // curl has a connection on eth0 (network A, behind gateway A) and one on usb0 (a cellular
    // modem, network if:usb0); ssh's connection names en0, which the interface reader does not
    // list, so it goes with each tick's busiest network.
    const SSH: &str = "ssh.5000003";
    let steps: [([Conn<'_>; 2], Conn<'_>, [If<'_>; 2]); 5] = [
        // 1: baselines.
        (
            [(50020, "eth0", 1000, 100), (50021, "usb0", 500, 50)],
            (50030, "en0", 100, 10),
            [("eth0", 2, 1000, 100), ("usb0", 5, 500, 50)],
        ),
        // 2: curl +600/60 on eth0, +300/30 on usb0; ssh +100/10; eth0 carried most (A).
        (
            [(50020, "eth0", 1600, 160), (50021, "usb0", 800, 80)],
            (50030, "en0", 200, 20),
            [("eth0", 2, 3000, 300), ("usb0", 5, 1500, 150)],
        ),
        // 3: curl +100/10 on eth0, +800/80 on usb0; ssh +50/5; usb0 carried most.
        (
            [(50020, "eth0", 1700, 170), (50021, "usb0", 1600, 160)],
            (50030, "en0", 250, 25),
            [("eth0", 2, 3100, 310), ("usb0", 5, 3500, 350)],
        ),
        // 4: curl's usb0 socket moved to eth0: its +200/20 is on eth0 (A), counted once.
        (
            [(50020, "eth0", 1700, 170), (50021, "eth0", 1800, 180)],
            (50030, "en0", 250, 25),
            [("eth0", 2, 3600, 360), ("usb0", 5, 3500, 350)],
        ),
        // 5: back on usb0, +40/4, while usb0's own counters did not move (still read: if:usb0).
        (
            [(50020, "eth0", 1700, 170), (50021, "usb0", 1840, 184)],
            (50030, "en0", 250, 25),
            [("eth0", 2, 4600, 460), ("usb0", 5, 3500, 350)],
        ),
    ];
    for (n, (curl, ssh, ifaces)) in steps.iter().enumerate() {
        let csv = format!(
            "{H}{}{}",
            process_rows(CURL, curl),
            process_rows(SSH, std::slice::from_ref(ssh))
        );
        env.step(n + 1, "csv", &csv);
        interfaces(&env, n + 1, ifaces, GW_A);
    }
    env.netmon().args(record_nettop("5")).assert().success();
    let rows = json_array(&mut env.netmon(), &["networks", "--json", "--since", "1h"]);
    let id = |key: &str| {
        rows.iter()
            .find(|r| r["key"] == key)
            .map(|r| u(r, "network_id").to_string())
            .unwrap_or_else(|| panic!("network {key} in {rows:?}"))
    };
    let (a, b) = (id("gw:aa:bb:cc:dd:ee:01"), id("if:usb0"));
    let (from, until) = whole_hours(&env);
    let app = |m: &BTreeMap<String, (u64, u64)>, name: &str| m.get(name).copied().unwrap_or((0, 0));
    for range in [
        vec!["--since", "1h"],
        vec!["--from", &from, "--until", &until],
        vec!["--from", "today", "--until", "today"],
    ] {
        let with = |n: &str| {
            let mut args = vec!["--network", n];
            args.extend_from_slice(&range);
            per_app(&env, &args)
        };
        let (on_a, on_b, all) = (with(&a), with(&b), per_app(&env, &range));
        assert_eq!(app(&on_a, "curl"), (900, 90), "curl on A over {range:?}");
        assert_eq!(
            app(&on_b, "curl"),
            (1140, 114),
            "curl on usb0 over {range:?}"
        );
        assert_eq!(app(&on_a, "ssh"), (100, 10), "ssh on A over {range:?}");
        assert_eq!(app(&on_b, "ssh"), (50, 5), "ssh on usb0 over {range:?}");
        assert_eq!(all.len(), 2, "{all:?}");
        for (name, (i, o)) in &all {
            let (ai, ao) = app(&on_a, name);
            let (bi, bo) = app(&on_b, name);
            assert_eq!((ai + bi, ao + bo), (*i, *o), "{name} over {range:?}");
        }
    }
    // The table says which rule applied.
    let out = env
        .netmon()
        .args(["apps", "--network", &b, "--since", "1h"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("application bytes are split per connection"),
        "{text}"
    );
    // So does the timeline's; without --network, neither says anything about networks.
    for (args, says) in [
        (vec!["timeline", "--network", &b, "--since", "1h"], true),
        (vec!["timeline", "--since", "1h"], false),
    ] {
        let out = env.netmon().args(&args).output().expect("run");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}: {text}");
        assert_eq!(
            text.contains("on this network: application bytes are split per connection"),
            says,
            "{args:?}: {text}"
        );
    }
}

/// Issues 15 and 16: a cap crossed by ticks the recorder still holds in memory (`--write-every
/// 1h`). The recorder's alerts count the unwritten ticks, so each threshold is announced once,
/// while nothing is written; `status` and `networks` add the unwritten ticks the recorder
/// reports on its live socket to what the file holds, so they show the same usage the alert
/// was about, and the same once the ticks are written at the recorder's stop.
#[test]
fn issue_16_a_cap_crossed_by_unwritten_ticks_notifies_once_per_threshold_and_status_counts_them() {
    let env = Env::new();
    let path = cap_scenario(&env);
    let written_before = env.one("SELECT count(*) FROM ticks");
    let recorder = env
        .std_netmon()
        .env("PATH", &path)
        .args([
            "record",
            "--source",
            "nettop",
            "--interval",
            "100ms",
            "--write-every",
            "1h",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("record");
    // Past the last step (the fake repeats it: no more bytes) and both thresholds.
    let reached = wait_until(Duration::from_secs(30), || {
        env.calls() >= 9 && notified(&env).len() >= 2
    });
    let sent = notified(&env);
    let status = env
        .netmon()
        .args(["status", "--json"])
        .output()
        .expect("status");
    let table = env
        .netmon()
        .args(["networks", "--since", "1h"])
        .output()
        .expect("networks");
    // `/metrics` counts them in the cap's gauge too, as status does.
    let scraped = {
        let serve = Serve::start(&env, &[]);
        let token = crate::metrics::metrics_token(&env);
        crate::metrics::parse(&crate::metrics::get(&serve, Some(&token), None).body)
    };
    let still_written = env.one("SELECT count(*) FROM ticks");
    signal(&recorder, libc::SIGTERM);
    let (code, stderr) = finish(recorder, Duration::from_secs(30));
    assert!(
        reached,
        "calls {}, notified {sent:?}: {stderr}",
        env.calls()
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        still_written, written_before,
        "the crossing ticks were in memory only"
    );
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].contains("80% of the data cap"), "{sent:?}");
    assert!(sent[1].contains("100% of the data cap"), "{sent:?}");

    let v: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert!(
        v["recorder"]["unwritten_samples"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{v}"
    );
    assert_eq!(v["caps"][0]["used_bytes"], 11_500, "{v}");
    assert_eq!(v["caps"][0]["left_bytes"], 0, "{v}");
    assert_eq!(
        crate::metrics::value(
            &scraped,
            "netmon_network_cap_used_bytes",
            &[("network", "(all)"), ("period", "day")]
        ),
        Some(11_500.0),
        "{scraped:?}"
    );
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("cap on all networks: 11.5 kB of 10.0 kB used"),
        "{text}"
    );

    // Written at the stop: the file alone says the same, and nothing was counted twice.
    assert_eq!(notified(&env).len(), 2);
    let v: serde_json::Value = serde_json::from_slice(
        &env.netmon()
            .args(["status", "--json"])
            .output()
            .expect("status")
            .stdout,
    )
    .expect("json");
    assert_eq!(v["caps"][0]["used_bytes"], 11_500, "{v}");
}
