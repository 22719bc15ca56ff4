//! A slow-client flood against a running `netmon serve` (issue 13), shared by the test
//! (`safety.rs`, a few seconds) and the benchmark (`benches/serve.rs`, a minute):
//! `slow` connections that each send one byte of a request every `trickle` and connect again
//! when the server closes them, while one valid client sends `GET /v1/status` `rate` times a
//! second and times each answer. Everything stops at the end of `duration`: every loop is
//! bounded in time, and every socket has a timeout.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What to throw at the server.
#[derive(Debug, Clone, Copy)]
pub struct Flood {
    pub slow: usize,
    pub trickle: Duration,
    pub rate: u32,
    pub duration: Duration,
}

/// What the valid client saw.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub sent: usize,
    /// Answered 200.
    pub answered: usize,
    /// Statuses other than 200, and failures to connect or read (0).
    pub failed: Vec<u16>,
    /// Time to a whole answer, of every request answered 200, sorted.
    pub latencies: Vec<Duration>,
    /// Connections the slow clients opened in all.
    pub slow_connections: usize,
}

impl Outcome {
    pub fn answered_share(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.answered as f64 / self.sent as f64
        }
    }

    /// The `p`-th percentile (0–100) of the latencies.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((p / 100.0) * (self.latencies.len() - 1) as f64).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)]
    }
}

/// The request the slow clients trickle (valid, were it ever finished).
const SLOW_REQUEST: &[u8] = b"POST /v1/heartbeats HTTP/1.1\r\nHost: 127.0.0.1\r\n\
Content-Type: application/json\r\nContent-Length: 20\r\n\r\n{\"heartbeats\": []}  ";

/// Run `flood` against `addr`, the valid client using `token`.
pub fn run(addr: SocketAddr, token: &str, flood: Flood) -> Outcome {
    let end = Instant::now() + flood.duration;
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));
    let slow: Vec<_> = (0..flood.slow)
        .map(|i| {
            let (stop, opened) = (Arc::clone(&stop), Arc::clone(&opened));
            std::thread::spawn(move || {
                // Spread the clients over one trickle interval.
                std::thread::sleep(flood.trickle / flood.slow.max(1) as u32 * i as u32);
                trickle(addr, flood.trickle, &stop, &opened)
            })
        })
        .collect();
    // Let the flood build up before the valid client starts.
    std::thread::sleep(flood.trickle.min(flood.duration / 4));
    let request = format!(
        "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n",
        addr.port()
    );
    let period = Duration::from_secs(1) / flood.rate.max(1);
    let mut out = Outcome {
        sent: 0,
        answered: 0,
        failed: Vec::new(),
        latencies: Vec::new(),
        slow_connections: 0,
    };
    let mut next = Instant::now();
    while next < end {
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        next += period;
        out.sent += 1;
        let t0 = Instant::now();
        match exchange(addr, request.as_bytes()) {
            Some(200) => {
                out.answered += 1;
                out.latencies.push(t0.elapsed());
            }
            Some(status) => out.failed.push(status),
            None => out.failed.push(0),
        }
    }
    stop.store(true, Ordering::SeqCst);
    for t in slow {
        let _ = t.join();
    }
    out.latencies.sort();
    out.slow_connections = opened.load(Ordering::SeqCst);
    out
}

/// One request and its status (`None`: no answer within 10 s).
fn exchange(addr: SocketAddr, raw: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(raw).ok()?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).ok()?;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1)?.parse().ok()
}

/// One slow client: a byte every `every`; when the server closes, connect again.
fn trickle(addr: SocketAddr, every: Duration, stop: &AtomicBool, opened: &AtomicUsize) {
    while !stop.load(Ordering::SeqCst) {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        opened.fetch_add(1, Ordering::SeqCst);
        let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
        let _ = s.set_nonblocking(false);
        for (i, b) in SLOW_REQUEST.iter().enumerate() {
            if stop.load(Ordering::SeqCst) || s.write_all(&[*b]).is_err() {
                break;
            }
            // Wait out the interval in short steps, watching for the stop flag and for the
            // server closing the connection (its 408).
            let until = Instant::now() + every;
            let mut closed = false;
            while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
                let mut buf = [0u8; 512];
                match s.read(&mut buf) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(_) => {} // the 408, before the close
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
            if closed || i + 1 == SLOW_REQUEST.len() {
                break;
            }
        }
    }
}
