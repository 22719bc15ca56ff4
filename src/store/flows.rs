//! Per-connection deltas of a tick, kept in the tick's own row (`ticks.flows`, since
//! `sql/0006_batched_writes.sql`) instead of a row each in `flow_samples`.
//!
//! A row of `flow_samples` cost about 21 bytes on disk (key, record header, cell pointer) for
//! some 8 bytes of facts, and a busy tick has hundreds: half of everything the recorder wrote.
//! In one blob per tick a connection costs its varints alone.
//!
//! Encoding: a version byte (1), then one entry per (process, remote) pair, sorted by process
//! id then remote id: `process_id - previous process_id`, `remote_id`, `bytes_in`,
//! `bytes_out`, each an unsigned LEB128 varint (the first entry's previous process id is 0).
//! Pairs are unique within a tick. An empty tick stores NULL, not a blob.

use rusqlite::Connection;

const VERSION: u8 = 1;

/// All bytes recorded with one remote endpoint (`host`, `port`), per direction: the ticks'
/// flows plus the rows of `flow_samples` written before they moved into the ticks.
pub fn bytes_with(conn: &Connection, host: &str, port: i64) -> rusqlite::Result<(u64, u64)> {
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM remotes WHERE host = ?1 AND port = ?2")?
        .query_map(rusqlite::params![host, port], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let (mut bin, mut bout): (u64, u64) = conn.query_row(
        "SELECT coalesce(sum(f.bytes_in), 0), coalesce(sum(f.bytes_out), 0) FROM flow_samples f \
         JOIN remotes r ON r.id = f.remote_id WHERE r.host = ?1 AND r.port = ?2",
        rusqlite::params![host, port],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )?;
    let mut st = conn.prepare("SELECT flows FROM ticks WHERE flows IS NOT NULL")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let blob: Vec<u8> = r.get(0)?;
        for (_, remote, i, o) in decode(&blob).unwrap_or_default() {
            if ids.contains(&remote) {
                bin += i;
                bout += o;
            }
        }
    }
    Ok((bin, bout))
}

/// One connection's delta in a tick: `(process_id, remote_id, bytes_in, bytes_out)`.
pub type Flow = (i64, i64, u64, u64);

/// Encode a tick's flows (summing pairs given twice); `None` when there are none.
pub fn encode(mut flows: Vec<Flow>) -> Option<Vec<u8>> {
    if flows.is_empty() {
        return None;
    }
    flows.sort_unstable_by_key(|f| (f.0, f.1));
    let mut out = Vec::with_capacity(1 + flows.len() * 9);
    out.push(VERSION);
    let mut prev_process = 0i64;
    let mut i = 0;
    while i < flows.len() {
        let (p, r, mut bin, mut bout) = flows[i];
        i += 1;
        while i < flows.len() && flows[i].0 == p && flows[i].1 == r {
            bin = bin.saturating_add(flows[i].2);
            bout = bout.saturating_add(flows[i].3);
            i += 1;
        }
        put(&mut out, (p - prev_process).max(0) as u64);
        put(&mut out, r.max(0) as u64);
        put(&mut out, bin);
        put(&mut out, bout);
        prev_process = p;
    }
    Some(out)
}

/// Decode what [`encode`] wrote; `None` for a blob this version cannot read (a damaged file).
pub fn decode(blob: &[u8]) -> Option<Vec<Flow>> {
    let (&version, mut rest) = blob.split_first()?;
    if version != VERSION {
        return None;
    }
    let mut out = Vec::new();
    let mut process = 0i64;
    while !rest.is_empty() {
        let dp = get(&mut rest)?;
        let r = get(&mut rest)?;
        let bin = get(&mut rest)?;
        let bout = get(&mut rest)?;
        process = process.checked_add(i64::try_from(dp).ok()?)?;
        out.push((process, i64::try_from(r).ok()?, bin, bout));
    }
    Some(out)
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get(buf: &mut &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_round_trip_sorted_with_repeated_pairs_summed() {
        let flows = vec![
            (700, 3, 10, 1),
            (5, 9, u64::MAX, 0),
            (700, 3, 5, 5),
            (700, 1, 0, 300_000),
        ];
        let blob = encode(flows).expect("a blob");
        assert_eq!(
            decode(&blob).expect("decodes"),
            vec![(5, 9, u64::MAX, 0), (700, 1, 0, 300_000), (700, 3, 15, 6)]
        );
        assert_eq!(encode(Vec::new()), None);
    }

    #[test]
    fn damaged_blobs_decode_to_none_never_panic() {
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[2, 0, 0, 0, 0]), None);
        assert_eq!(decode(&[1, 0x80]), None);
        assert_eq!(decode(&[1, 1, 1, 1]), None);
        assert_eq!(
            decode(&[
                1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
            ]),
            None
        );
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = decode(&bytes);
        }
    }
}
