//! `GET /metrics`: the stored history as a Prometheus exposition.
//!
//! The handler owns a connection of its own (so a scrape never waits for the extension's
//! ingest, nor the other way round), reads everything it reports in one read transaction
//! (`query::metrics`; a WAL snapshot, which never blocks the recorder's commits), and renders
//! it in the format the scraper asked for (`output::prometheus`). It keeps the last answer's
//! sums and adds only the ticks committed since (`query::metrics::sums_since`), reading the
//! daily totals in full on the first scrape and hourly after that. Only when names join the set
//! of those with a series of their own (the first answer, and each time an application or
//! website first reaches the threshold while there is room) does it write: one short IMMEDIATE
//! transaction that reads the totals again and stores the new members with their bases
//! (`store::metrics`), so two servers on one database cannot disagree about a base.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use tracing::{debug, info, warn};

use super::api::ApiError;
use super::http::Response;
use crate::output::prometheus::{self, Format};
use crate::query::metrics::{self as q, Limits};
use crate::store::{self, Create};

/// Sums older than this are read again in full (and compared with the incremental ones).
const FULL_READ_EVERY: Duration = Duration::from_secs(3600);

/// The `/metrics` endpoint's state.
pub struct Exporter {
    db: PathBuf,
    inner: Mutex<Inner>,
    limits: Limits,
}

/// Scrapes take turns on this.
struct Inner {
    conn: Connection,
    /// The last answer's sums, and when they were last read in full.
    sums: Option<(q::Sums, Instant)>,
}

impl Exporter {
    pub fn open(db: &Path, limits: Limits) -> Result<Exporter, store::Error> {
        Ok(Exporter {
            db: db.to_path_buf(),
            inner: Mutex::new(Inner {
                conn: store::open(db, Create::IfMissing)?,
                sums: None,
            }),
            limits,
        })
    }

    /// Answer one scrape; `accept` is the request's Accept header.
    pub fn scrape(&self, accept: Option<&str>) -> Result<Response, ApiError> {
        let format = negotiate(accept);
        let now_ms = chrono::Utc::now().timestamp_millis();
        let started = Instant::now();
        // The recorder's unwritten ticks, for the caps: asked before the database is read.
        let unwritten = crate::query::networks::unwritten(&self.db);
        // Scrapes take turns on the connection; a poisoned lock is still a usable connection
        // (rusqlite rolls back an open transaction on drop).
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Inner { conn, sums } = &mut *guard;
        let metrics = {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Deferred)
                .map_err(|e| sql(&e))?;
            let (now_sums, read_at) = read_sums(&tx, sums.take()).map_err(|e| sql(&e))?;
            let history = q::history_from(&tx, &now_sums).map_err(|e| sql(&e))?;
            *sums = Some((now_sums, read_at));
            let tracked = store::metrics::tracked(&tx).map_err(|e| sql(&e))?;
            let recorder = q::recorder(&tx, &self.db, now_ms).map_err(|e| match e {
                store::Error::Sqlite(e) => sql(&e),
                e => internal(&e),
            })?;
            let joining = tracked.since_ms.is_none()
                || !q::joins(&history, &tracked, &self.limits, now_ms).is_empty();
            drop(tx);
            let (history, tracked) = if joining {
                self.add_members(conn, now_ms)?
            } else {
                (history, tracked)
            };
            let mut history = history;
            // Caps are a few rows, measured now: read after any join's transaction too.
            history.caps = q::caps(conn, now_ms, &unwritten).map_err(|e| match e {
                crate::query::Error::Sql(e) => sql(&e),
                e => internal(&e),
            })?;
            q::metrics(&history, &recorder, &tracked, &self.limits)
        };
        drop(guard);
        let read_us = started.elapsed().as_micros() as u64;
        let body = prometheus::render(&metrics, format);
        debug!(
            bytes = body.len(),
            ?format,
            read_us,
            render_us = started.elapsed().as_micros() as u64 - read_us,
            "metrics rendered"
        );
        Ok(Response::with_type(200, format.content_type(), body))
    }

    /// Store the names that join now, deciding from the totals as they are inside the write
    /// transaction; returns what the answer is built from.
    fn add_members(
        &self,
        conn: &mut Connection,
        now_ms: i64,
    ) -> Result<(q::History, store::metrics::Tracked), ApiError> {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql(&e))?;
        let history = q::history(&tx).map_err(|e| sql(&e))?;
        let before = store::metrics::tracked(&tx).map_err(|e| sql(&e))?;
        let joins = q::joins(&history, &before, &self.limits, now_ms);
        store::metrics::add(&tx, &joins, now_ms).map_err(|e| sql(&e))?;
        let after = store::metrics::tracked(&tx).map_err(|e| sql(&e))?;
        tx.commit().map_err(|e| sql(&e))?;
        if !joins.is_empty() {
            info!(
                joined = joins.len(),
                apps = after.count(store::metrics::Family::App),
                websites = after.count(store::metrics::Family::Website),
                networks = after.count(store::metrics::Family::Network),
                "names got series of their own in /metrics"
            );
        }
        Ok((history, after))
    }
}

/// This scrape's sums: the last ones plus the ticks since, or a full read when there are none,
/// they cannot be continued, or the last full read is an hour old. Then, when both exist, the
/// two are compared: they must agree, and a difference is logged (the full read is kept).
fn read_sums(
    conn: &Connection,
    last: Option<(q::Sums, Instant)>,
) -> rusqlite::Result<(q::Sums, Instant)> {
    let (incremental, full_at) = match last {
        Some((prev, at)) => (q::sums_since(conn, &prev)?, Some(at)),
        None => (None, None),
    };
    match (incremental, full_at) {
        (Some(s), Some(at)) if at.elapsed() < FULL_READ_EVERY => Ok((s, at)),
        (incremental, _) => {
            let full = q::sums(conn)?;
            if let Some(inc) = incremental
                && inc != full
            {
                warn!(
                    incremental_apps = inc.apps.len(),
                    full_apps = full.apps.len(),
                    incremental_in = inc.apps.values().map(|b| b.bytes_in).sum::<u64>(),
                    full_in = full.apps.values().map(|b| b.bytes_in).sum::<u64>(),
                    "the running totals of /metrics differed from a full read of the daily \
                     totals; the full read is used"
                );
            }
            Ok((full, Instant::now()))
        }
    }
}

/// The format a scraper asked for: OpenMetrics when its Accept header names it (Prometheus
/// does, first), else the text format 0.0.4 (curl, older scrapers).
pub fn negotiate(accept: Option<&str>) -> Format {
    let wants_openmetrics = accept.is_some_and(|a| {
        a.split(',').any(|part| {
            let mut params = part.split(';').map(str::trim);
            let media = params.next().unwrap_or("");
            let q_zero = params.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !q_zero
        })
    });
    if wants_openmetrics {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

fn sql(e: &rusqlite::Error) -> ApiError {
    if matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    ) {
        ApiError::new(
            503,
            "busy",
            "the database stayed busy; the next scrape will try again",
        )
    } else {
        internal(e)
    }
}

fn internal(e: &dyn std::fmt::Display) -> ApiError {
    ApiError::new(
        500,
        "internal",
        format!("netmon could not read its history ({e}); its log says more"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_only_when_asked_for() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                          version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            negotiate(Some("Application/OpenMetrics-Text; version=1.0.0")),
            Format::OpenMetrics
        );
        assert_eq!(negotiate(None), Format::Text);
        assert_eq!(negotiate(Some("*/*")), Format::Text);
        assert_eq!(
            negotiate(Some(
                "text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0"
            )),
            Format::Text
        );
    }
}
