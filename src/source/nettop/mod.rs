//! The macOS `nettop` source: one `nettop -L 1` child per tick, parsed by header name.
//!
//! Why one child per tick rather than one long-lived `-L 0` stream (FORMAT.md §6, §8):
//! - A `-L 1` child writes everything and exits, so EOF frames the sample. A stream has no
//!   end-of-sample marker (the *next* header closes a sample, a full interval late), is
//!   block-buffered on a pipe (so it needs a PTY, which brings CRLF), and only takes whole
//!   seconds for `-s`.
//! - A hung or confused child costs one tick: it is killed at the time bound and the next
//!   tick starts a fresh one. A stream that stalls has to be detected and restarted.
//! - Cost: reported at 20–70 ms per `-L 1` call once warm (about 0.5% of a core at a 5 s
//!   interval), against 0.2–0.6% for a well-behaved stream and 128–140% for one whose stdin
//!   hit EOF. The difference is small, and per-tick is the one that cannot go badly wrong.
//! - Counting is unchanged: without `-d`, nettop prints the same cumulative per-socket
//!   counters either way; connections that open and close between two ticks are lost in both.
//!
//! The command is `nettop -L 1 -x -n -J interface,state,bytes_in,bytes_out` without `-P`, so
//! each process row is followed by its connection rows. Counters are taken per connection
//! (process rows are sums over the sockets nettop lists *now*, so they fall when a socket
//! closes; a connection's counter only grows while it exists). stdin stays an open pipe
//! (closed or /dev/null stdin makes nettop spin at 100%+ CPU, §8).

pub mod parse;
pub mod rows;
pub mod sim;

use std::io::Read;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::{
    Cancel, Counter, CounterKey, Error, Owner, ProcessRef, Proto, Remote, Snapshot, Source,
    SourceKind, SourceOptions,
};

/// The flags netmon passes; the columns are the set verified verbatim in the agentmon capture.
pub const NETTOP_ARGS: &[&str] = &[
    "-L",
    "1",
    "-x",
    "-n",
    "-J",
    "interface,state,bytes_in,bytes_out",
];

/// How often a waiting sample checks for cancellation.
const CANCEL_POLL: Duration = Duration::from_millis(50);

pub struct NettopSource {
    program: PathBuf,
    timeout: Duration,
    /// The last sample's rows: unchanged lines are not parsed again (`rows`).
    rows: rows::RowCache,
}

impl NettopSource {
    pub fn new(opts: &SourceOptions) -> Result<Self, Error> {
        let program = find_on_path("nettop").ok_or_else(|| Error::ToolMissing {
            tool: "nettop".into(),
            hint: if cfg!(target_os = "macos") {
                " (it ships with macOS as /usr/bin/nettop: check PATH)".into()
            } else {
                " (nettop exists only on macOS; on Linux use --source auto, sockdiag or ebpf)"
                    .into()
            },
        })?;
        debug!(program = %program.display(), "using nettop");
        Ok(NettopSource {
            program,
            timeout: opts.sample_timeout,
            rows: rows::RowCache::default(),
        })
    }
}

impl Source for NettopSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Nettop
    }

    fn blind_spots(&self) -> Vec<String> {
        vec!["connections that open and close between two ticks are not seen by nettop".into()]
    }

    fn sample(&mut self, cancel: &Cancel) -> Result<Snapshot, Error> {
        let output = run_with_timeout(&self.program, NETTOP_ARGS, self.timeout, cancel)?;
        if output.success
            && let Some(snapshot) = self.rows.snapshot(&output.stdout)
        {
            return Ok(snapshot);
        }
        self.rows.clear();
        let mut parsed = match parse::parse(&output.stdout) {
            Ok(p) => p,
            Err(e) => {
                return Err(if output.success {
                    Error::BadOutput {
                        tool: "nettop".into(),
                        detail: e.to_string(),
                    }
                } else {
                    Error::Failed {
                        tool: "nettop".into(),
                        status: output.status,
                        stderr: first_line(&output.stderr),
                    }
                });
            }
        };
        for s in &parsed.skipped {
            warn!(line = s.line, reason = s.reason, excerpt = %s.excerpt, "skipped a nettop line");
        }
        if !output.success {
            warn!(status = %output.status, stderr = %first_line(&output.stderr),
                "nettop exited with an error after printing a sample; using the sample");
        }
        // With -L 1 there is one block; should there be more, the last one is the newest.
        let block = parsed.blocks.pop().unwrap_or_default();
        Ok(to_snapshot(&block))
    }
}

/// Turn one parsed sample into counters: one per connection that carries bytes, or one for the
/// process row itself when nettop lists no connections under it.
///
/// A counter's key is what stays true of its socket from one sample to the next (FORMAT.md §5):
/// pid, process name, protocol, local endpoint and remote port. Two things nettop prints are
/// left out on purpose:
/// - the **interface**, which is the one the socket used *last*: mDNSResponder's `*.5353`
///   socket reads `awdl0` in one capture and `en0` five minutes later, and a VPN moves
///   connections to `utunN`;
/// - the **remote host**, whose text depends on name resolution: `one.one.one.one:443`
///   without `-n`, `1.1.1.1:443` with it, for one socket.
///
/// Sockets that then share a key (one wildcard socket per interface, a server port's accepted
/// connections from one client port on two hosts) are told apart by the delta engine by counter
/// continuity, never by listing order (`crate::delta`).
pub fn to_snapshot(block: &parse::Block) -> Snapshot {
    let rows: usize = block
        .processes
        .iter()
        .map(|p| p.connections.len().max(1))
        .sum();
    let mut counters = Vec::with_capacity(rows);
    // A process row stands for its own counter only in output without connection rows (`-P`):
    // in netmon's own, a process's total is the sum of the connections listed under it
    // (FORMAT.md §6), so a process row with none is a lingering row of sockets already counted
    // per connection (or of none), never new bytes.
    let listed = block.processes.iter().any(|p| !p.connections.is_empty());
    // The process part of the keys is written once per process, and each connection key is
    // that prefix plus its own part: no `format!` per row (this runs for every nettop row).
    let mut process_key = String::new();
    let mut interfaces: Vec<std::sync::Arc<str>> = Vec::new();
    for p in &block.processes {
        let owner = Owner::Process(ProcessRef::new(p.pid, &*p.name));
        process_key.clear();
        push_process_key(&mut process_key, p.pid, &p.name);
        if p.connections.is_empty() {
            if listed {
                continue;
            }
            counters.push(Counter {
                key: CounterKey(process_key.clone()),
                owner,
                remote: None,
                loopback: false,
                bytes_in: p.bytes_in,
                bytes_out: p.bytes_out,
                closed: false,
                interface: None,
            });
            continue;
        }
        for c in &p.connections {
            if c.bytes_in.is_none() && c.bytes_out.is_none() {
                continue; // listener or unbound socket: no counter
            }
            let mut key = String::with_capacity(process_key.len() + c.ident.len() + 8);
            key.push_str(&process_key);
            push_connection_key(&mut key, c);
            let remote_addr = c.remote.host.as_deref().and_then(parse_ip);
            let loopback = is_loopback(c, remote_addr);
            counters.push(Counter {
                key: CounterKey(key),
                owner: owner.clone(),
                remote: remote_of(c, remote_addr, loopback),
                loopback,
                bytes_in: c.bytes_in.unwrap_or(0),
                bytes_out: c.bytes_out.unwrap_or(0),
                closed: false,
                interface: c.interface.map(|i| interned(&mut interfaces, i)),
            });
        }
    }
    Snapshot { counters }
}

/// A process's counter key, which starts every key of its connections: `nettop/PID/NAME`.
fn push_process_key(key: &mut String, pid: u32, name: &str) {
    key.push_str("nettop/");
    push_decimal(key, pid);
    key.push('/');
    push_key_text(key, name);
}

/// What a connection adds to its process's key: `/PROTO LOCALHOST:PORT<->REMOTEPORT`.
fn push_connection_key(key: &mut String, c: &parse::ConnectionRow) {
    key.push('/');
    key.push_str(&c.proto);
    key.push(' ');
    push_key_text(key, c.local.host.as_deref().unwrap_or("*"));
    key.push(':');
    push_port(key, c.local.port);
    key.push_str("<->");
    push_port(key, c.remote.port);
}

/// One shared string per interface name in a sample (a handful of names, hundreds of rows).
fn interned(seen: &mut Vec<std::sync::Arc<str>>, name: &str) -> std::sync::Arc<str> {
    if let Some(a) = seen.iter().find(|a| &***a == name) {
        return a.clone();
    }
    let a: std::sync::Arc<str> = name.into();
    seen.push(a.clone());
    a
}

/// A name or endpoint as it goes into a key: control characters (which nettop never printed,
/// but a process may name itself anything) become `?`, so a key never holds the separator the
/// delta engine puts between a key and a slot number.
fn push_key_text(key: &mut String, s: &str) {
    if s.chars().any(char::is_control) {
        key.extend(s.chars().map(|c| if c.is_control() { '?' } else { c }));
    } else {
        key.push_str(s);
    }
}

/// A port as it goes into a key: its number, or `*` for none.
fn push_port(key: &mut String, port: Option<u16>) {
    match port {
        Some(p) => push_decimal(key, u32::from(p)),
        None => key.push('*'),
    }
}

/// `n` in decimal, as `Display` writes it, without the formatting machinery (twice a row).
fn push_decimal(out: &mut String, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

/// Traffic that stays on this machine: the socket is on a loopback interface (`lo0`), or its
/// local or remote address is a loopback one. The local address matters on its own: a socket
/// bound to `127.0.0.1` whose remote nettop prints as `*:*` (an unconnected UDP socket of a
/// local proxy) has no remote to judge by.
fn is_loopback(c: &parse::ConnectionRow, remote_addr: Option<IpAddr>) -> bool {
    let on_lo = c.interface.is_some_and(|i| {
        i.strip_prefix("lo")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    let local_is_loopback = c
        .local
        .host
        .as_deref()
        .is_some_and(|h| h == "localhost" || parse_ip(h).is_some_and(|a| a.is_loopback()));
    let remote_is_loopback = c.remote.host.as_deref() == Some("localhost")
        || remote_addr.is_some_and(|a| a.is_loopback());
    on_lo || local_is_loopback || remote_is_loopback
}

fn remote_of(c: &parse::ConnectionRow, addr: Option<IpAddr>, loopback: bool) -> Option<Remote> {
    let host = c.remote.host.as_deref()?;
    let proto = match c.proto.trim_end_matches(['4', '6']) {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        "quic" => Proto::Quic,
        _ => Proto::Other,
    };
    Some(Remote {
        proto,
        host: match addr {
            // Already the address's own text: no formatting (nearly every IPv4 remote).
            Some(IpAddr::V4(_)) if is_plain_ipv4(host) => host.to_string(),
            Some(a) => a.to_string(),
            None => host.to_string(),
        },
        addr,
        port: c.remote.port,
        loopback,
    })
}

/// A dotted quad written the way `Ipv4Addr` prints one: four decimal numbers, none with a
/// leading zero, and nothing else (no scope, not IPv4-mapped IPv6). Only called on text that
/// parsed as an IPv4 address, so the numbers are in range.
fn is_plain_ipv4(host: &str) -> bool {
    host.split('.').count() == 4
        && host.split('.').all(|n| {
            !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && (n.len() == 1 || !n.starts_with('0'))
        })
}

/// An address as nettop prints it, without an IPv6 `%scope` suffix. IPv4-mapped IPv6
/// addresses are read as the IPv4 address they carry (`::ffff:127.0.0.1` is loopback).
fn parse_ip(host: &str) -> Option<IpAddr> {
    let ip: IpAddr = host.split('%').next()?.parse().ok()?;
    Some(ip.to_canonical())
}

/// Find an executable by name on PATH, the way a shell would.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What a finished child printed.
struct Output {
    stdout: String,
    stderr: String,
    success: bool,
    status: String,
}

/// Run a tool to completion with stdin kept open, killing it at `timeout` or on cancel.
fn run_with_timeout(
    program: &Path,
    args: &[&str],
    timeout: Duration,
    cancel: &Cancel,
) -> Result<Output, Error> {
    let tool = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut child = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|cause| Error::Spawn {
            tool: tool.clone(),
            cause,
        })?;
    // Held, never written, until the child is gone.
    let stdin = child.stdin.take();
    // Both pipes are read here, by poll(2), rather than by a thread each: the two threads
    // a tick cost about as much CPU as parsing the sample.
    let mut pipes = [
        child.stdout.take().map(|p| Pipe::new(p.into())),
        child.stderr.take().map(|p| Pipe::new(p.into())),
    ];
    let deadline = Instant::now() + timeout;
    let outcome = loop {
        if pipes.iter().all(|p| p.as_ref().is_none_or(|p| p.done)) {
            break Ok(());
        }
        if cancel.is_cancelled() {
            break Err(Error::Cancelled);
        }
        let now = Instant::now();
        if now >= deadline {
            break Err(Error::Timeout {
                tool: tool.clone(),
                timeout,
            });
        }
        if let Err(e) = wait_readable(&mut pipes, CANCEL_POLL.min(deadline - now)) {
            break Err(Error::Io(e));
        }
        for pipe in pipes.iter_mut().flatten() {
            pipe.drain();
        }
    };
    if let Err(e) = outcome {
        let _ = child.kill();
        let _ = child.wait();
        drop(stdin);
        return Err(e);
    }
    let status = child.wait()?;
    drop(stdin);
    let [stdout, stderr] = pipes.map(|p| p.map(|p| p.buf).unwrap_or_default());
    Ok(Output {
        stdout: utf8(stdout),
        stderr: utf8(stderr),
        success: status.success(),
        status: status.to_string(),
    })
}

/// One of a child's output pipes, read without blocking until its end.
struct Pipe {
    file: std::fs::File,
    buf: Vec<u8>,
    /// At its end, or failed (what was read is kept, as `read_to_end` would).
    done: bool,
}

impl Pipe {
    fn new(fd: OwnedFd) -> Self {
        let done = set_nonblocking(&fd).is_err();
        Pipe {
            file: fd.into(),
            buf: Vec::new(),
            done,
        }
    }

    /// Read everything available now.
    fn drain(&mut self) {
        const CHUNK: usize = 64 * 1024;
        while !self.done {
            let len = self.buf.len();
            self.buf.resize(len + CHUNK, 0);
            let read = self.file.read(&mut self.buf[len..]);
            self.buf.truncate(len + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) => self.done = true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => self.done = true,
            }
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) -> std::io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor this process owns; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Wait until a pipe not yet at its end can be read, or `wait` has passed.
fn wait_readable(pipes: &mut [Option<Pipe>], wait: Duration) -> std::io::Result<()> {
    let mut fds: Vec<libc::pollfd> = pipes
        .iter()
        .flatten()
        .filter(|p| !p.done)
        .map(|p| libc::pollfd {
            fd: p.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = wait.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
    // SAFETY: `fds` holds `fds.len()` initialised pollfd structs for the call's duration.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// Bytes as text, invalid UTF-8 replaced; valid text (nettop's, always) is not copied.
fn utf8(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(text: &str) -> parse::Block<'_> {
        let parsed = parse::parse(text).expect("parses");
        parsed.blocks.last().cloned().expect("one block")
    }

    #[test]
    fn connection_rows_become_one_counter_each_and_listeners_none() {
        let snap = to_snapshot(&block(
            ",interface,state,bytes_in,bytes_out,\n\
             apsd.404,,,10,20,\n\
             tcp4 192.0.2.1:5000<->198.51.100.1:443,en0,Established,10,20,\n\
             tcp4 *:5900<->*:*,,Listen,,,\n",
        ));
        assert_eq!(snap.counters.len(), 1);
        let c = &snap.counters[0];
        assert_eq!(c.bytes_in, 10);
        let r = c.remote.as_ref().expect("remote");
        assert_eq!(
            (r.host.as_str(), r.port, r.proto, r.loopback),
            ("198.51.100.1", Some(443), Proto::Tcp, false)
        );
    }

    #[test]
    fn process_without_connections_is_one_process_counter() {
        let snap = to_snapshot(&block(",bytes_in,bytes_out,\nlaunchd.1,5,6,\n"));
        assert_eq!(snap.counters[0].key.0, "nettop/1/launchd");
        assert_eq!(
            (snap.counters[0].bytes_in, snap.counters[0].bytes_out),
            (5, 6)
        );
    }

    #[test]
    fn a_process_row_without_connections_beside_others_with_them_is_no_counter() {
        // Tunnel lingers with the totals of sockets that were counted per connection while
        // they were listed (FORMAT.md §6: a process row is the sum of its listed connections);
        // counted from its own row it would count all of them again.
        let text = ",interface,state,bytes_in,bytes_out,\n\
                    apsd.404,,,10,20,\n\
                    tcp4 192.0.2.1:5000<->198.51.100.1:443,en0,Established,10,20,\n\
                    Tunnel.41723,,,222989263,476998038,\n";
        let keys: Vec<String> = to_snapshot(&block(text))
            .counters
            .into_iter()
            .map(|c| c.key.0)
            .collect();
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert!(keys[0].starts_with("nettop/404/apsd/"), "{keys:?}");
        let mut cache = rows::RowCache::default();
        assert_eq!(cache.snapshot(text), Some(to_snapshot(&block(text))));
        // Without any connection row (`-P`), process rows are all there is: each counts.
        let p_style = ",bytes_in,bytes_out,\nlaunchd.1,5,6,\nTunnel.41723,7,8,\n";
        assert_eq!(to_snapshot(&block(p_style)).counters.len(), 2);
        assert_eq!(cache.snapshot(p_style), Some(to_snapshot(&block(p_style))));
    }

    #[test]
    fn twins_share_a_key_and_the_interface_and_remote_host_are_not_part_of_it() {
        let a = to_snapshot(&block(
            ",interface,state,bytes_in,bytes_out,\n\
             mDNSResponder.690,,,3,3,\n\
             udp6 *.5353<->*.*,awdl0,,1,1,\n\
             udp6 *.5353<->*.*,en0,,2,2,\n\
             tcp4 198.18.0.1:64818<->one.one.one.one:443,utun8,Established,1,1,\n",
        ));
        let b = to_snapshot(&block(
            ",interface,state,bytes_in,bytes_out,\n\
             mDNSResponder.690,,,3,3,\n\
             tcp4 198.18.0.1:64818<->1.1.1.1:443,en0,Established,1,1,\n\
             udp6 *.5353<->*.*,en0,,2,2,\n\
             udp6 *.5353<->*.*,en0,,1,1,\n",
        ));
        let keys = |s: &Snapshot| {
            let mut k: Vec<String> = s.counters.iter().map(|c| c.key.0.clone()).collect();
            k.sort();
            k
        };
        assert_eq!(keys(&a), keys(&b));
        assert_eq!(
            keys(&a),
            [
                "nettop/690/mDNSResponder/tcp4 198.18.0.1:64818<->443",
                "nettop/690/mDNSResponder/udp6 *:5353<->*",
                "nettop/690/mDNSResponder/udp6 *:5353<->*",
            ]
        );
    }

    #[test]
    fn a_control_character_in_a_name_never_reaches_a_key() {
        let snap = to_snapshot(&block(",bytes_in,bytes_out,\nbad\u{1f}name.9,1,1,\n"));
        assert_eq!(snap.counters[0].key.0, "nettop/9/bad?name");
        let Owner::Process(p) = &snap.counters[0].owner else {
            panic!("a process owner")
        };
        assert_eq!(
            p.name, "bad\u{1f}name",
            "the name itself is kept as nettop printed it"
        );
    }

    #[test]
    fn a_socket_bound_to_loopback_is_loopback_whatever_its_remote() {
        let snap = to_snapshot(&block(
            ",interface,state,bytes_in,bytes_out,\n\
             Tunnel.41723,,,6,6,\n\
             udp4 127.0.0.1:10808<->*:*,lo0,,1,1,\n\
             udp4 127.0.0.1:10809<->*:*,,,1,1,\n\
             tcp6 ::ffff:127.0.0.1.50000<->::ffff:192.0.2.1.443,en0,Established,1,1,\n\
             tcp4 192.0.2.7:5000<->192.0.2.7:6000,lo0,Established,1,1,\n\
             tcp4 192.0.2.7:5002<->localhost:61852,,Established,1,1,\n\
             udp6 fe80::1%lo0.53<->fe80::2%lo0.53,lo0,,1,1,\n\
             udp4 *:5353<->*:*,en0,,1,1,\n\
             tcp4 192.0.2.7:5001<->198.51.100.1:443,en0,Established,1,1,\n",
        ));
        let lo: Vec<bool> = snap.counters.iter().map(|c| c.loopback).collect();
        assert_eq!(lo, [true, true, true, true, true, true, false, false]);
        assert!(
            snap.counters[0].remote.is_none(),
            "a wildcard remote stays unknown"
        );
    }

    #[test]
    fn an_interface_merely_starting_with_lo_is_not_loopback() {
        let snap = to_snapshot(&block(
            ",interface,state,bytes_in,bytes_out,\n\
             a.1,,,1,1,\n\
             udp4 192.0.2.7:5000<->198.51.100.1:443,low0,,1,1,\n",
        ));
        assert!(!snap.counters[0].loopback);
    }

    /// Counted bytes per process name over a replay of samples, through the engine.
    fn replay(samples: &[&str]) -> std::collections::BTreeMap<String, (u64, u64)> {
        let mut engine = crate::delta::Engine::new(crate::delta::Config::default());
        let mut counted = std::collections::BTreeMap::new();
        for text in samples {
            let o = engine.apply(
                &to_snapshot(&block(text)),
                std::time::Duration::from_secs(316),
            );
            assert!(o.rejected.is_empty());
            for d in o.deltas {
                let Owner::Process(p) = &d.owner else {
                    continue;
                };
                let e = counted.entry(p.name.clone()).or_insert((0, 0));
                e.0 += d.bytes_in;
                e.1 += d.bytes_out;
            }
        }
        counted
    }

    fn capture(name: &str) -> String {
        let dir = std::env::var_os("NETMON_FIXTURES")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../shared/fixtures/nettop")
            });
        let path = dir.join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (check out ../shared beside this repository or set NETMON_FIXTURES)",
                path.display()
            )
        })
    }

    #[test]
    fn issue_14_the_two_real_captures_in_order_count_mdnsresponders_real_growth() {
        // The captures were taken 5 min 16 s apart on one Mac (FORMAT.md, SOURCES.md). Between
        // them mDNSResponder's `*.5353` socket moved from awdl0 to en0, its sockets swapped
        // places in the listing, and its DNS connection's remote turned from a name into an
        // address (the second capture has -n). Its process row grew by exactly (69258, 21423).
        let counted = replay(&[
            &capture("L1_J_bytes_in_bytes_out_interface_state_time.csv"),
            &capture("n_L1_J_bytes_in_bytes_out_interface_state_time.csv"),
        ]);
        assert_eq!(counted["mDNSResponder"], (69_258, 21_423));
        // Each side of a loopback pair is counted once, under its own process.
        assert_eq!(counted["Tailscale"], (25_200, 0));
        assert_eq!(counted["io.tailscale.ip"], (645, 25_200));
        // A process none of whose sockets survived and which opened none counts nothing.
        assert!(!counted.contains_key("Happ"));
        // The local proxy's UDP socket bound to 127.0.0.1, remote `*:*`, on lo0 (hundreds of
        // MB in the first capture) is loopback, though it has no remote to tell.
        let snap = to_snapshot(&block(&capture(
            "L1_J_bytes_in_bytes_out_interface_state_time.csv",
        )));
        let proxy = snap
            .counters
            .iter()
            .find(|c| c.key.0.ends_with("/udp4 127.0.0.1:10808<->*"))
            .expect("the Tunnel proxy's UDP socket");
        assert!(proxy.loopback && proxy.remote.is_none());
        assert_eq!((proxy.bytes_in, proxy.bytes_out), (31_822_707, 233_407_085));
    }

    #[test]
    fn ipv6_remote_is_numeric_without_scope() {
        let snap = to_snapshot(&block(
            ",interface,state,bytes_in,bytes_out,\n\
             x.7,,,1,1,\n\
             quic6 fe80::7ca2:20ff:fe4d:277%awdl0.52214<->fe80::13:faff:fe55:a839%awdl0.50386,awdl0,,1,1,\n",
        ));
        let r = snap.counters[0].remote.as_ref().expect("remote");
        assert_eq!(r.host, "fe80::13:faff:fe55:a839");
        assert_eq!(r.port, Some(50386));
        assert_eq!(r.proto, Proto::Quic);
    }

    /// One event of the property test's scenarios.
    #[derive(Debug, Clone)]
    enum Event {
        /// Socket `n` (of those opened) moves bytes.
        Traffic(usize, u32, u32),
        /// Socket `n` is now used on interface `i`.
        Move(usize, usize),
    }

    fn event() -> impl proptest::strategy::Strategy<Value = Event> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (0usize..8, 0u32..50_000, 0u32..50_000).prop_map(|(n, a, b)| Event::Traffic(n, a, b)),
            2 => (0usize..8, 0usize..4).prop_map(|(n, i)| Event::Move(n, i)),
        ]
    }

    proptest::proptest! {
        /// Issue 14: for any sequence of socket counters moved between interfaces and listed in
        /// any order (padded or not, across restarts), the recorded totals equal the true
        /// growth, never more. The sockets include twins that differ only in the interface.
        #[test]
        fn recorded_totals_equal_true_growth_whatever_the_moves_and_the_order(
            ticks in proptest::collection::vec(
                (proptest::collection::vec(event(), 0..6), any_u64(), proptest::bool::ANY, proptest::bool::ANY),
                1..20,
            ),
        ) {
            use super::sim::{Sim, Style, socket};
            const IFACES: [&str; 4] = ["en0", "awdl0", "utun4", "en1"];
            let mut sim = Sim::new();
            sim.spawn("mDNSResponder", 690);
            sim.spawn("Safari", 501);
            let mut ids = Vec::new();
            // Three twins (one wildcard socket per interface), with history before recording.
            for (n, iface) in IFACES.iter().take(3).enumerate() {
                let id = sim.open(690, socket("udp6", "*.5353", "*.*", iface));
                sim.traffic(id, 1_000_000 * (n as u64 + 1), 700_000);
                ids.push(id);
            }
            ids.push(sim.open(690, socket("udp4", "*:5353", "*:*", "en0")));
            ids.push(sim.open(690, socket("tcp4", "198.18.0.1:64818", "1.1.1.1:443", "utun4")));
            for port in [50000, 50001, 50002] {
                let id = sim.open(501, socket("quic4", &format!("192.0.2.7:{port}"), "198.51.100.1:443", "en0"));
                sim.traffic(id, 5_000, 500);
                ids.push(id);
            }

            let mut engine = crate::delta::Engine::new(crate::delta::Config::default());
            let mut saved: std::collections::HashMap<CounterKey, (u64, u64)> = Default::default();
            let mut counted: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
            let sample = |sim: &Sim, engine: &mut crate::delta::Engine, style: Style, counted: &mut std::collections::BTreeMap<String, (u64, u64)>, saved: &mut std::collections::HashMap<CounterKey, (u64, u64)>| {
                let text = sim.render(style);
                let o = engine.apply(&to_snapshot(&block(&text)), std::time::Duration::from_secs(5));
                for d in o.deltas {
                    let Owner::Process(p) = &d.owner else { continue };
                    let e = counted.entry(p.name.clone()).or_insert((0, 0));
                    e.0 += d.bytes_in;
                    e.1 += d.bytes_out;
                }
                for (k, a, b) in o.state.upsert { saved.insert(k, (a, b)); }
                for k in o.state.remove { saved.remove(&k); }
            };
            sample(&sim, &mut engine, Style::default(), &mut counted, &mut saved);
            sim.mark();
            for (events, seed, padded, restart) in ticks {
                for e in events {
                    match e {
                        Event::Traffic(n, a, b) => sim.traffic(ids[n % ids.len()], a as u64, b as u64),
                        Event::Move(n, i) => sim.move_to(ids[n % ids.len()], IFACES[i]),
                    }
                }
                if restart {
                    let mut fresh = crate::delta::Engine::new(crate::delta::Config::default());
                    fresh.resume(saved.iter().map(|(k, v)| crate::delta::Saved {
                        key: k.clone(), bytes_in: v.0, bytes_out: v.1, age: std::time::Duration::from_secs(5),
                    }));
                    engine = fresh;
                }
                sample(&sim, &mut engine, Style { shuffle: seed, padded, header_only: false }, &mut counted, &mut saved);
            }
            proptest::prop_assert_eq!(counted, sim.moved(false));
        }
    }

    proptest::proptest! {
        /// The remote's text skips formatting only when the address prints as it was written.
        #[test]
        fn a_remote_address_is_always_in_its_canonical_text(
            octets in proptest::array::uniform4(0u8..=255),
            zero_pad in proptest::bool::ANY,
            mapped in proptest::bool::ANY,
            scope in proptest::bool::ANY,
        ) {
            let dotted = octets.map(|o| if zero_pad { format!("{o:03}") } else { o.to_string() }).join(".");
            let host = format!("{}{dotted}{}", if mapped { "::ffff:" } else { "" }, if scope { "%en0" } else { "" });
            let snap = to_snapshot(&block(&format!(
                ",interface,state,bytes_in,bytes_out,\na.1,,,1,1,\ntcp4 192.0.2.7:5000<->{host}{}443,en0,Established,1,1,\n",
                if mapped { "." } else { ":" }
            )));
            let remote = snap.counters[0].remote.as_ref().expect("a remote");
            let expected = parse_ip(&host).map_or_else(|| host.clone(), |a| a.to_string());
            proptest::prop_assert_eq!(&remote.host, &expected);
        }
    }

    #[test]
    fn push_decimal_handles_zero_and_the_largest_values() {
        for n in [0, 9, 10, 65_535, u32::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, n);
            assert_eq!(s, n.to_string());
        }
    }

    proptest::proptest! {
        #[test]
        fn push_decimal_writes_what_display_writes(n in proptest::num::u32::ANY) {
            let mut s = String::from("x");
            push_decimal(&mut s, n);
            proptest::prop_assert_eq!(s, format!("x{n}"));
        }
    }

    fn any_u64() -> impl proptest::strategy::Strategy<Value = u64> {
        proptest::num::u64::ANY
    }
}
