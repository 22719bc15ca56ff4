//! Linux interface counters: `/proc/net/dev` (read with procfs), whose byte columns the kernel
//! prints from its 64-bit link statistics (`rtnl_link_stats64`) on every kernel netmon runs
//! on; the interface's kind and index from sysfs; its network from the default routes in
//! `/proc/net/route`, the gateway's hardware address in `/proc/net/arp`, and for Wi-Fi the
//! SSID that `iw dev IF link` prints to any user. All of it is per network namespace, needs no
//! privileges, and is read under one root directory: `/`, or `NETMON_NET_ROOT` (tests point it
//! at fixture files, as the fake nettop stands in for nettop).

use std::collections::HashMap;
use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use procfs::FromBufRead;
use procfs::net::{ArpEntries, InterfaceDeviceStatus, RouteEntries};

use super::network;
use super::{Error, InterfaceCounters, InterfaceReader, Kind, Width};

/// The environment variable that moves the root the reader reads under (tests).
pub const ROOT_ENV: &str = "NETMON_NET_ROOT";

/// How long `iw` may take to print the SSID before it is killed and the SSID is not known.
const IW_TIMEOUT: Duration = Duration::from_secs(1);

/// Reads `/proc/net/dev` and friends under `root`.
#[derive(Debug)]
pub struct ProcReader {
    root: PathBuf,
    /// Kind per (name, index): sysfs is read once per interface, not per tick.
    kinds: HashMap<(String, Option<u32>), Kind>,
    /// SSID per (interface, gateway): `iw` runs when a Wi-Fi interface's gateway changes,
    /// not every tick.
    ssids: HashMap<(String, Option<String>), Option<String>>,
}

impl ProcReader {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ProcReader {
            root: root.into(),
            kinds: HashMap::new(),
            ssids: HashMap::new(),
        }
    }

    /// `/`, or `NETMON_NET_ROOT`.
    pub fn from_env() -> Self {
        Self::new(std::env::var_os(ROOT_ENV).map_or_else(|| PathBuf::from("/"), PathBuf::from))
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn sys(&self, ifname: &str) -> PathBuf {
        self.root.join("sys/class/net").join(ifname)
    }
}

fn read_err(path: &Path, cause: impl std::fmt::Display) -> Error {
    Error::Read {
        path: path.display().to_string(),
        cause: cause.to_string(),
    }
}

fn open(path: &Path) -> Result<std::io::BufReader<std::fs::File>, Error> {
    std::fs::File::open(path)
        .map(std::io::BufReader::new)
        .map_err(|e| read_err(path, e))
}

impl InterfaceReader for ProcReader {
    fn read(&mut self) -> Result<Vec<InterfaceCounters>, Error> {
        let dev_path = self.path("proc/net/dev");
        let devs = InterfaceDeviceStatus::from_buf_read(open(&dev_path)?)
            .map_err(|e| read_err(&dev_path, e))?;
        // The default routes and the neighbour table are optional: without them a network is
        // named by its interface.
        let gateways = default_gateways(&self.path("proc/net/route"));
        let macs = neighbours(&self.path("proc/net/arp"));
        let mut out = Vec::with_capacity(devs.0.len());
        let mut names: Vec<&String> = devs.0.keys().collect();
        names.sort();
        for name in names {
            let d = &devs.0[name];
            let sys = self.sys(name);
            let index = std::fs::read_to_string(sys.join("ifindex"))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
            let kind = *self
                .kinds
                .entry((name.clone(), index))
                .or_insert_with(|| kind_of(name, &sys));
            let mac = gateways
                .get(name.as_str())
                .and_then(|gw| macs.get(&(*gw, name.clone())))
                .cloned();
            let ssid = if kind == Kind::Wifi {
                self.ssids
                    .entry((name.clone(), mac.clone()))
                    .or_insert_with(|| iw_ssid(name))
                    .clone()
            } else {
                None
            };
            out.push(InterfaceCounters {
                name: name.clone(),
                index,
                kind,
                width: Width::Bits64,
                bytes_in: d.recv_bytes,
                bytes_out: d.sent_bytes,
                network: network::identify(kind, name, ssid.as_deref(), mac.as_deref()),
            });
        }
        Ok(out)
    }
}

/// Each interface's IPv4 default gateway.
fn default_gateways(path: &Path) -> HashMap<String, Ipv4Addr> {
    let Ok(f) = open(path) else {
        return HashMap::new();
    };
    let Ok(routes) = RouteEntries::from_buf_read(f) else {
        return HashMap::new();
    };
    routes
        .0
        .into_iter()
        .filter(|r| r.destination.is_unspecified() && !r.gateway.is_unspecified())
        .map(|r| (r.iface, r.gateway))
        .collect()
}

/// Hardware addresses by (IPv4 address, interface), complete entries only.
fn neighbours(path: &Path) -> HashMap<(Ipv4Addr, String), String> {
    let Ok(f) = open(path) else {
        return HashMap::new();
    };
    let Ok(arp) = ArpEntries::from_buf_read(f) else {
        return HashMap::new();
    };
    arp.0
        .into_iter()
        .filter_map(|e| {
            let hw = e.hw_address?;
            let mac = hw
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":");
            Some(((e.ip_address, e.device), mac))
        })
        .collect()
}

/// Drivers of phones tethered over USB and of mobile broadband modems.
const CELLULAR_DRIVERS: &[&str] = &[
    "rndis_host",
    "cdc_ether",
    "cdc_ncm",
    "cdc_mbim",
    "ipheth",
    "qmi_wwan",
    "huawei_cdc_ncm",
];

/// An interface's kind from sysfs (`type`, `uevent`'s DEVTYPE, the `wireless`, `bridge`,
/// `brport` and `tun_flags` entries, the driver under `device`).
fn kind_of(name: &str, sys: &Path) -> Kind {
    let read = |f: &str| std::fs::read_to_string(sys.join(f)).unwrap_or_default();
    let arphrd = read("type").trim().parse::<u32>().ok();
    let devtype = read("uevent")
        .lines()
        .find_map(|l| l.strip_prefix("DEVTYPE=").map(str::to_string))
        .unwrap_or_default();
    let driver = std::fs::read_link(sys.join("device/driver"))
        .ok()
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_default();
    if arphrd == Some(772) || (arphrd.is_none() && name == "lo") {
        Kind::Loopback
    } else if devtype == "wlan" || sys.join("wireless").exists() || sys.join("phy80211").exists() {
        Kind::Wifi
    } else if devtype == "wwan" || CELLULAR_DRIVERS.contains(&driver.as_str()) {
        Kind::Cellular
    } else if devtype == "wireguard" || sys.join("tun_flags").exists() || arphrd == Some(65534) {
        Kind::Vpn
    } else if devtype == "bridge" || sys.join("bridge").exists() || sys.join("brport").exists() {
        Kind::Bridge
    } else if arphrd == Some(1) && sys.join("device").exists() {
        Kind::Ethernet
    } else if arphrd == Some(1) {
        Kind::Virtual
    } else {
        Kind::Other
    }
}

/// The SSID `iw dev IF link` prints; `None` when iw is missing, slow or not connected.
fn iw_ssid(ifname: &str) -> Option<String> {
    let mut child = Command::new("iw")
        .args(["dev", ifname, "link"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + IW_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut text = String::new();
    child.stdout.take()?.read_to_string(&mut text).ok()?;
    network::parse_iw_link(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    const DEV: &str = "Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo: 5000      10    0    0    0     0          0         0     5000      10    0    0    0     0       0          0\n  \
eth0: 9000000000 100    0    0    0     0          0         0  123456    99    0    0    0     0       0          0\n";

    #[test]
    fn reads_64_bit_counters_kinds_and_the_gateway_network() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "proc/net/dev", DEV);
        write(
            root,
            "proc/net/route",
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
             eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n",
        );
        write(
            root,
            "proc/net/arp",
            "IP address       HW type     Flags       HW address            Mask     Device\n\
             192.168.1.1      0x1         0x2         aa:bb:cc:dd:ee:01     *        eth0\n",
        );
        write(root, "sys/class/net/lo/type", "772\n");
        write(root, "sys/class/net/lo/ifindex", "1\n");
        write(root, "sys/class/net/eth0/type", "1\n");
        write(root, "sys/class/net/eth0/ifindex", "2\n");
        write(root, "sys/class/net/eth0/device/vendor", "0x8086\n");
        let rows = ProcReader::new(root).read().expect("read");
        assert_eq!(rows.len(), 2);
        let eth = rows.iter().find(|r| r.name == "eth0").expect("eth0");
        assert_eq!((eth.bytes_in, eth.bytes_out), (9_000_000_000, 123_456));
        assert_eq!(
            (eth.kind, eth.index, eth.width),
            (Kind::Ethernet, Some(2), Width::Bits64)
        );
        assert_eq!(
            eth.network.as_ref().map(|n| n.key.as_str()),
            Some("gw:aa:bb:cc:dd:ee:01")
        );
        let lo = rows.iter().find(|r| r.name == "lo").expect("lo");
        assert_eq!((lo.kind, lo.network.clone()), (Kind::Loopback, None));
    }

    #[test]
    fn a_missing_proc_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = ProcReader::new(dir.path()).read().expect_err("no file");
        assert!(e.to_string().contains("proc/net/dev"), "{e}");
    }
}
