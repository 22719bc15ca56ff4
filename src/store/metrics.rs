//! The set of names `/metrics` exports as series of their own (`metrics_series`,
//! sql/0005_metrics_series.sql), and when the exporter first published anything (`meta`
//! `metrics_since_ms`).
//!
//! The set only grows: rows are inserted, never updated or deleted, so a name keeps its series
//! and its base for good. Which names join, and with what base, is decided above
//! (`crate::query::metrics`); this module only reads and writes the rows.

use std::collections::HashMap;

use rusqlite::{Connection, params};

use super::meta::{self, Key};

/// A family of series whose members are chosen (the rest is counted in "(other)").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// Applications, by the name `netmon apps` shows.
    App,
    /// Websites, by registrable domain as `netmon domains` shows them.
    Website,
    /// What one interface carried on one network (`query::metrics::NetSeries` names it).
    Network,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::App => "app",
            Family::Website => "website",
            Family::Network => "network",
        }
    }

    fn parse(s: &str) -> Option<Family> {
        match s {
            "app" => Some(Family::App),
            "website" => Some(Family::Website),
            "network" => Some(Family::Network),
            _ => None,
        }
    }
}

/// A member of a family: since when, and the bytes that stay counted in "(other)".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub joined_ms: i64,
    pub base_in: u64,
    pub base_out: u64,
}

/// The members of every family, and when the exporter first answered (`None`: never).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracked {
    pub since_ms: Option<i64>,
    pub members: HashMap<(Family, String), Member>,
}

impl Tracked {
    /// How many members a family has.
    pub fn count(&self, family: Family) -> usize {
        self.members.keys().filter(|(f, _)| *f == family).count()
    }

    pub fn get(&self, family: Family, name: &str) -> Option<&Member> {
        self.members.get(&(family, name.to_string()))
    }
}

/// A name joining its family's set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    pub family: Family,
    pub name: String,
    pub member: Member,
}

/// Read the set. Rows of a family this netmon does not know (a newer one wrote them) are
/// left alone.
pub fn tracked(conn: &Connection) -> rusqlite::Result<Tracked> {
    let since_ms = meta::get_i64(conn, Key::MetricsSinceMs)?;
    let mut st = conn
        .prepare_cached("SELECT family, name, joined_at, base_in, base_out FROM metrics_series")?;
    let mut rows = st.query([])?;
    let mut members = HashMap::new();
    while let Some(r) = rows.next()? {
        let family: String = r.get(0)?;
        let Some(family) = Family::parse(&family) else {
            continue;
        };
        members.insert(
            (family, r.get::<_, String>(1)?),
            Member {
                joined_ms: r.get(2)?,
                base_in: r.get::<_, i64>(3)?.max(0) as u64,
                base_out: r.get::<_, i64>(4)?.max(0) as u64,
            },
        );
    }
    Ok(Tracked { since_ms, members })
}

/// Add members (a name already in its family keeps its first row) and, the first time, record
/// when the exporter started. The caller holds a write transaction in which it read what the
/// bases are computed from, so no other writer can slip in between.
pub fn add(conn: &Connection, joins: &[Join], now_ms: i64) -> rusqlite::Result<()> {
    if meta::get(conn, Key::MetricsSinceMs)?.is_none() {
        meta::set(conn, Key::MetricsSinceMs, &now_ms.to_string())?;
    }
    let mut st = conn.prepare_cached(
        "INSERT INTO metrics_series(family, name, joined_at, base_in, base_out) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(family, name) DO NOTHING",
    )?;
    for j in joins {
        st.execute(params![
            j.family.as_str(),
            j.name,
            j.member.joined_ms,
            i64::try_from(j.member.base_in).unwrap_or(i64::MAX),
            i64::try_from(j.member.base_out).unwrap_or(i64::MAX),
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_added_once_and_read_back() {
        let conn = crate::store::open_in_memory().expect("db");
        assert_eq!(tracked(&conn).expect("read"), Tracked::default());
        let join = |name: &str, base: u64| Join {
            family: Family::App,
            name: name.into(),
            member: Member {
                joined_ms: 5,
                base_in: base,
                base_out: base / 2,
            },
        };
        add(&conn, &[join("curl", 0)], 1000).expect("add");
        add(&conn, &[join("curl", 99), join("ssh", 40)], 2000).expect("add again");
        let t = tracked(&conn).expect("read");
        assert_eq!(t.since_ms, Some(1000), "the first answer's time is kept");
        assert_eq!(t.count(Family::App), 2);
        assert_eq!(t.count(Family::Website), 0);
        assert_eq!(
            t.get(Family::App, "curl").map(|m| m.base_in),
            Some(0),
            "a member keeps its first base"
        );
        assert_eq!(t.get(Family::App, "ssh").map(|m| m.base_out), Some(20));
    }

    #[test]
    fn rows_of_an_unknown_family_are_ignored() {
        let conn = crate::store::open_in_memory().expect("db");
        conn.execute(
            "INSERT INTO metrics_series VALUES ('planet', 'mars', 1, 0, 0)",
            [],
        )
        .expect("row");
        assert!(tracked(&conn).expect("read").members.is_empty());
    }
}
