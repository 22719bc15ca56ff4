// Bounded outboxes that survive the background worker being stopped.
//
// A queue is plain data ({items, nextSeq, dropped}) kept in extension storage, so the worker
// can be stopped between any two events and resume where it was. Every item gets a sequence
// number; a send takes a batch, and only the items of a batch the server accepted are removed
// afterwards (ack), so an item merged or added while a request was in flight is not lost.
// Pure: no clock, no storage.

export const HEARTBEAT_LIMIT = 2000;
export const OBSERVATION_LIMIT = 2000;
const MERGE_LOOKBACK = 8;

export function emptyQueue() {
  return { items: [], nextSeq: 1, dropped: 0 };
}

function sameActivity(a, b) {
  return a.browser === b.browser && a.host === b.host && a.private === b.private && a.time === b.time;
}

function bounded(q, limit) {
  const over = q.items.length - limit;
  if (over <= 0) return q;
  // The oldest go first: when the server has been down for long, the recent past matters more.
  return { ...q, items: q.items.slice(over), dropped: q.dropped + over };
}

/**
 * Adds heartbeats, merging each with the queued heartbeat of the same activity (same browser,
 * host, private flag and start time) instead of adding another: the longer duration wins and
 * the item gets a new sequence number, so it is sent again even if the old one is in flight.
 */
export function enqueueHeartbeats(q, heartbeats, limit = HEARTBEAT_LIMIT) {
  let items = q.items.slice();
  let nextSeq = q.nextSeq;
  for (const hb of heartbeats) {
    // The tracker only ever updates the activity it queued last (or the one before, when a
    // change ends one and starts the next), so a short look back finds it.
    let i = items.length - 1;
    while (i >= Math.max(0, items.length - MERGE_LOOKBACK) && !sameActivity(items[i], hb)) i--;
    if (i < Math.max(0, items.length - MERGE_LOOKBACK)) i = -1;
    if (i >= 0) {
      const old = items[i];
      items.splice(i, 1);
      items.push({ ...old, duration: Math.max(old.duration, hb.duration), seq: nextSeq++ });
    } else {
      items.push({ ...hb, seq: nextSeq++ });
    }
  }
  return bounded({ ...q, items, nextSeq }, limit);
}

/** Adds observations as they are (they were de-duplicated before, see observations.js). */
export function enqueueObservations(q, observations, limit = OBSERVATION_LIMIT) {
  let nextSeq = q.nextSeq;
  const items = q.items.concat(observations.map((o) => ({ ...o, seq: nextSeq++ })));
  return bounded({ ...q, items, nextSeq }, limit);
}

/**
 * The oldest items, at most `max` of them and at most `maxBytes` once encoded (PROTOCOL.md caps
 * a request body at 64 KiB), to send as one request. Always at least one item when the queue
 * is not empty: a single item is far below the cap.
 */
export function takeBatch(q, max, { maxBytes = Infinity, encode = JSON.stringify } = {}) {
  const batch = [];
  let bytes = 0;
  for (const it of q.items) {
    if (batch.length >= max) break;
    const size = encode(it).length + 1;
    if (batch.length > 0 && bytes + size > maxBytes) break;
    batch.push(it);
    bytes += size;
  }
  return batch;
}

/** The queue without the items of `batch` (matched by sequence number). */
export function ack(q, batch) {
  const sent = new Set(batch.map((it) => it.seq));
  return { ...q, items: q.items.filter((it) => !sent.has(it.seq)) };
}
