//! Checks the crate's unit tests make on stored rows (`cfg(test)` only), so SQL stays in the
//! store even where a test outside it looks at what was written.

use rusqlite::Connection;

/// `sum(column)` over a whole table (0 when empty). `table` and `column` are the tests' own
/// literals, never input.
pub fn sum(conn: &Connection, table: &str, column: &str) -> i64 {
    conn.query_row(
        &format!("SELECT coalesce(sum({column}), 0) FROM {table}"),
        [],
        |r| r.get(0),
    )
    .expect("sum")
}

/// Rows in a table.
pub fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .expect("count")
}

/// Every daily total as (day, app id, bytes in, bytes out), in order.
pub fn daily_rows(conn: &Connection) -> Vec<(i64, i64, i64, i64)> {
    let mut st = conn
        .prepare("SELECT day, app_id, bytes_in, bytes_out FROM daily ORDER BY day, app_id")
        .expect("prepare");
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// The most processes with traffic in one tick.
pub fn busiest_tick(conn: &Connection) -> i64 {
    conn.query_row(
        "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM samples GROUP BY tick_id)",
        [],
        |r| r.get(0),
    )
    .expect("samples")
}
