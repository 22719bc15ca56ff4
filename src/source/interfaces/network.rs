//! Which network an interface is attached to, from what the OS gives without privileges.
//!
//! An interface is not a network: `en0` is the home Wi-Fi in the morning and a café's in the
//! afternoon. A network is named by the most stable fact available, in this order: the Wi-Fi
//! network name (SSID) where it is readable; the hardware address of the interface's default
//! gateway (from the neighbour table: the router, the same box every time); for a tunnel, the
//! tunnel itself; else the interface (a link with no default route, such as a veth pair).

use serde::Serialize;

use super::Kind;

/// A network's identity: `key` is stable and unique (stored); `label` is what is shown until
/// the user names it (`netmon networks name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct NetworkId {
    pub key: String,
    pub label: String,
}

/// The network an interface of `kind` named `ifname` is on, given its Wi-Fi name and its
/// default gateway's hardware address where known. `None` for loopback.
pub fn identify(
    kind: Kind,
    ifname: &str,
    ssid: Option<&str>,
    gateway_mac: Option<&str>,
) -> Option<NetworkId> {
    if kind == Kind::Loopback {
        return None;
    }
    let ssid = ssid.map(str::trim).filter(|s| !s.is_empty());
    let mac = gateway_mac
        .and_then(canonical_mac)
        .filter(|m| m != "00:00:00:00:00:00");
    Some(match (kind, ssid, mac) {
        (Kind::Wifi, Some(ssid), _) => NetworkId {
            key: format!("wifi:{ssid}"),
            label: ssid.to_string(),
        },
        (Kind::Vpn, _, _) => NetworkId {
            key: format!("vpn:{ifname}"),
            label: format!("VPN {ifname}"),
        },
        (_, _, Some(mac)) => NetworkId {
            label: format!("{} via gateway {mac}", kind.as_str()),
            key: format!("gw:{mac}"),
        },
        _ => NetworkId {
            key: format!("if:{ifname}"),
            label: format!("{ifname} ({})", kind.as_str()),
        },
    })
}

/// A hardware address as six two-digit lowercase hex octets: macOS's `arp` prints octets
/// without their leading zero (`0:1a:2b:3:4:5`), Linux's neighbour table with it, and one
/// router must be one network on both. `None` for anything that is not six hex octets.
pub fn canonical_mac(text: &str) -> Option<String> {
    let octets: Vec<u8> = text
        .trim()
        .split(':')
        .map(|o| {
            (1..=2)
                .contains(&o.len())
                .then(|| u8::from_str_radix(o, 16).ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    (octets.len() == 6).then(|| {
        octets
            .iter()
            .map(|o| format!("{o:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    })
}

/// The gateway and interface in the output of macOS's `route -n get [-ifscope IF] default`
/// (`    gateway: 192.168.1.1` / `  interface: en0`); the gateway is `None` for a route with
/// none (a tunnel's interface route). `None` without an interface line.
pub fn parse_route_get(text: &str) -> Option<(Option<String>, String)> {
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(k).map(|v| v.trim().to_string()))
            .filter(|v| !v.is_empty())
    };
    Some((field("gateway:"), field("interface:")?))
}

/// The hardware address in the output of macOS's `arp -n ADDRESS`
/// (`? (192.168.1.1) at 0:1a:2b:3:4:5 on en0 ifscope [ethernet]`), canonical; `None` for
/// `(incomplete)` or no entry.
pub fn parse_arp_mac(text: &str) -> Option<String> {
    let word = text.split_whitespace().skip_while(|w| *w != "at").nth(1)?;
    canonical_mac(word)
}

/// A tunnel's interface name on macOS (the default route of a full-tunnel VPN is on one).
pub fn is_tunnel_name(name: &str) -> bool {
    ["utun", "ipsec", "ppp", "tun", "tap"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// The SSID in the output of `iw dev IFNAME link` (`\tSSID: name`), which any user may run;
/// `None` when not connected.
pub fn parse_iw_link(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("SSID: "))
        .map(|s| s.trim_end().to_string())
        .find(|s| !s.is_empty())
}

/// Device name → kind from macOS's `networksetup -listallhardwareports`: the port named
/// "Wi-Fi" (or "AirPort") is Wi-Fi, "iPhone USB" or anything "Modem"/"Cellular" is cellular
/// tethering, "Ethernet"/"Thunderbolt Ethernet"/"USB 10/100/1000 LAN" are Ethernet. Compiled
/// everywhere so its test runs on Linux.
pub fn parse_hardware_ports(text: &str) -> std::collections::HashMap<String, Kind> {
    let mut out = std::collections::HashMap::new();
    let mut port: Option<String> = None;
    for line in text.lines() {
        if let Some(p) = line.strip_prefix("Hardware Port: ") {
            port = Some(p.trim().to_string());
        } else if let (Some(dev), Some(p)) = (line.strip_prefix("Device: "), port.take()) {
            let p = p.to_ascii_lowercase();
            let kind = if p.contains("wi-fi") || p.contains("airport") {
                Kind::Wifi
            } else if p.contains("iphone") || p.contains("modem") || p.contains("cellular") {
                Kind::Cellular
            } else if p.contains("ethernet") || p.contains("lan") {
                Kind::Ethernet
            } else if p.contains("bridge") {
                Kind::Bridge
            } else {
                Kind::Other
            };
            out.insert(dev.trim().to_string(), kind);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macos_route_and_arp_outputs_give_the_gateway_and_its_hardware_address() {
        let route = "   route to: default\ndestination: default\n       mask: default\n    \
                     gateway: 192.168.1.1\n  interface: en0\n      flags: \
                     <UP,GATEWAY,DONE,STATIC,PRCLONING,GLOBAL>\n";
        assert_eq!(
            parse_route_get(route),
            Some((Some("192.168.1.1".to_string()), "en0".to_string()))
        );
        // A full-tunnel VPN's default route: an interface route, no gateway.
        let vpn = "   route to: default\ndestination: default\n  interface: utun4\n";
        assert_eq!(parse_route_get(vpn), Some((None, "utun4".to_string())));
        assert_eq!(
            parse_route_get("route: writing to routing socket: not in table\n"),
            None
        );
        assert_eq!(
            parse_arp_mac("? (192.168.1.1) at 0:1a:2b:3:4:5 on en0 ifscope [ethernet]\n"),
            Some("00:1a:2b:03:04:05".to_string())
        );
        assert_eq!(
            parse_arp_mac("? (192.168.1.1) at (incomplete) on en0 ifscope [ethernet]\n"),
            None
        );
        assert_eq!(
            parse_arp_mac("192.168.1.1 (192.168.1.1) -- no entry\n"),
            None
        );
        assert!(is_tunnel_name("utun4") && is_tunnel_name("ipsec0") && !is_tunnel_name("en0"));
    }

    #[test]
    fn a_router_is_one_network_whether_its_octets_are_padded_or_not() {
        // macOS's arp prints `0:1a:2b:3:4:5`; Linux's /proc/net/arp `00:1a:2b:03:04:05`.
        let mac = identify(Kind::Wifi, "en0", None, Some("0:1a:2B:3:4:5"));
        let linux = identify(Kind::Wifi, "wlan0", None, Some("00:1a:2b:03:04:05"));
        assert_eq!(mac.map(|n| n.key), Some("gw:00:1a:2b:03:04:05".to_string()));
        assert_eq!(
            linux.map(|n| n.key),
            Some("gw:00:1a:2b:03:04:05".to_string())
        );
        // No gateway address: `0:0:0:0:0:0` (incomplete entry on macOS) as on Linux.
        let none = identify(Kind::Ethernet, "en1", None, Some("0:0:0:0:0:0"));
        assert_eq!(none.map(|n| n.key), Some("if:en1".to_string()));
        for bad in [
            "(incomplete)",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:ff:00",
            "aaa:b:c:d:e:f",
            "",
        ] {
            assert_eq!(canonical_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn wifi_is_named_by_its_ssid_whatever_the_gateway() {
        let a = identify(Kind::Wifi, "wlan0", Some("Home"), Some("aa:bb:cc:dd:ee:ff"));
        let b = identify(Kind::Wifi, "wlp2s0", Some("Home"), None);
        assert_eq!(a, b);
        assert_eq!(a.map(|n| n.key), Some("wifi:Home".to_string()));
    }

    #[test]
    fn without_an_ssid_the_gateway_hardware_address_names_the_network() {
        let n = identify(Kind::Ethernet, "eth0", None, Some("AA:BB:CC:DD:EE:01"));
        assert_eq!(n.map(|n| n.key), Some("gw:aa:bb:cc:dd:ee:01".to_string()));
    }

    #[test]
    fn an_incomplete_neighbour_entry_falls_back_to_the_interface() {
        let n = identify(Kind::Virtual, "veth0", None, Some("00:00:00:00:00:00"));
        assert_eq!(n.map(|n| n.key), Some("if:veth0".to_string()));
    }

    #[test]
    fn loopback_is_no_network_and_tunnels_are_their_own() {
        assert_eq!(identify(Kind::Loopback, "lo", None, None), None);
        let v = identify(Kind::Vpn, "utun3", None, Some("aa:bb:cc:dd:ee:ff"));
        assert_eq!(v.map(|n| n.key), Some("vpn:utun3".to_string()));
    }

    #[test]
    fn hardware_ports_name_wifi_and_tethering() {
        let text = "\nHardware Port: Wi-Fi\nDevice: en0\nEthernet Address: aa\n\n\
                    Hardware Port: iPhone USB\nDevice: en7\nEthernet Address: bb\n\n\
                    Hardware Port: Thunderbolt Bridge\nDevice: bridge0\n\n\
                    Hardware Port: USB 10/100/1000 LAN\nDevice: en5\n";
        let p = parse_hardware_ports(text);
        assert_eq!(p.get("en0"), Some(&Kind::Wifi));
        assert_eq!(p.get("en7"), Some(&Kind::Cellular));
        assert_eq!(p.get("bridge0"), Some(&Kind::Bridge));
        assert_eq!(p.get("en5"), Some(&Kind::Ethernet));
    }

    #[test]
    fn iw_link_gives_the_ssid_or_nothing() {
        let out = "Connected to 11:22:33:44:55:66 (on wlan0)\n\tSSID: Café Wi-Fi\n\tfreq: 2412\n";
        assert_eq!(parse_iw_link(out), Some("Café Wi-Fi".to_string()));
        assert_eq!(parse_iw_link("Not connected.\n"), None);
    }
}
