// Which server address each host was served from (webRequest's details.ip), de-duplicated.
//
// A page load makes dozens of requests to the same few servers; PROTOCOL.md asks for each
// (host, ip) pair at most once per 10 minutes. `recent` remembers when each pair was last
// queued, pruned as it goes and bounded. Pure: no clock, no storage.

import { hostOf, normalizeIp } from './host.js';

export const RESEND_AFTER_MS = 10 * 60_000;
export const RECENT_LIMIT = 5000;

/**
 * Turns one completed request into an observation, or null when there is nothing to report:
 * no address (served from cache, or the browser did not say), not a web request, or one of
 * the extension's own requests to netmon serve.
 */
export function observationOf(details, serverOrigin) {
  if (!details || details.fromCache) return null;
  if (serverOrigin && typeof details.url === 'string' && details.url.startsWith(`${serverOrigin}/`)) return null;
  const host = hostOf(details.url, { requests: true });
  const ip = normalizeIp(details.ip);
  if (host === null || ip === null) return null;
  return { host, ip };
}

/** An empty memory of sent pairs: `pairs` maps "host ip" to epoch ms, `size` counts them. */
export function emptyRecent() {
  return { pairs: {}, size: 0 };
}

/**
 * Whether to queue `(host, ip)` seen at `now`. `recent` is updated in place: the pair is
 * remembered, and once more than RECENT_LIMIT pairs are, those older than RESEND_AFTER_MS are
 * forgotten, then the oldest.
 */
export function admit(recent, host, ip, now) {
  const key = `${host} ${ip}`;
  const last = recent.pairs[key];
  if (last !== undefined && now >= last && now - last < RESEND_AFTER_MS) return false;
  if (last === undefined) recent.size += 1;
  recent.pairs[key] = now;
  if (recent.size > RECENT_LIMIT) prune(recent, now);
  return true;
}

function prune(recent, now) {
  let left = Object.entries(recent.pairs).filter(([, t]) => now >= t && now - t < RESEND_AFTER_MS);
  if (left.length > RECENT_LIMIT) {
    // Down to 90 % so that a burst of new pairs does not prune at every one.
    left = left.sort((a, b) => a[1] - b[1]).slice(left.length - Math.floor(RECENT_LIMIT * 0.9));
  }
  recent.pairs = Object.fromEntries(left);
  recent.size = left.length;
}
