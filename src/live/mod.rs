//! The recorder's unwritten ticks, for `top` and `status`: a Unix socket beside the database
//! (`<db>.sock`) that the running recorder answers.
//!
//! The recorder writes its ticks to the database in batches (`--write-every`, ten minutes by
//! default), so the file alone is up to one window old. What is newer lives only in the
//! recorder's memory; this is how readers see it without anything touching the disk. A reader
//! connects, sends one line of JSON (a [`Request`]), and gets one line back (a [`View`]): the
//! newest tick written to the database and the unwritten ticks' bytes per application, summed
//! over the reader's window and per local day. Readers take from the database what is at or
//! before `durable_ms` and from the view what is after it, so nothing is counted twice.
//!
//! The socket is created by the recorder that holds the database's lock, mode 0600 (0660 with
//! `--share-with-group`: connecting needs write permission, and the recorder reads nothing but
//! the request). A stale one left by a recorder that crashed is replaced only if it is a socket.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::record::batch::PendingTick;
use crate::tick::AppKind;

/// The protocol's version: a reader ignores a view of another version.
pub const VERSION: u32 = 1;

/// How long either side waits for the other.
const TIMEOUT: Duration = Duration::from_secs(1);

/// The longest request line read.
const MAX_REQUEST: u64 = 4096;

/// The socket of a database.
pub fn socket_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".sock");
    PathBuf::from(p)
}

/// What a reader asks for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Request {
    /// Sum the unwritten ticks within this long of the newest one (ms); 0: none.
    #[serde(default)]
    pub window_ms: i64,
    /// Also list what the counted interfaces carried per network in each unwritten tick
    /// ([`View::nets`]): data caps (`status`, `networks`) add it to what the file holds.
    #[serde(default)]
    pub nets: bool,
}

/// What the counted interfaces (not loopback, tunnels or bridges, as a data cap counts them)
/// carried on one network in one unwritten tick.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetBytes {
    /// The tick's wall time (epoch ms): a reader counts it only when it is newer than the
    /// newest tick its database snapshot holds, so a batch written meanwhile is not counted
    /// twice.
    pub at_ms: i64,
    /// The network's key (`store::networks`' `networks.key`).
    pub network: String,
    /// Bytes in + out.
    pub bytes: u64,
}

/// One application's bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppBytes {
    pub app: String,
    pub unattributed: bool,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Unwritten ticks summed: over the window, or over one local day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sum {
    /// Epoch second of the local midnight (per-day sums only).
    #[serde(default)]
    pub day: i64,
    pub ticks: u64,
    /// The oldest summed tick's time and monotonic span (its start is `at - elapsed`).
    pub first_at_ms: Option<i64>,
    pub first_elapsed_ms: i64,
    /// Monotonic time the summed ticks cover: rates divide by this.
    pub elapsed_ms: i64,
    pub apps: Vec<AppBytes>,
}

/// What the recorder answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct View {
    pub version: u32,
    pub pid: u32,
    pub interval_ms: i64,
    pub write_every_ms: i64,
    /// The newest tick in the database (its wall time, epoch ms).
    pub durable_ms: Option<i64>,
    /// The newest tick sampled, written or not.
    pub last_tick_ms: Option<i64>,
    /// Ticks sampled and not yet written.
    pub unwritten: u64,
    /// Consecutive failed writes (0: the last write worked).
    pub failed_writes: u32,
    /// The unwritten ticks within the request's window of the newest.
    pub window: Sum,
    /// The unwritten ticks per local day.
    pub days: Vec<Sum>,
    /// Per unwritten tick and network, when the request asked for them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nets: Vec<NetBytes>,
}

/// One unwritten tick as the view keeps it: bytes per application.
#[derive(Debug, Clone)]
struct LiveTick {
    at_ms: i64,
    elapsed_ms: i64,
    day: i64,
    apps: Vec<AppBytes>,
    /// Counted interface bytes per network key.
    nets: Vec<(String, u64)>,
}

#[derive(Debug, Default)]
struct State {
    view: View,
    ticks: Vec<LiveTick>,
}

impl State {
    fn answer(&self, req: &Request) -> View {
        let mut v = self.view.clone();
        v.unwritten = self.ticks.len() as u64;
        if let Some(newest) = self.ticks.last() {
            let from = newest.at_ms - req.window_ms.max(0);
            let within: Vec<&LiveTick> = if req.window_ms > 0 {
                self.ticks.iter().filter(|t| t.at_ms > from).collect()
            } else {
                Vec::new()
            };
            v.window = sum(&within, 0);
            let mut days: Vec<i64> = self.ticks.iter().map(|t| t.day).collect();
            days.dedup();
            days.sort_unstable();
            days.dedup();
            v.days = days
                .into_iter()
                .map(|d| {
                    let of_day: Vec<&LiveTick> = self.ticks.iter().filter(|t| t.day == d).collect();
                    sum(&of_day, d)
                })
                .collect();
        }
        if req.nets {
            v.nets = self
                .ticks
                .iter()
                .flat_map(|t| {
                    t.nets.iter().map(|(network, bytes)| NetBytes {
                        at_ms: t.at_ms,
                        network: network.clone(),
                        bytes: *bytes,
                    })
                })
                .collect();
        }
        v
    }
}

/// Bytes summed per (application, unattributed) as the view's rows.
fn app_bytes(by: HashMap<(&str, bool), (u64, u64)>) -> Vec<AppBytes> {
    by.into_iter()
        .map(|((app, unattributed), (bytes_in, bytes_out))| AppBytes {
            app: app.to_string(),
            unattributed,
            bytes_in,
            bytes_out,
        })
        .collect()
}

fn sum(ticks: &[&LiveTick], day: i64) -> Sum {
    let mut by: HashMap<(&str, bool), (u64, u64)> = HashMap::new();
    for t in ticks {
        for a in &t.apps {
            let e = by.entry((a.app.as_str(), a.unattributed)).or_default();
            e.0 += a.bytes_in;
            e.1 += a.bytes_out;
        }
    }
    let mut apps = app_bytes(by);
    apps.sort_by(|a, b| a.app.cmp(&b.app));
    Sum {
        day,
        ticks: ticks.len() as u64,
        first_at_ms: ticks.first().map(|t| t.at_ms),
        first_elapsed_ms: ticks.first().map_or(0, |t| t.elapsed_ms),
        elapsed_ms: ticks.iter().map(|t| t.elapsed_ms).sum(),
        apps,
    }
}

/// The recorder's side: keeps the view and answers the socket from a thread of its own.
pub struct Publisher {
    state: Arc<Mutex<State>>,
    path: PathBuf,
}

impl Publisher {
    /// Listen on `<db>.sock`. `None` (with a warning: `top` then shows what is written) when
    /// the path holds something that is not a socket, or the socket cannot be made.
    pub fn start(db: &Path, view: View, share_with_group: bool) -> Option<Publisher> {
        let path = socket_path(db);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_socket() => {
                // We hold the database's lock: a socket here was left by a recorder that
                // crashed.
                if let Err(e) = std::fs::remove_file(&path) {
                    warn!(path = %path.display(), error = %e, "cannot replace the stale live socket; `top` shows only what is written");
                    return None;
                }
            }
            Ok(_) => {
                warn!(path = %path.display(), "something that is not netmon's socket is in the way; `top` shows only what is written");
                return None;
            }
            Err(_) => {}
        }
        let listener = match UnixListener::bind(&path) {
            Ok(l) => l,
            Err(e) => {
                warn!(path = %path.display(), error = %e, "cannot create the live socket; `top` shows only what is written");
                return None;
            }
        };
        let mode = if share_with_group { 0o660 } else { 0o600 };
        if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)) {
            warn!(path = %path.display(), error = %e, "cannot set the live socket's mode; not serving it");
            let _ = std::fs::remove_file(&path);
            return None;
        }
        let state = Arc::new(Mutex::new(State {
            view: View {
                version: VERSION,
                ..view
            },
            ticks: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        let spawned = std::thread::Builder::new()
            .name("live".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    match conn {
                        Ok(stream) => {
                            if let Err(e) = answer(stream, &shared) {
                                debug!(error = %e, "a live reader went away");
                            }
                        }
                        Err(e) => debug!(error = %e, "accepting a live reader failed"),
                    }
                }
            });
        if let Err(e) = spawned {
            warn!(error = %e, "cannot start the live socket's thread");
            let _ = std::fs::remove_file(&path);
            return None;
        }
        Some(Publisher { state, path })
    }

    fn with(&self, f: impl FnOnce(&mut State)) {
        // A panic elsewhere while holding the lock leaves a view still worth showing.
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s);
    }

    /// A tick was sampled (not yet written).
    pub fn tick(&self, t: &PendingTick) {
        let mut by: HashMap<(&str, bool), (u64, u64)> = HashMap::new();
        for p in &t.traffic {
            if p.bytes_in == 0 && p.bytes_out == 0 {
                continue;
            }
            let e = by
                .entry((
                    p.process.app.name.as_str(),
                    p.process.kind == AppKind::Unattributed,
                ))
                .or_default();
            e.0 += p.bytes_in;
            e.1 += p.bytes_out;
        }
        let apps = app_bytes(by);
        let mut nets: Vec<(String, u64)> = Vec::new();
        for i in t.net.iter().flat_map(|n| &n.interfaces) {
            let Some(network) = i
                .network
                .as_ref()
                .filter(|_| crate::source::interfaces::Kind::parse(i.kind).carries_off_machine())
            else {
                continue;
            };
            let bytes = i.bytes_in.saturating_add(i.bytes_out);
            if bytes == 0 {
                continue;
            }
            match nets.iter_mut().find(|(k, _)| *k == network.key) {
                Some(e) => e.1 = e.1.saturating_add(bytes),
                None => nets.push((network.key.clone(), bytes)),
            }
        }
        self.with(|s| {
            s.view.last_tick_ms = Some(t.at_ms);
            s.ticks.push(LiveTick {
                at_ms: t.at_ms,
                elapsed_ms: t.elapsed_ms,
                day: t.day,
                apps,
                nets,
            });
        });
    }

    /// Every unwritten tick was written; the newest in the database is at `durable_ms`.
    pub fn written(&self, durable_ms: Option<i64>) {
        self.with(|s| {
            s.ticks.clear();
            s.view.durable_ms = durable_ms.or(s.view.durable_ms);
            s.view.failed_writes = 0;
        });
    }

    /// A write failed (`consecutive` in a row); the ticks are kept.
    pub fn failed(&self, consecutive: u32) {
        self.with(|s| s.view.failed_writes = consecutive);
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // Ours (the recorder made it and holds the lock); the listening thread ends with the
        // process.
        let _ = std::fs::remove_file(&self.path);
    }
}

fn answer(stream: UnixStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut line = String::new();
    BufReader::new((&stream).take_limited(MAX_REQUEST)).read_line(&mut line)?;
    let req: Request = serde_json::from_str(line.trim()).unwrap_or_default();
    let view = {
        let s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.answer(&req)
    };
    let mut out = serde_json::to_vec(&view).map_err(std::io::Error::other)?;
    out.push(b'\n');
    (&stream).write_all(&out)
}

/// `Read::take` for a borrowed stream.
trait TakeLimited: std::io::Read + Sized {
    fn take_limited(self, n: u64) -> std::io::Take<Self> {
        std::io::Read::take(self, n)
    }
}
impl<R: std::io::Read> TakeLimited for R {}

/// Ask the recorder of `db` for its unwritten ticks. `None` when no recorder answers (none
/// running, one that writes every tick, one too old to have the socket).
pub fn read(db: &Path, req: &Request) -> Option<View> {
    let stream = UnixStream::connect(socket_path(db)).ok()?;
    stream.set_read_timeout(Some(TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(TIMEOUT)).ok()?;
    let mut line = serde_json::to_vec(req).ok()?;
    line.push(b'\n');
    (&stream).write_all(&line).ok()?;
    let mut answer = String::new();
    BufReader::new((&stream).take_limited(64 << 20))
        .read_line(&mut answer)
        .ok()?;
    let view: View = serde_json::from_str(answer.trim()).ok()?;
    (view.version == VERSION).then_some(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(at_ms: i64, day: i64, apps: &[(&str, u64)]) -> LiveTick {
        LiveTick {
            at_ms,
            elapsed_ms: 1000,
            day,
            apps: apps
                .iter()
                .map(|(a, b)| AppBytes {
                    app: a.to_string(),
                    unattributed: false,
                    bytes_in: *b,
                    bytes_out: 1,
                })
                .collect(),
            nets: vec![("gw:01".to_string(), at_ms as u64 / 1000)],
        }
    }

    #[test]
    fn the_window_sums_only_the_newest_ticks_and_days_sum_all() {
        let s = State {
            view: View::default(),
            ticks: vec![
                tick(1_000, 0, &[("a", 10)]),
                tick(2_000, 86_400, &[("a", 20), ("b", 5)]),
                tick(3_000, 86_400, &[("b", 7)]),
            ],
        };
        let v = s.answer(&Request {
            window_ms: 1_500,
            ..Request::default()
        });
        assert_eq!(v.unwritten, 3);
        assert_eq!(v.window.ticks, 2);
        assert_eq!(v.window.elapsed_ms, 2000);
        assert_eq!(v.window.first_at_ms, Some(2_000));
        let b: Vec<(String, u64)> = v
            .window
            .apps
            .iter()
            .map(|a| (a.app.clone(), a.bytes_in))
            .collect();
        assert_eq!(b, vec![("a".into(), 20), ("b".into(), 12)]);
        assert_eq!(v.days.len(), 2);
        assert_eq!(v.days[0].apps[0].bytes_in, 10);
        assert_eq!(v.days[1].apps.len(), 2);
        let none = s.answer(&Request {
            window_ms: 0,
            ..Request::default()
        });
        assert_eq!(none.window.ticks, 0);
        assert!(none.nets.is_empty(), "only when asked");
        let nets = s.answer(&Request {
            nets: true,
            ..Request::default()
        });
        assert_eq!(
            nets.nets
                .iter()
                .map(|n| (n.at_ms, n.bytes))
                .collect::<Vec<_>>(),
            [(1_000, 1), (2_000, 2), (3_000, 3)]
        );
    }

    #[test]
    fn a_reader_gets_the_view_over_the_socket_and_nothing_when_no_one_listens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("n.db");
        assert!(read(&db, &Request::default()).is_none());
        let p = Publisher::start(
            &db,
            View {
                pid: 42,
                interval_ms: 5000,
                write_every_ms: 600_000,
                ..View::default()
            },
            false,
        )
        .expect("listening");
        let mode = std::fs::metadata(socket_path(&db))
            .expect("socket")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        p.written(Some(77));
        let v = read(
            &db,
            &Request {
                window_ms: 10_000,
                ..Request::default()
            },
        )
        .expect("an answer");
        assert_eq!((v.pid, v.durable_ms, v.unwritten), (42, Some(77), 0));
        drop(p);
        assert!(
            !socket_path(&db).exists(),
            "the socket goes with the recorder"
        );
    }

    #[test]
    fn a_file_in_the_sockets_place_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("n.db");
        std::fs::write(socket_path(&db), b"mine").expect("write");
        assert!(Publisher::start(&db, View::default(), false).is_none());
        assert_eq!(std::fs::read(socket_path(&db)).expect("read"), b"mine");
    }
}
