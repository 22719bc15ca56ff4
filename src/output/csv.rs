//! CSV output (RFC 4180: a header row, CRLF-free `\n` records, fields quoted when they hold a
//! comma, quote or line break). Columns are the row struct's JSON fields in the same order,
//! with the same raw values: integer bytes, RFC 3339 UTC times, empty for null.

use std::io::Write;

use serde::Serialize;
use serde_json::Value;

/// Write a header and one record per row. The header comes from the first row (optional
/// columns such as `app` are present when the rows have them), or from the row type's default
/// when there is none, so an empty result still says what its columns are.
pub fn write<T: Serialize + Default>(out: &mut impl Write, rows: &[T]) -> anyhow::Result<()> {
    let mut w = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::Any(b'\n'))
        .from_writer(&mut *out);
    let header = match rows.first() {
        Some(r) => fields(r)?,
        None => fields(&T::default())?,
    };
    w.write_record(header.iter().map(|(k, _)| k.as_str()))?;
    for r in rows {
        let f = fields(r)?;
        if f.len() != header.len() {
            anyhow::bail!("internal: CSV rows of one query have different columns");
        }
        w.write_record(f.iter().map(|(_, v)| v.as_str()))?;
    }
    w.flush()?;
    Ok(())
}

/// A row as (column, text) pairs.
fn fields<T: Serialize>(row: &T) -> anyhow::Result<Vec<(String, String)>> {
    let Value::Object(map) = serde_json::to_value(row)? else {
        anyhow::bail!("internal: a CSV row must serialize to an object");
    };
    Ok(map
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::Null => String::new(),
                Value::String(s) => s,
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                other => other.to_string(),
            };
            (k, text)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Default)]
    struct Row {
        zeta: String,
        alpha: u64,
        maybe: Option<String>,
    }

    #[test]
    fn columns_keep_field_order_and_fields_are_quoted_per_rfc_4180() {
        let rows = vec![Row {
            zeta: "a \"quoted\", name\nwith a break".into(),
            alpha: 7,
            maybe: None,
        }];
        let mut out = Vec::new();
        write(&mut out, &rows).expect("csv");
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(
            text,
            "zeta,alpha,maybe\n\"a \"\"quoted\"\", name\nwith a break\",7,\n"
        );
        let mut empty = Vec::new();
        write::<Row>(&mut empty, &[]).expect("csv");
        assert_eq!(
            String::from_utf8(empty).expect("utf8"),
            "zeta,alpha,maybe\n"
        );
    }
}
