import { test } from 'node:test';
import assert from 'node:assert/strict';
import { observe, MAX_GAP_MS } from '../../lib/heartbeat.js';

const B = 'Zen';
const at = (host, priv = false) => ({ browser: B, host, private: priv });

// Feeds observations [ms, host] in order; returns the final state and every heartbeat emitted.
function run(steps, cur = null) {
  const out = [];
  for (const [ms, host, priv] of steps) {
    const r = observe(cur, at(host, priv), ms);
    cur = r.cur;
    out.push(...r.out);
  }
  return { cur, out };
}

test('the first observation starts an activity with a zero-length heartbeat', () => {
  const { out } = run([[1000, 'a.example']]);
  assert.deepEqual(out, [{ browser: B, host: 'a.example', private: false, time: 1000, duration: 0 }]);
});

test('repeated observations of one host extend one heartbeat instead of adding new ones', () => {
  const { out, cur } = run([[0, 'a.example'], [30_000, 'a.example'], [60_000, 'a.example']]);
  assert.ok(out.every((h) => h.time === 0 && h.host === 'a.example'));
  assert.deepEqual(out.map((h) => h.duration), [0, 30_000, 60_000]);
  assert.deepEqual(cur, { browser: B, host: 'a.example', private: false, start: 0, last: 60_000 });
});

test('a long stay is reported throughout, every observation making it longer', () => {
  const steps = [];
  for (let ms = 0; ms <= 3_600_000; ms += 30_000) steps.push([ms, 'video.example']);
  const { out } = run(steps);
  assert.equal(out.length, steps.length);
  assert.equal(out.at(-1).duration, 3_600_000);
  assert.ok(out.every((h) => h.time === 0));
});

test('a new host ends the old activity at the moment of the change and starts a new one', () => {
  const { out } = run([[0, 'a.example'], [30_000, 'a.example'], [42_000, 'b.example']]);
  assert.deepEqual(out.slice(-2), [
    { browser: B, host: 'a.example', private: false, time: 0, duration: 42_000 },
    { browser: B, host: 'b.example', private: false, time: 42_000, duration: 0 },
  ]);
});

test('nothing active is said once, not repeated while it lasts', () => {
  const { out } = run([[0, 'a.example'], [10_000, null], [40_000, null], [70_000, null]]);
  assert.deepEqual(out.slice(1), [
    { browser: B, host: 'a.example', private: false, time: 0, duration: 10_000 },
    { browser: B, host: null, private: false, time: 10_000, duration: 0 },
  ]);
});

test('coming back to the same host after nothing was active is a new activity', () => {
  const { out } = run([[0, 'a.example'], [10_000, null], [20_000, 'a.example']]);
  assert.deepEqual(out.at(-1), { browser: B, host: 'a.example', private: false, time: 20_000, duration: 0 });
});

test('after a silence longer than the gap limit (machine asleep) the stay ends at its last observation', () => {
  const wake = 30_000 + MAX_GAP_MS + 1;
  const { out } = run([[0, 'a.example'], [30_000, 'a.example'], [wake, 'a.example']]);
  assert.deepEqual(out.slice(-2), [
    { browser: B, host: 'a.example', private: false, time: 0, duration: 30_000 },
    { browser: B, host: 'a.example', private: false, time: wake, duration: 0 },
  ]);
});

test('a silence within the gap limit is part of the stay (an alarm came late)', () => {
  const { out } = run([[0, 'a.example'], [MAX_GAP_MS, 'a.example']]);
  assert.deepEqual(out.at(-1), { browser: B, host: 'a.example', private: false, time: 0, duration: MAX_GAP_MS });
});

test('a clock that went back never makes a negative duration', () => {
  const { out } = run([[100_000, 'a.example'], [130_000, 'a.example'], [50_000, 'a.example']]);
  assert.ok(out.every((h) => h.duration >= 0));
  assert.deepEqual(out.at(-1), { browser: B, host: 'a.example', private: false, time: 50_000, duration: 0 });
});

test('a private tab of the same host is a different state', () => {
  const { out } = run([[0, 'a.example', false], [5000, 'a.example', true]]);
  assert.equal(out.at(-1).private, true);
  assert.equal(out.at(-1).time, 5000);
});

test('renaming the browser starts a new activity under the new name', () => {
  let r = observe(null, { browser: 'Chrome', host: 'a.example', private: false }, 0);
  r = observe(r.cur, { browser: 'Brave Browser', host: 'a.example', private: false }, 1000);
  assert.deepEqual(r.out.map((h) => [h.browser, h.time, h.duration]), [['Chrome', 0, 1000], ['Brave Browser', 1000, 0]]);
});
