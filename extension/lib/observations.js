// Which server address each host was served from (webRequest's details.ip), de-duplicated.
//
// A page load makes dozens of requests to the same few servers; PROTOCOL.md asks for each
// (host, ip) pair at most once per 10 minutes. `recent` maps "host ip" to the epoch ms it was
// last queued, pruned as it goes and bounded. Pure: no clock, no storage.

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

/**
 * Whether to queue `(host, ip)` seen at `now`, and the updated `recent` map. Entries older
 * than RESEND_AFTER_MS are forgotten, and the oldest beyond RECENT_LIMIT too.
 */
export function admit(recent, host, ip, now) {
  const key = `${host} ${ip}`;
  const last = recent[key];
  if (last !== undefined && now >= last && now - last < RESEND_AFTER_MS) return { send: false, recent };
  let kept = Object.entries(recent).filter(([k, t]) => k !== key && now >= t && now - t < RESEND_AFTER_MS);
  if (kept.length >= RECENT_LIMIT) kept = kept.sort((a, b) => a[1] - b[1]).slice(kept.length - RECENT_LIMIT + 1);
  kept.push([key, now]);
  return { send: true, recent: Object.fromEntries(kept) };
}
