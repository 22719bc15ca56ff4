// The tracker: observations in, heartbeats and host↔IP observations out to `netmon serve`.
//
// A Manifest V3 background worker is stopped whenever it is idle and started again for the
// next event, so the tracker keeps nothing that matters only in memory: the current state, both
// outboxes and the delivery status live in extension storage and are written after every
// change. A restarted worker reloads them and carries on (a stay on one tab continues as the
// same heartbeat when the gap is short). Delivery is at-least-once: the server merges a
// heartbeat it already has into the same interval, so a resend after a restart does no harm.
//
// Browser-free: background.js passes in storage, clock and transport, so node tests can run
// the real tracker against fakes, restart it, and take the server down.

import { observe } from './heartbeat.js';
import { emptyQueue, enqueueHeartbeats, enqueueObservations, takeBatch, ack, HEARTBEAT_LIMIT, OBSERVATION_LIMIT } from './queue.js';
import { admit, emptyRecent } from './observations.js';
import { call, describe, TIMEOUT_MS } from './client.js';
import { DEFAULT_SERVER, serverOrigin } from './host.js';

export const HEARTBEATS_PER_REQUEST = 100;
export const OBSERVATIONS_PER_REQUEST = 500;
// PROTOCOL.md: bodies of at most 64 KiB; keep a margin for the envelope.
export const MAX_BODY_BYTES = 60 * 1024;
// Requests per flush, per kind: a long queue drains over several flushes, never in a burst.
export const MAX_BATCHES_PER_FLUSH = 10;
// After a failed send, event-driven sends wait this long; alarms (every 30 s) still retry.
export const RETRY_AFTER_MS = 25_000;
// State changes are sent together when they come in bursts (switching through tabs). A timer
// does not keep a background alive, so this stays far below the browsers' idle timeout (30 s
// in Chromium and Firefox); should the browser stop the worker first, the next alarm sends.
export const SEND_DELAY_MS = 1000;

export const KEYS = ['settings', 'current', 'heartbeats', 'observations', 'recentPairs', 'delivery'];

export const DEFAULT_SETTINGS = Object.freeze({ server: DEFAULT_SERVER, token: '', browser: '', reportPrivate: false });

function emptyDelivery() {
  return { lastOkAt: 0, lastAttemptAt: 0, lastError: null, retryAt: 0, rejected: 0 };
}

/** The heartbeat as PROTOCOL.md wants it on the wire. */
export function wireHeartbeat(hb) {
  return {
    browser: hb.browser,
    host: hb.host,
    time: new Date(hb.time).toISOString(),
    duration: hb.duration / 1000,
    private: hb.private,
  };
}

/** The observation as PROTOCOL.md wants it on the wire. */
export function wireObservation(o) {
  return { browser: o.browser, host: o.host, ip: o.ip, time: new Date(o.time).toISOString() };
}

/**
 * `store`: `{get(keys) → Promise<object>, set(object) → Promise}` (extension storage.local).
 * `fetchImpl`: fetch. `now`: () → epoch ms. `guessBrowser`: () → the browser name to use while
 * the user has not set one. `schedule(fn, ms)`: setTimeout. `limits` (queue lengths) and
 * `timeoutMs` (per request) are for tests.
 */
export function createTracker({
  store,
  fetchImpl,
  now = Date.now,
  guessBrowser = () => 'Browser',
  schedule = setTimeout,
  log = () => {},
  limits = {},
  timeoutMs = TIMEOUT_MS,
}) {
  const heartbeatLimit = limits.heartbeats ?? HEARTBEAT_LIMIT;
  const observationLimit = limits.observations ?? OBSERVATION_LIMIT;
  let state = null;
  let loading = null;
  let writes = Promise.resolve();
  let flushing = null;
  let flushAgain = false;
  let pending = null;

  async function load() {
    if (state) return state;
    if (!loading) {
      loading = store.get(KEYS).then((got) => {
        state = {
          settings: { ...DEFAULT_SETTINGS, ...(got.settings ?? {}) },
          current: got.current ?? null,
          heartbeats: got.heartbeats ?? emptyQueue(),
          observations: got.observations ?? emptyQueue(),
          recentPairs: got.recentPairs?.pairs ? got.recentPairs : emptyRecent(),
          delivery: { ...emptyDelivery(), ...(got.delivery ?? {}) },
        };
        return state;
      });
    }
    return loading;
  }

  // Writes go out in order; a failed write is logged and the next change writes again.
  function persist(...keys) {
    const patch = Object.fromEntries(keys.map((k) => [k, state[k]]));
    writes = writes.then(() => store.set(patch)).catch((e) => log('storage write failed', e));
    return writes;
  }

  function browserName() {
    const b = String(state.settings.browser ?? '').trim();
    return (b === '' ? guessBrowser() : b).slice(0, 64);
  }

  function origin() {
    try {
      return serverOrigin(state.settings.server);
    } catch {
      return null;
    }
  }

  /**
   * The browser's active state `{host, private}` as seen at `at` (epoch ms, taken when the
   * event fired). `send`: 'soon' after a state change, 'now' on an alarm, 'no' to only record.
   */
  async function observeActive(seen, at = now(), send = 'soon') {
    await load();
    const res = observe(state.current, { browser: browserName(), host: seen.host, private: seen.private }, at);
    state.current = res.cur;
    if (res.out.length > 0) state.heartbeats = enqueueHeartbeats(state.heartbeats, res.out, heartbeatLimit);
    const saved = persist('current', 'heartbeats');
    if (send === 'now') await flush({ fromAlarm: true });
    else if (send === 'soon' && res.out.length > 0) sendSoon();
    return saved;
  }

  /** One request's `{host, ip}` seen at `at`; queued unless sent in the last 10 minutes. */
  async function observeRequest(obs, at = now()) {
    await load();
    if (!admit(state.recentPairs, obs.host, obs.ip, at)) return;
    state.observations = enqueueObservations(
      state.observations,
      [{ browser: browserName(), host: obs.host, ip: obs.ip, time: at }],
      observationLimit,
    );
    await persist('recentPairs', 'observations');
    sendSoon();
  }

  function sendSoon() {
    if (pending) return;
    pending = schedule(() => {
      pending = null;
      flush().catch((e) => log('flush failed', e));
    }, SEND_DELAY_MS);
  }

  function fail(message, at) {
    state.delivery = { ...state.delivery, lastError: { at, message }, retryAt: at + RETRY_AFTER_MS };
  }

  async function sendQueue(key, path, field, perRequest, wire, base) {
    for (let i = 0; i < MAX_BATCHES_PER_FLUSH; i++) {
      const batch = takeBatch(state[key], perRequest, { maxBytes: MAX_BODY_BYTES, encode: (it) => JSON.stringify(wire(it)) });
      if (batch.length === 0) return true;
      const at = now();
      state.delivery = { ...state.delivery, lastAttemptAt: at };
      const result = await call({ ...base, path, body: { [field]: batch.map(wire) }, fetchImpl, timeoutMs });
      if (result.status === 200) {
        state[key] = ack(state[key], batch);
        state.delivery = { ...state.delivery, lastOkAt: at, lastError: null, retryAt: 0 };
        await persist(key, 'delivery');
        continue;
      }
      if (result.status === 400 || result.status === 413) {
        // The server will never take this batch; keeping it would block everything behind it.
        state[key] = ack(state[key], batch);
        state.delivery = { ...state.delivery, rejected: state.delivery.rejected + batch.length };
        fail(`${describe(result)} (${batch.length} ${field} dropped)`, at);
        await persist(key, 'delivery');
        log('batch refused', result);
        return false;
      }
      fail(describe(result), at);
      await persist('delivery');
      return false;
    }
    return true;
  }

  async function flushOnce(fromAlarm) {
    await load();
    const at = now();
    const base = { origin: origin(), token: String(state.settings.token ?? '').trim() };
    if (state.heartbeats.items.length === 0 && state.observations.items.length === 0) return;
    if (base.origin === null) {
      fail('the server address on the options page is not a loopback address', at);
      return persist('delivery');
    }
    if (base.token === '') {
      fail('no access token yet: paste the output of "netmon serve --print-token" into the options page', at);
      return persist('delivery');
    }
    if (!fromAlarm && at < state.delivery.retryAt) return;
    const ok = await sendQueue('heartbeats', '/v1/heartbeats', 'heartbeats', HEARTBEATS_PER_REQUEST, wireHeartbeat, base);
    if (ok) await sendQueue('observations', '/v1/observations', 'observations', OBSERVATIONS_PER_REQUEST, wireObservation, base);
  }

  /** Sends what is queued (one flush at a time; a request during a flush runs after it). */
  function flush({ fromAlarm = false } = {}) {
    if (flushing) {
      flushAgain = true;
      return flushing;
    }
    flushing = (async () => {
      try {
        let alarm = fromAlarm;
        do {
          flushAgain = false;
          await flushOnce(alarm);
          alarm = false;
        } while (flushAgain);
      } finally {
        flushing = null;
      }
    })();
    return flushing;
  }

  /** The options page saved new settings: use them, and send at once. */
  async function settingsChanged(settings) {
    await load();
    state.settings = { ...DEFAULT_SETTINGS, ...(settings ?? {}) };
    state.delivery = { ...state.delivery, retryAt: 0 };
    await persist('delivery');
    return flush({ fromAlarm: true });
  }

  return {
    observeActive,
    observeRequest,
    flush,
    settingsChanged,
    /** For tests and the options page: a copy of the state. */
    snapshot: async () => structuredClone(await load()),
    /** Resolves when every storage write issued so far has finished. */
    settled: async () => {
      await writes;
      if (flushing) await flushing;
      await writes;
    },
  };
}
