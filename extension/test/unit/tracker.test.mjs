// The tracker against a stand-in netmon serve on loopback (test/stub-server.mjs, which refuses
// anything PROTOCOL.md does not allow), with fake storage, clock and timers: sending,
// merging, queueing while the server is down, restarts of the worker, refusals.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTracker, HEARTBEATS_PER_REQUEST, MAX_BATCHES_PER_FLUSH } from '../../lib/tracker.js';
import { HEARTBEAT_LIMIT } from '../../lib/queue.js';
import { startStub } from '../stub-server.mjs';

const TOKEN = 'test-token-0123456789abcdef';
const T0 = Date.parse('2026-11-24T10:00:00Z');

// storage.local as the browser gives it: values are copied in and out.
function fakeStorage() {
  const data = new Map();
  return {
    data,
    async get(keys) {
      return Object.fromEntries(keys.filter((k) => data.has(k)).map((k) => [k, structuredClone(data.get(k))]));
    },
    async set(obj) {
      for (const [k, v] of Object.entries(obj)) data.set(k, structuredClone(v));
    },
  };
}

// A world: storage, a clock, captured timers, and a tracker that can be "restarted".
function world({ origin, token = TOKEN, fetchImpl = fetch, limits, timeoutMs } = {}) {
  const w = {
    store: fakeStorage(),
    now: T0,
    timers: [],
    fetchCalls: 0,
  };
  w.store.data.set('settings', { server: origin, token, browser: 'Zen', reportPrivate: false });
  w.start = () => {
    w.tracker = createTracker({
      store: w.store,
      fetchImpl: (...a) => {
        w.fetchCalls++;
        return fetchImpl(...a);
      },
      now: () => w.now,
      schedule: (fn) => w.timers.push(fn),
      limits,
      timeoutMs,
    });
    return w.tracker;
  };
  w.runTimers = async () => {
    const fns = w.timers.splice(0);
    for (const fn of fns) fn();
    await w.tracker.settled();
  };
  w.start();
  return w;
}

const at = (host) => ({ host, private: false });

test('heartbeats reach netmon serve with the token, in the protocol form', async (t) => {
  const stub = await startStub({ token: TOKEN });
  t.after(() => stub.close());
  const w = world({ origin: stub.origin });
  await w.tracker.observeActive(at('www.bbc.co.uk'), T0, 'soon');
  assert.equal(w.timers.length, 1, 'a change is sent a moment later, not at once');
  await w.runTimers();
  assert.deepEqual(stub.received.refusals, []);
  assert.deepEqual(stub.received.heartbeats, [
    { browser: 'Zen', host: 'www.bbc.co.uk', time: '2026-11-24T10:00:00.000Z', duration: 0, private: false },
  ]);
  const req = stub.received.requests[0];
  assert.equal(req.headers.authorization, `Bearer ${TOKEN}`);
  assert.equal(req.headers['content-type'], 'application/json');
  const snap = await w.tracker.snapshot();
  assert.equal(snap.heartbeats.items.length, 0, 'what the server accepted is gone from the queue');
  assert.equal(snap.delivery.lastOkAt, T0);
});

test('a long stay on one tab is reported throughout, as one growing heartbeat', async (t) => {
  const stub = await startStub({ token: TOKEN });
  t.after(() => stub.close());
  const w = world({ origin: stub.origin });
  for (let s = 0; s <= 600; s += 30) {
    w.now = T0 + s * 1000;
    await w.tracker.observeActive(at('video.example'), w.now, s === 0 ? 'soon' : 'now');
    if (s === 0) await w.runTimers();
  }
  const hbs = stub.received.heartbeats;
  assert.equal(hbs.length, 21, 'one report per alarm, each the whole stay so far');
  assert.ok(hbs.every((h) => h.host === 'video.example' && h.time === '2026-11-24T10:00:00.000Z'));
  assert.deepEqual(hbs.map((h) => h.duration), Array.from({ length: 21 }, (_, i) => i * 30));
});

test('quick changes are merged into few requests', async (t) => {
  const stub = await startStub({ token: TOKEN });
  t.after(() => stub.close());
  const w = world({ origin: stub.origin });
  for (let i = 0; i < 20; i++) await w.tracker.observeActive(at(`h${i % 3}.example`), T0 + i * 100, 'soon');
  assert.equal(w.timers.length, 1, 'one send is scheduled for the whole burst');
  await w.runTimers();
  assert.equal(stub.received.requests.length, 1);
  assert.equal(stub.received.heartbeats.length, 20);
});

test('while netmon serve is down reports wait in the queue, and arrive in order once it is back', async (t) => {
  const stub = await startStub({ token: TOKEN });
  const port = stub.port;
  await stub.close();
  const w = world({ origin: `http://127.0.0.1:${port}` });
  await w.tracker.observeActive(at('a.example'), T0, 'now');
  w.now = T0 + 30_000;
  await w.tracker.observeActive(at('a.example'), w.now, 'now');
  w.now = T0 + 40_000;
  await w.tracker.observeActive(at('b.example'), w.now, 'now');
  await w.tracker.observeRequest({ host: 'b.example', ip: '192.0.2.7' }, w.now);
  await w.runTimers();
  let snap = await w.tracker.snapshot();
  assert.equal(snap.heartbeats.items.length, 2, 'a.example merged into one, then b.example');
  assert.equal(snap.observations.items.length, 1);
  assert.match(snap.delivery.lastError.message, /cannot reach http:\/\/127\.0\.0\.1:\d+: is "netmon serve" running\?/);

  const back = await startStub({ token: TOKEN, port });
  t.after(() => back.close());
  w.now = T0 + 60_000;
  await w.tracker.observeActive(at('b.example'), w.now, 'now');
  assert.deepEqual(
    back.received.heartbeats.map((h) => [h.host, h.time, h.duration]),
    [
      ['a.example', '2026-11-24T10:00:00.000Z', 40],
      ['b.example', '2026-11-24T10:00:40.000Z', 20],
    ],
  );
  assert.deepEqual(back.received.observations, [{ browser: 'Zen', host: 'b.example', ip: '192.0.2.7', time: '2026-11-24T10:00:40.000Z' }]);
  snap = await w.tracker.snapshot();
  assert.equal(snap.delivery.lastError, null);
  assert.equal(snap.heartbeats.items.length + snap.observations.items.length, 0);
});

test('after a failure, state changes wait for the retry time; the alarm retries', async () => {
  const w = world({ origin: 'http://127.0.0.1:9', fetchImpl: async () => { throw new TypeError('Failed to fetch'); } });
  await w.tracker.observeActive(at('a.example'), T0, 'now');
  assert.equal(w.fetchCalls, 1);
  for (let i = 1; i <= 10; i++) {
    w.now = T0 + i * 1000;
    await w.tracker.observeActive(at(`h${i}.example`), w.now, 'soon');
    await w.runTimers();
  }
  assert.equal(w.fetchCalls, 1, 'no request per tab switch while the server is down');
  w.now = T0 + 30_000;
  await w.tracker.observeActive(at('h10.example'), w.now, 'now');
  assert.equal(w.fetchCalls, 2);
});

test('a stopped and restarted worker carries on the same stay, losing nothing', async (t) => {
  const stub = await startStub({ token: TOKEN });
  const port = stub.port;
  await stub.close();
  const w = world({ origin: `http://127.0.0.1:${port}` });
  await w.tracker.observeActive(at('docs.example'), T0, 'now');
  w.now = T0 + 30_000;
  await w.tracker.observeActive(at('docs.example'), w.now, 'now');
  await w.tracker.observeRequest({ host: 'docs.example', ip: '192.0.2.9' }, w.now);
  await w.tracker.settled();

  // The browser stops the worker: everything in memory is gone. A new one starts.
  w.timers.length = 0;
  w.start();
  const back = await startStub({ token: TOKEN, port });
  t.after(() => back.close());
  w.now = T0 + 60_000;
  await w.tracker.observeActive(at('docs.example'), w.now, 'now');
  assert.deepEqual(back.received.heartbeats.map((h) => [h.host, h.time, h.duration]), [['docs.example', '2026-11-24T10:00:00.000Z', 60]]);
  assert.deepEqual(back.received.observations.map((o) => [o.host, o.ip]), [['docs.example', '192.0.2.9']]);
  // The memory of sent pairs survived too: the same pair is not sent again.
  await w.tracker.observeRequest({ host: 'docs.example', ip: '192.0.2.9' }, w.now + 1000);
  assert.equal((await w.tracker.snapshot()).observations.items.length, 0);
});

test('the queue is bounded while the server is down, keeping the most recent reports', async () => {
  const limit = 50;
  const w = world({ origin: 'http://127.0.0.1:9', fetchImpl: async () => { throw new TypeError('Failed to fetch'); }, limits: { heartbeats: limit } });
  const n = limit + 30;
  for (let i = 0; i < n; i++) await w.tracker.observeActive(at(`h${i}.example`), T0 + i * 1000, 'no');
  const snap = await w.tracker.snapshot();
  assert.equal(snap.heartbeats.items.length, limit);
  // Each host is a start and, when the next one comes, an end merged into it: n items, less those dropped.
  assert.equal(snap.heartbeats.dropped, n - limit);
  assert.equal(snap.heartbeats.items.at(-1).host, `h${n - 1}.example`);
  assert.equal(snap.heartbeats.items[0].host, `h${n - limit}.example`);
  // What storage holds is what the next worker would send.
  assert.equal(w.store.data.get('heartbeats').items.length, limit);
  assert.ok(HEARTBEAT_LIMIT >= 1000, 'the real limit keeps hours of browsing');
});

test('a long queue drains in batches of at most 100, a bounded number per flush', async (t) => {
  const stub = await startStub({ token: TOKEN });
  t.after(() => stub.close());
  const w = world({ origin: stub.origin, token: '' });
  for (let i = 0; i < 1500; i++) await w.tracker.observeActive(at(`h${i}.example`), T0 + i * 1000, 'no');
  await w.tracker.settingsChanged({ server: stub.origin, token: TOKEN, browser: 'Zen' });
  const sizes = stub.received.requests.map((r) => JSON.parse(r.body).heartbeats.length);
  assert.equal(sizes.length, MAX_BATCHES_PER_FLUSH);
  assert.ok(sizes.every((s) => s === HEARTBEATS_PER_REQUEST));
  await w.tracker.flush({ fromAlarm: true });
  assert.equal(stub.received.heartbeats.length, 1500);
  assert.deepEqual(stub.received.refusals, []);
});

test('without a token nothing is sent and the options page is told why', async (t) => {
  const stub = await startStub({ token: TOKEN });
  t.after(() => stub.close());
  const w = world({ origin: stub.origin, token: '' });
  await w.tracker.observeActive(at('a.example'), T0, 'now');
  assert.equal(stub.received.requests.length, 0);
  assert.match((await w.tracker.snapshot()).delivery.lastError.message, /netmon serve --print-token/);
  await w.tracker.settingsChanged({ server: stub.origin, token: TOKEN, browser: 'Zen' });
  assert.equal(stub.received.heartbeats.length, 1);
});

test('a wrong token keeps the reports queued and says what to do', async (t) => {
  const stub = await startStub({ token: TOKEN });
  t.after(() => stub.close());
  const w = world({ origin: stub.origin, token: 'wrong' });
  await w.tracker.observeActive(at('a.example'), T0, 'now');
  assert.deepEqual(stub.received.refusals.map((r) => r.status), [401]);
  const snap = await w.tracker.snapshot();
  assert.equal(snap.heartbeats.items.length, 1);
  assert.match(snap.delivery.lastError.message, /refused the access token/);
});

test('a batch the server refuses as invalid is dropped, not retried forever', async () => {
  let calls = 0;
  const w = world({
    origin: 'http://127.0.0.1:9',
    fetchImpl: async () => {
      calls++;
      return new Response(JSON.stringify({ error: 'bad_request', message: 'heartbeats[0].host: bad' }), { status: 400 });
    },
  });
  await w.tracker.observeActive(at('a.example'), T0, 'now');
  const snap = await w.tracker.snapshot();
  assert.equal(snap.heartbeats.items.length, 0);
  assert.equal(snap.delivery.rejected, 1);
  assert.match(snap.delivery.lastError.message, /bad_request.*heartbeats\[0\]\.host: bad.*1 heartbeats dropped/);
  assert.equal(calls, 1);
});

test('a server that does not answer costs one bounded wait, not a hang', async () => {
  const w = world({
    origin: 'http://127.0.0.1:9',
    timeoutMs: 300,
    fetchImpl: (_url, init) =>
      new Promise((_resolve, reject) => init.signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')))),
  });
  const started = Date.now();
  await w.tracker.observeActive(at('a.example'), T0, 'now');
  assert.ok(Date.now() - started < 5000);
  assert.match((await w.tracker.snapshot()).delivery.lastError.message, /no answer from http:\/\/127\.0\.0\.1:9 within 0.3 s/);
});

test('a server address off this machine is never contacted', async () => {
  const w = world({ origin: 'http://192.0.2.1:7500' });
  await w.tracker.observeActive(at('a.example'), T0, 'now');
  assert.equal(w.fetchCalls, 0);
  assert.match((await w.tracker.snapshot()).delivery.lastError.message, /not a loopback address/);
});

test('observations are de-duplicated, sent in bodies under 64 KiB', async (t) => {
  const stub = await startStub({ token: TOKEN });
  t.after(() => stub.close());
  const w = world({ origin: stub.origin });
  for (let i = 0; i < 600; i++) {
    const host = `${'n'.repeat(60)}.${'m'.repeat(60)}.${'o'.repeat(55)}${i}.example`;
    await w.tracker.observeRequest({ host, ip: '192.0.2.1' }, T0 + i);
    await w.tracker.observeRequest({ host, ip: '192.0.2.1' }, T0 + i + 1);
  }
  await w.tracker.flush({ fromAlarm: true });
  assert.deepEqual(stub.received.refusals, []);
  assert.equal(stub.received.observations.length, 600, 'each pair once');
  for (const r of stub.received.requests) assert.ok(Buffer.byteLength(r.body) <= 64 * 1024);
  assert.ok(stub.received.requests.length >= 3, 'split by size, not only by count');
});
