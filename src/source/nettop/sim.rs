//! A model of a Mac's sockets that prints what `nettop` would: the stand-in the tests drive.
//!
//! Tests describe what happens (a socket opens, moves bytes, moves to another interface,
//! closes; a process exits; rows come in another order) and [`Sim::render`] prints the sample
//! `nettop -L 1 -x -n -J interface,state,bytes_in,bytes_out` would print for it, with the
//! behaviours FORMAT.md records: a process row carrying the sum of the sockets listed under it
//! [V], connection rows right after their process [V], listeners with empty byte fields [V],
//! rows in no stable order [V], the interface column naming where a socket was used last [V],
//! space-padded and indented rows [Q], a header with no rows [Q], and rows of processes that
//! exited [Q]. The scenario tests in `tests/cli/` write these samples as the fake `nettop`'s
//! steps; the property tests feed them straight to the parser and the delta engine.
//!
//! The model also keeps the truth: [`Sim::moved`] is what each process really sent and
//! received since [`Sim::mark`], which is what a recorder must report, exactly.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One socket of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    /// `tcp4`, `udp6`, `quic4`, …
    pub proto: String,
    /// As nettop prints it: `192.0.2.1:5000`, `*.5353`, `fe80::1%lo0.53`.
    pub local: String,
    /// As nettop prints it: `198.51.100.1:443`, `*:*`, `*.*`.
    pub remote: String,
    /// Where the socket was used last (`en0`, `awdl0`, `utun4`, `lo0`); empty for none.
    pub interface: String,
    /// TCP state (`Established`, `Listen`), empty for UDP and QUIC.
    pub state: String,
    /// Cumulative counts; `None` prints the empty fields of a listener or unbound socket.
    pub bytes: Option<(u64, u64)>,
    /// The scenario says this socket's bytes never leave the machine.
    pub loopback: bool,
}

#[derive(Debug, Clone)]
struct Process {
    name: String,
    pid: u32,
    sockets: Vec<(SocketId, Socket)>,
}

/// A socket's handle in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(usize);

/// Bytes (in, out) a process moved: all of them, and those that left the machine.
#[derive(Debug, Clone, Copy, Default)]
struct Moved {
    all: (u64, u64),
    external: (u64, u64),
}

/// How a sample is printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    /// Processes, and the sockets under each, in an order drawn from this seed; 0 keeps the
    /// order they were opened in.
    pub shuffle: u64,
    /// Blanks around every field and indented connection rows, as output meant for a terminal
    /// is quoted.
    pub padded: bool,
    /// The header alone, no rows at all.
    pub header_only: bool,
}

/// The machine: processes, their sockets, and the truth about what they moved.
#[derive(Debug, Clone, Default)]
pub struct Sim {
    processes: Vec<Process>,
    next_id: usize,
    /// Bytes moved per process name since the last mark.
    moved: BTreeMap<String, Moved>,
}

/// The header netmon's command makes nettop print.
pub const HEADER: &str = ",interface,state,bytes_in,bytes_out,";

impl Sim {
    pub fn new() -> Self {
        Sim::default()
    }

    /// A process (an existing pid is replaced: the old process is gone and the pid reused).
    pub fn spawn(&mut self, name: &str, pid: u32) {
        self.processes.retain(|p| p.pid != pid);
        self.processes.push(Process {
            name: name.to_string(),
            pid,
            sockets: Vec::new(),
        });
    }

    /// Open a socket under `pid`, with counts it already had (moved before anyone watched).
    pub fn open(&mut self, pid: u32, mut socket: Socket) -> SocketId {
        let id = SocketId(self.next_id);
        self.next_id += 1;
        if socket.bytes.is_none() && socket.state != "Listen" {
            socket.bytes = Some((0, 0));
        }
        if let Some(p) = self.processes.iter_mut().find(|p| p.pid == pid) {
            p.sockets.push((id, socket));
        }
        id
    }

    /// The socket moves bytes; the truth records them.
    pub fn traffic(&mut self, id: SocketId, bytes_in: u64, bytes_out: u64) {
        let Some((name, socket)) = self.find(id) else {
            return;
        };
        let loopback = socket.loopback;
        let b = socket.bytes.get_or_insert((0, 0));
        b.0 += bytes_in;
        b.1 += bytes_out;
        let m = self.moved.entry(name).or_default();
        m.all.0 += bytes_in;
        m.all.1 += bytes_out;
        if !loopback {
            m.external.0 += bytes_in;
            m.external.1 += bytes_out;
        }
    }

    /// The socket is used on another interface from now on.
    pub fn move_to(&mut self, id: SocketId, interface: &str) {
        if let Some((_, s)) = self.find(id) {
            s.interface = interface.to_string();
        }
    }

    /// The socket closes: it is no longer listed.
    pub fn close(&mut self, id: SocketId) {
        for p in &mut self.processes {
            p.sockets.retain(|(i, _)| *i != id);
        }
    }

    /// The process is gone and so are its rows.
    pub fn vanish(&mut self, pid: u32) {
        self.processes.retain(|p| p.pid != pid);
    }

    /// Start counting the truth afresh: call after the sample the recorder takes as baseline.
    pub fn mark(&mut self) {
        self.moved.clear();
    }

    /// What each process really moved since [`Sim::mark`], (in, out); loopback sockets'
    /// bytes only when `include_loopback`. Processes that moved nothing are absent.
    pub fn moved(&self, include_loopback: bool) -> BTreeMap<String, (u64, u64)> {
        self.moved
            .iter()
            .map(|(name, m)| {
                let v = if include_loopback { m.all } else { m.external };
                (name.clone(), v)
            })
            .filter(|(_, v)| *v != (0, 0))
            .collect()
    }

    /// Print the sample nettop would print now.
    pub fn render(&self, style: Style) -> String {
        let mut out = String::new();
        out.push_str(&field_line(
            &["", "interface", "state", "bytes_in", "bytes_out"],
            style.padded,
            "",
        ));
        out.push('\n');
        if style.header_only {
            return out;
        }
        let mut rng = XorShift(style.shuffle);
        let mut processes: Vec<&Process> = self.processes.iter().collect();
        rng.shuffle(&mut processes);
        for p in processes {
            let (sum_in, sum_out) = p
                .sockets
                .iter()
                .filter_map(|(_, s)| s.bytes)
                .fold((0u64, 0u64), |a, b| (a.0 + b.0, a.1 + b.1));
            let ident = format!("{}.{}", p.name, p.pid);
            out.push_str(&field_line(
                &[&ident, "", "", &sum_in.to_string(), &sum_out.to_string()],
                style.padded,
                "",
            ));
            out.push('\n');
            let mut sockets: Vec<&Socket> = p.sockets.iter().map(|(_, s)| s).collect();
            rng.shuffle(&mut sockets);
            for s in sockets {
                let ident = format!("{} {}<->{}", s.proto, s.local, s.remote);
                let (bin, bout) = s.bytes.map_or((String::new(), String::new()), |b| {
                    (b.0.to_string(), b.1.to_string())
                });
                out.push_str(&field_line(
                    &[&ident, &s.interface, &s.state, &bin, &bout],
                    style.padded,
                    "   ",
                ));
                out.push('\n');
            }
        }
        out
    }

    fn find(&mut self, id: SocketId) -> Option<(String, &mut Socket)> {
        self.processes.iter_mut().find_map(|p| {
            let name = p.name.clone();
            p.sockets
                .iter_mut()
                .find(|(i, _)| *i == id)
                .map(|(_, s)| (name, s))
        })
    }
}

/// A socket with the given identifier parts, on `interface`, with no bytes yet.
pub fn socket(proto: &str, local: &str, remote: &str, interface: &str) -> Socket {
    Socket {
        proto: proto.to_string(),
        local: local.to_string(),
        remote: remote.to_string(),
        interface: interface.to_string(),
        state: if proto.starts_with("tcp") {
            "Established".to_string()
        } else {
            String::new()
        },
        bytes: None,
        loopback: false,
    }
}

/// One CSV line: fields joined by commas with the trailing comma; padded, each field is
/// surrounded by blanks and the line indented by `indent`.
fn field_line(fields: &[&str], padded: bool, indent: &str) -> String {
    let mut line = String::new();
    if padded {
        line.push_str(indent);
    }
    for f in fields {
        if padded {
            let _ = write!(line, " {f:>8} ,");
        } else {
            line.push_str(f);
            line.push(',');
        }
    }
    line
}

/// A small deterministic shuffle (xorshift64); seed 0 leaves the order alone.
struct XorShift(u64);

impl XorShift {
    fn shuffle<T>(&mut self, items: &mut [T]) {
        if self.0 == 0 {
            return;
        }
        for i in (1..items.len()).rev() {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            items.swap(i, (self.0 % (i as u64 + 1)) as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::nettop::parse;

    #[test]
    fn a_rendered_sample_parses_with_process_rows_equal_to_their_sockets() {
        let mut sim = Sim::new();
        sim.spawn("mDNSResponder", 690);
        let a = sim.open(690, socket("udp6", "*.5353", "*.*", "awdl0"));
        let b = sim.open(690, socket("udp4", "*:5353", "*:*", "en0"));
        sim.traffic(a, 10, 20);
        sim.traffic(b, 1, 2);
        sim.spawn("rapportd", 1178);
        let mut l = socket("tcp4", "*:51560", "*:*", "");
        l.state = "Listen".into();
        sim.open(1178, l);
        for style in [
            Style::default(),
            Style {
                shuffle: 7,
                padded: true,
                header_only: false,
            },
        ] {
            let text = sim.render(style);
            let parsed = parse::parse(&text).expect("parses");
            assert!(parsed.skipped.is_empty(), "{text}\n{:?}", parsed.skipped);
            let mut procs: Vec<_> = parsed.blocks[0]
                .processes
                .iter()
                .map(|p| {
                    (
                        p.name.to_string(),
                        p.bytes_in,
                        p.bytes_out,
                        p.connections.len(),
                    )
                })
                .collect();
            procs.sort();
            assert_eq!(
                procs,
                [
                    ("mDNSResponder".to_string(), 11, 22, 2),
                    ("rapportd".to_string(), 0, 0, 1)
                ]
            );
        }
        assert_eq!(
            sim.render(Style {
                header_only: true,
                ..Style::default()
            }),
            format!("{HEADER}\n")
        );
        assert_eq!(sim.moved(false)["mDNSResponder"], (11, 22));
    }
}
