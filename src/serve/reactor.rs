//! The connection loop of `netmon serve`: one thread owns every client socket, non-blocking,
//! and waits on all of them at once with `poll(2)`; a small pool of worker threads only ever
//! sees requests that have arrived whole.
//!
//! Why: a client that sends a byte every two seconds must not hold anything a valid client
//! needs. Here it holds one entry in the poll set until its whole-request deadline (the client
//! timeout, counted from the moment it connected: trickling bytes does not extend it) and
//! then gets 408. Accepting never waits on a worker or a slow client. When the connection
//! table is full, the oldest connection still sending its request is dropped to make room
//! (it is the slowest; a new one may be the extension). Workers run the handler (validation,
//! SQLite) and hand the response back; this thread writes it, half-closes, and drains what the
//! client still sends for a moment so the close does not reset the answer away.
//!
//! Two threads would do; there are [`WORKERS`] so one slow SQLite write (busy timeout) does
//! not hold a status request. More complete requests than [`QUEUE`] waiting for a worker get
//! 503 at once.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::api::ApiError;
use super::http::{self, Head, Request, Response};

/// Connections open at once (each costs a file descriptor and a few KiB).
pub const MAX_CONNECTIONS: usize = 256;
/// Worker threads running handlers.
pub const WORKERS: usize = 4;
/// Whole requests waiting for a worker before more get 503.
pub const QUEUE: usize = 64;
/// How long a closed connection's leftover input is read and dropped.
const DRAIN: Duration = Duration::from_secs(1);
/// The most leftover input read from one connection.
const DRAIN_BYTES: usize = 1024 * 1024;
/// The most bytes read from one connection per wake-up (others get their turn).
const READ_BUDGET: usize = 64 * 1024;
/// The most connections accepted per wake-up.
const ACCEPT_BUDGET: usize = 64;
/// The longest the loop sleeps before it looks at the stop flag again.
const TICK: Duration = Duration::from_millis(200);

/// What the server does with requests.
pub trait App: Send + Sync + 'static {
    /// What the handler needs to remember from the head (route, CORS origin…).
    type Ticket: Send + 'static;

    /// Judge a request head as soon as it has arrived, before any body is read: `Err` answers
    /// now (a refusal, a CORS preflight); `Ok` gives the ticket and the largest body to read.
    fn screen(
        &self,
        request: &Request,
        started: Instant,
    ) -> Result<(Self::Ticket, usize), Response>;

    /// Handle a whole request (on a worker thread).
    fn work(&self, ticket: Self::Ticket, request: Request, started: Instant) -> Response;

    /// The response to a request refused before it reached the handler: malformed, too
    /// large, too slow (408), or no worker free (503).
    fn refuse(&self, error: &ApiError, started: Instant) -> Response;
}

/// Limits of one server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The whole request, head and body, must arrive within this of the connection.
    pub client_timeout: Duration,
    pub max_connections: usize,
    pub workers: usize,
    pub queue: usize,
}

impl Limits {
    pub fn new(client_timeout: Duration) -> Self {
        Limits {
            client_timeout,
            max_connections: MAX_CONNECTIONS,
            workers: WORKERS,
            queue: QUEUE,
        }
    }
}

enum State<T> {
    /// Receiving the head: the bytes so far.
    Head(Vec<u8>),
    /// Receiving the body.
    Body(Head, T),
    /// With a worker.
    Working,
    /// Sending the response: the bytes and how many are sent.
    Writing(Vec<u8>, usize),
    /// Response sent and sending side shut: reading and dropping what still comes.
    Draining(usize),
}

struct Conn<T> {
    stream: TcpStream,
    started: Instant,
    /// When the current state gives up.
    deadline: Instant,
    state: State<T>,
}

impl<T> Conn<T> {
    /// Still sending its request (so it may be dropped to make room, or time out with 408).
    fn receiving(&self) -> bool {
        matches!(self.state, State::Head(_) | State::Body(..))
    }
}

struct Job<T> {
    id: u64,
    ticket: T,
    request: Request,
    started: Instant,
}

/// Serve `listener` until `stop` is set, then finish the requests in progress (each bounded
/// by the client timeout) and return.
pub fn run<A: App>(
    listener: TcpListener,
    app: Arc<A>,
    limits: Limits,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let (wake_rx, wake_tx) = UnixStream::pair()?;
    wake_rx.set_nonblocking(true)?;
    wake_tx.set_nonblocking(true)?;
    let (job_tx, job_rx) = mpsc::sync_channel::<Job<A::Ticket>>(limits.queue);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (done_tx, done_rx) = mpsc::channel::<(u64, Response)>();
    let mut workers = Vec::new();
    for n in 0..limits.workers.max(1) {
        let (app, rx, done, wake) = (
            Arc::clone(&app),
            Arc::clone(&job_rx),
            done_tx.clone(),
            wake_tx.try_clone()?,
        );
        workers.push(
            std::thread::Builder::new()
                .name(format!("serve-worker-{n}"))
                .spawn(move || worker(&*app, &rx, &done, &wake))?,
        );
    }
    drop(done_tx);
    let mut lp = Loop {
        app: &*app,
        limits,
        conns: HashMap::new(),
        next_id: 0,
        jobs: job_tx,
    };
    let mut listening = Some(listener);
    let mut stop_by: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if stop_by.is_none() && stop.load(Ordering::SeqCst) {
            // Stop accepting; let the requests in progress finish.
            listening = None;
            stop_by = Some(now + limits.client_timeout + Duration::from_secs(2));
        }
        if let Some(by) = stop_by
            && (lp.conns.is_empty() || now >= by)
        {
            break;
        }
        let (ids, mut fds) = lp.poll_set(&wake_rx, listening.as_ref());
        let wait = lp
            .conns
            .values()
            .map(|c| c.deadline.saturating_duration_since(now))
            .min()
            .unwrap_or(TICK)
            .min(TICK);
        // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
        let rc = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                // Round up, so a deadline just ahead is not polled for 0 ms in a busy loop.
                (wait.as_millis() as libc::c_int).saturating_add(1),
            )
        };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != ErrorKind::Interrupted {
                warn!(error = %e, "poll failed");
                std::thread::sleep(Duration::from_millis(50));
            }
            continue;
        }
        if fds[0].revents != 0 {
            let mut sink = [0u8; 256];
            while matches!((&wake_rx).read(&mut sink), Ok(n) if n > 0) {}
        }
        while let Ok((id, response)) = done_rx.try_recv() {
            lp.respond(id, &response);
        }
        for (fd, id) in fds[2..].iter().zip(&ids) {
            if fd.revents != 0 {
                lp.service(*id, fd.revents);
            }
        }
        if let Some(l) = &listening
            && fds[1].revents & libc::POLLIN != 0
        {
            lp.accept(l);
        }
        lp.expire(Instant::now());
    }
    drop(lp);
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

fn worker<A: App>(
    app: &A,
    jobs: &Mutex<Receiver<Job<A::Ticket>>>,
    done: &mpsc::Sender<(u64, Response)>,
    mut wake: &UnixStream,
) {
    loop {
        // One worker waits on the queue at a time; the lock is released before the work.
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = job else {
            return; // the loop ended
        };
        let response = app.work(job.ticket, job.request, job.started);
        if done.send((job.id, response)).is_err() {
            return;
        }
        let _ = wake.write(&[1]);
    }
}

struct Loop<'a, A: App> {
    app: &'a A,
    limits: Limits,
    conns: HashMap<u64, Conn<A::Ticket>>,
    next_id: u64,
    jobs: SyncSender<Job<A::Ticket>>,
}

impl<A: App> Loop<'_, A> {
    /// The poll set: the waker, the listener (or a placeholder), then every connection.
    fn poll_set(
        &self,
        wake: &UnixStream,
        listener: Option<&TcpListener>,
    ) -> (Vec<u64>, Vec<libc::pollfd>) {
        let pfd = |fd, events| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        let mut fds = Vec::with_capacity(self.conns.len() + 2);
        fds.push(pfd(wake.as_raw_fd(), libc::POLLIN));
        // A negative fd is ignored by poll.
        fds.push(pfd(listener.map_or(-1, |l| l.as_raw_fd()), libc::POLLIN));
        let mut ids = Vec::with_capacity(self.conns.len());
        for (id, c) in &self.conns {
            let events = match c.state {
                State::Head(_) | State::Body(..) | State::Draining(_) => libc::POLLIN,
                State::Writing(..) => libc::POLLOUT,
                // Nothing to do until the worker answers; a hang-up is noticed when writing.
                State::Working => continue,
            };
            ids.push(*id);
            fds.push(pfd(c.stream.as_raw_fd(), events));
        }
        (ids, fds)
    }

    fn accept(&mut self, listener: &TcpListener) {
        for _ in 0..ACCEPT_BUDGET {
            let stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                    return;
                }
                Err(e) => {
                    // Out of file descriptors, or the like: say so; the next wake-up retries.
                    warn!(error = %e, "accepting a connection failed");
                    return;
                }
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let now = Instant::now();
            if self.conns.len() >= self.limits.max_connections && !self.evict_slowest() {
                // Every slot is with a worker or answering: refuse this one briefly.
                let busy = self.app.refuse(&busy(), now);
                let mut s = &stream;
                let _ = s.write(&busy.to_bytes());
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            self.conns.insert(
                id,
                Conn {
                    stream,
                    started: now,
                    deadline: now + self.limits.client_timeout,
                    state: State::Head(Vec::new()),
                },
            );
        }
    }

    /// Drop the connection that has been sending its request the longest.
    fn evict_slowest(&mut self) -> bool {
        let oldest = self
            .conns
            .iter()
            .filter(|(_, c)| c.receiving() || matches!(c.state, State::Draining(_)))
            .min_by_key(|(_, c)| c.started)
            .map(|(id, _)| *id);
        match oldest {
            Some(id) => {
                debug!(id, "dropped the slowest connection to make room");
                self.conns.remove(&id);
                true
            }
            None => false,
        }
    }

    /// React to poll's `revents` for connection `id`.
    fn service(&mut self, id: u64, revents: libc::c_short) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        match &mut conn.state {
            State::Writing(..) => {
                if revents & (libc::POLLOUT | libc::POLLERR | libc::POLLHUP) != 0 {
                    self.write(id);
                }
            }
            State::Draining(drained) => {
                let mut sink = [0u8; 8192];
                loop {
                    match (&conn.stream).read(&mut sink) {
                        Ok(0) => break self.close(id),
                        Ok(n) => {
                            *drained += n;
                            if *drained >= DRAIN_BYTES {
                                break self.close(id);
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => break self.close(id),
                    }
                }
            }
            State::Head(_) | State::Body(..) => self.read(id),
            State::Working => {}
        }
    }

    /// Read what a receiving connection sent, and move it on when its request is whole.
    fn read(&mut self, id: u64) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let mut chunk = [0u8; 8192];
        let mut budget = READ_BUDGET;
        while budget > 0 {
            let n = match (&conn.stream).read(&mut chunk) {
                Ok(0) => {
                    // The client stopped sending. With nothing (or half a head) there is nobody
                    // to answer; half a body gets told.
                    if matches!(conn.state, State::Body(..)) {
                        let e = ApiError::bad_request("the body ended before its Content-Length");
                        let r = self.app.refuse(&e, conn.started);
                        return self.respond(id, &r);
                    }
                    return self.close(id);
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return self.close(id),
            };
            budget = budget.saturating_sub(n);
            let bytes = &chunk[..n];
            let step = match &mut conn.state {
                State::Head(buf) => {
                    buf.extend_from_slice(bytes);
                    match http::parse_head(buf) {
                        Ok(None) => Step::More,
                        Ok(Some(head)) => Step::Head(head),
                        Err(e) => Step::Refuse(e),
                    }
                }
                State::Body(head, _) => match head.push_body(bytes) {
                    Ok(()) if head.missing() == 0 => Step::Whole,
                    Ok(()) => Step::More,
                    Err(e) => Step::Refuse(e),
                },
                _ => return,
            };
            match step {
                Step::More => {}
                Step::Refuse(e) => {
                    let r = self.app.refuse(&e, conn.started);
                    return self.respond(id, &r);
                }
                Step::Head(head) => match self.app.screen(&head.request, conn.started) {
                    Err(r) => return self.respond(id, &r),
                    Ok((ticket, limit)) => {
                        if let Err(e) = http::check_body(&head, limit) {
                            let r = self.app.refuse(&e, conn.started);
                            return self.respond(id, &r);
                        }
                        if head.missing() == 0 {
                            conn.state = State::Body(head, ticket);
                            return self.dispatch(id);
                        }
                        if head.expect_continue {
                            // 25 bytes into an idle socket's empty buffer: never partial.
                            let _ = (&conn.stream).write(http::CONTINUE);
                        }
                        conn.state = State::Body(head, ticket);
                    }
                },
                Step::Whole => return self.dispatch(id),
            }
        }
    }

    /// Hand a whole request to a worker.
    fn dispatch(&mut self, id: u64) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let State::Body(head, ticket) = std::mem::replace(&mut conn.state, State::Working) else {
            return;
        };
        let Some(request) = head.complete() else {
            return self.close(id);
        };
        let job = Job {
            id,
            ticket,
            request,
            started: conn.started,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => {
                warn!(
                    queued = self.limits.queue,
                    "refused a request: too many at once"
                );
                let r = self.app.refuse(&busy(), job.started);
                self.respond(id, &r);
            }
            Err(TrySendError::Disconnected(job)) => {
                let e = ApiError::new(500, "internal", "the server is stopping");
                let r = self.app.refuse(&e, job.started);
                self.respond(id, &r);
            }
        }
    }

    /// Start sending `response` on connection `id`.
    fn respond(&mut self, id: u64, response: &Response) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.state = State::Writing(response.to_bytes(), 0);
        // The client gets as long to read the answer as it had to send the request.
        conn.deadline = Instant::now() + self.limits.client_timeout;
        self.write(id);
    }

    fn write(&mut self, id: u64) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let State::Writing(bytes, sent) = &mut conn.state else {
            return;
        };
        while *sent < bytes.len() {
            match (&conn.stream).write(&bytes[*sent..]) {
                Ok(0) => return self.close(id),
                Ok(n) => *sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return self.close(id),
            }
        }
        // Sent: stop sending, and read what the client still sends for a moment, so closing
        // with unread data does not reset the connection before the client read the answer.
        let _ = conn.stream.shutdown(Shutdown::Write);
        conn.state = State::Draining(0);
        conn.deadline = Instant::now() + DRAIN;
    }

    fn close(&mut self, id: u64) {
        self.conns.remove(&id);
    }

    /// Give up on connections past their deadline: 408 to a request that did not arrive whole
    /// in time (silence to one that sent nothing), and close the rest.
    fn expire(&mut self, now: Instant) {
        let late: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline <= now && !matches!(c.state, State::Working))
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            let Some(conn) = self.conns.get(&id) else {
                continue;
            };
            let said_something = match &conn.state {
                State::Head(buf) => !buf.is_empty(),
                State::Body(..) => true,
                _ => false,
            };
            if said_something {
                let e = http::timeout_error(self.limits.client_timeout);
                let r = self.app.refuse(&e, conn.started);
                self.respond(id, &r);
                // A client too slow to take even the answer is closed at the next deadline.
            } else {
                self.close(id);
            }
        }
    }
}

enum Step {
    More,
    Head(Head),
    Whole,
    Refuse(ApiError),
}

fn busy() -> ApiError {
    ApiError::new(
        503,
        "busy",
        "too many requests at once; keep the reports and retry in a few seconds",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    /// Answers every request with its body, after `delay`.
    struct Echo {
        delay: Duration,
    }

    impl App for Echo {
        type Ticket = ();
        fn screen(&self, r: &Request, _: Instant) -> Result<((), usize), Response> {
            if r.target == "/refuse" {
                return Err(Response::json(403, "{}".into()));
            }
            Ok(((), 1024))
        }
        fn work(&self, _: (), r: Request, _: Instant) -> Response {
            std::thread::sleep(self.delay);
            Response::json(200, String::from_utf8_lossy(&r.body).into_owned())
        }
        fn refuse(&self, e: &ApiError, _: Instant) -> Response {
            Response::json(e.status, e.body())
        }
    }

    struct Server {
        addr: SocketAddr,
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Server {
        fn start(app: Echo, limits: Limits) -> Server {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = l.local_addr().expect("addr");
            let stop = Arc::new(AtomicBool::new(false));
            let s = Arc::clone(&stop);
            let thread = std::thread::spawn(move || {
                run(l, Arc::new(app), limits, &s).expect("run");
            });
            Server {
                addr,
                stop,
                thread: Some(thread),
            }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(raw).expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    }

    fn limits(timeout_ms: u64) -> Limits {
        Limits::new(Duration::from_millis(timeout_ms))
    }

    #[test]
    fn a_request_gets_its_answer_and_a_refusal_comes_before_the_body() {
        let srv = Server::start(
            Echo {
                delay: Duration::ZERO,
            },
            limits(2000),
        );
        let out = exchange(
            srv.addr,
            b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        );
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.ends_with("hello"), "{out}");
        // Refused on its head: the 10-byte body never sent is not waited for.
        let out = exchange(
            srv.addr,
            b"POST /refuse HTTP/1.1\r\nContent-Length: 10\r\n\r\n",
        );
        assert!(out.starts_with("HTTP/1.1 403"), "{out}");
        let out = exchange(
            srv.addr,
            b"POST /x HTTP/1.1\r\nContent-Length: 99999\r\n\r\n",
        );
        assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    }

    #[test]
    fn a_trickling_client_gets_408_at_its_deadline_and_a_silent_one_is_closed() {
        let srv = Server::start(
            Echo {
                delay: Duration::ZERO,
            },
            limits(300),
        );
        let started = Instant::now();
        let mut s = TcpStream::connect(srv.addr).expect("connect");
        s.write_all(b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
            .expect("send");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        assert!(out.starts_with("HTTP/1.1 408"), "{out}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let mut silent = TcpStream::connect(srv.addr).expect("connect");
        silent
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut out = Vec::new();
        silent.read_to_end(&mut out).expect("closed");
        assert!(out.is_empty(), "nothing said, nothing answered");
    }

    #[test]
    fn slow_clients_filling_the_table_do_not_keep_a_valid_one_out() {
        let srv = Server::start(
            Echo {
                delay: Duration::ZERO,
            },
            Limits {
                max_connections: 8,
                ..limits(5000)
            },
        );
        // Twice as many half-sent requests as there are slots.
        let slow: Vec<TcpStream> = (0..16)
            .map(|_| {
                let mut s = TcpStream::connect(srv.addr).expect("connect");
                s.write_all(b"POST /x HTTP/1.1\r\nCont").expect("send");
                s
            })
            .collect();
        for _ in 0..5 {
            let out = exchange(srv.addr, b"GET /x HTTP/1.1\r\n\r\n");
            assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        }
        drop(slow);
    }

    #[test]
    fn requests_beyond_the_queue_get_503_busy() {
        let srv = Server::start(
            Echo {
                delay: Duration::from_millis(500),
            },
            Limits {
                workers: 1,
                queue: 1,
                ..limits(5000)
            },
        );
        let addr = srv.addr;
        let clients: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(move || exchange(addr, b"GET /x HTTP/1.1\r\n\r\n")))
            .collect();
        let answers: Vec<String> = clients
            .into_iter()
            .map(|c| c.join().expect("client"))
            .collect();
        let busy = answers
            .iter()
            .filter(|a| a.starts_with("HTTP/1.1 503"))
            .count();
        let ok = answers
            .iter()
            .filter(|a| a.starts_with("HTTP/1.1 200"))
            .count();
        // One with the worker, at most one queued; the rest refused at once, not held.
        assert!(ok >= 1 && busy >= 2 && ok + busy == 4, "{answers:?}");
    }
}
