//! `netmon serve`: the localhost HTTP server the browser extension reports to
//! (extension/PROTOCOL.md).
//!
//! Synchronous, on `tiny_http`: its accept thread parses request heads, this module's loop
//! hands each request to a short-lived thread (at most [`MAX_IN_FLIGHT`] at once, so a slow
//! client never holds up a fast one), which checks Host, Origin and token (`guard`), reads
//! the body under a size limit and a deadline, validates it field by field (`api`), and
//! stores it in the same database `netmon record` writes (`crate::web::ingest`; SQLite in
//! WAL mode, each batch one short IMMEDIATE transaction, the busy timeout set in
//! `store::open`).
//!
//! Slow clients: the listening socket carries receive and send timeouts, which accepted
//! sockets inherit (Linux and macOS), so a client that stops sending is dropped after
//! `--client-timeout`; a body must also arrive whole within that time, else 408.
//!
//! The token is never logged, and neither is any header.

pub mod api;
pub mod guard;
pub mod token;

use std::io::{ErrorKind, Read};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rusqlite::Connection;
use tiny_http::{Header, Request, Response, Server};
use tracing::{debug, error, info, warn};

use crate::store::{self, Create, lock};
use crate::web::ingest;
use api::ApiError;
use guard::Route;
use token::Token;

/// Requests handled at the same time; more get 503 until one finishes.
pub const MAX_IN_FLIGHT: usize = 32;

/// Everything `serve` needs, validated.
#[derive(Debug, Clone)]
pub struct Options {
    pub db: PathBuf,
    pub listen: SocketAddr,
    pub allow_remote: bool,
    pub print_token: bool,
    /// How long a client may take to send a request body, and may stay silent.
    pub client_timeout: Duration,
}

impl Options {
    pub fn from_args(db: PathBuf, a: crate::cli::ServeArgs) -> anyhow::Result<Self> {
        Ok(Options {
            db,
            listen: a.listen,
            allow_remote: a.allow_remote,
            print_token: a.print_token,
            client_timeout: a.client_timeout,
        })
    }
}

struct Shared {
    db: PathBuf,
    conn: Mutex<Connection>,
    token: Token,
    bound: IpAddr,
    client_timeout: Duration,
    in_flight: AtomicUsize,
}

pub fn run(opts: Options) -> anyhow::Result<()> {
    let token = token::load_or_create(&opts.db)?;
    if opts.print_token {
        println!("{}", token.reveal());
        return Ok(());
    }
    let ip = opts.listen.ip();
    if !ip.to_canonical().is_loopback() && !opts.allow_remote {
        return Err(crate::exit::user(format!(
            "refusing to listen on {}: it is reachable from other machines, and the extension \
             only needs this one; use --listen 127.0.0.1:PORT, or add --allow-remote if you \
             really mean it",
            opts.listen
        )));
    }
    let conn = store::open(&opts.db, Create::IfMissing)?;
    let listener = TcpListener::bind(opts.listen).map_err(|e| {
        if e.kind() == ErrorKind::AddrInUse {
            crate::exit::user(format!(
                "{} is already in use (is another `netmon serve` running?): stop it, or pass \
                 --listen 127.0.0.1:OTHER_PORT and set the same address in the extension",
                opts.listen
            ))
        } else {
            anyhow::Error::new(e).context(format!("listening on {}", opts.listen))
        }
    })?;
    set_socket_timeouts(&listener, opts.client_timeout)
        .context("setting the client timeout on the listening socket")?;
    let local = listener
        .local_addr()
        .context("reading the listening address")?;
    let server = Server::from_listener(listener, None)
        .map_err(|e| anyhow::anyhow!("starting the HTTP server: {e}"))?;

    if !ip.to_canonical().is_loopback() {
        eprintln!(
            "netmon serve: WARNING: listening on {local}, which other machines can reach. \
             Requests still need the token and a Host naming this address, but the token \
             travels unencrypted over plain HTTP."
        );
    }
    eprintln!(
        "netmon serve: listening on http://{local}, database {}",
        opts.db.display()
    );
    eprintln!(
        "netmon serve: access token in {} (`netmon serve --print-token` shows it)",
        token::token_path(&opts.db).display()
    );

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    let shared = Arc::new(Shared {
        db: opts.db.clone(),
        conn: Mutex::new(conn),
        token,
        bound: ip,
        client_timeout: opts.client_timeout,
        in_flight: AtomicUsize::new(0),
    });
    info!(listen = %local, "serving");

    while !stop.load(Ordering::SeqCst) {
        let request = match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            // The accept thread reports its socket timeouts as errors: nothing happened.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => {
                warn!(error = %e, "accepting a connection failed");
                continue;
            }
        };
        if shared.in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            shared.in_flight.fetch_sub(1, Ordering::SeqCst);
            let e = ApiError::new(
                503,
                "busy",
                "too many requests at once; retry in a few seconds",
            );
            warn!(
                in_flight = MAX_IN_FLIGHT,
                "refused a request: too many at once"
            );
            let _ = request.respond(json_response(e.status, e.body()));
            continue;
        }
        let shared = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("serve-request".into())
            .spawn(move || {
                handle(&shared, request);
                shared.in_flight.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            error!(error = %e, "could not start a thread for a request");
        }
    }
    drop(server);
    // Let requests in progress finish (each is bounded by the client timeout).
    let deadline = Instant::now() + opts.client_timeout + Duration::from_secs(1);
    while shared.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    info!("stopped");
    Ok(())
}

/// SO_RCVTIMEO and SO_SNDTIMEO on the listening socket: accepted sockets inherit them, so
/// every read and write of a client connection gives up after `timeout`.
fn set_socket_timeouts(listener: &TcpListener, timeout: Duration) -> std::io::Result<()> {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    for opt in [libc::SO_RCVTIMEO, libc::SO_SNDTIMEO] {
        // SAFETY: a valid socket descriptor and a timeval of the size given.
        let rc = unsafe {
            libc::setsockopt(
                listener.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// What a request gets back.
struct Reply {
    status: u16,
    body: String,
}

fn handle(shared: &Shared, mut request: Request) {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let mut cors: Option<String> = None;
    let result = process(shared, &mut request, &mut cors);
    let (reply, code) = match result {
        Ok(r) => (r, None),
        Err(e) => (
            Reply {
                status: e.status,
                body: e.body(),
            },
            Some(e),
        ),
    };
    let mut response = json_response(reply.status, reply.body);
    if let Some(origin) = &cors {
        for (k, v) in [
            ("Access-Control-Allow-Origin", origin.as_str()),
            ("Vary", "Origin"),
        ] {
            add_header(&mut response, k, v);
        }
    }
    match &code {
        Some(e) if e.status == 401 => add_header(&mut response, "WWW-Authenticate", "Bearer"),
        Some(e) if e.status == 405 => {
            if let Some(m) = guard::allowed_method(&path) {
                add_header(&mut response, "Allow", m);
            }
        }
        _ => {}
    }
    if reply.status == 204 {
        for (k, v) in [
            ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
            (
                "Access-Control-Allow-Headers",
                "Authorization, Content-Type",
            ),
            ("Access-Control-Max-Age", "600"),
        ] {
            add_header(&mut response, k, v);
        }
    }
    let took_ms = started.elapsed().as_millis() as u64;
    let path = excerpt(&path);
    match &code {
        None => debug!(%method, %path, status = reply.status, took_ms, "request"),
        Some(e) if e.status >= 500 => {
            error!(%method, %path, status = e.status, message = %e.message, "request failed")
        }
        Some(e) => {
            info!(%method, %path, status = e.status, code = e.code, message = %e.message, "request refused")
        }
    }
    if let Err(e) = request.respond(response) {
        debug!(error = %e, "could not send the response");
    }
}

fn process(
    shared: &Shared,
    request: &mut Request,
    cors: &mut Option<String>,
) -> Result<Reply, ApiError> {
    guard::host(header(request, "Host")?, shared.bound)?;
    *cors = guard::origin(header(request, "Origin")?)?;
    if request.method().as_str() == "OPTIONS" {
        // A CORS preflight carries no credentials; what it asks about still needs them.
        return Ok(Reply {
            status: 204,
            body: String::new(),
        });
    }
    guard::token(header(request, "Authorization")?, &shared.token)?;
    let route = guard::route(request.method().as_str(), request.url())?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    match route {
        Route::Status => status(shared),
        Route::Heartbeats => {
            let body = read_body(request, api::MAX_BODY, shared.client_timeout)?;
            let beats = api::heartbeats(&body, now_ms)?;
            let n = store_batch(shared, |c| ingest::record_heartbeats(c, &beats, now_ms))?;
            Ok(accepted(n))
        }
        Route::Observations => {
            let body = read_body(request, api::MAX_BODY, shared.client_timeout)?;
            let obs = api::observations(&body, now_ms)?;
            let n = store_batch(shared, |c| ingest::record_observations(c, &obs, now_ms))?;
            Ok(accepted(n))
        }
    }
}

fn accepted(n: usize) -> Reply {
    Reply {
        status: 200,
        body: serde_json::json!({ "accepted": n }).to_string(),
    }
}

fn status(shared: &Shared) -> Result<Reply, ApiError> {
    let holder = lock::holder(&shared.db).map_err(|e| internal(&e))?;
    let source = if holder.is_some() {
        let conn = lock_conn(shared)?;
        conn.query_row(
            "SELECT source FROM runs WHERE stopped_at IS NULL ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get::<_, String>(0),
        )
        .ok()
    } else {
        None
    };
    Ok(Reply {
        status: 200,
        body: serde_json::json!({
            "ok": true,
            "version": env!("CARGO_PKG_VERSION"),
            "protocol": api::PROTOCOL,
            "recorder": {"running": holder.is_some(), "source": source},
        })
        .to_string(),
    })
}

fn store_batch(
    shared: &Shared,
    write: impl FnOnce(&mut Connection) -> rusqlite::Result<usize>,
) -> Result<usize, ApiError> {
    let mut conn = lock_conn(shared)?;
    write(&mut conn).map_err(|e| {
        if matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        ) {
            ApiError::new(
                503,
                "busy",
                "the database stayed busy; keep the reports and retry in a few seconds",
            )
        } else {
            internal(&e)
        }
    })
}

fn lock_conn(shared: &Shared) -> Result<std::sync::MutexGuard<'_, Connection>, ApiError> {
    // A panic while holding the lock cannot leave a transaction open (rusqlite rolls back on
    // drop), so a poisoned lock is still a usable connection.
    Ok(shared
        .conn
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner))
}

fn internal(e: &dyn std::fmt::Display) -> ApiError {
    ApiError::new(
        500,
        "internal",
        format!("netmon could not store this ({e}); its log says more"),
    )
}

/// The one value of a header; a header sent twice is refused (which one would count?).
fn header<'a>(request: &'a Request, name: &'static str) -> Result<Option<&'a str>, ApiError> {
    let mut values = request
        .headers()
        .iter()
        .filter(|h| h.field.equiv(name))
        .map(|h| h.value.as_str());
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::bad_request(format!(
            "the {name} header was sent more than once"
        )));
    }
    Ok(first)
}

/// Read the whole body: at most `limit` bytes, within `timeout`.
fn read_body(request: &mut Request, limit: usize, timeout: Duration) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(
            413,
            "payload_too_large",
            format!(
                "the body is larger than {} KiB; send fewer reports per request",
                limit / 1024
            ),
        )
    };
    let declared = request.body_length();
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let slow = || {
        ApiError::new(
            408,
            "request_timeout",
            format!(
                "the body did not arrive within {}; send it in one go",
                humantime::format_duration(timeout)
            ),
        )
    };
    let deadline = Instant::now() + timeout;
    let reader = request.as_reader();
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut chunk = [0u8; 8192];
    loop {
        if Instant::now() > deadline {
            return Err(slow());
        }
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                if body.len() + n > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(slow());
            }
            Err(e) => {
                return Err(ApiError::bad_request(format!(
                    "could not read the body: {e}"
                )));
            }
        }
    }
    if declared.is_some_and(|n| body.len() < n) {
        return Err(ApiError::bad_request(
            "the body ended before its Content-Length",
        ));
    }
    Ok(body)
}

fn json_response(status: u16, body: String) -> Response<std::io::Cursor<Vec<u8>>> {
    let mut r = Response::from_string(body).with_status_code(status);
    add_header(&mut r, "Content-Type", "application/json");
    add_header(&mut r, "Cache-Control", "no-store");
    r
}

fn add_header<R: Read>(response: &mut Response<R>, name: &str, value: &str) {
    if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
        response.add_header(h);
    }
}

fn excerpt(s: &str) -> String {
    s.chars().take(80).collect()
}
