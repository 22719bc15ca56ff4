//! From counter deltas to per-process traffic: group by owner, resolve each process to its
//! application once (on macOS an XPC helper to the app responsible for it,
//! `procinfo::responsible_app`), and group its per-connection deltas by remote endpoint.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::delta::Delta;
use crate::procinfo::{self, App, ProcInfo};
use crate::source::{Owner, ProcessRef};
use crate::tick::{AppKind, Flow, InterfaceBytes, ProcessRecord, ProcessTraffic, RemoteRecord};

/// How long a resolved process is remembered after it was last seen with traffic.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// Bytes in, bytes out, per-remote bytes and per-interface bytes of one process in one tick.
type Accumulated = (
    u64,
    u64,
    FxHashMap<RemoteRecord, (u64, u64)>,
    Vec<InterfaceBytes>,
);

/// A resolved process: the name the source gave, its record, when it last had traffic.
type Cached = (String, ProcessRecord, Instant);

/// Resolves processes to applications, once per process.
pub struct ProcessResolver {
    lookup: Box<dyn FnMut(u32) -> Option<ProcInfo>>,
    /// By pid and start stamp, then by name (a short list, nearly always of one): a lookup
    /// per delta needs no copy of the name. FxHash: keys are small integers from the OS.
    cache: FxHashMap<(u32, Option<u64>), Vec<Cached>>,
}

impl Default for ProcessResolver {
    fn default() -> Self {
        Self::new(Box::new(procinfo::lookup))
    }
}

impl ProcessResolver {
    /// `lookup` asks the OS about a pid (replaced in tests).
    pub fn new(lookup: Box<dyn FnMut(u32) -> Option<ProcInfo>>) -> Self {
        ProcessResolver {
            lookup,
            cache: FxHashMap::default(),
        }
    }

    /// Group one tick's deltas into per-process traffic.
    pub fn group(&mut self, deltas: &[Delta]) -> Vec<ProcessTraffic> {
        let now = Instant::now();
        // Processes in the order they first appear; a record is copied once per process, not
        // once per delta.
        let mut order: Vec<(ProcessRecord, Accumulated)> = Vec::new();
        let mut index: FxHashMap<ProcessRecord, usize> = FxHashMap::default();
        for d in deltas {
            let unattributed;
            let record = match &d.owner {
                Owner::Unattributed { reason } => {
                    unattributed = unattributed_record(reason);
                    &unattributed
                }
                Owner::Process(p) => self.record_for(p, now),
            };
            let at = match index.get(record) {
                Some(&at) => at,
                None => {
                    index.insert(record.clone(), order.len());
                    order.push((record.clone(), (0, 0, FxHashMap::default(), Vec::new())));
                    order.len() - 1
                }
            };
            let entry = &mut order[at].1;
            entry.0 += d.bytes_in;
            entry.1 += d.bytes_out;
            if let Some(name) = &d.interface {
                // A process uses one or two interfaces: a short list, compared by pointer
                // first (the source shares one string per interface).
                match entry
                    .3
                    .iter_mut()
                    .find(|b| std::sync::Arc::ptr_eq(&b.interface, name) || b.interface == *name)
                {
                    Some(b) => {
                        b.bytes_in += d.bytes_in;
                        b.bytes_out += d.bytes_out;
                    }
                    None => entry.3.push(InterfaceBytes {
                        interface: name.clone(),
                        bytes_in: d.bytes_in,
                        bytes_out: d.bytes_out,
                    }),
                }
            }
            if let Some(r) = &d.remote {
                let flow = entry
                    .2
                    .entry(RemoteRecord {
                        proto: r.proto.as_str(),
                        host: r.host.clone(),
                        port: r.port.unwrap_or(0),
                    })
                    .or_default();
                flow.0 += d.bytes_in;
                flow.1 += d.bytes_out;
            }
        }
        order
            .into_iter()
            .map(|(record, (bytes_in, bytes_out, flows, interfaces))| {
                let mut flows: Vec<Flow> = flows
                    .into_iter()
                    .map(|(remote, (bytes_in, bytes_out))| Flow {
                        remote,
                        bytes_in,
                        bytes_out,
                    })
                    .collect();
                flows.sort_by(|a, b| {
                    (&a.remote.host, a.remote.port, a.remote.proto).cmp(&(
                        &b.remote.host,
                        b.remote.port,
                        b.remote.proto,
                    ))
                });
                ProcessTraffic {
                    process: record,
                    bytes_in,
                    bytes_out,
                    flows,
                    interfaces,
                    networks: Vec::new(),
                }
            })
            .collect()
    }

    /// Forget processes not seen for a while, so a reused pid is looked up afresh.
    pub fn prune(&mut self) {
        let now = Instant::now();
        self.cache.retain(|_, list| {
            list.retain(|(_, _, seen)| now.duration_since(*seen) < FORGET_AFTER);
            !list.is_empty()
        });
    }

    /// The record of a process, resolved the first time it is seen.
    fn record_for(&mut self, p: &ProcessRef, now: Instant) -> &ProcessRecord {
        let key = (p.pid, p.start_time);
        let known = self
            .cache
            .get(&key)
            .and_then(|list| list.iter().position(|(name, _, _)| *name == p.name));
        if known.is_none() {
            let record = self.resolve(p);
            self.cache
                .entry(key)
                .or_default()
                .push((p.name.clone(), record, now));
        }
        let list = self.cache.entry(key).or_default();
        let at = known.unwrap_or(list.len() - 1);
        let cached = &mut list[at];
        cached.2 = now;
        &cached.1
    }

    fn resolve(&mut self, p: &ProcessRef) -> ProcessRecord {
        // A source that read the executable itself is trusted; otherwise ask the OS once.
        let info = if p.exe.is_some() {
            None
        } else {
            (self.lookup)(p.pid)
        };
        let app = procinfo::app_for(p, info.as_ref());
        let matched = app.path.is_some();
        // A helper macOS runs for an app (WebKit's networking service for Safari) is that app's.
        let app = match info.as_ref().filter(|_| matched) {
            Some(i) => {
                let responsible =
                    procinfo::responsible_to_ask(p.pid, i).and_then(|r| (self.lookup)(r));
                procinfo::responsible_app(p.pid, i, responsible.as_ref()).unwrap_or(app)
            }
            None => app,
        };
        ProcessRecord {
            pid: Some(p.pid),
            name: p.name.clone(),
            start_time: p.start_time.or(if matched {
                info.as_ref().and_then(|i| i.start_time)
            } else {
                None
            }),
            exe: p.exe.as_ref().map(|e| e.display().to_string()).or_else(|| {
                if matched {
                    info.as_ref()
                        .and_then(|i| i.exe.as_ref())
                        .map(|e| e.display().to_string())
                } else {
                    None
                }
            }),
            uid: p.uid.or(if matched {
                info.as_ref().and_then(|i| i.uid)
            } else {
                None
            }),
            app,
            kind: AppKind::Application,
            container: p.container.clone(),
        }
    }
}

fn unattributed_record(reason: &str) -> ProcessRecord {
    ProcessRecord {
        pid: None,
        name: reason.to_string(),
        start_time: None,
        exe: None,
        uid: None,
        app: App {
            name: format!("(unattributed: {reason})"),
            path: None,
        },
        kind: AppKind::Unattributed,
        container: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::Cause;
    use crate::source::{CounterKey, Proto, Remote};
    use std::path::PathBuf;

    fn delta(pid: u32, name: &str, remote: Option<(&str, u16)>, bin: u64, bout: u64) -> Delta {
        Delta {
            key: CounterKey(format!("{pid}/{name}/{remote:?}")),
            owner: Owner::Process(ProcessRef::new(pid, name)),
            remote: remote.map(|(h, p)| Remote {
                proto: Proto::Tcp,
                host: h.into(),
                addr: h.parse().ok(),
                port: Some(p),
                loopback: false,
            }),
            interface: None,
            bytes_in: bin,
            bytes_out: bout,
            cause: Cause::Growth,
        }
    }

    #[test]
    fn a_process_bytes_are_grouped_per_interface_its_connections_report() {
        let mut a = ProcessResolver::new(Box::new(|_| None));
        let en0: std::sync::Arc<str> = "en0".into();
        let t = a.group(&[
            Delta {
                interface: Some(en0.clone()),
                ..delta(1, "curl", Some(("192.0.2.1", 443)), 10, 1)
            },
            Delta {
                interface: Some("utun0".into()),
                ..delta(1, "curl", Some(("192.0.2.2", 443)), 20, 2)
            },
            Delta {
                interface: Some(en0),
                ..delta(1, "curl", Some(("192.0.2.3", 443)), 5, 5)
            },
            // No interface named: on the tick's app network, not listed.
            delta(1, "curl", None, 7, 7),
        ]);
        assert_eq!((t[0].bytes_in, t[0].bytes_out), (42, 15));
        let got: Vec<(&str, u64, u64)> = t[0]
            .interfaces
            .iter()
            .map(|b| (&*b.interface, b.bytes_in, b.bytes_out))
            .collect();
        assert_eq!(got, vec![("en0", 15, 6), ("utun0", 20, 2)]);
        assert!(t[0].networks.is_empty());
    }

    #[test]
    fn deltas_group_by_process_and_flows_by_remote() {
        let mut a = ProcessResolver::new(Box::new(|_| None));
        let t = a.group(&[
            delta(1, "curl", Some(("192.0.2.1", 443)), 10, 1),
            delta(1, "curl", Some(("192.0.2.1", 443)), 5, 1),
            delta(1, "curl", Some(("192.0.2.2", 443)), 1, 1),
            delta(2, "ssh", None, 7, 7),
        ]);
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].bytes_in, t[0].bytes_out), (16, 3));
        assert_eq!(t[0].flows.len(), 2);
        assert_eq!((t[0].flows[0].bytes_in, t[0].flows[0].bytes_out), (15, 2));
        assert_eq!(t[1].process.app.name, "ssh");
    }

    #[test]
    fn each_process_is_looked_up_once() {
        let calls = std::rc::Rc::new(std::cell::Cell::new(0));
        let c = calls.clone();
        let mut a = ProcessResolver::new(Box::new(move |_| {
            c.set(c.get() + 1);
            Some(ProcInfo {
                exe: Some(PathBuf::from(
                    "/Applications/Safari.app/Contents/MacOS/Safari",
                )),
                name: Some("Safari".into()),
                ..ProcInfo::default()
            })
        }));
        for _ in 0..3 {
            let t = a.group(&[delta(9, "Safari", None, 1, 1)]);
            assert_eq!(t[0].process.app.name, "Safari");
            assert_eq!(
                t[0].process.exe.as_deref(),
                Some("/Applications/Safari.app/Contents/MacOS/Safari")
            );
        }
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn a_mismatched_pid_claims_no_path() {
        let mut a = ProcessResolver::new(Box::new(|_| {
            Some(ProcInfo {
                exe: Some(PathBuf::from("/usr/bin/ssh")),
                name: Some("ssh".into()),
                ..ProcInfo::default()
            })
        }));
        let t = a.group(&[delta(9, "curl", None, 1, 1)]);
        assert_eq!(
            t[0].process.app,
            App {
                name: "curl".into(),
                path: None
            }
        );
        assert_eq!(t[0].process.exe, None);
    }

    #[test]
    fn unattributed_bytes_get_their_own_labelled_row() {
        let mut a = ProcessResolver::new(Box::new(|_| None));
        let d = Delta {
            owner: Owner::Unattributed {
                reason: "socket closed before it was seen".into(),
            },
            ..delta(0, "", None, 3, 4)
        };
        let t = a.group(&[d]);
        assert_eq!(t[0].process.kind, AppKind::Unattributed);
        assert_eq!(
            t[0].process.app.name,
            "(unattributed: socket closed before it was seen)"
        );
    }

    #[test]
    fn webkits_networking_service_is_credited_to_safari_keeping_its_own_name_and_path() {
        const NET: &str = "/System/Library/Frameworks/WebKit.framework/Versions/A/XPCServices/com.apple.WebKit.Networking.xpc/Contents/MacOS/com.apple.WebKit.Networking";
        let mut a = ProcessResolver::new(Box::new(|pid| match pid {
            700 => Some(ProcInfo {
                exe: Some(PathBuf::from(NET)),
                name: Some("com.apple.WebKit.Networking".into()),
                responsible_pid: Some(600),
                ..ProcInfo::default()
            }),
            600 => Some(ProcInfo {
                exe: Some(PathBuf::from(
                    "/Applications/Safari.app/Contents/MacOS/Safari",
                )),
                name: Some("Safari".into()),
                responsible_pid: Some(600),
                ..ProcInfo::default()
            }),
            _ => None,
        }));
        let t = a.group(&[
            delta(700, "com.apple.WebKi", Some(("192.0.2.1", 443)), 10, 1),
            delta(600, "Safari", None, 1, 1),
        ]);
        assert_eq!(t[0].process.app.name, "Safari");
        assert_eq!(
            t[0].process.app.path.as_deref(),
            Some("/Applications/Safari.app")
        );
        assert_eq!(t[0].process.name, "com.apple.WebKi");
        assert_eq!(t[0].process.exe.as_deref(), Some(NET));
        assert_eq!(t[1].process.app, t[0].process.app, "one application");
    }
}
