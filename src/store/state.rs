//! The counter state a restart resumes from: `counter_state` plus `counter_journal`.
//!
//! Every tick appends its state changes as one compact journal row in its own transaction
//! (see `sql/0003_counter_journal.sql` for why); the recorder folds the journal into
//! `counter_state` every few minutes and when it stops, by replaying the journal rows in the
//! order they were written; loading does the same first, so what a restart sees is exactly
//! what was committed.
//!
//! Encoding of `counter_journal.changes`: a version byte (1), then entries until the end.
//! Keys are interned per journal: the first entry for a key since the journal was last
//! emptied carries the key itself and gives it the next id (0, 1, 2, ...); later entries name
//! the id. Entries are `tag` followed by, for tags 0 and 1, `len(key), key`, for tags 2 and
//! 3, `id`; then for tags 1 and 2, `bytes_in, bytes_out`. Tag 0/3 forget a counter, 1/2 set
//! it. Lengths, ids and byte counts are unsigned LEB128 varints; keys are UTF-8.

use std::collections::HashMap;

use rusqlite::{Connection, params};

use super::Error;
use crate::delta::StateChanges;
use crate::source::CounterKey;

const VERSION: u8 = 1;
const FORGET_NEW: u8 = 0;
const SET_NEW: u8 = 1;
const SET_ID: u8 = 2;
const FORGET_ID: u8 = 3;

/// A counter's last committed value and when it was written (epoch ms); `None`: forgotten.
pub type Entry = Option<(u64, u64, i64)>;

/// The recorder's side of the journal: the key ids given out since the journal was last
/// emptied. The changes themselves are only in the journal rows: a fold replays those, so a
/// tick does no work for the journal beyond encoding its row.
#[derive(Debug, Default)]
pub struct Journal {
    ids: HashMap<String, u64>,
}

/// One tick's journal row, before its transaction commits.
#[derive(Debug)]
pub struct Row {
    pub blob: Vec<u8>,
    /// Keys the row introduces, in id order: known only once the row is committed.
    new_keys: Vec<String>,
}

impl Row {
    /// A row that changes nothing (only its version byte): not worth a journal row.
    pub fn is_empty(&self) -> bool {
        self.blob.len() <= 1
    }
}

/// Several ticks' state changes as one, applied in order: the last word per counter.
pub fn merge<'a>(changes: impl IntoIterator<Item = &'a StateChanges>) -> StateChanges {
    let mut order: Vec<&'a CounterKey> = Vec::new();
    let mut last: HashMap<&'a CounterKey, Option<(u64, u64)>> = HashMap::new();
    for c in changes {
        for (k, i, o) in &c.upsert {
            if last.insert(k, Some((*i, *o))).is_none() {
                order.push(k);
            }
        }
        for k in &c.remove {
            if last.insert(k, None).is_none() {
                order.push(k);
            }
        }
    }
    let mut out = StateChanges::default();
    for k in order {
        match last[k] {
            Some((i, o)) => out.upsert.push((k.clone(), i, o)),
            None => out.remove.push(k.clone()),
        }
    }
    out
}

impl Journal {
    /// Encode one tick's changes: sets first, then forgets (a key is in at most one list).
    pub fn encode(&self, changes: &StateChanges) -> Row {
        let mut out = Vec::with_capacity(1 + changes.upsert.len() * 12 + changes.remove.len() * 8);
        out.push(VERSION);
        let mut new_keys: Vec<String> = Vec::new();
        let mut next = self.ids.len() as u64;
        let mut local: HashMap<String, u64> = HashMap::new();
        let mut key_ref = |out: &mut Vec<u8>, key: &CounterKey, new_tag: u8, id_tag: u8| {
            let known = self
                .ids
                .get(&key.0)
                .copied()
                .or_else(|| local.get(&key.0).copied());
            match known {
                Some(id) => {
                    out.push(id_tag);
                    put_varint(out, id);
                }
                None => {
                    out.push(new_tag);
                    put_varint(out, key.0.len() as u64);
                    out.extend_from_slice(key.0.as_bytes());
                    local.insert(key.0.clone(), next);
                    new_keys.push(key.0.clone());
                    next += 1;
                }
            }
        };
        for (key, bin, bout) in &changes.upsert {
            key_ref(&mut out, key, SET_NEW, SET_ID);
            put_varint(&mut out, *bin);
            put_varint(&mut out, *bout);
        }
        for key in &changes.remove {
            key_ref(&mut out, key, FORGET_NEW, FORGET_ID);
        }
        Row {
            blob: out,
            new_keys,
        }
    }

    /// The row was committed: the keys it introduced have their ids.
    pub fn committed(&mut self, row: Row) {
        for key in row.new_keys {
            let id = self.ids.len() as u64;
            self.ids.insert(key, id);
        }
    }

    /// Replay the journal into `counter_state` and empty it, in one transaction. On failure
    /// nothing changes (the journal is kept, and folded again later or replayed on restart).
    pub fn fold(&mut self, conn: &mut Connection) -> Result<(), Error> {
        // Every row written since the journal was emptied introduces a key (ids start again
        // with it), so no ids means no rows.
        if self.ids.is_empty() {
            return Ok(());
        }
        let tx = conn.transaction()?;
        replay_and_empty(&tx)?;
        tx.commit()?;
        self.ids.clear();
        Ok(())
    }

    /// Everything committed: the journal folded into `counter_state` (so it starts empty),
    /// then `counter_state` read back.
    pub fn load(&mut self, conn: &mut Connection) -> Result<HashMap<String, Entry>, Error> {
        let tx = conn.transaction()?;
        replay_and_empty(&tx)?;
        let mut state: HashMap<String, Entry> = HashMap::new();
        {
            let mut st =
                tx.prepare("SELECT key, bytes_in, bytes_out, saved_at FROM counter_state")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let (bin, bout): (i64, i64) = (r.get(1)?, r.get(2)?);
                state.insert(r.get(0)?, Some((bin as u64, bout as u64, r.get(3)?)));
            }
        }
        tx.commit()?;
        self.ids.clear();
        Ok(state)
    }
}

/// Apply the journal's rows, in the order they were written, to `counter_state`, and delete
/// them. A row that cannot be decoded (only a damaged file could hold one: this code wrote
/// it) is logged, and it and the rows after it are skipped, since their ids may refer to it.
fn replay_and_empty(conn: &Connection) -> Result<(), Error> {
    let mut replayed: HashMap<String, Entry> = HashMap::new();
    {
        let mut keys: Vec<String> = Vec::new();
        let mut st =
            conn.prepare("SELECT seq, saved_at, changes FROM counter_journal ORDER BY seq")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let (seq, at, blob): (i64, i64, Vec<u8>) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if let Err(why) = decode_into(&blob, at, &mut keys, &mut replayed) {
                tracing::warn!(
                    seq,
                    why,
                    "an unreadable counter journal row: it and later rows are skipped"
                );
                break;
            }
        }
    }
    write_entries(conn, &replayed)?;
    conn.execute("DELETE FROM counter_journal", [])?;
    Ok(())
}

/// Write one tick's journal row (inside the tick's transaction).
pub fn journal(conn: &Connection, saved_at: i64, row: &Row) -> rusqlite::Result<()> {
    if row.blob.len() <= 1 {
        return Ok(());
    }
    conn.prepare_cached("INSERT INTO counter_journal(saved_at, changes) VALUES (?1, ?2)")?
        .execute(params![saved_at, row.blob])?;
    Ok(())
}

/// Decode a journal row, applying each entry to `into` in order. `keys` holds the keys of
/// the ids given out by earlier rows and gains this row's.
pub fn decode_into(
    blob: &[u8],
    saved_at: i64,
    keys: &mut Vec<String>,
    into: &mut HashMap<String, Entry>,
) -> Result<(), &'static str> {
    let (&version, mut rest) = blob.split_first().ok_or("empty journal row")?;
    if version != VERSION {
        return Err("unknown journal row version");
    }
    while let Some((&tag, tail)) = rest.split_first() {
        rest = tail;
        let key = match tag {
            SET_NEW | FORGET_NEW => {
                let len = take_varint(&mut rest)? as usize;
                if rest.len() < len {
                    return Err("journal key runs past the row");
                }
                let (key, tail) = rest.split_at(len);
                rest = tail;
                let key = std::str::from_utf8(key).map_err(|_| "journal key is not UTF-8")?;
                keys.push(key.to_string());
                key.to_string()
            }
            SET_ID | FORGET_ID => {
                let id = take_varint(&mut rest)? as usize;
                keys.get(id)
                    .cloned()
                    .ok_or("journal key id was never given out")?
            }
            _ => return Err("unknown journal entry tag"),
        };
        if tag == SET_NEW || tag == SET_ID {
            let bin = take_varint(&mut rest)?;
            let bout = take_varint(&mut rest)?;
            into.insert(key, Some((bin, bout, saved_at)));
        } else {
            into.insert(key, None);
        }
    }
    Ok(())
}

fn write_entries(conn: &Connection, entries: &HashMap<String, Entry>) -> rusqlite::Result<()> {
    for (key, entry) in entries {
        match entry {
            Some((bin, bout, at)) => {
                conn.prepare_cached(
                    "INSERT INTO counter_state(key, bytes_in, bytes_out, saved_at) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT(key) DO UPDATE SET \
                     bytes_in = excluded.bytes_in, bytes_out = excluded.bytes_out, \
                     saved_at = excluded.saved_at",
                )?
                .execute(params![key, *bin as i64, *bout as i64, at])?;
            }
            None => {
                conn.prepare_cached("DELETE FROM counter_state WHERE key = ?1")?
                    .execute([key])?;
            }
        }
    }
    Ok(())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(rest: &mut &[u8]) -> Result<u64, &'static str> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&b, tail) = rest
            .split_first()
            .ok_or("journal varint runs past the row")?;
        *rest = tail;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("journal varint is too long")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(s: &str) -> CounterKey {
        CounterKey(s.to_string())
    }

    fn decode(rows: &[(Vec<u8>, i64)]) -> Result<HashMap<String, Entry>, &'static str> {
        let (mut keys, mut m) = (Vec::new(), HashMap::new());
        for (blob, at) in rows {
            decode_into(blob, *at, &mut keys, &mut m)?;
        }
        Ok(m)
    }

    #[test]
    fn rows_round_trip_and_later_rows_name_keys_by_id() {
        let mut j = Journal::default();
        let first = StateChanges {
            upsert: vec![
                (key("nettop/1/curl/en0/tcp4 a<->b"), 0, u64::MAX),
                (key("é"), 300, 1),
            ],
            remove: vec![key("gone")],
        };
        let row1 = j.encode(&first);
        let blob1 = row1.blob.clone();
        j.committed(row1);
        let second = StateChanges {
            upsert: vec![(key("nettop/1/curl/en0/tcp4 a<->b"), 7, u64::MAX)],
            remove: vec![key("é")],
        };
        let row2 = j.encode(&second);
        assert_eq!(
            (row2.blob[1], row2.blob[2]),
            (SET_ID, 0),
            "a known key costs its id, not its text"
        );
        let m = decode(&[(blob1, 42), (row2.blob, 43)]).expect("decodes");
        assert_eq!(m["nettop/1/curl/en0/tcp4 a<->b"], Some((7, u64::MAX, 43)));
        assert_eq!(m["é"], None);
        assert_eq!(m["gone"], None);
    }

    #[test]
    fn a_rolled_back_row_gives_out_no_ids() {
        let j = Journal::default();
        let c = StateChanges {
            upsert: vec![(key("a"), 1, 1)],
            remove: vec![],
        };
        let lost = j.encode(&c); // its transaction failed: never committed
        drop(lost);
        let row = j.encode(&c);
        assert_eq!(row.blob[1], SET_NEW, "the key is written out again");
    }

    #[test]
    fn damaged_rows_are_refused_not_misread() {
        let blob = Journal::default()
            .encode(&StateChanges {
                upsert: vec![(key("abc"), 5, 300)],
                remove: vec![],
            })
            .blob;
        assert!(decode(&[(vec![], 0)]).is_err());
        // A row cut anywhere inside its entry is an error, never a shorter key or a number.
        for cut in 2..blob.len() {
            assert!(
                decode(&[(blob[..cut].to_vec(), 0)]).is_err(),
                "cut at {cut}"
            );
        }
        let mut bad = blob.clone();
        bad[0] = 9;
        assert!(decode(&[(bad.clone(), 0)]).is_err());
        bad[0] = VERSION;
        bad[1] = 7;
        assert!(decode(&[(bad, 0)]).is_err());
        // An id nobody gave out.
        assert!(decode(&[(vec![VERSION, SET_ID, 5, 1, 1], 0)]).is_err());
    }

    proptest! {
        /// Journal rows replayed over counter_state give the same state as writing every
        /// change straight into counter_state, whatever is folded when and whichever commits
        /// fail.
        #[test]
        fn journal_and_folds_equal_direct_writes(
            ticks in proptest::collection::vec(
                (proptest::collection::vec((0u8..6, any::<bool>(), any::<u32>(), any::<u32>()), 0..6), 0u8..10),
                1..30,
            ),
            fold_every in 1usize..7,
        ) {
            let mut conn = crate::store::open_in_memory().expect("db");
            let mut j = Journal::default();
            let mut direct: HashMap<String, Entry> = HashMap::new();
            for (t, (changes, fail)) in ticks.iter().enumerate() {
                let mut c = StateChanges::default();
                let mut seen = std::collections::HashSet::new();
                for (k, set, a, b) in changes {
                    let k = format!("k{k}");
                    if !seen.insert(k.clone()) { continue; }
                    if *set { c.upsert.push((CounterKey(k), *a as u64, *b as u64)); } else { c.remove.push(CounterKey(k)); }
                }
                let row = j.encode(&c);
                if *fail == 0 {
                    continue; // the tick's transaction rolled back: nothing of it counts
                }
                journal(&conn, t as i64 * 10, &row).expect("journal");
                j.committed(row);
                for (k, a, b) in &c.upsert { direct.insert(k.0.clone(), Some((*a, *b, t as i64 * 10))); }
                for k in &c.remove { direct.insert(k.0.clone(), None); }
                if (t + 1) % fold_every == 0 {
                    j.fold(&mut conn).expect("fold");
                }
            }
            let loaded = Journal::default().load(&mut conn).expect("load");
            direct.retain(|_, e| e.is_some());
            prop_assert_eq!(loaded, direct);
            let left: i64 = conn.query_row("SELECT count(*) FROM counter_journal", [], |r| r.get(0)).expect("n");
            prop_assert_eq!(left, 0);
        }
    }
}
