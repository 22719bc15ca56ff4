import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyQueue, enqueueHeartbeats, enqueueObservations, takeBatch, ack } from '../../lib/queue.js';

const hb = (host, time, duration) => ({ browser: 'Zen', host, private: false, time, duration });

test('updates of one activity are merged into one queued heartbeat, the longest duration kept', () => {
  let q = enqueueHeartbeats(emptyQueue(), [hb('a.example', 0, 0)]);
  q = enqueueHeartbeats(q, [hb('a.example', 0, 30_000)]);
  q = enqueueHeartbeats(q, [hb('a.example', 0, 60_000)]);
  assert.equal(q.items.length, 1);
  assert.equal(q.items[0].duration, 60_000);
  q = enqueueHeartbeats(q, [hb('a.example', 0, 10_000)]);
  assert.equal(q.items[0].duration, 60_000, 'a late, shorter update does not shorten it');
});

test('different activities stay separate and in order', () => {
  const q = enqueueHeartbeats(emptyQueue(), [hb('a.example', 0, 5000), hb('b.example', 5000, 0), hb('a.example', 9000, 0)]);
  assert.deepEqual(q.items.map((h) => [h.host, h.time]), [['a.example', 0], ['b.example', 5000], ['a.example', 9000]]);
});

test('the queue is bounded: the oldest are dropped and counted', () => {
  let q = emptyQueue();
  for (let i = 0; i < 25; i++) q = enqueueHeartbeats(q, [hb(`h${i}.example`, i, 0)], 10);
  assert.equal(q.items.length, 10);
  assert.equal(q.dropped, 15);
  assert.equal(q.items[0].host, 'h15.example');
  assert.equal(q.items.at(-1).host, 'h24.example');
});

test('a batch is removed only once acknowledged, and what was merged in flight stays', () => {
  let q = enqueueHeartbeats(emptyQueue(), [hb('a.example', 0, 1000), hb('b.example', 1000, 0)]);
  const batch = takeBatch(q, 100);
  assert.equal(batch.length, 2);
  // While the batch is in flight the current activity gets longer.
  q = enqueueHeartbeats(q, [hb('b.example', 1000, 30_000)]);
  q = ack(q, batch);
  assert.deepEqual(q.items.map((h) => [h.host, h.duration]), [['b.example', 30_000]]);
});

test('a batch respects both the count and the byte budget, but never comes out empty', () => {
  let q = emptyQueue();
  q = enqueueObservations(q, Array.from({ length: 50 }, (_, i) => ({ host: `${'x'.repeat(200)}${i}.example`, ip: '192.0.2.1', time: i })));
  assert.equal(takeBatch(q, 10).length, 10);
  const small = takeBatch(q, 500, { maxBytes: 2000 });
  assert.ok(small.length >= 1 && small.length < 10, `got ${small.length}`);
  assert.ok(small.reduce((n, it) => n + JSON.stringify(it).length + 1, 0) <= 2000);
  assert.equal(takeBatch(q, 500, { maxBytes: 1 }).length, 1);
  assert.deepEqual(takeBatch(emptyQueue(), 100), []);
});

test('observations queue without merging, bounded the same way', () => {
  let q = emptyQueue();
  for (let i = 0; i < 5; i++) q = enqueueObservations(q, [{ host: 'a.example', ip: `192.0.2.${i}`, time: i }], 3);
  assert.deepEqual(q.items.map((o) => o.ip), ['192.0.2.2', '192.0.2.3', '192.0.2.4']);
  assert.equal(q.dropped, 2);
});
