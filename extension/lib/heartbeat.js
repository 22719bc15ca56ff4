// Heartbeats: what the browser is doing, as a sequence of states merged while they last.
//
// The tracker observes "which host is active in this browser" at every tab, window or URL
// event and at every alarm (about every 30 s). Repeated observations of the same state are
// merged into one heartbeat whose `time` is the first observation and whose `duration` grows,
// as a mature activity tracker does (ActivityWatch's pulse model), so a long stay on one tab
// is reported throughout without multiplying reports. Pure: no clock, no browser.

/**
 * Longest silence between two observations of the same state that still counts as one
 * activity. Alarms fire about every 30 s while the browser runs; a longer silence means the
 * machine slept or the browser was frozen, and the activity ended at its last observation.
 */
export const MAX_GAP_MS = 90_000;

function sameState(cur, seen) {
  return cur.browser === seen.browser && cur.host === seen.host && cur.private === seen.private;
}

/** The heartbeat describing `cur` so far (times in epoch ms). */
export function snapshot(cur) {
  return {
    browser: cur.browser,
    host: cur.host,
    private: cur.private,
    time: cur.start,
    duration: Math.max(0, cur.last - cur.start),
  };
}

/**
 * Feeds one observation `seen = {browser, host, private}` made at `now` (epoch ms) into the
 * current state `cur` (null at first). Returns the new state and the heartbeats to queue:
 * - same state, within MAX_GAP_MS: the state lasts longer; one heartbeat with the longer
 *   duration (none for a `null` host: "nothing active" is said once, when it starts);
 * - another state: the old one ends now (or at its last observation after a gap, or when
 *   the clock went back) and the new one starts with a zero-length heartbeat, so a change is
 *   reported at once and a `null` host closes the activity on the server.
 */
export function observe(cur, seen, now, maxGapMs = MAX_GAP_MS) {
  const out = [];
  const gap = cur ? now - cur.last : 0;
  if (cur && sameState(cur, seen) && gap >= 0 && gap <= maxGapMs) {
    const next = { ...cur, last: now };
    if (next.host !== null) out.push(snapshot(next));
    return { cur: next, out };
  }
  if (cur && cur.host !== null) {
    const ended = gap >= 0 && gap <= maxGapMs ? { ...cur, last: now } : cur;
    out.push(snapshot(ended));
  }
  const next = { browser: seen.browser, host: seen.host, private: seen.private, start: now, last: now };
  out.push(snapshot(next));
  return { cur: next, out };
}
