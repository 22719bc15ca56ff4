//! `netmon serve`: the localhost HTTP server the browser extension reports to
//! (extension/PROTOCOL.md).
//!
//! Synchronous: one thread owns every connection (`reactor`, non-blocking sockets under
//! `poll(2)`), reads each request under a size limit and one deadline for the whole request
//! (`http`, parsed by `httparse`), checks Host, Origin and token as soon as the head has come
//! and before reading the body (`guard`), and hands whole requests to a few worker threads,
//! which validate the body field by field (`api`), store it in the same database `netmon
//! record` writes (`crate::store::web`; SQLite in WAL mode, each batch one short IMMEDIATE
//! transaction, the busy timeout set in `store::open`) and answer. A slow client costs an
//! entry in the poll set, never a worker: it cannot starve the extension. `GET /metrics`
//! (`metrics`) reads the stored history for Prometheus, on a worker, with a read-only token
//! of its own.
//!
//! Tokens are never logged, and neither is any header.

pub mod api;
pub mod guard;
pub mod http;
pub mod metrics;
pub mod reactor;
pub mod token;

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rusqlite::Connection;
use tracing::{debug, error, info, warn};

use crate::store::web as ingest;
use crate::store::{self, Create, lock};
use api::ApiError;
use guard::Route;
use http::{Request, Response};
use token::Token;

pub use reactor::{MAX_CONNECTIONS, QUEUE, WORKERS};

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
}

pub fn run(opts: Options) -> anyhow::Result<()> {
    // Nothing (token, directory, mode) is created or changed before the path is known to be
    // a new file or a netmon database.
    store::check_target(&opts.db)?;
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
    });
    info!(listen = %local, "serving");
    reactor::run(
        listener,
        shared,
        reactor::Limits::new(opts.client_timeout),
        &stop,
    )
    .context("serving")?;
    info!("stopped");
    Ok(())
}

/// What the handler remembers of a request's head.
pub struct Ticket {
    route: Route,
    cors: Option<String>,
    method: String,
    path: String,
}

enum Screened {
    Preflight,
    Route(Route),
}

impl reactor::App for Shared {
    type Ticket = Ticket;

    fn screen(&self, r: &Request, started: Instant) -> Result<(Ticket, usize), Response> {
        let method = r.method.clone();
        let path = crate::text::excerpt(r.target.split('?').next().unwrap_or(""), 80);
        let mut cors: Option<String> = None;
        let verdict = (|| -> Result<Screened, ApiError> {
            guard::host(r.header("host")?, self.bound)?;
            cors = guard::origin(r.header("origin")?)?;
            if r.method == "OPTIONS" {
                // A CORS preflight carries no credentials; what it asks about still needs them.
                return Ok(Screened::Preflight);
            }
            // The path decides which token is due; an unknown path or method is refused only
            // after the token, so endpoints are not probed without one.
            if guard::is_metrics(&r.target) {
                guard::metrics_token(r.header("authorization")?, &self.metrics_token)?;
            } else {
                guard::token(r.header("authorization")?, &self.token)?;
            }
            Ok(Screened::Route(guard::route(&r.method, &r.target)?))
        })();
        match verdict {
            Ok(Screened::Route(route)) => Ok((
                Ticket {
                    route,
                    cors,
                    method,
                    path,
                },
                api::MAX_BODY,
            )),
            Ok(Screened::Preflight) => {
                let r = Response::json(204, String::new())
                    .with("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
                    .with(
                        "Access-Control-Allow-Headers",
                        "Authorization, Content-Type",
                    )
                    .with("Access-Control-Max-Age", "600");
                Err(finish(r, None, cors, &method, &path, started))
            }
            Err(e) => Err(finish(
                error_response(&e),
                Some(e),
                cors,
                &method,
                &path,
                started,
            )),
        }
    }

    fn work(&self, t: Ticket, request: Request, started: Instant) -> Response {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let result = match t.route {
            Route::Status => status(self),
            Route::Metrics => request
                .header("accept")
                .and_then(|accept| self.metrics.scrape(accept)),
            Route::Heartbeats => api::heartbeats(&request.body, now_ms).and_then(|beats| {
                store_batch(self, |c| ingest::record_heartbeats(c, &beats, now_ms))
            }),
            Route::Observations => api::observations(&request.body, now_ms).and_then(|obs| {
                store_batch(self, |c| ingest::record_observations(c, &obs, now_ms))
            }),
        };
        match result {
            Ok(r) => finish(r, None, t.cors, &t.method, &t.path, started),
            Err(e) => finish(
                error_response(&e),
                Some(e),
                t.cors,
                &t.method,
                &t.path,
                started,
            ),
        }
    }

    fn refuse(&self, e: &ApiError, started: Instant) -> Response {
        let took_ms = started.elapsed().as_millis() as u64;
        if e.status == 503 {
            warn!(
                status = e.status,
                took_ms, "refused a request: too many at once"
            );
        } else {
            info!(status = e.status, code = e.code, message = %e.message, took_ms, "request refused");
        }
        error_response(e)
    }
}

/// Add the CORS and Allow headers a response needs, and log it.
fn finish(
    mut response: Response,
    refusal: Option<ApiError>,
    cors: Option<String>,
    method: &str,
    path: &str,
    started: Instant,
) -> Response {
    if let Some(origin) = cors {
        response = response
            .with("Access-Control-Allow-Origin", origin)
            .with("Vary", "Origin");
    }
    if let Some(e) = &refusal
        && e.status == 405
        && let Some(m) = guard::allowed_method(path)
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
    response
}

fn error_response(e: &ApiError) -> Response {
    let r = Response::json(e.status, e.body());
    if e.status == 401 {
        r.with("WWW-Authenticate", "Bearer")
    } else {
        r
    }
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
