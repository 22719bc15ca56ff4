//! `netmon serve`: the localhost HTTP server the browser extension reports to
//! (extension/PROTOCOL.md).
//!
//! Synchronous: the main thread accepts connections and hands each to a short-lived thread
//! (at most [`MAX_IN_FLIGHT`] at once, so a slow client never holds up a fast one), which
//! reads one request under a size limit and a deadline (`http`, parsed by `httparse`), checks
//! Host, Origin and token before reading the body (`guard`), validates the body field by
//! field (`api`), stores it in the same database `netmon record` writes
//! (`crate::store::web`; SQLite in WAL mode, each batch one short IMMEDIATE transaction, the
//! busy timeout set in `store::open`), answers, and closes. `GET /metrics` (`metrics`) reads
//! the stored history for Prometheus, with a read-only token of its own.
//!
//! Tokens are never logged, and neither is any header.

pub mod api;
pub mod guard;
pub mod http;
pub mod metrics;
pub mod token;

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rusqlite::Connection;
use tracing::{debug, error, info, warn};

use crate::store::web as ingest;
use crate::store::{self, Create, lock};
use api::ApiError;
use guard::Route;
use http::{ReadError, Response};
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
    pub print_metrics_token: bool,
    /// How many names of each family get series of their own in `/metrics`.
    pub metrics_limits: crate::query::metrics::Limits,
    /// How long a client may take to send a whole request (head and body).
    pub client_timeout: Duration,
}

struct Shared {
    db: PathBuf,
    conn: Mutex<Connection>,
    token: Token,
    metrics_token: Token,
    metrics: metrics::Exporter,
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
    let metrics_token = token::load_or_create_metrics(&opts.db)?;
    if opts.print_metrics_token {
        println!("{}", metrics_token.reveal());
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
    let exporter = metrics::Exporter::open(&opts.db, opts.metrics_limits)?;
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
    let local = listener
        .local_addr()
        .context("reading the listening address")?;

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
    eprintln!(
        "netmon serve: Prometheus metrics at http://{local}/metrics, read-only token in {} \
         (`netmon serve --print-metrics-token` shows it)",
        token::metrics_token_path(&opts.db).display()
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
        metrics_token,
        metrics: exporter,
        bound: ip,
        client_timeout: opts.client_timeout,
        in_flight: AtomicUsize::new(0),
    });
    info!(listen = %local, "serving");

    while !stop.load(Ordering::SeqCst) {
        if !readable(&listener, Duration::from_millis(200)) {
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => dispatch(&shared, stream),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(e) => {
                // Out of file descriptors, or the like: say so, and give it a moment.
                warn!(error = %e, "accepting a connection failed");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    drop(listener);
    // Let requests in progress finish (each is bounded by the client timeout).
    let deadline = Instant::now() + opts.client_timeout + Duration::from_secs(2);
    while shared.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    info!("stopped");
    Ok(())
}

/// Wait until the listener has a connection to accept, or `timeout` passes (then the loop
/// looks at the stop flag again).
fn readable(listener: &TcpListener, timeout: Duration) -> bool {
    let mut fd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let rc = unsafe { libc::poll(&mut fd, 1, timeout.as_millis() as libc::c_int) };
    rc > 0 && fd.revents & libc::POLLIN != 0
}

/// Hand a connection to a thread of its own.
fn dispatch(shared: &Arc<Shared>, mut stream: TcpStream) {
    let n = shared.in_flight.fetch_add(1, Ordering::SeqCst);
    let busy = n >= MAX_IN_FLIGHT;
    if busy {
        warn!(in_flight = n, "refused a request: too many at once");
    }
    if n >= 2 * MAX_IN_FLIGHT {
        // Even the refusals are piling up: answer here, briefly, rather than start more.
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
        let _ = std::io::Write::write_all(&mut stream, &busy_response().to_bytes());
        return;
    }
    let worker = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("serve-request".into())
        .spawn(move || {
            let mut stream = stream;
            if busy {
                http::respond_and_close(&mut stream, &busy_response(), worker.client_timeout);
            } else {
                handle(&worker, &mut stream);
            }
            worker.in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        error!(error = %e, "could not start a thread for a request");
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn busy_response() -> Response {
    let e = ApiError::new(
        503,
        "busy",
        "too many requests at once; keep the reports and retry in a few seconds",
    );
    Response::json(e.status, e.body())
}

/// One connection: read a request, answer it, close.
fn handle(shared: &Shared, stream: &mut TcpStream) {
    let started = Instant::now();
    let head = match http::read_head(stream, started, shared.client_timeout) {
        Ok(h) => h,
        Err(ReadError::Gone) => return,
        Err(ReadError::Refuse(e)) => {
            info!(status = e.status, code = e.code, message = %e.message, "request refused");
            http::respond_and_close(stream, &error_response(&e), shared.client_timeout);
            return;
        }
    };
    let method = head.request.method.clone();
    let path = crate::text::excerpt(head.request.target.split('?').next().unwrap_or(""), 80);
    let mut cors: Option<String> = None;
    let result = process(shared, stream, head, started, &mut cors);
    let (mut response, refusal) = match result {
        Ok(r) => (r, None),
        Err(ReadError::Gone) => return,
        Err(ReadError::Refuse(e)) => (error_response(&e), Some(e)),
    };
    if let Some(origin) = cors {
        response = response
            .with("Access-Control-Allow-Origin", origin)
            .with("Vary", "Origin");
    }
    if let Some(e) = &refusal
        && e.status == 405
        && let Some(m) = guard::allowed_method(&path)
    {
        response = response.with("Allow", m);
    }
    let took_ms = started.elapsed().as_millis() as u64;
    match &refusal {
        None => debug!(%method, %path, status = response.status, took_ms, "request"),
        Some(e) if e.status >= 500 => {
            error!(%method, %path, status = e.status, message = %e.message, "request failed")
        }
        Some(e) => {
            info!(%method, %path, status = e.status, code = e.code, message = %e.message, "request refused")
        }
    }
    http::respond_and_close(stream, &response, shared.client_timeout);
}

fn error_response(e: &ApiError) -> Response {
    let r = Response::json(e.status, e.body());
    if e.status == 401 {
        r.with("WWW-Authenticate", "Bearer")
    } else {
        r
    }
}

fn process(
    shared: &Shared,
    stream: &mut TcpStream,
    head: http::Head,
    started: Instant,
    cors: &mut Option<String>,
) -> Result<Response, ReadError> {
    let r = &head.request;
    guard::host(r.header("host")?, shared.bound)?;
    *cors = guard::origin(r.header("origin")?)?;
    if r.method == "OPTIONS" {
        // A CORS preflight carries no credentials; what it asks about still needs them.
        return Ok(Response::json(204, String::new())
            .with("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
            .with(
                "Access-Control-Allow-Headers",
                "Authorization, Content-Type",
            )
            .with("Access-Control-Max-Age", "600"));
    }
    // The path decides which token is due; an unknown path or method is refused only after
    // the token, so endpoints are not probed without one.
    if guard::is_metrics(&r.target) {
        guard::metrics_token(r.header("authorization")?, &shared.metrics_token)?;
    } else {
        guard::token(r.header("authorization")?, &shared.token)?;
    }
    let route = guard::route(&r.method, &r.target)?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let ok = match route {
        Route::Status => status(shared)?,
        Route::Metrics => shared.metrics.scrape(r.header("accept")?)?,
        Route::Heartbeats => {
            let request =
                http::read_body(stream, head, api::MAX_BODY, started, shared.client_timeout)?;
            let beats = api::heartbeats(&request.body, now_ms)?;
            store_batch(shared, |c| ingest::record_heartbeats(c, &beats, now_ms))?
        }
        Route::Observations => {
            let request =
                http::read_body(stream, head, api::MAX_BODY, started, shared.client_timeout)?;
            let obs = api::observations(&request.body, now_ms)?;
            store_batch(shared, |c| ingest::record_observations(c, &obs, now_ms))?
        }
    };
    Ok(ok)
}

fn status(shared: &Shared) -> Result<Response, ApiError> {
    let holder = lock::holder(&shared.db).map_err(|e| internal(&e))?;
    // The holder's own run: for the moment between taking the lock and writing its run row
    // the source is not known yet (null), rather than an earlier, crashed run's.
    let source = holder.as_ref().and_then(|h| {
        let conn = lock_conn(shared);
        store::inspect::running_source(&conn, h.pid.parse().ok()?)
            .ok()
            .flatten()
    });
    Ok(Response::json(
        200,
        serde_json::json!({
            "ok": true,
            "version": env!("CARGO_PKG_VERSION"),
            "protocol": api::PROTOCOL,
            "recorder": {"running": holder.is_some(), "source": source},
        })
        .to_string(),
    ))
}

fn store_batch(
    shared: &Shared,
    write: impl FnOnce(&mut Connection) -> rusqlite::Result<usize>,
) -> Result<Response, ApiError> {
    let mut conn = lock_conn(shared);
    let n = write(&mut conn).map_err(|e| {
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
    })?;
    Ok(Response::json(
        200,
        serde_json::json!({ "accepted": n }).to_string(),
    ))
}

fn lock_conn(shared: &Shared) -> std::sync::MutexGuard<'_, Connection> {
    // A panic while holding the lock cannot leave a transaction open (rusqlite rolls back on
    // drop), so a poisoned lock is still a usable connection.
    shared
        .conn
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn internal(e: &dyn std::fmt::Display) -> ApiError {
    ApiError::new(
        500,
        "internal",
        format!("netmon could not store this ({e}); its log says more"),
    )
}
